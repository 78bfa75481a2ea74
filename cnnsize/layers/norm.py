"""Normalization: ``bn`` (batch norm), ``layernorm``, ``groupnorm``, ``instancenorm``, ``lrn`` (AlexNet's local
response normalization), and ``layer_scale`` (a learned per-channel scale)."""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from ..core.numeric import Dim, divides, exact_div, prod
from .base import FLOAT32, PROMOTE, Counts, LayerKind, Param, Saved, TensorArg, register, require_spatial


def _stat_width(device: str) -> int | str:
    """The width of the statistics a norm keeps for backward: the CPU kernels compute them in the parameters'
    dtype (16-bit when the model is, float32 under autocast's float32 master weights); CUDA's in float32."""
    return 4 if device == "cuda" else "params"


@register("bn")
class BatchNorm(LayerKind):
    """Batch normalization: a scale and a shift per channel, plus running statistics as buffers.

    Buffers are running_mean and running_var (C each) and num_batches_tracked (1), as torch keeps them.
    """
    min_training_batch = 2  # one sample has no batch statistics to train with
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "fvcore": "inp*(1 + affine)",
        "fvcore train": "inp*(4 + affine)",
        "ptflops": "inp*(1 + affine)",
        "thop": "2*inp*(1 + affine)",
        "torchscan-flops": "2*Cin + 2*inp + 2*affine*inp",
        "torchscan-macs": "inp*(1 + affine)",
        "torchscan-dmas": "inp + 2 + 2*Cin + 2*affine*Cin + out",
    }

    cause = "normalization"
    params = {"eps": Param("positive", 1e-5), "momentum": Param("float", 0.1), "affine": Param("bool", True)}
    torch_modules = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")
    torch_functions = ("batch_norm",)
    onnx_ops = ("BatchNormalization",)

    @classmethod
    def from_onnx(cls, call):  # X, scale, B, mean, var; ONNX's momentum is torch's 1 − momentum
        if call.attr("training_mode", 0) or call.index != 0:
            raise call.refuse("BatchNormalization in training mode (its running statistics are outputs)",
                              hint="export the model in eval mode")
        if any(call.weight(i) is None for i in range(1, 5)):
            raise call.refuse("BatchNormalization with a scale, bias or statistic computed in the graph")
        call.mark_buffers(3, 4)
        return {"eps": float(call.attr("epsilon", 1e-5)), "momentum": float(f"{1 - call.attr('momentum', 0.9):.7g}")}

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if m is None:  # F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
            if not isinstance(call.arg(1, "running_mean"), TensorArg):
                raise call.refuse("batch_norm without running statistics")
            return {"eps": float(call.arg(7, "eps", 1e-5)), "momentum": float(call.arg(6, "momentum", 0.1)),
                    "affine": isinstance(call.arg(3, "weight"), TensorArg)}
        if not m.track_running_stats or m.momentum is None:
            raise call.refuse(f"{type(m).__name__} without running statistics or with momentum=None")
        return {"eps": float(m.eps), "momentum": float(m.momentum), "affine": m.affine}

    def counts(self, ins, out):
        c = ins[0][0]
        return Counts(weights=c if self.affine else 0, biases=c if self.affine else 0, buffers=2 * c + 1)

    def int_buffers(self, ins, out):
        return 1  # num_batches_tracked

    def saved(self, ins, out, trainable, device):
        c, width = ins[0][0], _stat_width(device)  # the input, and the batch mean and inverse std per channel
        return [Saved("input"), Saved("new", c, itemsize=width, per_sample=False),
                Saved("new", c, itemsize=width, per_sample=False)]

    def build(self, ins, out):
        import torch.nn as nn

        cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm1d, 3: nn.BatchNorm2d, 4: nn.BatchNorm3d}[len(ins[0])]
        return cls(ins[0][0], eps=self.eps, momentum=self.momentum, affine=self.affine)


