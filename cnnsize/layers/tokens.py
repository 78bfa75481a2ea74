"""Token tensors and pure shape operations.

A token sequence is ``[L, D]`` per sample (L tokens of D features; the batch is left out, as everywhere in
cnnsize). ``linear`` acts on the last axis of any input, so it serves tokens and a permuted image (H, W, C) alike.
The shape operations (``permute``, ``transpose``, ``reshape``, ``flatten``) are views: no MACs and no new storage;
``contiguous`` is the copy torch makes where a view's order no longer matches memory.
"""

from __future__ import annotations

from typing import ClassVar

from ..calc import conv_macs, conv_params, fc_params
from ..core.errors import SpecError
from ..core.numeric import divides, exact_div, fmt_num, is_int, prod
from .base import (
    LOWER,
    PASS_THROUGH,
    PROMOTE,
    VIEW,
    Counts,
    LayerKind,
    Param,
    Saved,
    TensorArg,
    TorchModule,
    attention_backward,
    plain,
    register,
    require_spatial,
    spatial,
)
from .conv import WEIGHT_RULES, weight_of, windowed_shape
from .dense import matmul_weight
from .merge import aligned, constant_shape


def _text(shape) -> str:
    return "×".join(str(v) for v in shape)


def last_axes_per_sample(call, n: int) -> bool:
    """Whether none of the last ``n`` axes of a call's inputs is the batch (a product over them would mix the
    samples: left to another kind, or refused)."""
    return all(call.axis(-k, i) is not None and call.axis(-k, i, merged=True) == call.axis(-k, i)
               for i in range(len(call.inputs)) for k in range(1, n + 1))


class _View(LayerKind):
    """A reshaping that torch does as a view of its input's storage."""
    makes = VIEW

    params = {}

    def receptive(self, rfs, ins, out):
        return None  # the axes no longer line up with the image's


@register("linear")
class Linear(LayerKind):
    """A fully connected layer on the last axis (nn.Linear on [L, D] tokens or on a permuted (H, W, C)); the other
    axes are positions that share the weights."""
    autocast = {"cpu": LOWER, "cuda": LOWER}  # in autocast's 16-bit list on both devices
    features_axis = -1  # the features are the last axis (tokens)
    tools_checked = True
    count_rules = {**WEIGHT_RULES, "torchinfo": {"weight layers": "(params - bias*D)*N", "bias adds": "bias*D*N"},
                   "torchscan-dmas": "inp + params + out"}

    cause = "macs"

    weight_layer = True
    params = {"units": Param("int", doc="output features"), "bias": Param("bool", True)}
    torch_modules = ("Linear",)  # on a rank-2 (N, features) input, fc answers first
    torch_functions = ("linear",)
    onnx_ops = ("MatMul", "Add", "Gemm")
    batch_anywhere = True  # on the last axis (torch's run at batch 2 fails where the batch is that axis)
    counts_constants = True  # F.linear's bias computed from parameters and buffers (from_torch)

    @classmethod
    def from_onnx(cls, call):  # x·W (+ b) on the last axis of a rank-3 or more input (fc's on rank 2)

        found = matmul_weight(call)
        if found is None:
            return None
        units, bias, matmul = found
        x = matmul.computed[0] if matmul is not None else call.computed[0]
        if len(x.shape) == 2:
            return None
        settings = {"units": units, "bias": bias}
        return call.fuse(settings, [x], [matmul]) if matmul is not None else settings

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {"units": call.module.out_features, "bias": call.module.bias is not None}

        units, bias = weight_of(call, 1, call.function).shape[0], call.arg(2, "bias")
        if isinstance(bias, TensorArg) and not bias.computed and call.attrs_learned[-1:] == [False]:
            # a bias computed from parameters and buffers (BEiT's, Swin V2's cat of q_bias, a zero k_bias buffer
            # and v_bias): added to the product in place, its sources counted as they are held
            weights, buffers, macs = call.const_counts[-1]
            return [("linear", {"units": units, "bias": False}),
                    ("const_op", {"op": "add", "shape": [units], "weights": weights, "buffers": buffers,
                                  "macs": macs, "inplace": True})]
        return {"units": units, "bias": isinstance(bias, TensorArg)}

    def output_shape(self, ins, ctx):
        return (*ins[0][:-1], self.units)

    def output_axes(self, axes, ins, out):
        if axes is None:
            return None
        return (*axes[:-1], "C" if axes[-1] == "C" else "D")  # the last axis becomes the units (channels stay so)

    def axes_note(self, axes, ins, out):
        """Straight on a channels-first image (after a convolution), linear mixes each row's width, as nn.Linear
        does: a classifier is almost always meant."""
        if axes is None or len(axes) < 2 or axes[0] != "C" or axes[-1] == "C":
            return None
        shown = "×".join(str(v) for v in out)
        return (f"linear acts on the last axis of its {'×'.join(axes)} input ({axes[-1]}, {ins[0][-1]} values), as "
                f"nn.Linear does, giving {shown}; for a classifier write fc (it flattens first) or flatten before it")

    def counts(self, ins, out):
        fan_in, positions = ins[0][-1], prod(ins[0][:-1])
        macs = positions * fan_in * self.units
        return Counts(weights=fan_in * self.units, biases=self.units if self.bias else 0, connections=macs, macs=macs)

    def param_shapes(self, ins, out):  # nn.Linear's (units, fan_in)
        return [(self.units, ins[0][-1]), *([(self.units,)] if self.bias else [])]

    def explain(self, ins, out, ctx):
        fan_in, positions = ins[0][-1], prod(ins[0][:-1])
        return [f"params: {fc_params(fan_in, self.units, self.bias, explain=True).steps[0]}",
                f"connections = MACs: positions·in·out = {fmt_num(positions)}·{fmt_num(fan_in)}·{fmt_num(self.units)}"
                f" = {fmt_num(positions * fan_in * self.units)}"]

    def receptive(self, rfs, ins, out):
        return rfs[0]  # per position: the field stays as it is

    def field_step(self, ins):
        return ()

    def saved(self, ins, out, trainable, device):
        return [Saved("input")] if trainable else []  # the matmul keeps its input only for the weight's grad

    def build(self, ins, out):
        import torch.nn as nn

        return nn.Linear(ins[0][-1], self.units, bias=self.bias)


