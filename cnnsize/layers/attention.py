"""Fused attention modules of hybrid models, each one layer kind that reads the model's module in ``from_torch``.

Their intermediates (QKᵀ, the softmax, the copies torch's einsum makes of strided operands) are tensors a forward
creates as much as the output: they are the kind's ``scratch`` activations, counted as torch creates them (a size-1
axis, the batch's included, lets torch take a view where it would otherwise copy). The torch builds live in
cnnsize.executor.attention and need no torchvision.
"""

from __future__ import annotations

from ..errors import SpecError
from ..numeric import fmt_num, is_int
from .base import Counts, LayerKind, Param, Saved, register


def _text(shape) -> str:
    return "×".join(str(v) for v in shape)


@register("maxvit_attention")
class MaxVitAttention(LayerKind):
    """MaxViT's relative-position self-attention on [G, P, D]: G groups (windows or grid cells) of P = size² tokens
    of D features, ``heads`` heads; a QKV projection, QKᵀ per group and head plus a learned bias per head and relative
    position ((2·size − 1)² of them, looked up through a P×P index buffer), softmax, attention·V and a projection."""

    cause = "attention"
    fused = True
    weight_layer = True
    params = {"heads": Param("int", doc="number of heads (D must divide by it)"),
              "size": Param("int", doc="the window side: P = size² tokens per group")}
    torch_modules = ("torchvision.models.maxvit.RelativePositionalMultiHeadAttention",
                     "cnnsize.executor.attention.MaxVitAttention")

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if m.head_dim * m.n_heads != call.inputs[0][-1] or call.rank != 4:
            raise call.refuse("RelativePositionalMultiHeadAttention whose heads do not split the features")
        return {"heads": m.n_heads, "size": m.size}

    def output_shape(self, ins, ctx):
        x = ins[0]
        if len(x) != 3:
            raise SpecError(f"maxvit_attention needs groups of tokens [G, P, D], got {_text(x)}",
                            hint="partition the image into windows first (reshape, permute, reshape)")
        if is_int(x[1]) and x[1] != self.size * self.size:
            raise SpecError(f"maxvit_attention of size {self.size} needs {self.size ** 2} tokens per group, got "
                            f"{x[1]}", hint="size is the window's side; P = size²")
        if is_int(x[2]) and x[2] % self.heads:
            raise SpecError(f"the token features ({x[2]}) must be divisible by heads ({self.heads})")
        return tuple(x)

    def counts(self, ins, out, batch=1):
        g, p, d = ins[0]
        h = self.heads
        table = (2 * self.size - 1) ** 2 * h
        # QKV and merge projections; QKᵀ (an elementwise product where P = 1) and attention·V
        macs = 4 * g * p * d * d + (1 if p == 1 else 2) * g * p * p * d
        # per sample: qkv (3), k·scale, the copies of q, k and v einsum makes, attention·V, the merge's contiguous
        # input; QKᵀ, + bias, softmax per head. Once for the batch: the looked-up bias table and its permuted copy
        copies = 4 if h == 1 else 3 if g * batch == 1 else 0  # size-1 axes: views where torch would copy
        scratch = ((9 - copies) * g * p * d + 3 * g * h * p * p) * batch + (1 if h == 1 else 2) * h * p * p
        return Counts(weights=4 * d * d + table, biases=4 * d, buffers=p * p, connections=macs, macs=macs,
                      scratch=scratch)

    def explain(self, ins, out, ctx):
        g, p, d = ins[0]
        side, h = 2 * self.size - 1, self.heads
        counts = self.counts(ins, out)
        return [f"params: 4·D² + 4·D + (2·size − 1)²·heads = 4·{fmt_num(d)}² + 4·{fmt_num(d)} + {side}²·{h} = "
                f"{fmt_num(counts.weights + counts.biases)}",
                f"MACs: projections 4·G·P·D² + QKᵀ and attention·V 2·G·P²·D = 4·{fmt_num(g)}·{fmt_num(p)}·"
                f"{fmt_num(d)}² + 2·{fmt_num(g)}·{fmt_num(p)}²·{fmt_num(d)} = {fmt_num(counts.macs)}"]

    def receptive(self, rfs, ins, out):
        return None

    def saved(self, ins, out, trainable, device, batch=1):
        g, p, d = ins[0]
        h = self.heads
        # the projection's input; k (scaled), q and v as the einsums' bmm read them (copies, or with a size-1 axis
        # views of the qkv projection's storage), the softmax, and the merge's input
        one = [Saved("new", 3 * g * p * d)]
        qv = one if 1 in (g * batch, h) else [Saved("new", g * p * d), Saved("new", g * p * d)]
        return [*([Saved("input")] if trainable else []), Saved("new", g * p * d), *qv, Saved("new", g * h * p * p),
                Saved("new", g * p * d)]

    def build(self, ins, out):
        from ..executor.attention import MaxVitAttention as Module

        return Module(ins[0][2], self.heads, self.size)


__all__ = ["MaxVitAttention"]
