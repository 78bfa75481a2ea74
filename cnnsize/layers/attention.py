"""Fused attention modules of hybrid models, each one layer kind that reads the model's module in ``from_torch``.

Their intermediates (QKᵀ, the softmax, the copies torch's einsum makes of strided operands) are tensors a forward
creates as much as the output: they are the kind's ``scratch`` activations (LayerKind.scratch), counted as torch
creates them (a size-1 axis, the batch's included, lets torch take a view where it would otherwise copy). The
torch builds live in cnnsize.layers.nn.attention and need no torchvision.
"""

from __future__ import annotations

import math

from ..core.errors import SpecError
from ..core.numeric import Dim, fmt_num, is_int
from .base import (
    FLOAT32,
    IN_PLACE,
    LOWER,
    PROMOTE,
    Counts,
    LayerKind,
    Param,
    Saved,
    TorchModule,
    attention_backward,
    plain,
    register,
)


def _text(shape) -> str:
    return "×".join(str(v) for v in shape)


def _fvcore_einsum(macs: int) -> int:
    """fvcore's figure for an einsum of ``macs`` multiply-adds: numpy's einsum_path cost (2 per multiply-add), which
    numpy prints to 4 significant digits and fvcore reads back from that text and halves (floored)."""
    return math.floor(float(f"{2 * macs:.3e}") / 2)


