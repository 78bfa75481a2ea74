"""Pooling: ``maxpool``, ``avgpool``, global and adaptive average and max pooling, and ``mean`` over axes."""

from __future__ import annotations

from typing import ClassVar

from ..calc import conv_macs
from ..core.errors import LimitExceeded, SpecError
from ..core.numeric import ceil_div, dmax, floor_div, is_int, prod
from .base import FLOAT32, Counts, LayerKind, Param, Saved, per_axis, plain, register, require_spatial, spatial
from .conv import _Windowed, onnx_window, windowed_shape


class _Pool(_Windowed):
    count_fact_names = {"kscan": "torchscan's pooling window: the kernel's product, but the kernel itself where it is "
                                 "one number (torchscan reads nn.MaxPool2d(3)'s window as 3 elements, not 9)"}

    def latency_key(self):
        return "pool"

    def count_facts(self, ins, out, batch):
        _, kernel, *_ = self.geometry(ins[0])
        return {"kscan": self.kernel if is_int(self.kernel) else prod(kernel), "k": prod(kernel)}

    def output_shape(self, ins, ctx):
        x = ins[0]
        _, kernel, stride, pads, dilation = self.geometry(x)
        for k, (p, _) in zip(kernel, pads):
            if is_int(k) and is_int(p) and p > k // 2:
                raise SpecError(f"pad {p} is more than half the pooling window {k} (PyTorch refuses this)",
                                hint=f"use pad {k // 2} or less")
        rule = "ceil" if self.ceil_mode else None
        return (x[0], *windowed_shape(spatial(x), kernel, stride, pads, dilation, ctx, rule, "pooling window"))

    def counts(self, ins, out):
        _, kernel, *_ = self.geometry(ins[0])
        return Counts(connections=prod(out) * prod(kernel))

    def explain(self, ins, out, ctx):
        _, kernel, *_ = self.geometry(ins[0])
        steps = self.explain_shape(ins, ctx, "ceil" if self.ceil_mode else None, "pooling window")
        return [*steps, f"connections: {conv_macs(prod(out), 1, kernel, explain=True).steps[0]}"]

    def _torch_args(self, ins):
        """The module's settings; a kernel given as one number stays one number, as the network that wrote
        nn.MaxPool2d(3) has it (torchscan reads the two differently: the ``kscan`` fact)."""
        _, kernel, stride, pads, dilation = self.geometry(ins[0])
        return self.kernel if is_int(self.kernel) else kernel, stride, tuple(p[0] for p in pads), dilation


def _axes(value, nd: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * nd


def onnx_pool(call) -> tuple:
    """Window settings of an ONNX MaxPool or AveragePool node (its stride defaults to 1, cnnsize's to the kernel)."""

    if call.index != 0:
        raise call.refuse(f"{call.op}'s indices output (it is not a layer)")
    nd = call.rank - 2
    window = onnx_window(call, nd)
    if window["pad"] == "same":
        raise call.refuse(f"{call.op} with auto_pad SAME", hint="export with explicit pads")
    settings = {"kernel": window["kernel"], "stride": None if window["stride"] == window["kernel"] else
                window["stride"], "pad": window["pad"], "ceil_mode": bool(call.attr("ceil_mode", 0))}
    return settings, window["dilation"]


def pool_settings(call, kernel, stride, padding, ceil_mode) -> dict:
    """Window settings of a traced pooling call (stride None or empty means the kernel, as in torch). A kernel
    given as a tuple stays a list, one given as a number a number: torchscan reads the two differently."""
    nd = call.rank - 2
    kernel = [plain(k) for k in kernel] if isinstance(kernel, (tuple, list)) else plain(_axes(kernel, nd))
    stride = plain(_axes(stride, nd)) if stride not in (None, [], ()) else kernel
    return {"kernel": kernel, "stride": None if stride == kernel else stride, "pad": plain(_axes(padding, nd)),
            "ceil_mode": bool(ceil_mode)}


POOL_PARAMS = {
    "kernel": Param("ints", doc="window size"),
    "stride": Param("ints", None, doc="defaults to the kernel"),
    "pad": Param("pads", 0),
    "ceil_mode": Param("bool", False, doc="round the output size up, as PyTorch's ceil_mode"),
}


@register("maxpool")
class MaxPool(_Pool):
    """Max pooling over each channel's window."""
    def autocast_mode(self, ins, device):
        """The CPU's autocast runs the 3-D form (max_pool3d) in float32."""
        return FLOAT32 if device == "cpu" and len(ins[0]) == 4 else None

    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "ptflops": "2*inp",
        "torchscan-flops": "out*(kscan - 1)",
        "torchscan-macs": "out*(kscan - 1)",
        "torchscan-dmas": "k*out + out",
    }

    cause = "pooling"
    params = {**POOL_PARAMS, "dilation": Param("ints", 1)}
    torch_modules = ("MaxPool1d", "MaxPool2d", "MaxPool3d")
    torch_functions = ("max_pool1d", "max_pool2d", "max_pool3d")
    onnx_ops = ("MaxPool",)

    @classmethod
    def from_onnx(cls, call):
        settings, dilation = onnx_pool(call)
        return {**settings, "dilation": dilation}

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if m is not None:
            kernel, stride, pad, dilation, ceil, indices = (m.kernel_size, m.stride, m.padding, m.dilation,
                                                            m.ceil_mode, m.return_indices)
        else:
            kernel, stride, pad = call.arg(1, "kernel_size"), call.arg(2, "stride"), call.arg(3, "padding", 0)
            dilation, ceil = call.arg(4, "dilation", 1), call.arg(5, "ceil_mode", False)
            indices = call.arg(6, "return_indices", False)
        if indices and call.index != 0:
            raise call.refuse(f"{call.function} with return_indices=True (the indices it returns are not a "
                              "layer)", hint="use return_indices=False, or --opaque to keep it as measured")
        settings = pool_settings(call, kernel, stride, pad, ceil)
        settings["dilation"] = plain(_axes(dilation, call.rank - 2))
        return settings

    def saved(self, ins, out, trainable, device):
        return [Saved("input"), Saved("new", prod(out), itemsize=8)]  # the input and int64 argmax indices

    def build(self, ins, out):
        import torch.nn as nn

        kernel, stride, pad, dilation = self._torch_args(ins)
        cls = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[len(stride)]
        return cls(kernel, stride, pad, dilation, ceil_mode=self.ceil_mode)