@register("lrn")
class LRN(LayerKind):
    """Local response normalization across ``size`` neighbouring channels (AlexNet's NORM)."""
    autocast = {"cpu": FLOAT32, "cuda": FLOAT32}  # avg_pool3d (CPU), pow (CUDA): float32 lists
    onnx_none = "not mapped yet: ONNX LRN is refused (or kept whole with --opaque)"
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "ptflops": "3*inp + pooled",
    }

    cause = "normalization"
    params = {"size": Param("int", 5), "alpha": Param("float", 1e-4), "beta": Param("float", 0.75),
              "k": Param("float", 2.0, doc="AlexNet's k = 2 (PyTorch's default is 1)")}
    torch_modules = ("LocalResponseNorm",)

    def latency_key(self):
        return "lrn"

    def count_facts(self, ins, out, batch):
        x = ins[0]
        return {"pooled": (x[0] + self.size - 1) * prod(x[1:]) * batch}

    def output_shape(self, ins, ctx):
        require_spatial(self.kind, ins[0])  # torch's LocalResponseNorm refuses a flat (N, C) input too
        return ins[0]

    def counts(self, ins, out):
        return Counts(connections=prod(out) * self.size)

    def saved(self, ins, out, trainable, device):
        # torch's local_response_norm: the input, the channel-padded squares (C + size − 1 maps),
        # and two C-map intermediates (before and after the power)
        c, rest = ins[0][0], prod(ins[0][1:])
        return [Saved("input"), Saved("new", (c + self.size - 1) * rest), Saved("new", 2 * c * rest)]

    def build(self, ins, out):
        import torch.nn as nn

        return nn.LocalResponseNorm(self.size, alpha=self.alpha, beta=self.beta, k=self.k)


def plain_list(value) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value]


AXIS = Param("choice", "channels", choices=("channels", "last"),
             doc="channels: axis 0 of an image (C, H, W); last: the last axis (the D of [L, D] tokens, the C of a "
                 "permuted (H, W, C))")


@register("layernorm")
class LayerNorm(LayerKind):
    """Layer normalization at each position: over the channels of an image (ConvNeXt's LayerNorm2d) or over the
    last axis (nn.LayerNorm on tokens [L, D] or on a permuted (H, W, C)); over the features if flat."""
    autocast = {"cuda": FLOAT32}  # CUDA's float32 list; the CPU runs it in its input's type
    batch_anywhere = True  # over the last axis: wherever the batch is
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "fvcore": "inp*(4 + affine)",
        "ptflops": "inp",
        "thop": "2*inp*(1 + affine)",
        "torchscan-flops": "6*inp + 2*rows + 2*affine*inp",
    }

    cause = "normalization"
    params = {"eps": Param("positive", 1e-6, doc="ConvNeXt's 1e-6 (PyTorch's default is 1e-5)"),
              "affine": Param("bool", True), "axis": AXIS,
              "bias": Param("bool", True, doc="with affine, a learned shift per feature (torch's bias=False: none)")}
    torch_modules = ("LayerNorm", "cnnsize.layers.nn.modules.ChannelLayerNorm")
    torch_functions = ("layer_norm",)
    onnx_ops = ("LayerNormalization",)

    def count_facts(self, ins, out, batch):
        x = ins[0]
        return {"rows": prod(x) * batch // self.features(x)}  # over the channels or the last axis

    @classmethod
    def from_onnx(cls, call):
        axis = call.attr("axis", -1) % call.rank
        scale = call.weight(1)
        if axis != call.rank - 1 or call.index != 0:
            raise call.refuse(f"LayerNormalization from axis {axis} (cnnsize's layernorm is over one axis: the last)")
        if scale is None or call.arg(2) is None or len(scale) != 1:
            raise call.refuse("LayerNormalization without a weight and a bias of the last axis' size")
        return {"eps": float(call.attr("epsilon", 1e-5)), "axis": "last" if call.rank > 2 else "channels"}

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if m is not None:
            shape, eps, affine, bias = tuple(m.normalized_shape), m.eps, m.elementwise_affine, m.bias is not None
        else:  # F.layer_norm(x, normalized_shape, weight, bias, eps)
            shape, eps = tuple(plain_list(call.arg(1, "normalized_shape"))), call.arg(4, "eps", 1e-5)
            affine, bias = isinstance(call.arg(2, "weight"), TensorArg), isinstance(call.arg(3, "bias"), TensorArg)
        no_bias = {"bias": False} if affine and not bias else {}  # timm's LayerNormNoBias
        if type(m).__name__ == "ChannelLayerNorm":
            return {"eps": float(eps), "affine": bool(affine), **no_bias}
        if len(shape) != 1:
            raise call.refuse(f"layer norm over the last {len(shape)} axes (cnnsize's layernorm is over one axis: "
                              "the channels or the last)")
        return {"eps": float(eps), "affine": bool(affine), "axis": "last" if call.rank > 2 else "channels", **no_bias}

    def features(self, x) -> Dim:
        return x[0] if self.axis == "channels" else x[-1]

    def counts(self, ins, out):
        c = self.features(ins[0])
        return Counts(weights=c if self.affine else 0, biases=c if self.affine and self.bias else 0)

    def saved(self, ins, out, trainable, device):
        positions = exact_div(prod(ins[0]), self.features(ins[0]))  # the input, and a mean and 1/std per position
        width = _stat_width(device)
        return [Saved("input"), Saved("new", positions, itemsize=width), Saved("new", positions, itemsize=width)]

    def build(self, ins, out):
        import torch.nn as nn

        from .nn.modules import ChannelLayerNorm

        bias = bool(self.bias)
        if self.axis == "last":
            return nn.LayerNorm(ins[0][-1], eps=self.eps, elementwise_affine=self.affine, bias=bias)
        return ChannelLayerNorm(ins[0][0], eps=self.eps, elementwise_affine=self.affine, bias=bias)

    @classmethod
    def torch_examples(cls):
        import torch.nn as nn
        import torch.nn.functional as F

        class NoBias(nn.Module):  # timm's LayerNormNoBias (MetaFormer), as a module and as F.layer_norm
            def __init__(self):
                super().__init__()
                self.fc, self.norm = nn.Linear(6, 6), nn.LayerNorm(6, bias=False)

            def forward(self, x):
                x = self.norm(self.fc(x))
                return F.layer_norm(x, (6,), self.norm.weight, None, 1e-5)

        return {"layernorm_no_bias": (NoBias, (5, 6))}


@register("groupnorm")
class GroupNorm(LayerKind):
    """Group normalization: statistics over each group of channels and all positions; a scale and shift per channel."""
    autocast = {"cuda": FLOAT32}  # CUDA's float32 list; the CPU runs it in its input's type
    onnx_none = "not mapped yet: ONNX GroupNormalization is refused (or kept whole with --opaque)"
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "fvcore": "inp*(4 + affine)",
        "ptflops": "inp*(1 + affine)",
        "thop": "2*inp*(1 + affine)",
    }

    cause = "normalization"

    params = {"groups": Param("int", doc="number of channel groups"), "eps": Param("positive", 1e-5),
              "affine": Param("bool", True)}
    torch_modules = ("GroupNorm",)
    torch_functions = ("group_norm",)

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if m is not None:
            return {"groups": m.num_groups, "eps": float(m.eps), "affine": bool(m.affine)}
        # F.group_norm(x, num_groups, weight, bias, eps)
        return {"groups": call.arg(1, "num_groups"), "eps": float(call.arg(4, "eps", 1e-5)),
                "affine": isinstance(call.arg(2, "weight"), TensorArg)}

    def output_shape(self, ins, ctx):
        if divides(self.groups, ins[0][0]) is False:
            raise SpecError(f"channels ({ins[0][0]}) must be divisible by groups ({self.groups})")
        return ins[0]

    def counts(self, ins, out):
        c = ins[0][0]
        return Counts(weights=c if self.affine else 0, biases=c if self.affine else 0)

    def saved(self, ins, out, trainable, device):
        # the input, and a mean and 1/std per group (in the input's dtype)
        return [Saved("input"), Saved("new", self.groups), Saved("new", self.groups)]

    def build(self, ins, out):
        import torch.nn as nn

        return nn.GroupNorm(self.groups, ins[0][0], eps=self.eps, affine=self.affine)