@register("matmul")
class MatMul(LayerKind):
    """The matrix product of two inputs over their last two axes ([…, n, k] @ […, k, m]), the leading axes a batch
    of equal sizes (attention's QKᵀ and attention·V)."""
    autocast = {"cpu": LOWER, "cuda": LOWER}  # in autocast's 16-bit list on both devices
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "fvcore": "macs",
        "ptflops": "macs",
        "ptflops-aten": "macs",
        "thop": "macs",
    }

    cause = "macs"

    params = {}
    min_inputs = max_inputs = 2
    batch_anywhere = True  # over the last two axes, the others a batch of products
    torch_modules = ("cnnsize.layers.nn.modules.MatMul",)
    torch_functions = ("matmul", "__matmul__", "bmm")
    onnx_ops = ("MatMul",)

    @classmethod
    def from_onnx(cls, call):
        if len(call.computed) != 2:
            return None  # x·W with a weight: linear's
        a, b = call.inputs
        if len(a) != len(b) or tuple(a[:-2]) != tuple(b[:-2]):
            raise call.refuse(f"MatMul of {list(a)} and {list(b)} (cnnsize's matmul takes equal leading axes)")
        return {}

    @classmethod
    def from_torch(cls, call):
        first = call.arg(0, "input")
        if len(call.inputs) == 1 and len(call.attrs) == 1 and all(call.attrs_learned) and \
                len(call.attrs[0]) == 2 and isinstance(first, TensorArg) and first.computed and \
                call.axis(-1) is not None:
            return [("linear", {"units": int(call.attrs[0][1]), "bias": False})]  # x @ W: SwiftFormer's x @ w_g
        if len(call.inputs) != 2:
            raise call.refuse(f"{call.function} with a constant operand or a parameter first (matmul multiplies two "
                              "layers' outputs; x @ W with W a parameter is linear's)")
        return {} if last_axes_per_sample(call, 2) else None

    def output_shape(self, ins, ctx):
        a, b = ins
        if len(a) < 2 or len(a) != len(b) or tuple(a[:-2]) != tuple(b[:-2]) or \
                (is_int(a[-1]) and is_int(b[-2]) and a[-1] != b[-2]):
            raise SpecError(f"matmul needs [..., n, k] and [..., k, m] with equal leading axes, got {_text(a)} and "
                            f"{_text(b)}", hint="transpose the second input's last two axes, e.g. K to Kᵀ")
        return (*a[:-1], b[-1])

    def counts(self, ins, out):
        macs = prod(out) * ins[0][-1]
        return Counts(connections=macs, macs=macs)

    def explain(self, ins, out, ctx):
        return [f"MACs: output values · k = {fmt_num(prod(out))}·{fmt_num(ins[0][-1])} = "
                f"{fmt_num(prod(out) * ins[0][-1])}"]

    def receptive(self, rfs, ins, out):
        return None

    def backward_macs(self, ins, out, batch, grads, trains):
        """Two activations: each factor's gradient (the output's gradient times the other) is the forward's products
        again, where that factor requires grad."""
        return self.forward_macs(ins, out, batch) * sum(map(bool, grads)), 0

    def saved(self, ins, out, trainable, device):
        return [Saved("input", index=0, for_inputs=(1,)), Saved("input", index=1, for_inputs=(0,))]  # the other's

    def build(self, ins, out):
        from .nn.modules import MatMul as Module

        return Module()


@register("patch_embed")
class PatchEmbed(LayerKind):
    """Patch embedding: a conv with kernel = stride = ``patch`` whose output becomes tokens [L, D] (ViT's conv_proj,
    then flatten(2) and transpose(1, 2), both views)."""
    autocast = {"cpu": LOWER, "cuda": LOWER}  # in autocast's 16-bit list on both devices
    onnx_none = "exporters write a Conv and a Reshape/Transpose, imported as those kinds"
    features_axis = -1  # the features are the last axis (tokens)
    tools_checked = True
    count_rules = {**WEIGHT_RULES, "torchinfo": "params*N*L", "torchscan-dmas": "out*fanin + params + out"}

    cause = "macs"

    weight_layer = True
    params = {"filters": Param("int", doc="token features D (the conv's filters)"),
              "patch": Param("ints", doc="patch size, one number or one per axis"), "bias": Param("bool", True)}
    torch_modules = ("cnnsize.layers.nn.modules.PatchEmbed",)  # in models: a conv, flatten(2) and transpose(1, 2)

    @classmethod
    def from_torch(cls, call):
        conv = call.module.proj
        return {"filters": conv.out_channels, "patch": plain(conv.kernel_size), "bias": conv.bias is not None}

    def geometry(self, x):
        nd = require_spatial(self.kind, x)
        patch = self.patch if isinstance(self.patch, tuple) else (self.patch,) * nd
        if len(patch) != nd:
            raise SpecError(f"patch has {len(patch)} entries but the input has {nd} spatial axes")
        return patch

    def output_shape(self, ins, ctx):
        patch = self.geometry(ins[0])
        sizes = windowed_shape(spatial(ins[0]), patch, patch, ((0, 0),) * len(patch), (1,) * len(patch), ctx,
                               what="patch")
        return (prod(sizes), self.filters)

    def output_axes(self, axes, ins, out):
        return ("T", "D")  # one token per patch, each of ``filters`` features

    def counts(self, ins, out):
        fan_in = prod(self.geometry(ins[0])) * ins[0][0]
        return Counts(weights=fan_in * self.filters, biases=self.filters if self.bias else 0,
                      connections=prod(out) * fan_in, macs=prod(out) * fan_in)

    def param_shapes(self, ins, out):  # the patch convolution's (filters, channels, *patch)
        return [(self.filters, ins[0][0], *self.geometry(ins[0])), *([(self.filters,)] if self.bias else [])]

    def explain(self, ins, out, ctx):
        patch = self.geometry(ins[0])
        sizes = windowed_shape(spatial(ins[0]), patch, patch, ((0, 0),) * len(patch), (1,) * len(patch), ctx,
                               what="patch", explain=True)
        params = conv_params(ins[0][0], self.filters, patch, self.bias, explain=True)
        macs = conv_macs(prod(out), ins[0][0], patch, explain=True)
        return [*sizes, f"tokens: {' · '.join(s.split(' = ')[-1] for s in sizes)} = {fmt_num(out[0])}",
                f"params: {params.steps[0]}", f"connections = MACs: {macs.steps[0]}"]

    def receptive(self, rfs, ins, out):
        return None

    def saved(self, ins, out, trainable, device):
        return [Saved("input")]

    def build(self, ins, out):
        from .nn.modules import PatchEmbed as Module

        return Module(ins[0][0], self.filters, self.geometry(ins[0]), self.bias)