@register("avgpool")
class AvgPool(_Pool):
    """Average pooling over each channel's window."""
    def autocast_mode(self, ins, device):
        """The CPU's autocast runs the 3-D form (avg_pool3d) in float32."""
        return FLOAT32 if device == "cpu" and len(ins[0]) == 4 else None

    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "ptflops": "2*inp",
        "thop": "windows + out",
        "torchscan-flops": "out*(kscan - 1 + nd)",
        "torchscan-macs": "out*(kscan - 1 + nd)",
        "torchscan-dmas": "k*out + out",
    }

    cause = "pooling"
    params = {**POOL_PARAMS, "count_include_pad": Param("bool", True)}
    torch_modules = ("AvgPool1d", "AvgPool2d", "AvgPool3d")
    torch_functions = ("avg_pool1d", "avg_pool2d", "avg_pool3d")
    onnx_ops = ("AveragePool",)

    def count_facts(self, ins, out, batch):
        """kscan and k (as every pooling window), and windows: the inputs thop sums over every window, clipped to
        the padded input (or, without count_include_pad, the real one)."""
        x = ins[0]
        _, kernel, stride, pads, _ = self.geometry(x)
        total = 1
        for size, n_out, k, s, (p, _) in zip(x[1:], out[1:], kernel, stride, pads):
            lower, upper = (-p, size + p) if self.count_include_pad else (0, size)
            total *= sum(max(min(i * s - p + k, upper) - max(i * s - p, lower), 0) for i in range(n_out))
        return {**super().count_facts(ins, out, batch), "windows": total * x[0] * batch}

    @classmethod
    def from_onnx(cls, call):
        settings, dilation = onnx_pool(call)
        if dilation != 1:
            raise call.refuse(f"AveragePool with dilations {dilation}")
        return {**settings, "count_include_pad": bool(call.attr("count_include_pad", 0))}

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if m is not None:
            kernel, stride, pad, ceil, include, divisor = (m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                                           m.count_include_pad, getattr(m, "divisor_override", None))
        else:
            kernel, stride, pad = call.arg(1, "kernel_size"), call.arg(2, "stride"), call.arg(3, "padding", 0)
            ceil, include = call.arg(4, "ceil_mode", False), call.arg(5, "count_include_pad", True)
            divisor = call.arg(6, "divisor_override")
        if divisor is not None:
            raise call.refuse(f"{call.function} with divisor_override")
        return {**pool_settings(call, kernel, stride, pad, ceil), "count_include_pad": bool(include)}

    def saved(self, ins, out, trainable, device):
        return [Saved("input")]

    def build(self, ins, out):
        import torch.nn as nn

        kernel, stride, pad, _ = self._torch_args(ins)
        cls = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[len(stride)]
        return cls(kernel, stride, pad, ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad)