@register("instancenorm")
class InstanceNorm(LayerKind):
    """Instance normalization: statistics per channel of each sample; torch's defaults keep no running statistics
    and no affine parameters."""
    onnx_none = "not mapped yet: ONNX InstanceNormalization is refused (or kept whole with --opaque)"
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "fvcore": "inp*(4 + affine)",
        "ptflops": "inp*(1 + affine)",
        "thop": "2*inp*(1 + affine)",
    }

    cause = "normalization"

    params = {"eps": Param("positive", 1e-5), "momentum": Param("float", 0.1), "affine": Param("bool", False),
              "track_running_stats": Param("bool", False)}
    torch_modules = ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d")  # the default reads the attributes

    def output_shape(self, ins, ctx):
        require_spatial(self.kind, ins[0])
        return ins[0]

    def counts(self, ins, out):
        c = ins[0][0]
        return Counts(weights=c if self.affine else 0, biases=c if self.affine else 0,
                      buffers=2 * c + 1 if self.track_running_stats else 0)

    def int_buffers(self, ins, out):
        return 1 if self.track_running_stats else 0  # num_batches_tracked

    def saved(self, ins, out, trainable, device):
        # torch runs it as a batch norm over (1, N·C, ...): the input, a mean and 1/std per channel and sample,
        # and the per-sample copies (weight.repeat(N), ...) of the affine weight and the running statistics
        c = ins[0][0]
        copies = int(self.affine) + 2 * int(self.track_running_stats)
        width = _stat_width(device)
        return [Saved("input"), Saved("new", c, itemsize=width), Saved("new", c, itemsize=width),
                *(Saved("new", c, itemsize="params") for _ in range(copies))]

    def build(self, ins, out):
        import torch.nn as nn

        cls = {2: nn.InstanceNorm1d, 3: nn.InstanceNorm2d, 4: nn.InstanceNorm3d}[len(ins[0])]
        return cls(ins[0][0], eps=self.eps, momentum=self.momentum, affine=self.affine,
                   track_running_stats=self.track_running_stats)