@register("class_token")
class ClassToken(LayerKind):
    """A learned token put before the sequence: [L, D] → [L + 1, D] (ViT's class_token, D parameters)."""
    autocast = {"cpu": PROMOTE, "cuda": PROMOTE}  # cat with a float32 token
    tools_checked = True

    cause = "elementwise"

    params = {}
    torch_modules = ("cnnsize.layers.nn.modules.ClassToken",)
    torch_functions = ("cat", "concat")
    onnx_ops = ("Concat",)

    @classmethod
    def from_onnx(cls, call):  # Concat([token (1, 1, D), x (N, L, D)], axis 1), the token a weight (expanded)
        args = [a for a in call.args if a is not None]
        if len(args) != 2 or not args[0].constant or args[1].constant or call.attr("axis") % 3 != 1 or \
                len(args[1].shape) != 3 or tuple(args[0].shape[1:]) != (1, args[1].shape[2]):
            return None
        return {}

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {}
        # torch.cat([self.class_token.expand(n, -1, -1), x], dim=1), as torchvision's ViT writes it
        tensors = call.arg(0, "tensors")
        if len(call.inputs) != 1 or len(call.attrs) != 1 or len(tensors) != 2 or tensors[0].computed:
            return None
        x, token = call.inputs[0], call.attrs[0]
        if len(x) != 3 or call.arg(1, "dim", 0) % 3 != 1 or tuple(token[1:]) != (1, x[2]):
            return None
        return {}

    def output_shape(self, ins, ctx):
        if len(ins[0]) != 2:
            raise SpecError(f"class_token needs tokens [L, D], got {_text(ins[0])}",
                            hint="make tokens first, e.g. with patch_embed")
        return (ins[0][0] + 1, ins[0][1])

    def counts(self, ins, out):
        return Counts(weights=ins[0][1])

    def param_shapes(self, ins, out):  # (1, 1, D)
        return [(1, 1, ins[0][1])]

    def receptive(self, rfs, ins, out):
        return None

    def build(self, ins, out):
        from .nn.modules import ClassToken as Module

        return Module(ins[0][1])


@register("pos_embed")
class PosEmbed(LayerKind):
    """A learned position embedding added to the input (ViT's pos_embedding: one parameter per input value)."""
    autocast = {"cpu": PROMOTE, "cuda": PROMOTE}  # adds a float32 parameter
    tools_checked = True

    cause = "elementwise"

    params = {}
    torch_modules = ("cnnsize.layers.nn.modules.PosEmbed",)
    torch_functions = ("add", "__add__", "__radd__")
    onnx_ops = ("Add",)

    @classmethod
    def from_onnx(cls, call):  # x + pos_embedding, a weight shaped (1, *x's per-sample shape)
        consts = [a for a in call.args if a is not None and a.constant]
        if len(call.computed) != 1 or len(consts) != 1 or tuple(consts[0].shape) != (1, *call.inputs[0][1:]):
            return None
        return {}

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {}
        # x + self.pos_embedding, a parameter shaped (1, L, D)
        if len(call.inputs) != 1 or len(call.attrs) != 1 or tuple(call.attrs[0]) != (1, *call.inputs[0][1:]) or \
                not all(call.attrs_learned):
            return None  # a buffer, or a tensor computed (a bias gathered from a table, a resampled embedding)
        return {}

    def counts(self, ins, out):
        return Counts(weights=prod(ins[0]), connections=prod(out))

    def param_shapes(self, ins, out):  # (1, *shape)
        return [(1, *ins[0])]

    def build(self, ins, out):
        from .nn.modules import PosEmbed as Module

        return Module(tuple(ins[0]))