def adaptive_windows(n, m):
    """Sum and largest of PyTorch's adaptive windows [floor(i·n/m), ceil((i+1)·n/m)) along one axis.

    Numbers in closed form (an output of 10^23 is not 10^23 windows to add up): the lengths sum to
    n + m − gcd(n, m), and with n = a·m + r the longest is a, a + 1 where m divides by r, else a + 2.
    Exact for a symbolic input length n too (a sum of m floor/ceiling terms, m at most MAX_SYMBOLIC_WINDOWS); only
    a symbolic output length m (which fixes the number of windows) falls back to the windows being equal.
    """
    if n == m:
        return m, 1
    if not is_int(m):
        return ceil_div(n, m) * m, ceil_div(n, m)
    if is_int(n):
        import math

        a, r = divmod(n, m)
        return n + m - math.gcd(n, m), a + (0 if r == 0 else 1 if m % r == 0 else 2)
    if m > MAX_SYMBOLIC_WINDOWS:
        raise LimitExceeded(f"an adaptive pool to {m:,} outputs along an axis of symbolic size {n}: more than the "
                            f"{MAX_SYMBOLIC_WINDOWS:,} windows cnnsize adds up symbolically",
                            hint="give the input size as a number")
    lengths = [ceil_div((i + 1) * n, m) - floor_div(i * n, m) for i in range(m)]
    return sum(lengths), dmax(*lengths)


MAX_SYMBOLIC_WINDOWS = 10_000


# What the tools count for an adaptive average pool, global or to a fixed size (fvcore's handle is 2D only)
AVERAGE_RULES: dict = {
    "fvcore.2": "inp",
    "ptflops": "2*inp",
    "thop": "windows + out",
    "torchscan-flops": "out*(K - 1 + nd)",
    "torchscan-macs": "out*(K - 1 + nd)",
    "torchscan-dmas": "K*out + out",
}