@register("maxvit_attention")
class MaxVitAttention(LayerKind):
    """MaxViT's relative-position self-attention on [G, P, D]: G groups (windows or grid cells) of P = size² tokens
    of D features, ``heads`` heads; a QKV projection, QKᵀ per group and head plus a learned bias per head and relative
    position ((2·size − 1)² of them, looked up through a P×P index buffer), softmax, attention·V and a projection."""
    autocast = {"cpu": LOWER, "cuda": LOWER}  # its output projection: 16-bit
    onnx_none = ("a fused module of torchvision's MaxViT: its ONNX export is many operators (MatMul, Softmax, "
                 "Reshape), each imported as the kind it is")
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "torchinfo": "4*N*D*(D + 1)",
        "fvcore": "4*out*D + fvcore_einsums",
        "ptflops": "4*out*D + 4*out + N*heads*L*P",
        "ptflops-aten": "macs + 4*out",
        "thop": "macs",
        "torchscan-flops": "8*out*D",
        "torchscan-macs": "4*out*D",
        "torchscan-dmas": "inp + 5*out + 4*D*(D + 1)",
    }

    cause = "attention"
    weight_layer = True
    params = {"heads": Param("int", doc="number of heads (D must divide by it)"),
              "size": Param("int", doc="the window side: P = size² tokens per group")}
    count_fact_names = {"P": "tokens per group (size²)",
                        "fvcore_einsums": "QKᵀ and attention·V as fvcore counts einsums: each one's 2·MACs "
                                          "written to 4 significant digits (numpy's einsum_path text), halved"}
    torch_modules = ("torchvision.models.maxvit.RelativePositionalMultiHeadAttention",
                     "cnnsize.layers.nn.attention.MaxVitAttention")

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
        if self.size < 2:
            raise SpecError("maxvit_attention needs windows of at least 2×2 tokens (size 2 or more)",
                            hint="one token per group is no attention; torch computes it otherwise, uncounted here")
        if is_int(x[1]) and x[1] != self.size * self.size:
            raise SpecError(f"maxvit_attention of size {self.size} needs {self.size ** 2} tokens per group, got "
                            f"{x[1]}", hint="size is the window's side; P = size²")
        if is_int(x[2]) and x[2] % self.heads:
            raise SpecError(f"the token features ({x[2]}) must be divisible by heads ({self.heads})")
        return tuple(x)

    def backward_macs(self, ins, out, batch, grads, trains):
        g, p, d = ins[0]  # the relative position table is gathered (no products): as mha
        return attention_backward(g * p * d * d * batch, g * p * p * d * batch, any(grads), trains)

    def counts(self, ins, out):
        g, p, d = ins[0]
        table = (2 * self.size - 1) ** 2 * self.heads
        macs = 4 * g * p * d * d + 2 * g * p * p * d  # QKV and merge projections; QKᵀ and attention·V
        return Counts(weights=4 * d * d + table, biases=4 * d, buffers=p * p, connections=macs, macs=macs)

    def int_buffers(self, ins, out):
        return ins[0][1] ** 2  # the relative position index

    def module_tree(self, ins, out):
        g, p, d = ins[0]  # the bias table and the index on the module, to_qkv and merge children
        table = (2 * self.size - 1) ** 2 * self.heads
        return [TorchModule(table, 0, p * p, leaf=False), TorchModule(3 * d * d + 3 * d), TorchModule(d * d + d)]

    def count_facts(self, ins, out, batch):
        g, p, d = ins[0]
        return {"P": p, "fvcore_einsums": 2 * _fvcore_einsum(batch * g * p * p * d)}

    def scratch(self, ins, out, batch):
        g, p, d = ins[0]
        h = self.heads
        # per sample: qkv (3), k·scale, the copies of q, k and v einsum makes, attention·V, the merge's contiguous
        # input; QKᵀ, + bias, softmax per head. Once for the batch: the looked-up bias table and its permuted copy
        copies = 4 if h == 1 else 3 if g * batch == 1 else 0  # size-1 axes: views where torch would copy
        return ((9 - copies) * g * p * d + 3 * g * h * p * p) * batch + (1 if h == 1 else 2) * h * p * p

    def transient(self, ins, out, batch, training):
        g, p, d = ins[0]  # QKᵀ and QKᵀ + bias, then the softmax's input and output; at inference also QKV, of which
        # q, k and v are views, and the scaled k and einsum's copies, throughout; in training, with several heads and
        # partitions, the gradients of einsum's copies of q, k and v (measured: tests/test_transients.py)
        copies = 5 if not training else 3 if self.heads > 1 and g > 1 else 0
        return (2 * g * self.heads * p * p + copies * g * p * d) * batch

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

    def saved(self, ins, out, trainable, device):
        g, p, d = ins[0]
        h = self.heads
        # the projection's input; k (scaled), q and v as the einsums' bmm read them (copies, or with a size-1 axis
        # views of the qkv projection's storage), the softmax, and the merge's input
        one, two = [Saved("new", 3 * g * p * d)], [Saved("new", g * p * d), Saved("new", g * p * d)]
        if h == 1:
            qv = one
        elif g == 1:  # one group of one sample: views; of a batch: copies
            qv = [Saved("new", 3 * g * p * d, batch_one=True)] + [Saved("new", g * p * d, batch_one=False)] * 2
        else:
            qv = two
        return [*([Saved("input")] if trainable else []), Saved("new", g * p * d), *qv, Saved("new", g * h * p * p),
                Saved("new", g * p * d)]

    def build(self, ins, out):
        from .nn.attention import MaxVitAttention as Module

        return Module(ins[0][2], self.heads, self.size)