@register("mha")
class MultiHeadAttention(LayerKind):
    """Multi-head self-attention on tokens [L, D] (nn.MultiheadAttention(D, heads, batch_first=True) called as
    ``mha(x, x, x, need_weights=False)``): a QKV projection, QKᵀ and attention·V per head, an output projection.

    As torch runs it (its fused kernels at inference, flash attention on CPU in training), the L×L attention matrix
    is never stored, so only the output counts as an activation; attention written out with ``matmul`` and
    ``softmax`` (as Swin and timm write it) keeps its [heads, L, L] matrices as layer outputs."""
    autocast = {"cpu": LOWER, "cuda": LOWER}  # its projections and products: 16-bit
    features_axis = -1  # the features are the last axis (tokens)
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "torchinfo": {"attention": "0"},
        "fvcore": {"attention": "4*out*D"},
        "ptflops": "macs + (2 + 3*bias)*out + N*heads*L*L",
        "ptflops-aten": {"attention": "4*out*D", "bias adds": "4*bias*out"},
        "thop": {"attention": "macs", "softmax": "N*heads*L*(3*L - 1)"},
        "torchscan-flops": ("4*out*(2*D - 1 + bias) + 1 + out + N*L*L*(2*D - heads) + N*heads*L*(3*L - 1) + "
            "out*(2*L - 1)"),
        "torchscan-macs": {"attention": "0"},
    }

    cause = "macs"

    weight_layer = True
    params = {"heads": Param("int", doc="number of heads (D must divide by it)"), "bias": Param("bool", True),
              "dropout": Param("probability", 0.0, doc="dropout on the attention weights while training")}
    torch_modules = ("MultiheadAttention", "cnnsize.layers.nn.modules.SelfAttention")
    onnx_ops = ("Transpose", "Reshape", "Add", "MatMul", "Gemm", "Squeeze")

    @classmethod
    def from_onnx(cls, call):
        return attention_pattern(call)

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if not m.batch_first or not m._qkv_same_embed_dim or m.bias_k is not None or m.add_zero_attn:
            raise call.refuse("nn.MultiheadAttention other than batch_first self-attention with one packed projection")
        if call.kwargs.get("need_weights", True) and type(m).__name__ == "MultiheadAttention" and call.index is None:
            raise call.refuse("nn.MultiheadAttention with need_weights=True (the averaged weights are a second output)",
                              hint="call it with need_weights=False, as torchvision's ViT does")
        if len({tuple(s) for s in call.inputs}) != 1 or call.kwargs.get("attn_mask") is not None:
            raise call.refuse("nn.MultiheadAttention other than self-attention (query, key and value the same tokens) "
                              "without a mask")
        return {"heads": m.num_heads, "bias": m.in_proj_bias is not None, "dropout": float(m.dropout)}

    def output_shape(self, ins, ctx):
        x = ins[0]
        if len(x) != 2:
            raise SpecError(f"mha needs tokens [L, D], got {_text(x)}", hint="make tokens first, e.g. with patch_embed")
        if is_int(x[1]) and x[1] % self.heads:
            raise SpecError(f"the token features ({x[1]}) must be divisible by heads ({self.heads})")
        return tuple(x)

    def counts(self, ins, out):
        length, dim = ins[0]
        projections = 4 * length * dim * dim  # Q, K and V, and the output projection
        attention = 2 * length * length * dim  # QKᵀ and attention·V: heads · L · L · (D / heads) each
        return Counts(weights=4 * dim * dim, biases=4 * dim if self.bias else 0,
                      connections=projections + attention, macs=projections + attention)

    def param_shapes(self, ins, out):  # nn.MultiheadAttention's in_proj_weight and bias, then out_proj's
        dim = ins[0][1]
        return [(3 * dim, dim), *([(3 * dim,)] if self.bias else []), (dim, dim), *([(dim,)] if self.bias else [])]

    def module_tree(self, ins, out):
        dim, bias = ins[0][1], int(self.bias)  # the input projection held by the module itself, out_proj a child
        return [TorchModule(3 * dim * dim + 3 * dim * bias, leaf=False), TorchModule(dim * dim + dim * bias)]

    def explain(self, ins, out, ctx):
        length, dim = ins[0]
        return [f"params: 4·D·D{' + 4·D' if self.bias else ''} = 4·{fmt_num(dim)}² "
                f"{'+ 4·' + fmt_num(dim) + ' ' if self.bias else ''}= {fmt_num(4 * dim * dim + 4 * dim * self.bias)}",
                f"MACs: QKV and output projections 4·L·D² = 4·{fmt_num(length)}·{fmt_num(dim)}² = "
                f"{fmt_num(4 * length * dim * dim)}; QKᵀ and attention·V 2·L²·D = 2·{fmt_num(length)}²·{fmt_num(dim)} "
                f"= {fmt_num(2 * length * length * dim)}"]

    def receptive(self, rfs, ins, out):
        return None

    def backward_macs(self, ins, out, batch, grads, trains):
        length, dim = ins[0]
        return attention_backward(length * dim * dim * batch, length * length * dim * batch, any(grads), trains)

    def saved(self, ins, out, trainable, device):
        length, dim = ins[0]
        if self.dropout > 0:
            # attention dropout in training takes torch's math path: the input's copy, k transposed and q scaled as
            # the bmm reads them, the packed QKV projection (v a view of it), the softmax, the dropout's float mask
            # and the dropped weights (heads·L·L each; dropping all, torch multiplies by a zero scalar: no mask), and
            # the attention output the output projection reads
            square = self.heads * length * length
            mask = Saved("new", square) if self.dropout < 1 else Saved("new", 1, per_sample=False)
            return [Saved("new", length * dim), Saved("new", length * dim), Saved("new", length * dim),
                    Saved("new", 3 * length * dim), Saved("new", square), mask, Saved("new", square),
                    Saved("new", length * dim)]
        # torch's slow path on CPU (flash attention): a contiguous copy of the (L, N, D) transposed input for the
        # QKV projection, the packed QKV projection (q, k and v are views of it), one float32 log-sum-exp per
        # head and token, and the attention output the output projection reads
        return [Saved("new", length * dim), Saved("new", 3 * length * dim),
                Saved("new", self.heads * length, itemsize=4), Saved("new", length * dim)]

    def build(self, ins, out):
        from .nn.modules import SelfAttention

        return SelfAttention(ins[0][1], self.heads, bias=self.bias, dropout=self.dropout)


_ATTENTION_OPS = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Gather", "Slice", "Split", "MatMul", "Gemm",
                  "Add", "Mul", "Div", "Softmax", "Cast", "Identity", "Flatten", "Expand")


def attention_pattern(call):
    """Self-attention written out by an exporter (nn.MultiheadAttention: the QKV projection, the heads' QKᵀ,
    softmax and attention·V, the output projection, and the reshapes and transposes between), ending at this
    node: everything feeding it through those operators back to one tensor x of the output's shape [N, L, D],
    with exactly one Softmax, two products of computed tensors and 4·D² (+ 4·D) weights, is one ``mha`` layer."""
    out = call.output
    if out is None or len(out) != 3:
        return None
    group, seen, todo, outside = [], set(), [call], {}
    while todo:
        c = todo.pop()
        key = (id(c.proto), c.index)
        if key in seen:
            continue
        seen.add(key)
        group.append(c)
        if len(group) > 400:
            return None
        for a in c.computed:
            p = a.producer
            inner = p is not None and p.op in _ATTENTION_OPS and (len(p.computed) == 1 or p.op == "MatMul")
            if inner:
                todo.append(p)
            else:
                outside[a.name] = a
    softmax = [c for c in group if c.op == "Softmax"]
    products = [c for c in group if c.op == "MatMul" and len(c.computed) == 2]
    if len(outside) != 1 or len(softmax) != 1 or len(products) != 2:
        return None
    x = next(iter(outside.values()))
    if tuple(x.shape) != tuple(out):
        return None
    dim = out[2]
    scores = softmax[0].output
    heads = prod(scores[:-2]) // out[0]
    if not heads or dim % heads or scores[-1] != scores[-2]:
        return None
    weights = {a.name: prod(a.shape) for c in group for a in c.args  # the scale's scalar is a literal
               if a is not None and a.constant and a.learned and prod(a.shape) > 1}
    total = sum(weights.values())
    if total not in (4 * dim * dim, 4 * dim * dim + 4 * dim):
        return None
    return call.fuse({"heads": heads, "bias": total != 4 * dim * dim}, [x], [c for c in group if c is not call])