class _Adaptive(LayerKind):
    cause = "pooling"
    torch_modules: ClassVar[tuple[str, ...]] = ("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d")
    torch_functions: ClassVar[tuple[str, ...]] = ("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d")

    def count_facts(self, ins, out, batch):
        """K (torchscan's adaptive window) and windows (the inputs an adaptive average sums, for the batch)."""
        x = ins[0]
        if len(out) < 2:
            return {}
        k = prod(i // o if i % o == 0 else i % o + 1 for i, o in zip(x[1:], out[1:]))
        return {"K": k, "windows": x[0] * prod(adaptive_windows(n, m)[0] for n, m in zip(x[1:], out[1:])) * batch}

    @classmethod
    def from_torch(cls, call):
        """Global when every output size is 1 (``global_*pool``), else ``adaptive_*pool`` with the output size."""
        m = call.module
        size = m.output_size if m is not None else call.arg(1, "output_size")
        indices = m.return_indices if m is not None and hasattr(m, "return_indices") else call.arg(2, "return_indices")
        if indices and call.index != 0:
            raise call.refuse(f"{call.function} with return_indices=True (the indices it returns are not a layer)")
        spatial_in = call.inputs[0][2:]
        size = tuple(s if s is not None else n for s, n in zip(_axes(size, len(spatial_in)), spatial_in))
        is_global = all(s == 1 for s in size)
        if is_global != ("output" not in cls.params):
            return None  # the other one of the pair
        return {} if is_global else {"output": plain(size)}

    def target(self, x) -> tuple:
        raise NotImplementedError

    def output_shape(self, ins, ctx):
        require_spatial(self.kind, ins[0])
        return (ins[0][0], *self.target(ins[0]))

    def counts(self, ins, out):
        per_axis_sums = [adaptive_windows(n, m)[0] for n, m in zip(spatial(ins[0]), spatial(out))]
        return Counts(connections=ins[0][0] * prod(per_axis_sums))

    def saved(self, ins, out, trainable, device):
        if all(m == 1 for m in spatial(out)):
            return []  # torch computes a global average as a mean, which keeps nothing
        return [Saved("input")]

    def receptive(self, rfs, ins, out):
        if rfs[0] is None or all(m == 1 for m in spatial(out)):
            return None  # a global pool: the spatial extent is gone
        n_in, n_out = spatial(ins[0]), spatial(out)
        kernel = tuple(adaptive_windows(n, m)[1] for n, m in zip(n_in, n_out))
        stride = tuple(floor_div(n, m) for n, m in zip(n_in, n_out))
        nd = len(kernel)
        return rfs[0].window(kernel, stride, (0,) * nd, (1,) * nd)

    def build(self, ins, out):
        import torch.nn as nn

        nd = len(out) - 1
        return {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}[nd](tuple(out[1:]))


@register("global_avgpool")
class GlobalAvgPool(_Adaptive):
    """Average over the whole spatial extent: (C, H, W) -> (C, 1, 1), as AdaptiveAvgPool2d(1)."""
    tools_checked = True
    count_rules = AVERAGE_RULES

    params = {}
    torch_functions = _Adaptive.torch_functions + ("mean",)
    onnx_ops = ("GlobalAveragePool", "ReduceMean")

    def count_variant(self, out):
        return str(len(out) - 1)  # fvcore's adaptive-average handle is 2-D only

    @classmethod
    def from_onnx(cls, call):
        if call.op == "GlobalAveragePool":
            return {}
        rank = call.rank  # ReduceMean over every spatial axis: axes an attribute, or an input from opset 18
        axes = call.const(1) if call.opset >= 18 else call.attr("axes")
        axes = tuple(sorted(a % rank for a in (axes if isinstance(axes, list) else [axes]))) \
            if axes is not None else None
        if axes != tuple(range(2, rank)) or rank < 3:
            raise call.refuse(f"ReduceMean over axes {axes} (only the mean over all spatial axes is a global "
                              "average pool)")
        return [("global_avgpool", {})] + ([] if call.attr("keepdims", 1) else [("flatten", {})])

    @classmethod
    def from_torch(cls, call):
        if call.function != "mean":
            return super().from_torch(call)
        rank = call.rank  # x.mean((2, 3)): the mean over every spatial axis is a global average pool
        dims = call.arg(1, "dim")
        dims = tuple(sorted(d % rank for d in (dims if isinstance(dims, (list, tuple)) else [dims]))) \
            if dims is not None else None
        if dims != tuple(range(2, rank)):
            raise call.refuse(f"mean over dims {dims} (only the mean over all spatial axes is a global average "
                              "pool)")
        return [("global_avgpool", {})] + ([] if call.arg(2, "keepdim", False) else [("flatten", {})])

    def target(self, x):
        return (1,) * (len(x) - 1)


@register("adaptive_avgpool")
class AdaptiveAvgPool(_Adaptive):
    """Average pooling to a fixed output size, with PyTorch's adaptive windows."""
    def autocast_mode(self, ins, device):
        """The CPU's autocast runs the 3-D form (adaptive_avg_pool3d) in float32."""
        return FLOAT32 if device == "cpu" and len(ins[0]) == 4 else None

    onnx_none = "no ONNX operator: exporters write AveragePool with the window fixed (avgpool) or GlobalAveragePool"
    tools_checked = True
    count_rules = AVERAGE_RULES

    params = {"output": Param("size", doc="output size, one number or one per axis")}

    def count_variant(self, out):
        return str(len(out) - 1)  # fvcore's adaptive-average handle is 2-D only

    def target(self, x):
        return per_axis(self.output, len(x) - 1, "output")


class _AdaptiveMax(_Adaptive):
    torch_modules = ("AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d")
    torch_functions = ("adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d")

    def saved(self, ins, out, trainable, device):
        return [Saved("input"), Saved("new", prod(out), itemsize=8)]  # the input and int64 argmax indices

    def build(self, ins, out):
        import torch.nn as nn

        nd = len(out) - 1
        return {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d}[nd](tuple(out[1:]))


@register("adaptive_maxpool")
class AdaptiveMaxPool(_AdaptiveMax):
    """Max pooling to a fixed output size, with PyTorch's adaptive windows."""
    def autocast_mode(self, ins, device):
        """The CPU's autocast runs the 3-D form (adaptive_max_pool3d) in float32."""
        return FLOAT32 if device == "cpu" and len(ins[0]) == 4 else None

    onnx_none = "no ONNX operator: exporters write MaxPool with the window fixed (maxpool) or GlobalMaxPool"
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "ptflops": "2*inp",
        "torchscan-flops": "out*(K - 1)",
        "torchscan-macs": "out*(K - 1)",
        "torchscan-dmas": "K*out + out",
    }

    params = {"output": Param("size", doc="output size, one number or one per axis")}

    def target(self, x):
        return per_axis(self.output, len(x) - 1, "output")