@register("layer_scale")
class LayerScale(LayerKind):
    """A learned scale per channel (ConvNeXt's layer_scale, shaped (C, 1, 1)) or per feature of the last axis
    (``axis: last``, as in CaiT's and Swin V2's LayerScale): an elementwise multiply by a parameter."""
    autocast = {"cpu": PROMOTE, "cuda": PROMOTE}  # multiplies by a float32 parameter
    batch_anywhere = True  # over the last axis: wherever the batch is
    tools_checked = True

    cause = "elementwise"

    params = {"init": Param("float", 1e-6, doc="the scales' initial value"),
              "axis": Param("choice", "channels", choices=("channels", "last", "all"),
                            doc=AXIS.doc + "; all: one learned number for every value (StarReLU's scale, NFNet's "
                                           "skip gain)")}
    torch_modules = ("cnnsize.layers.nn.modules.LayerScale",)
    torch_functions = ("mul", "__mul__", "__rmul__")
    onnx_ops = ("Mul",)

    @classmethod
    def from_onnx(cls, call):  # x · gamma, gamma a weight of (C, 1, 1) or of the last axis (D,)
        consts = [a for a in call.args if a is not None and a.constant]
        if len(call.computed) != 1 or len(consts) != 1:
            return None
        x, scale = call.computed[0].shape, tuple(consts[0].shape)
        if len(x) > 2 and scale in ((x[1], *(1,) * (len(x) - 2)), (1, x[1], *(1,) * (len(x) - 2))):
            return {"axis": "channels"}
        if scale in ((x[-1],), (1,) * (len(x) - 1) + (x[-1],)) and prod(scale) > 1:
            return {"axis": "last"}
        return None

    @classmethod
    def from_torch(cls, call):
        x = call.inputs[0] if call.inputs else ()
        if call.module is not None:
            w = call.module.weight
            return {"axis": "all" if w.numel() == 1 and x[-1:] != (1,) else "last" if w.dim() == 1 else "channels"}
        # self.layer_scale * x, the scale a parameter of the module (torchvision's ConvNeXt), broadcast as torch does
        # (timm's gamma.view(1, -1, 1, 1), a learned number of shape (1,))
        if len(call.inputs) != 1 or len(call.attrs) != 1 or len(call.attrs[0]) > len(x) or \
                not all(call.attrs_learned):
            return None  # a buffer, or a tensor computed from the parameters: not the scale's own weights
        scale = tuple(call.attrs[0])
        while len(scale) > 1 and len(scale) >= len(x) and scale[0] == 1:
            scale = scale[1:]  # a 1 in front stands for the batch
        if scale == (x[1], *(1,) * (len(x) - 2)) and len(x) > 2:
            return {"axis": "channels"}
        if scale[-1:] == (x[-1],) and prod(scale) == x[-1] and x[-1] > 1:
            return {"axis": "last"}
        if prod(scale) == 1:
            return {"axis": "all"}
        return None

    examples: ClassVar[dict] = {
        "layer_scale_all": ([5, 6], [{"linear": {"units": 6}}, {"layer_scale": {"axis": "all", "init": 0.5}},
                                     {"linear": {"units": 2}}]),
    }

    @classmethod
    def torch_examples(cls):
        import torch
        import torch.nn as nn

        class Broadcast(nn.Module):  # timm's gamma.view(1, -1, 1, 1) and StarReLU's learned scale of shape (1,)
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 1)
                self.gamma, self.scale = nn.Parameter(torch.rand(4)), nn.Parameter(torch.ones(1))

            def forward(self, x):
                x = self.conv(x) * self.gamma.view(1, -1, 1, 1)
                return self.scale * x.relu()

        return {"broadcast": (Broadcast, (3, 4, 5))}

    def features(self, x) -> Dim:
        return x[0] if self.axis == "channels" else 1 if self.axis == "all" else x[-1]

    def counts(self, ins, out):
        return Counts(weights=self.features(ins[0]), connections=prod(out))

    def saved(self, ins, out, trainable, device):
        return [Saved("input")] if trainable else []  # the scale's grad needs the input; the input's needs the scale

    def build(self, ins, out):
        from .nn.modules import LayerScale as Module

        shape = (ins[0][0], *(1,) * (len(ins[0]) - 1)) if self.axis == "channels" else \
            (1,) if self.axis == "all" else (ins[0][-1],)
        return Module(shape, self.init)