@register("sdpa")
class ScaledDotProductAttention(LayerKind):
    """F.scaled_dot_product_attention(q, k, v) of three inputs [..., L, E], [..., S, E], [..., S, Ev] (the leading
    axes, e.g. heads, equal): softmax(QKᵀ·scale + mask)·V. As torch's fused kernels, it stores no L×S matrix. A mask
    computed by earlier layers is a fourth input; a constant one (a relative position bias gathered from its table,
    BEiT's) is ``mask``, its shape aligned with the scores' last axes, with the parameters, buffers and
    multiply-adds it is computed from (``weights``, ``buffers``, ``macs``, as const_op's)."""
    autocast = {"cpu": LOWER, "cuda": LOWER}  # in autocast's 16-bit list on both devices
    onnx_none = ("not mapped yet: exporters write MatMul, Softmax and MatMul (or opset 23's Attention), imported as "
                 "those kinds where mapped")
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "thop": "macs",
        "ptflops-aten": "macs*math",  # the math path's products, where torch runs it
    }
    count_fact_names = {"math": "1 where torch runs the math path (queries without a heads axis, a dropout or a "
                                "computed mask), whose bmm ptflops' aten backend counts (the fused kernel it does not)"}
    counts_constants = True

    cause = "macs"

    params = {"mask": Param("size", None, doc="a constant mask's shape, aligned with the scores' last axes"),
              "weights": Param("count", 0, doc="parameters the constant mask is computed from"),
              "buffers": Param("count", 0, doc="buffers the constant mask is computed from"),
              "macs": Param("count", 0, doc="multiply-adds computing the constant mask, once per call"),
              "causal": Param("bool", False, doc="is_causal: each query sees the keys up to its own position"),
              "scale": Param("positive", None, doc="the scores' scale (torch's default: 1/√E)"),
              "dropout": Param("probability", 0.0, doc="dropout_p, applied to the attention weights")}
    min_inputs, max_inputs = 3, 4
    batch_anywhere = True  # over the last two axes, the others a batch of attentions
    torch_modules = ("cnnsize.layers.nn.modules.SDPA",)
    torch_functions = ("scaled_dot_product_attention",)
    examples: ClassVar[dict] = {
        "sdpa_mask": ([5, 6], [{"linear": {"units": 6}}, {"reshape": {"shape": [5, 2, 3]}},
                               {"permute": {"dims": [1, 0, 2], "name": "heads"}},
                               {"sdpa": {"mask": [2, 5, 5], "weights": 18, "buffers": 25, "scale": 0.5,
                                         "from": ["heads", "heads", "heads"]}}]),
        "sdpa_computed_mask": ([5, 6], [{"linear": {"units": 5}}, {"linear": {"units": 6, "from": "input"}},
                                        {"sdpa": {"causal": False, "from": ["linear2", "linear2", "linear2",
                                                                            "linear1"]}}]),
        # without heads torch runs the math path even with no mask; a dropout keeps its noise and what it drops
        "sdpa_dropout": ([5, 6], [{"linear": {"units": 6}}, {"sdpa": {"dropout": 0.5, "from": ["linear1"] * 3}}]),
        "sdpa_causal": ([5, 6], [{"linear": {"units": 6}}, {"reshape": {"shape": [5, 2, 3]}},
                                 {"permute": {"dims": [1, 0, 2], "name": "heads"}},
                                 {"sdpa": {"causal": True, "from": ["heads", "heads", "heads"]}}]),
    }

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return call.module.settings()
        mask = call.arg(3, "attn_mask")
        if call.kwargs.get("enable_gqa") or len(call.args) > 7 or \
                len(call.inputs) != 3 + (isinstance(mask, TensorArg) and mask.computed):
            raise call.refuse("scaled_dot_product_attention with grouped queries (enable_gqa) or of other tensors")
        settings = {"causal": bool(call.arg(5, "is_causal", False)), "scale": call.arg(6, "scale"),
                    "dropout": float(call.arg(4, "dropout_p", 0.0) or 0.0)}
        if isinstance(mask, TensorArg) and not mask.computed:
            shape = constant_shape(call, tuple(mask.shape))
            if shape is None:
                raise call.refuse(f"scaled_dot_product_attention with a mask of shape {list(mask.shape)} that does "
                                  "not broadcast over the batch")
            weights, buffers, macs = call.const_counts[0]
            settings.update({"mask": [int(v) for v in shape], "weights": weights, "buffers": buffers, "macs": macs})
        return settings if last_axes_per_sample(call, 2) else None

    def output_shape(self, ins, ctx):
        q, k, v = ins[:3]
        if not (len(q) == len(k) == len(v) >= 2) or tuple(k[:-1]) != tuple(v[:-1]) or \
                any(b not in (1, a) for a, b in zip(q[:-2], k[:-2])) or \
                (is_int(q[-1]) and is_int(k[-1]) and q[-1] != k[-1]):
            raise SpecError(f"sdpa needs q [..., L, E], k [..., S, E] and v [..., S, Ev] with equal leading axes (k's "
                            f"and v's 1 where shared: multi-query attention), got {_text(q)}, {_text(k)} and "
                            f"{_text(v)}")
        scores = (*q[:-1], k[-2])
        if len(ins) == 4 and self.mask is not None:
            raise SpecError("sdpa takes one mask: a computed one (its fourth input) or a constant `mask`, not both",
                            hint="drop `mask`, or the fourth name in `from`")
        if self.causal and (len(ins) == 4 or self.mask is not None):
            raise SpecError("sdpa takes causal or a mask, not both: torch refuses an explicit mask with is_causal",
                            hint="fold the causal mask into the mask (a -inf upper triangle), or drop causal")
        if len(ins) == 4:
            aligned(scores, tuple(ins[3]), "sdpa's mask")
        if self.mask is not None:
            aligned(scores, self.mask_shape(), "sdpa's mask")
        return (*q[:-1], v[-1])

    def mask_shape(self) -> tuple:
        return self.mask if isinstance(self.mask, tuple) else (self.mask,)

    def counts(self, ins, out):
        q, k, v = ins[:3]
        macs = prod(q[:-1]) * k[-2] * (q[-1] + v[-1])  # QKᵀ, then attention·V
        return Counts(weights=self.weights, buffers=self.buffers, connections=macs, macs=macs)

    def call_macs(self, ins, out):
        return self.macs

    def count_facts(self, ins, out, batch):
        return {"math": int(not self.fused(ins))}

    def receptive(self, rfs, ins, out):
        return None

    def backward_macs(self, ins, out, batch, grads, trains):
        """As torch's math path runs it (QKᵀ, softmax, attention·V, each product's operands activations): QKᵀ's
        products again for q's gradient and for k's, attention·V's for the attention's (where q or k requires grad)
        and for v's."""
        q, k, v = ins[:3]  # a mask's gradient is the scores' (no product)
        rows = prod(q[:-1]) * k[-2] * batch  # queries · keys
        scores, mixed = rows * q[-1], rows * v[-1]
        gq, gk, gv = (bool(g) for g in grads[:3])
        return scores * (gq + gk) + mixed * ((gq or gk) + gv), 0

    def fused(self, ins) -> bool:
        """Whether torch's CPU kernel choice for a training step is its fused flash attention: queries of four axes
        with the batch's, no dropout, and no mask or a constant one (built at the queries' rank, which the fused
        kernel takes); otherwise the math path (a computed mask requires grad there)."""
        return len(ins[0]) == 3 and self.dropout == 0 and len(ins) == 3

    def saved(self, ins, out, trainable, device):
        q, k = ins[0], ins[1]
        scores = prod(q[:-1]) * k[-2]
        if self.fused(ins):  # CPU flash attention: q, k, v, its output, a float32 log-sum-exp per query, the mask
            mask = [] if self.mask is None else [Saved("new", prod(self.mask_shape()), per_sample=False)]
            return [Saved("input", index=0), Saved("input", index=1), Saved("input", index=2), Saved("output"),
                    Saved("new", prod(q[:-1]), itemsize=4), *mask]
        # the math path keeps q and k scaled (copies), the softmax's probabilities and v; a dropout keeps what
        # the attention·V product reads, the dropped probabilities, and its noise (a 0-d zero where p is 1: torch
        # multiplies by it)
        dropped = [] if self.dropout == 0 else [
            Saved("new", scores), Saved("new", 1, per_sample=False) if self.dropout == 1 else Saved("new", scores)]
        return [Saved("new", prod(q)), Saved("new", prod(k)), Saved("new", scores), Saved("input", index=2), *dropped]

    def build(self, ins, out):
        from .nn.modules import SDPA

        return SDPA(None if self.mask is None else self.mask_shape(), self.weights, self.buffers, self.macs,
                    self.causal, self.scale, self.dropout)

    @classmethod
    def torch_examples(cls):
        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        class RelPosAttention(nn.Module):  # BEiT's: a relative position bias from its table, as attn_mask
            def __init__(self):
                super().__init__()
                self.qkv = nn.Linear(6, 18)
                self.table = nn.Parameter(torch.rand(9, 2))
                self.register_buffer("index", torch.randint(0, 9, (5, 5)))

            def forward(self, x):
                from torch.nn.attention import SDPBackend, sdpa_kernel

                q, k, v = self.qkv(x).reshape(x.shape[0], 5, 3, 2, 3).permute(2, 0, 3, 1, 4).unbind(0)
                bias = self.table[self.index.view(-1)].view(5, 5, 2).permute(2, 0, 1).unsqueeze(0)
                # the math kernel, whose products FlopCounterMode sees (CPU's fused kernel has no FLOP formula)
                with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):
                    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=0.0, scale=0.3)
                    return out + F.scaled_dot_product_attention(q, k, v, attn_mask=q @ k.transpose(-2, -1))

        class MultiQuery(nn.Module):  # MobileNetV5's: one key and value head shared by every query head
            def __init__(self):
                super().__init__()
                self.q, self.kv = nn.Linear(6, 6), nn.Linear(6, 6)

            def forward(self, x):
                from torch.nn.attention import SDPBackend, sdpa_kernel

                q = self.q(x).reshape(x.shape[0], 5, 2, 3).transpose(1, 2)
                k, v = self.kv(x).reshape(x.shape[0], 1, 5, 6).split(3, dim=-1)
                with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):
                    return F.scaled_dot_product_attention(q, k, v)

        return {"rel_pos_attention": (RelPosAttention, (5, 6)), "multi_query": (MultiQuery, (5, 6))}