def _volume(size, kernel, stride) -> tuple:
    """The (T, H, W) after MViT's pooling: kernel k, stride s and padding k // 2 per axis (no pooling: as it is)."""
    if not kernel:
        return tuple(size)
    return tuple((n + 2 * (k // 2) - k) // s + 1 for n, k, s in zip(size, kernel, stride))


def _three(value) -> tuple:
    """A per-axis setting of MViT's (T, H, W): () for 0 (none), else three numbers."""
    if value == 0 or value == () or value == []:
        return ()
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * 3


class _Volume(LayerKind):
    """Tokens [1 + T·H·W, C] of a (T, H, W) volume with a class token first (MViT's layout)."""

    def grid(self, x) -> tuple:
        size = _three(self.size)
        if len(x) != 2 or len(size) != 3:
            raise SpecError(f"{self.kind} needs tokens [1 + T·H·W, C] and size [T, H, W], got {_text(x)} and size "
                            f"{list(size)}")
        if all(is_int(v) for v in (*size, x[0])) and x[0] != 1 + size[0] * size[1] * size[2]:
            raise SpecError(f"{self.kind}: {x[0]} tokens are not a class token and the {_text(size)} volume",
                            hint="size is the (T, H, W) of the tokens after the class token")
        return size

    def receptive(self, rfs, ins, out):
        return None


@register("mvit_pool")
class MViTPool(_Volume):
    """MViT's skip pooling: a max pool over the (T, H, W) volume of tokens [1 + T·H·W, C], the class token kept
    (torchvision's Pool of a MaxPool3d, padding kernel // 2). It copies the tokens into a volume, pools, and joins
    the class token back: two intermediates besides the output."""
    autocast = {"cpu": FLOAT32}  # its max_pool3d: the CPU's float32 list
    onnx_none = ("a fused module of torchvision's MViT: its ONNX export is many operators, each imported as the kind "
                 "it is")
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "ptflops": "2*inp - 2*N*D",
    }

    cause = "pooling"
    params = {"size": Param("size", doc="the (T, H, W) of the tokens after the class token"),
              "kernel": Param("ints", doc="the max pool's window per axis"),
              "stride": Param("ints", doc="the max pool's stride per axis")}
    torch_modules = ("cnnsize.layers.nn.attention.MViTPool", "torchvision.models.video.mvit.Pool")

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if type(m).__name__ == "MViTPool":
            return {"size": list(m.size), "kernel": plain(m.pool.kernel_size), "stride": plain(m.pool.stride)}
        pool = m.pool
        thw = call.arg(1, "thw")
        if type(pool).__name__ != "MaxPool3d" or m.norm_act is not None or call.rank != 3 or \
                not isinstance(thw, tuple) or plain(pool.padding) != plain(tuple(k // 2 for k in _three(
                    plain(pool.kernel_size)))) or pool.dilation not in (1, (1, 1, 1)) or pool.ceil_mode:
            raise call.refuse("an MViT Pool other than a max pool of tokens with padding kernel // 2")
        return {"size": list(thw), "kernel": plain(pool.kernel_size), "stride": plain(pool.stride)}

    def output_shape(self, ins, ctx):
        size = self.grid(ins[0])
        t, h, w = _volume(size, _three(self.kernel), _three(self.stride))
        return (1 + t * h * w, ins[0][1])

    def scratch(self, ins, out, batch):
        n, c = ins[0]
        return ((n - 1) * c + (out[0] - 1) * c) * batch  # the volume's copy, the pooled volume

    def transient(self, ins, out, batch, training):
        n, c = ins[0]  # the pooled volume, while the class token is joined back; the volume's copy, unless saved
        return ((out[0] - 1) * c + (0 if training else (n - 1) * c)) * batch

    def saved(self, ins, out, trainable, device):
        n, c = ins[0]
        return [Saved("new", (n - 1) * c), Saved("new", (out[0] - 1) * c, itemsize=8)]  # the volume; int64 indices

    def build(self, ins, out):
        from .nn.attention import MViTPool as Module

        kernel = _three(self.kernel)
        return Module(_three(self.size), kernel, _three(self.stride), tuple(k // 2 for k in kernel))


@register("mvit_attention")
class MViTAttention(_Volume):
    """MViT's multiscale attention on tokens [1 + T·H·W, C]: a QKV projection to ``dim`` features in ``heads``
    heads; q, k and v each pooled per head (a depthwise Conv3d, padding kernel // 2, and a LayerNorm; q only where
    ``kernel_q`` is given); attention, with MViT v2's decomposed relative positions (``rel_pos``) and residual pooling
    (``residual_pool``: q added to the result, the class token's row too with ``cls_residual``); an output
    projection. Output: [1 + T'·H'·W', dim], the volume q's pooling leaves."""
    autocast = {"cpu": LOWER, "cuda": LOWER}  # its output projection: 16-bit
    onnx_none = ("a fused module of torchvision's MViT: its ONNX export is many operators, each imported as the kind "
                 "it is")
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "torch": "2*(macs - mul_einsums)",
        "torchinfo": "N*(3*E*D + 4*D + D*D + 2*hd*pools) + pool_macs",
        "fvcore": "macs - rel_einsums + fvcore_rel_einsums + 5*norm_in",
        "ptflops": "macs - rel_einsums + 3*inp*D/E + out + norm_in",
        "ptflops-aten": "macs + 3*inp*D/E + out",
        "thop": "macs + 4*norm_in",
        "torchscan-flops": "6*inp*D + 2*out*D + 2*pool_macs - pool_out + 8*norm_in + 2*norm_rows",
        "torchscan-macs": "3*inp*D + out*D + pool_macs",
        "torchscan-dmas": "inp + 3*D*(E + 1) + 3*inp*D/E + 2*out + D*(D + 1) + pool_macs + pool_params + pool_out",
    }

    cause = "attention"
    weight_layer = True
    params = {"dim": Param("int", doc="the attention's features (heads · head size)"),
              "heads": Param("int", doc="number of heads (dim must divide by it)"),
              "size": Param("size", doc="the (T, H, W) of the input tokens after the class token"),
              "kernel_q": Param("ints_or_zero", 0, doc="q's pooling window per axis (0: q not pooled)"),
              "stride_q": Param("ints", 1, doc="q's pooling stride per axis"),
              "kernel_kv": Param("ints", doc="k's and v's pooling window per axis"),
              "stride_kv": Param("ints", 1, doc="k's and v's pooling stride per axis"),
              "residual_pool": Param("bool", False, doc="MViT v2: add the pooled q to the attention's result"),
              "cls_residual": Param("bool", True, doc="with residual_pool, the class token's row too"),
              "rel_pos": Param("bool", False, doc="MViT v2's decomposed relative position tables"),
              "eps": Param("positive", 1e-6, doc="the pooling LayerNorms' eps")}
    # the parts torchvision's module is made of, which the tools count one by one (cnnsize.passes.conventions)
    count_fact_names = {
        "E": "the input's features (the QKV projection's fan-in)",
        "hd": "the head size (dim / heads)",
        "pools": "the pooled tensors (q, k, v: 2 or 3), each a depthwise Conv3d and a LayerNorm",
        "pool_macs": "the pooling convs' multiply-adds, for the batch",
        "pool_out": "elements the pooling convs output, for the batch (class tokens left out)",
        "pool_params": "the pooling convs' weights",
        "norm_in": "elements the pooling LayerNorms normalize, class tokens included, for the batch",
        "norm_rows": "rows the pooling LayerNorms normalize (per head and token), for the batch",
        "rel_einsums": "the multiply-adds of the relative positions' two einsums (h and w; t is a matmul), for the "
                       "batch",
        "fvcore_rel_einsums": "those two einsums as fvcore counts einsums: each one's 2·MACs written to 4 significant "
                              "digits (numpy's einsum_path text), halved",
        "mul_einsums": "those two einsums where the head size is 1: torch runs each as an elementwise multiply (one "
                       "product per output, cnnsize's MACs), which FlopCounterMode counts as 0; else 0"}
    torch_modules = ("torchvision.models.video.mvit.MultiscaleAttention", "cnnsize.layers.nn.attention.MViTAttention")

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if type(m).__name__ == "MViTAttention":
            size = list(m.size)
        else:
            size = call.arg(1, "thw")
            if not isinstance(size, tuple):
                raise call.refuse("MultiscaleAttention whose (T, H, W) is not known at import")
            size = list(size)

        def pool(p):
            if p is None:
                return 0, 1, None
            conv = p.pool if hasattr(p, "norm_act") else p["pool"]
            norm = (p.norm_act[0] if p.norm_act is not None and len(p.norm_act) == 1 else None) \
                if hasattr(p, "norm_act") else p["norm"]
            if type(conv).__name__ != "Conv3d" or type(norm).__name__ != "LayerNorm" or conv.bias is not None or \
                    conv.groups != conv.in_channels or getattr(p, "norm_before_pool", False) or \
                    plain(conv.padding) != plain(tuple(k // 2 for k in conv.kernel_size)):
                raise call.refuse("an MViT attention pooling other than a depthwise Conv3d and a LayerNorm")
            return plain(conv.kernel_size), plain(conv.stride), norm.eps

        kernel_q, stride_q, eps_q = pool(m.pool_q)
        kernel_kv, stride_kv, eps_kv = pool(m.pool_k)
        if (kernel_kv, stride_kv) != pool(m.pool_v)[:2] or len(m.project) != 1 or call.rank != 3 or not kernel_kv:
            raise call.refuse("MultiscaleAttention without k and v pooling, with different k and v pooling, or with "
                              "dropout after the projection")
        return {"dim": m.output_dim, "heads": m.num_heads, "size": size, "kernel_q": kernel_q, "stride_q": stride_q,
                "kernel_kv": kernel_kv, "stride_kv": stride_kv, "residual_pool": bool(m.residual_pool),
                "cls_residual": bool(m.residual_with_cls_embed), "rel_pos": m.rel_pos_h is not None,
                "eps": float(eps_q or eps_kv or 1e-6)}

    def geometry(self, x) -> tuple:
        """(head size, q's volume, k's volume, the pools as (kernel, output volume): q's (if pooled), k's, v's)."""
        size = self.grid(x)
        if is_int(self.dim) and self.dim % self.heads:
            raise SpecError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        kq, kkv = _three(self.kernel_q), _three(self.kernel_kv)
        if any(is_int(k) and k == 0 for k in kq):  # torch cannot build a pooling window of size 0 on an axis
            raise SpecError(f"kernel_q {list(kq)} has a window of 0 on an axis: q's pooling window is at least 1 "
                            "on every axis", hint="write kernel_q: 0 for q not pooled")
        q_vol, k_vol = _volume(size, kq, _three(self.stride_q)), _volume(size, kkv, _three(self.stride_kv))
        pools = [(k, vol) for k, vol in ((kq, q_vol), (kkv, k_vol), (kkv, k_vol)) if k]
        return self.dim // self.heads, q_vol, k_vol, pools

    def rel_tables(self, size) -> tuple:
        """The rows of the h, w and t relative position tables (torchvision sizes them from the input)."""
        side = max(size[1:])
        q_side = side // _three(self.stride_q)[1] if self.kernel_q else side
        kv_side = side // _three(self.stride_kv)[1] if self.kernel_kv else side
        spatial = 2 * max(q_side, kv_side) - 1
        return spatial, spatial, 2 * size[0] - 1

    def output_shape(self, ins, ctx):
        _, (t, h, w), _, _ = self.geometry(ins[0])
        return (1 + t * h * w, self.dim)

    def stretched(self, size, q_vol, k_vol) -> list:
        """The rows of each relative position table torchvision stretches (linearly) to the rows the grids need,
        2·max(q, k) − 1 per axis, where the input sized it otherwise (an even kernel pads one more position)."""
        rows_h, rows_w, rows_t = self.rel_tables(size)
        found = []
        for rows, qa, ka in zip((rows_t, rows_h, rows_w), q_vol, k_vol):
            need = 2 * max(qa, ka) - 1
            if is_int(need) and is_int(rows) and need != rows:
                found.append(need)
        return found

    def counts(self, ins, out):
        n, c = ins[0]
        d = self.dim
        hd, q_vol, k_vol, pools = self.geometry(ins[0])
        nq, nk = 1 + q_vol[0] * q_vol[1] * q_vol[2], 1 + k_vol[0] * k_vol[1] * k_vol[2]
        weights = c * 3 * d + d * d + sum(hd * k[0] * k[1] * k[2] + hd for k, _ in pools)
        biases = 3 * d + d + hd * len(pools)
        macs = n * c * 3 * d + 2 * nq * nk * d + nq * d * d
        for kernel, vol in pools:  # a depthwise conv per head: every output value sums one window
            macs += d * vol[0] * vol[1] * vol[2] * kernel[0] * kernel[1] * kernel[2]
        if self.rel_pos:
            weights += hd * sum(self.rel_tables(self.grid(ins[0])))
            macs += d * (nq - 1) * (k_vol[0] + k_vol[1] + k_vol[2])
        return Counts(weights=weights, biases=biases, connections=macs, macs=macs)

    def module_tree(self, ins, out):
        c, d = ins[0][1], self.dim  # the relative position tables on the module; qkv, project (a Sequential of one
        hd, _, _, pools = self.geometry(ins[0])  # Linear) and per pooled tensor a ModuleDict of a conv and a norm
        tables = hd * sum(self.rel_tables(self.grid(ins[0]))) if self.rel_pos else 0
        modules = [TorchModule(tables, leaf=False), TorchModule(3 * c * d + 3 * d), TorchModule(0, leaf=False),
                   TorchModule(d * d + d)]
        for kernel, _ in pools:
            modules += [TorchModule(0, leaf=False), TorchModule(hd * math.prod(kernel)), TorchModule(2 * hd)]
        return modules

    def backward_macs(self, ins, out, batch, grads, trains):
        """The QKV projection's input gradient where the input requires grad; inside (where anything before trains,
        the projection included): each pooling conv's input gradient, QKᵀ and attention·V twice, the relative
        positions' einsums for q's gradient, the output projection's input gradient; the weight gradients where the
        layer trains: the projections', the einsums' for the tables and the pooling convs' (depthwise per head:
        FlopCounterMode counts head_dim times their forward, see cnnsize.layers.conv.grouped_backward). An einsum of
        one feature per head is a multiplication: nothing counted (``mul_einsums``)."""
        n, c = ins[0]
        d = self.dim
        hd, q_vol, k_vol, pools = self.geometry(ins[0])
        nq, nk = 1 + q_vol[0] * q_vol[1] * q_vol[2], 1 + k_vol[0] * k_vol[1] * k_vol[2]
        pooling = sum(d * v[0] * v[1] * v[2] * k[0] * k[1] * k[2] for k, v in pools) * batch
        facts = self.count_facts(ins, out, batch)
        relative = (d * (nq - 1) * (k_vol[0] + k_vol[1] + k_vol[2]) * batch - facts["mul_einsums"]) \
            if self.rel_pos else 0
        qkv, product, projection = n * c * 3 * d * batch, nq * nk * d * batch, nq * d * d * batch
        gi = any(grads)
        inside = gi or trains
        return (qkv * gi + (pooling + 4 * product + relative + projection) * inside,
                (qkv + hd * pooling + relative + projection) * trains)

    def count_facts(self, ins, out, batch):
        n, c = ins[0]
        d, h = self.dim, self.heads
        hd, q_vol, k_vol, pools = self.geometry(ins[0])
        volumes = [(k[0] * k[1] * k[2], vol[0] * vol[1] * vol[2]) for k, vol in pools]
        einsums = [batch * d * (out[0] - 1) * k for k in k_vol[1:]] if self.rel_pos else []
        return {"E": c, "hd": hd, "pools": len(pools), "pool_macs": sum(d * v * k for k, v in volumes) * batch,
                "pool_out": sum(d * v for _, v in volumes) * batch, "pool_params": sum(hd * k for k, _ in volumes),
                "norm_in": sum(d * (1 + v) for _, v in volumes) * batch,
                "norm_rows": sum(h * (1 + v) for _, v in volumes) * batch, "rel_einsums": sum(einsums),
                "fvcore_rel_einsums": sum(_fvcore_einsum(m) for m in einsums),
                "mul_einsums": sum(einsums) if hd == 1 else 0}

    def scratch(self, ins, out, batch) -> Dim:
        """The intermediates torch makes, as torchvision's MultiscaleAttention runs (heads are folded into the batch
        for the pooling convs and the matmuls, so a size-1 batch or head count turns some copies into views)."""
        x = ins[0]
        n, c = x
        d, h = self.dim, self.heads
        _, q_vol, k_vol, pools = self.geometry(x)
        nq, nk = 1 + q_vol[0] * q_vol[1] * q_vol[2], 1 + k_vol[0] * k_vol[1] * k_vol[2]
        hd = d // h
        size = self.grid(x)
        per = n * 3 * d  # the QKV projection
        for _, vol in pools:  # the volume's copy, the conv's output, the class token joined back, the LayerNorm
            out = vol[0] * vol[1] * vol[2]
            per += d * size[0] * size[1] * size[2] + d * out + 2 * d * (1 + out)
        per += nq * d + 2 * h * nq * nk + nq * d  # scaler·q; QKᵀ and its softmax; attention·V
        if h > 1 and (hd > 1 or batch > 1):  # the heads' transpose before the projection: a copy (with a head
            per += nq * d  # size of 1, at batch 1 a transposed matrix the product reads as it is)
        if not self.kernel_q and h > 1 and batch > 1:
            per += nq * d  # the scaled q, strided as q was, copied for the matmul
        once: Dim = 0
        if self.rel_pos:
            per += self._rel_scratch(q_vol, k_vol, hd, batch)
            # once for the batch: each axis' distances (q_a + 2·k_a + q_a·k_a floats) and the looked-up tables, and
            # a table stretched to the rows the grids need where the input sized it otherwise
            once = sum(qa + 2 * ka + qa * ka + hd * qa * ka for qa, ka in zip(q_vol, k_vol))
            once += sum(hd * need for need in self.stretched(size, q_vol, k_vol))
        return per * batch + once

    def _rel_scratch(self, q_vol, k_vol, hd, batch) -> Dim:
        """The relative positions' intermediates per sample (see scratch)."""
        h, d = self.heads, self.dim
        q_t, q_h, q_w = q_vol
        k_t, k_h, k_w = k_vol
        tokens = q_t * q_h * q_w
        nk = 1 + k_t * k_h * k_w
        # copies of q: the h einsum's unless batch·heads·q_t is 1, the w einsum's and the t reshape's unless
        # batch·heads is 1; the three bmm outputs; the broadcast sums over (k_h, k_w), then over all of k, and
        # its reshape's copy (none with one q frame, one head and one sample: no reordering then). With a head
        # size of 1 torch's einsums are elementwise multiplies: no copy of q, outputs in order, so no reshape copy
        single = h * batch * q_t == 1
        if hd == 1:
            copies, sums = (0 if h * batch == 1 else 1), 1
        else:
            copies, sums = (0 if single else 1 if h * batch == 1 else 3), (1 if single else 2)
        return tokens * d * copies + tokens * h * (k_t + k_h + k_w) + tokens * h * k_h * k_w + \
            sums * tokens * h * (nk - 1)

    def transient(self, ins, out, batch, training):
        _, q_vol, k_vol, _ = self.geometry(ins[0])
        nq, nk = 1 + q_vol[0] * q_vol[1] * q_vol[2], 1 + k_vol[0] * k_vol[1] * k_vol[2]
        n = ins[0][0]  # QKᵀ and the softmax's input and output (or the relative bias' sums); at inference also QKV and
        # the pooled k and v, throughout
        kept = 0 if training else 3 * n * self.dim + (2 * nk * self.dim if nk < n else 0)
        return (2 * self.heads * nq * nk + kept) * batch

    def saved(self, ins, out, trainable, device):
        d, h = self.dim, self.heads
        hd, q_vol, k_vol, pools = self.geometry(ins[0])
        size = self.grid(ins[0])
        nq, nk = out[0], 1 + k_vol[0] * k_vol[1] * k_vol[2]
        kept = [Saved("input")] if trainable else []  # the QKV projection's input
        for _, vol in pools:  # each pool: the conv's input, the LayerNorm's input, its float32 mean and 1/std
            joined = 1 + vol[0] * vol[1] * vol[2]
            kept += [Saved("new", d * size[0] * size[1] * size[2]), Saved("new", d * joined),
                     Saved("new", h * joined, itemsize=4), Saved("new", h * joined, itemsize=4)]
        # k and v as the matmuls read them, the scaled q, the softmax, the projection's input
        kept += [Saved("new", d * nk), Saved("new", d * nk), Saved("new", d * nq), Saved("new", h * nq * nk),
                 Saved("new", d * nq)]
        if self.rel_pos:
            tokens = nq - 1
            # q's copies for the einsums and the t matmul (with batch·heads 1: one copy, and q itself, which
            # unpooled is a view of the QKV projection's output: that whole storage is kept)
            q_itself = d * nq if self.kernel_q else 3 * d * nq
            if hd == 1:  # the einsums are multiplies keeping q itself; the t matmul's copy unless batch·heads is 1
                kept += [Saved("new", q_itself), Saved("new", tokens * d, batch_one=False if h == 1 else None)]
            else:
                h_copy = [] if q_vol[0] == 1 else [Saved("new", tokens * d, batch_one=True)]  # one q frame: a view
                kept += [*h_copy, Saved("new", q_itself, batch_one=True)] + \
                    [Saved("new", tokens * d, batch_one=False)] * 3 if h == 1 else [Saved("new", tokens * d)] * 3
            for qa, ka in zip(q_vol, k_vol):  # once for the batch: the int64 distances and the looked-up table
                kept += [Saved("new", qa * ka, itemsize=8, per_sample=False), Saved("new", hd * qa * ka,
                                                                                     per_sample=False)]
        return kept

    def build(self, ins, out):
        from .nn.attention import MViTAttention as Module

        kq, kkv = _three(self.kernel_q), _three(self.kernel_kv)
        return Module(ins[0][1], self.dim, self.heads, _three(self.size), kq, _three(self.stride_q) if kq else (),
                      kkv, _three(self.stride_kv) if kkv else (), self.residual_pool, self.cls_residual,
                      self.rel_pos, self.eps)


@register("mvit_pos_embed")
class MViTPosEmbed(_Volume):
    """MViT v1's position embedding, added in place to tokens [1 + T·H·W, D]: one learned vector per frame, one per
    spatial position and one for the class token (T·D + H·W·D + D parameters), summed afresh on every forward pass
    (three intermediates, made once for the batch)."""
    autocast = {"cpu": PROMOTE, "cuda": PROMOTE}  # adds float32 parameters
    onnx_none = "a fused module of torchvision's MViT: its ONNX export is an Add of a constant, imported as pos_embed"
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "torchinfo": "0",
    }
    makes = IN_PLACE

    cause = "elementwise"
    params = {"size": Param("size", doc="the (T, H, W) of the tokens after the class token")}
    torch_modules = ("torchvision.models.video.mvit.PositionalEncoding", "cnnsize.layers.nn.attention.MViTPosition")

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if type(m).__name__ == "MViTPosition":
            return {"size": list(m.size)}
        size = [m.temporal_size, *m.spatial_size]
        # torchvision's module joins its class token with torch.cat (as ViT does): no module of its own, and a
        # parameter named class_token, not weight (torchinfo counts it as nothing; cnnsize.passes.conventions)
        token = ("class_token", {"function": "torch.cat"})
        if m.spatial_pos is None:
            return [token]
        return [token, ("mvit_pos_embed", {"size": size})]

    def counts(self, ins, out):
        t, h, w = self.grid(ins[0])
        return Counts(weights=(t + h * w + 1) * ins[0][1], connections=out[0] * ins[0][1])

    def scratch(self, ins, out, batch):
        t, h, w = self.grid(ins[0])
        # once per call: per frame, repeated over the positions; the spatial ones repeated over the frames (a copy);
        # joined to the class token's
        return (3 * t * h * w + 1) * ins[0][1]

    def transient(self, ins, out, batch, training):
        t, h, w = self.grid(ins[0])
        return 2 * t * h * w * ins[0][1]  # the repeated spatial table, and the sum it joins the class token's
    def build(self, ins, out):
        from .nn.attention import MViTPosition as Module

        return Module(ins[0][1], self.grid(ins[0]))


__all__ = ["MViTAttention", "MViTPool", "MViTPosEmbed", "MaxVitAttention"]