@register("global_maxpool")
class GlobalMaxPool(_AdaptiveMax):
    """Maximum over the whole spatial extent: (C, H, W) -> (C, 1, 1), as AdaptiveMaxPool2d(1)."""
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "ptflops": "2*inp",
        "torchscan-flops": "out*(K - 1)",
        "torchscan-macs": "out*(K - 1)",
        "torchscan-dmas": "K*out + out",
    }

    params = {}
    onnx_ops = ("GlobalMaxPool",)

    def target(self, x):
        return (1,) * (len(x) - 1)


def reduction_axes(x, axes: tuple, keepdim: bool, what: str, op: str) -> tuple:
    """The axes a reduction (mean, reduce) runs over, checked against its input ``x``: at least one, distinct, in
    range, and something left where the reduced axes are dropped."""
    if not axes or any(a >= len(x) for a in axes) or len(set(axes)) != len(axes):
        raise SpecError(f"{what} axes {list(axes)} must be distinct axes of {list(x)}, from 0 to {len(x) - 1}")
    if not keepdim and len(axes) == len(x):
        raise SpecError(f"{op} over every axis without keepdim leaves nothing", hint="write keepdim: true")
    return axes


def reduced_shape(x, axes: tuple, keepdim: bool) -> tuple:
    """A reduction's output: the reduced axes kept as 1 (keepdim) or dropped."""
    if keepdim:
        return tuple(1 if i in axes else n for i, n in enumerate(x))
    return tuple(n for i, n in enumerate(x) if i not in axes)


@register("mean")
class Mean(LayerKind):
    """The mean over some per-sample ``axes`` (``x.mean(1, keepdim=True)``, the tokens' mean ``x.mean(1)``), those
    axes kept as 1 with ``keepdim`` or dropped. The mean over every spatial axis is ``global_avgpool``."""
    onnx_none = ("ONNX ReduceMean over the spatial axes imports as global_avgpool (and flatten); over other axes not "
                 "mapped yet")
    tools_checked = True

    cause = "pooling"
    params = {"axes": Param("ints_or_zero", doc="the per-sample axes averaged, from 0"),
              "keepdim": Param("bool", False, doc="keep them as axes of size 1")}
    torch_modules = ("cnnsize.layers.nn.modules.Mean",)
    torch_functions = ("mean",)
    batch_anywhere = True  # axes counted as torch holds them (TorchCall.axis): CrossViT's mean over its stacked heads

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {"axes": [d - 1 for d in call.module.dims], "keepdim": call.module.keepdim}
        dims = call.arg(1, "dim")
        if dims is None or dims in ([], ()) or call.arg(3, "dtype") is not None:
            raise call.refuse("mean of the whole tensor, batch included (cnnsize's axes are per sample)")
        dims = dims if isinstance(dims, (list, tuple)) else [dims]
        axes = {call.axis(d) for d in dims}  # per-sample axes, wherever torch holds the batch (None: the batch)
        keep = bool(call.arg(2, "keepdim", False))
        if None in axes or (not keep and len(axes) == len(call.inputs[0]) - 1):
            rank = len(call.torch_inputs[0]) if call.batch else call.rank
            raise call.refuse(f"mean over dims {sorted({d % rank for d in dims})} (it averages the batch axis or "
                              "leaves no per-sample axis)")
        found = sorted(a for a in axes if a is not None)
        return {"axes": plain(found) if len(found) > 1 else found[0], "keepdim": keep}

    def axes_of(self, x) -> tuple:
        axes = self.axes if isinstance(self.axes, tuple) else (self.axes,)
        if not axes:  # torch.mean(x, dim=[]) averages every axis, the batch's too: not a per-sample layer
            raise SpecError("mean axes [] name no axis: torch's mean over dim=[] averages every axis, the batch "
                            "included, which a layer cannot", hint=f"name the axes, e.g. axes: {list(range(len(x)))} "
                                                                   "with keepdim: true")
        return reduction_axes(x, axes, self.keepdim, "mean", "mean")

    def output_shape(self, ins, ctx):
        return reduced_shape(ins[0], self.axes_of(ins[0]), self.keepdim)

    def counts(self, ins, out):
        return Counts(connections=prod(ins[0]))

    def receptive(self, rfs, ins, out):
        return rfs[0] if self.axes_of(ins[0]) == (0,) and self.keepdim else None

    def build(self, ins, out):
        from .nn.modules import Mean as Module

        return Module(tuple(a + 1 for a in self.axes_of(ins[0])), self.keepdim)