@register("select")
class Select(_View):
    """One index along a per-sample axis, the axis dropped (``x[:, 0]``: ViT's class token from [L, D]): a view."""
    tools_checked = True

    cause = "views"

    params = {"axis": Param("count", 0, doc="the per-sample axis, from 0"), "index": Param("count", 0)}
    batch_anywhere = True
    torch_modules = ("cnnsize.layers.nn.modules.Select",)
    torch_functions = ("select", "getitem", "unbind")
    onnx_ops = ("Gather",)

    @classmethod
    def from_onnx(cls, call):  # x[:, i]: Gather of one constant index along a per-sample axis
        index = call.arg(1)
        axis = call.attr("axis", 0) % call.rank
        if index is None or not index.constant or index.shape != () or index.scalar is None or axis == 0:
            raise call.refuse("Gather other than one constant index along a per-sample axis")
        return {"axis": axis - 1, "index": int(index.scalar) % call.inputs[0][axis]}

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:  # cnnsize's own module, as build makes it
            return {"axis": call.module.dim % call.rank - 1, "index": call.module.index % call.inputs[0][
                call.module.dim % call.rank]}
        if call.function == "select":
            axis, index = call.arg(1, "dim"), call.arg(2, "index")
        elif call.function == "unbind":  # one tensor of x.unbind(dim): x.select(dim, i)
            axis, index = call.arg(1, "dim", 0), call.index
            if index is None:
                raise call.refuse(f"unbind along dim {axis} used whole (cnnsize takes its parts one at a time)")
        else:
            key = call.arg(1, "key")
            key = key if isinstance(key, tuple) else (key,)
            ints = [i for i, k in enumerate(key) if isinstance(k, int)]
            rest_full = all(k == slice(None) for i, k in enumerate(key) if i not in ints)
            if len(ints) != 1 or not rest_full:
                return None
            axis, index = ints[0], key[ints[0]]
        at = call.axis(axis)
        if at is None:
            raise call.refuse("indexing the batch axis")
        return {"axis": at, "index": index % call.inputs[0][at + 1]}

    def output_shape(self, ins, ctx):
        x = ins[0]
        if self.axis >= len(x) or len(x) < 2:
            raise SpecError(f"select axis {self.axis} is out of range for {_text(x)}",
                            hint=f"count the per-sample axes from 0: 0 to {len(x) - 1}")
        if is_int(x[self.axis]) and self.index >= x[self.axis]:
            raise SpecError(f"select index {self.index} is out of range for the {x[self.axis]} entries of axis "
                            f"{self.axis}", hint="count from 0")
        return (*x[:self.axis], *x[self.axis + 1:])

    def build(self, ins, out):
        from .nn.modules import Select as Module

        return Module(self.axis + 1, self.index)


