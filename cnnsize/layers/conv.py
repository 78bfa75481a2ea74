"""Convolutions: ``conv`` (with weight sharing), ``deconv`` (transposed) and ``locally_connected`` (without)."""

from __future__ import annotations

from typing import Any

from ..calc import conv_macs, conv_params, locally_connected_params, window_output
from ..core.errors import SpecError
from ..core.numeric import ceil_div, divides, exact_div, is_int, prod
from .base import (
    LOWER,
    RF,
    Counts,
    LayerKind,
    Param,
    Saved,
    TensorArg,
    per_axis,
    plain,
    register,
    require_spatial,
    spatial,
)

# What the tools count for a layer of weights (each multiply-add; ptflops' bias adds; torchscan's split by cause),
# shared by the kinds that are one (conv, deconv, fc, linear, patch_embed), each adding its own torchinfo and
# torchscan-dmas rules, or overriding these (cnnsize.passes.conventions reads a kind's count_rules)
WEIGHT_RULES: dict = {
        "fvcore": "macs",
        "ptflops": "macs + bias*out",
        "ptflops-aten": "macs + bias*out",
        "thop": "macs",
        "torchscan-flops": {"weight layers": "2*out*fanin", "bias adds": "bias*out", "first adds": "0 - out"},
        "torchscan-macs": "out*fanin",
}


def weight_of(call, position: int, what: str):
    """The weight a functional call reads (``F.conv2d(x, self.weight)``): a parameter, not a computed tensor."""
    weight = call.arg(position, "weight")
    if not isinstance(weight, TensorArg):
        raise call.refuse(f"{what} without a weight tensor")
    if weight.computed:
        raise call.refuse(f"{what} with a weight computed in forward",
                          hint="only weights held as module parameters are a layer's parameters")
    return weight


def onnx_window(call, nd: int, kernel=None) -> dict:
    """kernel, stride, pad and dilation of an ONNX Conv or pooling node (ONNX's stride defaults to 1, as its
    dilation; pads list every axis' start, then every axis' end)."""
    kernel = tuple(call.attr("kernel_shape") or kernel or ())
    if len(kernel) != nd:
        raise call.refuse(f"{call.op} without kernel_shape for its {nd} spatial axes")
    stride = tuple(call.attr("strides") or (1,) * nd)
    dilation = tuple(call.attr("dilations") or (1,) * nd)
    auto = call.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if any(s != 1 for s in stride) or (auto == "SAME_LOWER" and any(d * (k - 1) % 2 for k, d in zip(kernel,
                                                                                                       dilation))):
            raise call.refuse(f"{call.op} with auto_pad {auto} and stride {list(stride)}",
                              hint="export with explicit pads")
        pad: object = "same"
    elif auto == "VALID":
        pad = 0
    else:
        pads = list(call.attr("pads") or (0,) * (2 * nd))
        if pads[:nd] != pads[nd:]:
            raise call.refuse(f"{call.op} with uneven pads {pads} (cnnsize pads each side of an axis alike)")
        pad = plain(tuple(pads[:nd]))
    return {"kernel": plain(kernel), "stride": plain(stride), "pad": pad, "dilation": plain(dilation)}


