"""Pooling: ``maxpool``, ``avgpool``, global and adaptive average and max pooling."""

from __future__ import annotations

from ..calc import conv_macs
from ..errors import SpecError
from ..numeric import ceil_div, dmax, floor_div, is_int, prod
from .base import Counts, LayerKind, Param, Saved, per_axis, register, require_spatial, spatial
from .conv import _Windowed, windowed_shape


class _Pool(_Windowed):
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
        _, kernel, stride, pads, dilation = self.geometry(ins[0])
        return kernel, stride, tuple(p[0] for p in pads), dilation


POOL_PARAMS = {
    "kernel": Param("ints", doc="window size"),
    "stride": Param("ints", None, doc="defaults to the kernel"),
    "pad": Param("pads", 0),
    "ceil_mode": Param("bool", False, doc="round the output size up, as PyTorch's ceil_mode"),
}


@register("maxpool")
class MaxPool(_Pool):
    """Max pooling over each channel's window."""

    cause = "pooling"
    params = {**POOL_PARAMS, "dilation": Param("ints", 1)}

    def saved(self, ins, out, trainable, device):
        return [Saved("input"), Saved("new", prod(out), itemsize=8)]  # the input and int64 argmax indices

    def build(self, ins, out):
        import torch.nn as nn

        kernel, stride, pad, dilation = self._torch_args(ins)
        cls = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[len(kernel)]
        return cls(kernel, stride, pad, dilation, ceil_mode=self.ceil_mode)


@register("avgpool")
class AvgPool(_Pool):
    """Average pooling over each channel's window."""

    cause = "pooling"
    params = {**POOL_PARAMS, "count_include_pad": Param("bool", True)}

    def saved(self, ins, out, trainable, device):
        return [Saved("input")]

    def build(self, ins, out):
        import torch.nn as nn

        kernel, stride, pad, _ = self._torch_args(ins)
        cls = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[len(kernel)]
        return cls(kernel, stride, pad, ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad)


def adaptive_windows(n, m):
    """Sum and largest of PyTorch's adaptive windows [floor(i·n/m), ceil((i+1)·n/m)) along one axis.

    Exact for a symbolic input length n too (a sum of m floor/ceiling terms); only a symbolic
    output length m (which fixes the number of windows) falls back to the windows being equal.
    """
    if n == m:
        return m, 1
    if not is_int(m):
        return ceil_div(n, m) * m, ceil_div(n, m)
    lengths = [ceil_div((i + 1) * n, m) - floor_div(i * n, m) for i in range(m)]
    return sum(lengths), dmax(*lengths)


class _Adaptive(LayerKind):
    cause = "pooling"
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

    params = {}

    def target(self, x):
        return (1,) * (len(x) - 1)


@register("adaptive_avgpool")
class AdaptiveAvgPool(_Adaptive):
    """Average pooling to a fixed output size, with PyTorch's adaptive windows."""

    params = {"output": Param("size", doc="output size, one number or one per axis")}

    def target(self, x):
        return per_axis(self.output, len(x) - 1, "output")


class _AdaptiveMax(_Adaptive):
    def saved(self, ins, out, trainable, device):
        return [Saved("input"), Saved("new", prod(out), itemsize=8)]  # the input and int64 argmax indices

    def build(self, ins, out):
        import torch.nn as nn

        nd = len(out) - 1
        return {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d}[nd](tuple(out[1:]))


@register("adaptive_maxpool")
class AdaptiveMaxPool(_AdaptiveMax):
    """Max pooling to a fixed output size, with PyTorch's adaptive windows."""

    params = {"output": Param("size", doc="output size, one number or one per axis")}

    def target(self, x):
        return per_axis(self.output, len(x) - 1, "output")


@register("global_maxpool")
class GlobalMaxPool(_AdaptiveMax):
    """Maximum over the whole spatial extent: (C, H, W) -> (C, 1, 1), as AdaptiveMaxPool2d(1)."""

    params = {}

    def target(self, x):
        return (1,) * (len(x) - 1)