@register("roll")
class Roll(LayerKind):
    """Shifts values cyclically along per-sample axes (torch.roll; Swin's shifted windows): a new tensor. A shift
    back by s is a shift forward by the axis' size − s."""
    onnx_none = "no ONNX operator: exporters write Slice and Concat"
    tools_checked = True

    cause = "views"

    unbounded = ("shifts",)  # build takes them modulo the axis' size
    params = {"shifts": Param("ints_or_zero", doc="the shift per axis in ``axes``, forward"),
              "axes": Param("ints_or_zero", doc="the per-sample axes, from 0")}
    torch_modules = ("cnnsize.layers.nn.modules.Roll",)
    torch_functions = ("roll",)

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {"shifts": list(call.module.shifts), "axes": [d - 1 for d in call.module.dims]}
        shifts, dims = call.arg(1, "shifts"), call.arg(2, "dims")
        shifts = list(shifts) if isinstance(shifts, (list, tuple)) else [shifts]
        dims = list(dims) if isinstance(dims, (list, tuple)) else [dims]
        if dims == [None] or len(dims) != len(shifts) or any(d % call.rank == 0 for d in dims):
            raise call.refuse("torch.roll of the flattened tensor or along the batch axis")
        dims = [d % call.rank for d in dims]
        return {"shifts": [s % call.inputs[0][d] for s, d in zip(shifts, dims)], "axes": [d - 1 for d in dims]}

    def pairs(self, x) -> list:
        shifts = self.shifts if isinstance(self.shifts, tuple) else (self.shifts,)
        axes = self.axes if isinstance(self.axes, tuple) else (self.axes,)
        if len(shifts) != len(axes) or any(a >= len(x) for a in axes):
            raise SpecError(f"roll needs one shift per axis and axes among 0 to {len(x) - 1}, got shifts "
                            f"{list(shifts)} and axes {list(axes)}")
        return list(zip(shifts, axes))

    def output_shape(self, ins, ctx):
        self.pairs(ins[0])
        return ins[0]

    def receptive(self, rfs, ins, out):
        return None

    def build(self, ins, out):
        from .nn.modules import Roll as Module

        pairs = self.pairs(ins[0])  # a roll is cyclic: by s is by s mod the size (torch takes no 10^23)
        return Module(tuple(s % ins[0][a] for s, a in pairs), tuple(a + 1 for _, a in pairs))


class _Windows(LayerKind):
    params = {"window": Param("ints", doc="window height and width, one number or two")}

    def window_of(self) -> tuple:
        window = self.window if isinstance(self.window, tuple) else (self.window, self.window)
        if len(window) != 2:
            raise SpecError(f"{self.kind} windows are 2-D: give one number or two (height, width), got {list(window)}")
        return window

    def receptive(self, rfs, ins, out):
        return None


@register("window_partition")
class WindowPartition(_Windows):
    """Swin's window partition of a channels-last (H, W, C): (H/wh · W/ww windows, wh·ww tokens, C). torch makes it
    with a view, a permute and a reshape, which copies: a new tensor."""
    onnx_none = "no ONNX operator: exporters write Reshape and Transpose, imported as those kinds"
    tools_checked = True

    cause = "views"

    torch_modules = ("cnnsize.layers.nn.modules.WindowPartition",)

    @classmethod
    def from_torch(cls, call):
        return {"window": plain(call.module.window)}

    def output_shape(self, ins, ctx):
        x = ins[0]
        wh, ww = self.window_of()
        if len(x) != 3 or divides(wh, x[0]) is False or divides(ww, x[1]) is False:
            raise SpecError(f"window_partition needs a channels-last (H, W, C) that the {wh}×{ww} windows tile, got "
                            f"{_text(x)}", hint="permute to (H, W, C) first, or pad H and W to multiples")
        return (exact_div(x[0], wh) * exact_div(x[1], ww), wh * ww, x[2])

    def build(self, ins, out):
        from .nn.modules import WindowPartition as Module

        return Module(self.window_of())


@register("window_merge")
class WindowMerge(_Windows):
    """The inverse of window_partition: (windows, wh·ww, C) back to (H, W, C) of the given ``size``; a copy."""
    onnx_none = "no ONNX operator: exporters write Reshape and Transpose, imported as those kinds"
    tools_checked = True

    cause = "views"

    params = {**_Windows.params, "size": Param("size", doc="the merged height and width [H, W]")}
    torch_modules = ("cnnsize.layers.nn.modules.WindowMerge",)

    @classmethod
    def from_torch(cls, call):
        return {"window": plain(call.module.window), "size": list(call.module.size)}

    def output_shape(self, ins, ctx):
        x = ins[0]
        wh, ww = self.window_of()
        size = self.size if isinstance(self.size, tuple) else (self.size, self.size)
        if len(x) != 3 or len(size) != 2 or (all(is_int(v) for v in (*x, *size)) and
                                             (x[0] * x[1] != size[0] * size[1] or x[1] != wh * ww
                                              or size[0] % wh or size[1] % ww)):
            raise SpecError(f"window_merge of {_text(x)} with {wh}×{ww} windows cannot make {_text(size)}",
                            hint="size is the (H, W) that window_partition split")
        return (size[0], size[1], x[2])

    def build(self, ins, out):
        from .nn.modules import WindowMerge as Module

        size = self.size if isinstance(self.size, tuple) else (self.size, self.size)
        return Module(self.window_of(), tuple(size))


@register("permute")
class Permute(_View):
    """Reorders the per-sample axes (torchvision's Permute, leaving the batch first): a view."""
    tools_checked = True

    cause = "views"

    params = {"dims": Param("ints_or_zero", doc="the new order of the per-sample axes, from 0: [1, 2, 0] for "
                                                "(C, H, W) → (H, W, C)")}
    batch_anywhere = True
    torch_modules = ("cnnsize.layers.nn.modules.Permute", "torchvision.ops.misc.Permute")
    torch_functions = ("permute",)
    onnx_ops = ("Transpose",)

    @classmethod
    def from_onnx(cls, call):
        perm = call.attr("perm") or list(reversed(range(call.rank)))
        if perm[0] != 0:
            raise call.refuse(f"Transpose with perm {perm} moving the batch axis (cnnsize's axes are per sample)")
        return {"dims": [d - 1 for d in perm[1:]]}

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            dims = list(call.module.dims)
        else:
            rest = call.args[1:]
            dims = list(rest[0]) if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else list(rest)
            dims = dims or list(call.kwargs.get("dims", ()))
        return cls.per_sample(call, dims)

    @classmethod
    def per_sample(cls, call, dims: list):
        """The per-sample permute of torch's order ``dims``, wherever the batch is and goes: the batch axis moves
        no value of a sample (nothing, where the others keep their order)."""
        if not dims:
            raise call.refuse("permute() of no axes")
        order = [a for a in (call.axis(d, merged=True) for d in dims) if a is not None]
        if order == sorted(order):
            return PASS_THROUGH
        return {"dims": order}

    def order(self, x) -> tuple:
        dims = self.dims if isinstance(self.dims, tuple) else (self.dims,)
        if sorted(dims) != list(range(len(x))):
            raise SpecError(f"permute dims {list(dims)} are not an order of the {len(x)} axes of {_text(x)}",
                            hint=f"list each of 0 to {len(x) - 1} once")
        return dims

    def output_shape(self, ins, ctx):
        return tuple(ins[0][d] for d in self.order(ins[0]))

    def output_axes(self, axes, ins, out):
        return None if axes is None else tuple(axes[d] for d in self.order(ins[0]))

    def receptive(self, rfs, ins, out):
        n = len(ins[0])
        dims = self.order(ins[0])
        moves = (tuple(range(n)), (*range(1, n), 0), (n - 1, *range(n - 1)))
        return rfs[0] if dims in moves else None  # channels to the end or back: the spatial axes keep their order

    def build(self, ins, out):
        from .nn.modules import Permute as Module

        return Module(self.order(ins[0]))