def resolve_pads(pad, kernel: tuple, stride: tuple, dilation: tuple, nd: int, kind: str) -> tuple:
    """Per-axis (low, high) padding from an int, a list, 'valid' or 'same' (PyTorch's split)."""
    if pad == "valid":
        return tuple((0, 0) for _ in range(nd))
    if pad == "same":
        if any(s != 1 for s in stride):
            raise SpecError(f"{kind} pad 'same' needs stride 1 (as in PyTorch)",
                            hint="give the padding as a number instead")
        out = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            out.append((total // 2, total - total // 2))
        return tuple(out)
    return tuple((p, p) for p in per_axis(pad, nd, "pad"))


AXES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def windowed_shape(size: tuple, kernel: tuple, stride: tuple, pads: tuple, dilation: tuple, ctx, rule=None,
                   what="filter", explain: bool = False) -> tuple:
    """Output size per spatial axis; with ``explain``, the worked steps ("height: (227 − 11)/4 + 1 = 55") instead."""
    outs = tuple(window_output(n, k, s, p, d, rule=rule or ctx.fit, what=what, conditions=ctx.conditions,
                               bounds=getattr(ctx, "bounds", None), explain=explain)
                 for n, k, s, p, d in zip(size, kernel, stride, pads, dilation))
    if not explain:
        return outs
    names = AXES.get(len(outs), tuple(f"axis {i + 1}" for i in range(len(outs))))
    return tuple(f"{name}: {w.steps[0]}" for name, w in zip(names, outs))


def grouped_backward(groups: int, macs: Any, grads: tuple[bool, ...], trains: bool) -> tuple[Any, Any]:
    """A (transposed) convolution's backward as FlopCounterMode counts aten.convolution_backward: the input's gradient
    is the forward's products again; the weight's, counted as a convolution of the input with the output's gradient
    over every pair of channels, is ``groups`` times the forward's (its formula leaves groups out: a depthwise
    convolution's weight gradient counts C times the products it does)."""
    if not macs:
        return 0, 0
    return (macs if any(grads) else 0), (groups * macs if trains else 0)


class _Windowed(LayerKind):
    """Shared geometry of layers that slide a window: kernel, stride, pad, dilation per axis."""

    def geometry(self, shape):
        """(axes, kernel, stride, pads, dilation) for an input shape; cached, as shape, counts and RF all ask."""
        cached = self.__dict__.get("_geometry")
        if cached is not None and cached[0] == shape:
            return cached[1]
        result = self._geometry_of(shape)
        self._geometry = (shape, result)
        return result

    def _geometry_of(self, shape):
        nd = require_spatial(self.kind, shape)
        kernel = per_axis(self.kernel, nd, "kernel")
        stride = per_axis(getattr(self, "stride", None) or self.kernel, nd, "stride")
        dilation = per_axis(getattr(self, "dilation", 1), nd, "dilation")
        pads = resolve_pads(getattr(self, "pad", 0), kernel, stride, dilation, nd, self.kind)
        return nd, kernel, stride, pads, dilation

    def receptive(self, rfs, ins, out):
        if rfs[0] is None:
            return None
        step = self.window_step(ins[0])
        return rfs[0] if step is None else rfs[0].window(*step)

    def field_step(self, ins):
        if type(self).receptive is not _Windowed.receptive:
            return None  # a kind with its own receptive field rule (deconv)
        return self.window_step(ins[0]) or ()

    def window_step(self, shape):
        """(kernel, stride, low pads, dilation) for the receptive field, or None where the window changes
        nothing (1x1, stride 1, no padding: most convolutions of a bottleneck network); cached like geometry."""
        cached = self.__dict__.get("_step")
        if cached is not None and cached[0] == shape:
            return cached[1]
        _, kernel, stride, pads, dilation = self.geometry(shape)
        low = tuple(p[0] for p in pads)
        unchanged = all(k == 1 for k in kernel) and all(s == 1 for s in stride) and all(p == 0 for p in low)
        step = None if unchanged else (kernel, stride, low, dilation)
        self._step = (shape, step)
        return step

    def explain_shape(self, ins, ctx, rule=None, what="filter") -> list[str]:
        _, kernel, stride, pads, dilation = self.geometry(ins[0])
        return list(windowed_shape(spatial(ins[0]), kernel, stride, pads, dilation, ctx, rule, what, explain=True))


@register("conv")
class Conv(_Windowed):
    """Convolution (cross-correlation, as every framework computes it), 1D, 2D or 3D."""
    autocast = {"cpu": LOWER, "cuda": LOWER}  # in autocast's 16-bit list on both devices
    tools_checked = True
    count_rules = {**WEIGHT_RULES, "torchinfo": "params*positions", "torchscan-dmas": "out*fanin + params + out"}

    cause = "macs"
    weight_layer = True
    params = {
        "filters": Param("int", doc="number of filters (output channels)"),
        "kernel": Param("ints", doc="filter size, one number or one per axis"),
        "stride": Param("ints", 1),
        "pad": Param("pads", 0, doc="zero padding per side; 'same' or 'valid'"),
        "dilation": Param("ints", 1),
        "groups": Param("int", 1),
        "bias": Param("bool", True),
    }
    torch_modules = ("Conv1d", "Conv2d", "Conv3d")
    torch_functions = ("conv1d", "conv2d", "conv3d")
    onnx_ops = ("Conv",)

    def latency_key(self):
        return "conv" if self.groups == 1 else "grouped"  # latency's layer_key tells depthwise apart

    @classmethod
    def from_onnx(cls, call):
        w = call.weight(1)
        if w is None or len(w) < 3:
            raise call.refuse("Conv with a weight computed in the graph")
        return {"filters": w[0], **onnx_window(call, len(w) - 2, w[2:]), "groups": call.attr("group", 1),
                "bias": call.has_bias(2)}

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if m is None:  # F.conv2d(x, self.weight, self.bias, stride, padding, dilation, groups)
            weight = weight_of(call, 1, call.function)
            if cls.kind == "conv" and call.const_counts and call.const_counts[0][0] > prod(weight.shape):
                return None  # a weight computed from more parameters than it holds (a gain): not its own count
            pad = call.arg(4, "padding", 0)
            return {"filters": weight.shape[0], "kernel": plain(weight.shape[2:]),
                    "stride": plain(call.arg(3, "stride", 1)), "pad": pad if isinstance(pad, str) else plain(pad),
                    "dilation": plain(call.arg(5, "dilation", 1)), "groups": call.arg(6, "groups", 1),
                    "bias": isinstance(call.arg(2, "bias"), TensorArg)}
        if m.padding_mode != "zeros":
            raise call.refuse(f"{type(m).__name__} with padding_mode='{m.padding_mode}'")
        return {"filters": m.out_channels, "kernel": plain(m.kernel_size), "stride": plain(m.stride),
                "pad": m.padding if isinstance(m.padding, str) else plain(m.padding),
                "dilation": plain(m.dilation), "groups": m.groups, "bias": m.bias is not None}

    def output_shape(self, ins, ctx):
        x = ins[0]
        _, kernel, stride, pads, dilation = self.geometry(x)
        for what, n in (("input channels", x[0]), ("filters", self.filters)):
            if divides(self.groups, n) is False:
                raise SpecError(f"{what} ({n}) must be divisible by groups ({self.groups})",
                                hint="choose groups that divides both the input channels and the filters")
        return (self.filters, *windowed_shape(spatial(x), kernel, stride, pads, dilation, ctx))

    def counts(self, ins, out):
        _, kernel, *_ = self.geometry(ins[0])
        fan_in = prod(kernel) * exact_div(ins[0][0], self.groups)
        weights = fan_in * self.filters
        return Counts(weights=weights, biases=self.filters if self.bias else 0,
                      connections=prod(out) * fan_in, macs=prod(out) * fan_in)

    def param_shapes(self, ins, out):  # torch's ConvNd: (filters, channels / groups, *kernel)
        _, kernel, *_ = self.geometry(ins[0])
        return [(self.filters, exact_div(ins[0][0], self.groups), *kernel), *([(self.filters,)] if self.bias else [])]

    def backward_macs(self, ins, out, batch, grads, trains):
        return grouped_backward(self.groups, self.forward_macs(ins, out, batch), grads, trains)

    def explain(self, ins, out, ctx):
        _, kernel, *_ = self.geometry(ins[0])
        params = conv_params(ins[0][0], self.filters, kernel, self.bias, self.groups, explain=True)
        macs = conv_macs(prod(out), ins[0][0], kernel, self.groups, explain=True)
        return [*self.explain_shape(ins, ctx), f"params: {params.steps[0]}", f"connections = MACs: {macs.steps[0]}"]

    def saved(self, ins, out, trainable, device):
        # convolution keeps its input (and weight) whatever requires grad; with uneven 'same' padding
        # torch pads the extra (high − low) into a copy first, convolves it with the even part, and keeps the copy
        _, _, _, pads, _ = self.geometry(ins[0])
        if any(lo != hi for lo, hi in pads):
            return [Saved("new", ins[0][0] * prod(n + hi - lo for n, (lo, hi) in zip(ins[0][1:], pads)))]
        return [Saved("input")]

    def build(self, ins, out):
        import torch.nn as nn

        nd, kernel, stride, pads, dilation = self.geometry(ins[0])
        padding = self.pad if self.pad in ("same", "valid") else tuple(p[0] for p in pads)
        cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[nd]
        return cls(ins[0][0], self.filters, kernel, stride=stride, padding=padding, dilation=dilation,
                   groups=self.groups, bias=self.bias)


@register("deconv")
class Deconv(_Windowed):
    """Transposed convolution (PyTorch's ConvTranspose), 1D, 2D or 3D: (W − 1)·S − 2P + D·(F − 1) + OP + 1."""
    autocast = {"cpu": LOWER, "cuda": LOWER}  # in autocast's 16-bit list on both devices
    tools_checked = True
    count_rules = {  # WEIGHT_RULES, with torchscan's transposed-convolution formulas
        **WEIGHT_RULES,
        "torchinfo": "params*positions",
        "torchscan-flops": {"weight layers": "8*nd + 2*out*fanin", "bias adds": "bias*out", "first adds": "0 - out"},
        "torchscan-macs": "4*nd + out*fanin",
        "torchscan-dmas": "5*nd + out*fanin + params + out",
    }

    cause = "macs"
    weight_layer = True
    params = {
        "filters": Param("int", doc="number of filters (output channels)"),
        "kernel": Param("ints"),
        "stride": Param("ints", 1),
        "pad": Param("ints_or_zero", 0, doc="PyTorch's padding: removed from each side of the output"),
        "output_pad": Param("ints_or_zero", 0, doc="extra size on one side (PyTorch's output_padding)"),
        "dilation": Param("ints", 1),
        "groups": Param("int", 1),
        "bias": Param("bool", True),
    }
    torch_modules = ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
    onnx_ops = ("ConvTranspose",)

    def latency_key(self):
        return "conv" if self.groups == 1 else "grouped"  # latency's layer_key tells depthwise apart

    @classmethod
    def from_onnx(cls, call):
        w = call.weight(1)  # (C_in, filters / groups, *kernel)
        if w is None or len(w) < 3:
            raise call.refuse("ConvTranspose with a weight computed in the graph")
        nd, groups = len(w) - 2, call.attr("group", 1)
        window = onnx_window(call, nd, w[2:])
        if window["pad"] == "same":
            raise call.refuse("ConvTranspose with auto_pad SAME", hint="export with explicit pads")
        return {"filters": w[1] * groups, **window, "output_pad": plain(tuple(call.attr("output_padding") or
                                                                          (0,) * nd)),
                "groups": groups, "bias": call.has_bias(2)}

    @classmethod
    def from_torch(cls, call):
        m = call.module
        return {"filters": m.out_channels, "kernel": plain(m.kernel_size), "stride": plain(m.stride),
                "pad": plain(m.padding), "output_pad": plain(m.output_padding), "dilation": plain(m.dilation),
                "groups": m.groups, "bias": m.bias is not None}

    def geometry(self, shape):
        nd = require_spatial(self.kind, shape)
        return (nd, per_axis(self.kernel, nd, "kernel"), per_axis(self.stride, nd, "stride"),
                per_axis(self.pad, nd, "pad"), per_axis(self.dilation, nd, "dilation"),
                per_axis(self.output_pad, nd, "output_pad"))

    def output_shape(self, ins, ctx):
        x = ins[0]
        _, kernel, stride, pads, dilation, extra = self.geometry(x)
        for what, n in (("input channels", x[0]), ("filters", self.filters)):
            if divides(self.groups, n) is False:
                raise SpecError(f"{what} ({n}) must be divisible by groups ({self.groups})")
        out = []
        for n, k, st, p, d, op in zip(spatial(x), kernel, stride, pads, dilation, extra):
            if is_int(op) and is_int(st) and is_int(d) and op >= max(st, d):
                raise SpecError(f"output_pad {op} must be smaller than the stride or the dilation (PyTorch's rule)")
            size = (n - 1) * st - 2 * p + d * (k - 1) + op + 1
            if is_int(size) and size < 1:
                raise SpecError(f"the output would be {size} wide: (W − 1)·S − 2P + D·(F − 1) + OP + 1 "
                                f"= ({n} − 1)·{st} − 2·{p} + {d}·({k} − 1) + {op} + 1", hint="use less padding")
            out.append(size)
        return (self.filters, *out)

    def counts(self, ins, out):
        _, kernel, *_ = self.geometry(ins[0])
        per_input = prod(kernel) * exact_div(self.filters, self.groups)  # each input value meets this many weights
        macs = prod(ins[0]) * per_input
        return Counts(weights=ins[0][0] * per_input, biases=self.filters if self.bias else 0,
                      connections=macs, macs=macs)

    def param_shapes(self, ins, out):  # torch's ConvTransposeNd: (channels, filters / groups, *kernel)
        _, kernel, *_ = self.geometry(ins[0])
        return [(ins[0][0], exact_div(self.filters, self.groups), *kernel), *([(self.filters,)] if self.bias else [])]

    def backward_macs(self, ins, out, batch, grads, trains):
        return grouped_backward(self.groups, self.forward_macs(ins, out, batch), grads, trains)

    def saved(self, ins, out, trainable, device):
        return [Saved("input")]

    def receptive(self, rfs, ins, out):
        """Each output unit reads at most ceil(span / S) neighbouring inputs; the jump shrinks by S."""
        rf = rfs[0]
        if rf is None:
            return None
        _, kernel, stride, pads, dilation, _ = self.geometry(ins[0])
        spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        return RF(tuple(s + (ceil_div(sp, st) - 1) * j for s, sp, st, j in zip(rf.size, spans, stride, rf.stride)),
                  tuple(exact_div(j, st) for j, st in zip(rf.stride, stride)),
                  tuple(b + ceil_div(p - sp + 1, st) * j for b, p, sp, st, j in zip(rf.start, pads, spans, stride,
                                                                                   rf.stride)))

    def build(self, ins, out):
        import torch.nn as nn

        nd, kernel, stride, pads, dilation, extra = self.geometry(ins[0])
        cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[nd]
        return cls(ins[0][0], self.filters, kernel, stride=stride, padding=pads, output_padding=extra,
                   groups=self.groups, bias=self.bias, dilation=dilation)


@register("locally_connected")
class LocallyConnected(_Windowed):
    """A convolution without weight sharing: every output position has its own filters (2D)."""
    autocast = {"cpu": LOWER, "cuda": LOWER}  # its matmul is in autocast's 16-bit list
    onnx_none = "no ONNX operator: an export writes the unfolding and products out, each imported as the kind it is"
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "fvcore": "macs",
        "ptflops": "macs",
        "ptflops-aten": "macs",
        "thop": "macs",
    }

    cause = "macs"
    weight_layer = True
    params = {
        "filters": Param("int", doc="filters per output position"),
        "kernel": Param("ints"),
        "stride": Param("ints", 1),
        "pad": Param("pads", 0),
        "bias": Param("bool", True, doc="one bias per output unit"),
    }
    torch_modules = ("cnnsize.layers.nn.modules.LocallyConnected2d",)

    @classmethod
    def from_torch(cls, call):
        m = call.module
        (top, bottom), (left, right) = m.pads
        if top != bottom or left != right:
            raise call.refuse("LocallyConnected2d with uneven padding")
        return {"filters": m.weight.shape[2], "kernel": plain(m.kernel), "stride": plain(m.stride),
                "pad": plain((top, left)), "bias": m.bias is not None}

    def output_shape(self, ins, ctx):
        x = ins[0]
        nd, kernel, stride, pads, dilation = self.geometry(x)
        if nd != 2:
            raise SpecError("locally_connected supports 2D inputs (C, H, W) only")
        return (self.filters, *windowed_shape(spatial(x), kernel, stride, pads, dilation, ctx))

    def counts(self, ins, out):
        _, kernel, *_ = self.geometry(ins[0])
        fan_in = prod(kernel) * ins[0][0]
        return Counts(weights=prod(out) * fan_in, biases=prod(out) if self.bias else 0,
                      connections=prod(out) * fan_in, macs=prod(out) * fan_in)

    def param_shapes(self, ins, out):  # cnnsize.layers.nn.modules.LocallyConnected2d's
        _, kernel, *_ = self.geometry(ins[0])
        return [(prod(out[1:]), prod(kernel) * ins[0][0], self.filters), *([tuple(out)] if self.bias else [])]

    def explain(self, ins, out, ctx):
        _, kernel, *_ = self.geometry(ins[0])
        params = locally_connected_params(ins[0][0], self.filters, kernel, tuple(out[1:]), self.bias, explain=True)
        macs = conv_macs(prod(out), ins[0][0], kernel, explain=True)
        return [*self.explain_shape(ins, ctx), f"params: {params.steps[0]}", f"connections = MACs: {macs.steps[0]}"]

    def saved(self, ins, out, trainable, device):
        if not trainable:
            return []
        _, kernel, *_ = self.geometry(ins[0])  # the unfolded patches, kept by the batched matmul
        return [Saved("new", prod(kernel) * ins[0][0] * prod(out[1:]))]

    def build(self, ins, out):
        from .nn.modules import LocallyConnected2d

        _, kernel, stride, pads, _ = self.geometry(ins[0])
        return LocallyConnected2d(ins[0][0], self.filters, kernel, stride, pads, tuple(out[1:]), bias=self.bias)


__all__ = ["Conv", "Deconv", "LocallyConnected", "RF", "resolve_pads", "windowed_shape"]