@register("transpose")
class Transpose(_View):
    """Swaps two per-sample axes (``x.transpose(a + 1, b + 1)``): a view."""
    onnx_none = "ONNX Transpose imports as permute"
    tools_checked = True

    cause = "views"

    params = {"axes": Param("ints_or_zero", doc="the two per-sample axes to swap, from 0")}
    batch_anywhere = True
    torch_functions = ("transpose", "swapaxes")

    @classmethod
    def from_torch(cls, call):
        rank = len(call.torch_inputs[0]) if call.batch else call.rank
        a, b = (call.arg(1, "dim0") % rank, call.arg(2, "dim1") % rank)
        x, y = call.axis(a, merged=True), call.axis(b, merged=True)
        if x is not None and y is not None:
            return {"axes": [x, y]}
        order = list(range(rank))
        order[a], order[b] = order[b], order[a]
        found = Permute.per_sample(call, order)  # the batch swapped with an axis: that axis moves
        return found if found is PASS_THROUGH else [("permute", found)]

    def pair(self, x) -> tuple:
        axes = self.axes if isinstance(self.axes, tuple) else (self.axes,)
        if len(axes) != 2 or any(is_int(a) and a >= len(x) for a in axes):
            raise SpecError(f"transpose axes {list(axes)} must be two of the {len(x)} axes 0 to {len(x) - 1}")
        return axes

    def output_shape(self, ins, ctx):
        a, b = self.pair(ins[0])
        out = list(ins[0])
        out[a], out[b] = out[b], out[a]
        return tuple(out)

    def output_axes(self, axes, ins, out):
        if axes is None:
            return None
        a, b = self.pair(ins[0])
        moved = list(axes)
        moved[a], moved[b] = moved[b], moved[a]
        return tuple(moved)

    def build(self, ins, out):
        from .nn.modules import Permute as Module

        a, b = self.pair(ins[0])
        order = list(range(len(ins[0])))
        order[a], order[b] = order[b], order[a]
        return Module(tuple(order))


@register("reshape")
class Reshape(_View):
    """A new shape for the same values (``x.reshape(N, *shape)``): a view of a contiguous input. After a permute
    or transpose torch copies instead: write ``contiguous`` before it so the count follows."""
    tools_checked = True

    cause = "views"

    params = {"shape": Param("size", doc="the per-sample shape")}
    torch_modules = ("cnnsize.layers.nn.modules.Reshape",)
    # asked after flatten, which takes (N, features); torchvision's MViT wraps (un)squeeze for fx as _(un)squeeze
    torch_functions = ("reshape", "view", "unsqueeze", "squeeze", "_unsqueeze", "_squeeze", "flatten", "unflatten")
    onnx_ops = ("Reshape", "Squeeze", "Unsqueeze")
    batch_anywhere = True

    @classmethod
    def from_onnx(cls, call):
        if not call.output or call.output[0] != call.inputs[0][0]:
            raise call.refuse(f"{call.op} to {list(call.output)} (it changes the batch axis)")
        return {"shape": list(call.output[1:])}

    @classmethod
    def from_torch(cls, call):
        if not call.samples_kept():
            what = list(call.torch_output or call.output)
            raise call.refuse(f"{call.function} to {what} (it mixes the samples of the batch with each other)")
        if tuple(call.output) == tuple(call.inputs[0]):
            return PASS_THROUGH  # nothing to change (an unsqueeze MViT's helper leaves out): the tensor itself
        settings = {"shape": list(call.output[1:])}
        copied = call.view is False if call.view is not None else \
            bool(call.contiguous) and not call.contiguous[0] and call.out_contiguous  # a strided input no view holds
        return [("contiguous", {}), ("reshape", settings)] if copied else settings  # torch copied first

    def output_shape(self, ins, ctx):
        shape = self.shape if isinstance(self.shape, tuple) else (self.shape,)
        if all(is_int(v) for v in (*shape, *ins[0])) and prod(shape) != prod(ins[0]):
            raise SpecError(f"reshape to {_text(shape)} ({prod(shape)} values) cannot hold the {prod(ins[0])} "
                            f"values of {_text(ins[0])}", hint="the product of the sizes must stay the same")
        return shape

    def build(self, ins, out):
        from .nn.modules import Reshape as Module

        return Module(tuple(out))


@register("contiguous")
class Contiguous(LayerKind):
    """A copy in memory order (``x.contiguous()`` after a permute or transpose): a new tensor, nothing computed."""
    onnx_none = "no ONNX operator: ONNX has no memory layout to make contiguous"
    tools_checked = True

    cause = "views"

    params = {}
    batch_anywhere = True
    torch_modules = ("cnnsize.layers.nn.modules.Contiguous",)
    torch_functions = ("contiguous",)

    @classmethod
    def from_torch(cls, call):
        if call.module is None and call.contiguous and call.contiguous[0]:
            return PASS_THROUGH  # already in memory order: torch returns the tensor itself
        return {}

    def build(self, ins, out):
        from .nn.modules import Contiguous as Module

        return Module()


__all__ = ["ClassToken", "Contiguous", "Linear", "MatMul", "PatchEmbed", "Permute", "PosEmbed", "Reshape",
           "Transpose"]
