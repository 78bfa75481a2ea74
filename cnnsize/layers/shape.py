"""Layers that move values around without weights: ``upsample``, ``zeropad``, ``channel_shuffle``, ``chunk``."""

from __future__ import annotations

from ..errors import SpecError
from ..numeric import divides, exact_div, prod
from .base import RF, Counts, LayerKind, Param, per_axis, register, require_spatial, spatial

LINEAR_MODES = ("linear", "bilinear", "bicubic", "trilinear")


@register("upsample")
class Upsample(LayerKind):
    """Upsampling by an integer factor per axis (nearest copies; the linear modes blend neighbours)."""

    cause = "upsampling"
    params = {"scale": Param("ints", doc="factor, one number or one per axis"),
              "mode": Param("choice", "nearest", choices=("nearest",) + LINEAR_MODES),
              "align_corners": Param("bool", False, doc="for the linear modes, as PyTorch's align_corners")}

    def output_shape(self, ins, ctx):
        nd = require_spatial(self.kind, ins[0])
        return (ins[0][0], *(n * f for n, f in zip(spatial(ins[0]), per_axis(self.scale, nd, "scale"))))

    def counts(self, ins, out):
        taps = 1 if self.mode == "nearest" else {"bicubic": 4}.get(self.mode, 2) ** (len(out) - 1)
        return Counts(connections=prod(out) * taps)

    def receptive(self, rfs, ins, out):
        rf = rfs[0]
        if rf is None:
            return None
        scale = per_axis(self.scale, len(out) - 1, "scale")
        grow = 0 if self.mode == "nearest" else 1 if self.mode != "bicubic" else 3
        return RF(tuple(s + grow * j for s, j in zip(rf.size, rf.stride)),
                  tuple(exact_div(j, f) for j, f in zip(rf.stride, scale)), rf.start)

    def build(self, ins, out):
        import torch.nn as nn

        scale = per_axis(self.scale, len(out) - 1, "scale")
        kwargs = {} if self.mode == "nearest" else {"align_corners": self.align_corners}
        return nn.Upsample(scale_factor=tuple(float(f) for f in scale), mode=self.mode, **kwargs)


@register("zeropad")
class ZeroPad(LayerKind):
    """Zero padding per spatial axis: ``pad`` on both sides, or ``pad`` before and ``pad_end`` after."""

    cause = "views"
    params = {"pad": Param("ints_or_zero", doc="zeros before (and after, unless pad_end is given), per axis"),
              "pad_end": Param("ints_or_zero", None, doc="zeros after, per axis")}

    def pads(self, x) -> list[tuple]:
        nd = require_spatial(self.kind, x)
        lo = per_axis(self.pad, nd, "pad")
        hi = lo if self.pad_end is None else per_axis(self.pad_end, nd, "pad_end")
        return list(zip(lo, hi))

    def output_shape(self, ins, ctx):
        return (ins[0][0], *(n + a + b for n, (a, b) in zip(spatial(ins[0]), self.pads(ins[0]))))

    def receptive(self, rfs, ins, out):
        rf = rfs[0]
        if rf is None:
            return None
        return RF(rf.size, rf.stride, tuple(b - a * j for b, (a, _), j in zip(rf.start, self.pads(ins[0]), rf.stride)))

    def build(self, ins, out):
        import torch.nn as nn

        pads = self.pads(ins[0])
        flat = tuple(v for a, b in reversed(pads) for v in (a, b))  # torch pads the last axis first
        return {1: nn.ZeroPad1d, 2: nn.ZeroPad2d, 3: nn.ZeroPad3d}[len(pads)](flat)


@register("channel_shuffle")
class ChannelShuffle(LayerKind):
    """ShuffleNet's channel shuffle: interleaves the channels of ``groups`` groups; values move, nothing is computed."""

    cause = "views"
    params = {"groups": Param("int", doc="number of channel groups")}

    def output_shape(self, ins, ctx):
        require_spatial(self.kind, ins[0])
        if divides(self.groups, ins[0][0]) is False:
            raise SpecError(f"channels ({ins[0][0]}) must be divisible by groups ({self.groups})")
        return tuple(ins[0])

    def build(self, ins, out):
        import torch.nn as nn

        return nn.ChannelShuffle(self.groups)


@register("chunk")
class Chunk(LayerKind):
    """One of ``chunks`` equal slices of the channels (torch's ``x.chunk(chunks, 1)[index]``): a view."""

    cause = "views"
    params = {"chunks": Param("int", doc="number of equal channel slices"),
              "index": Param("count", doc="which slice, from 0")}

    @property
    def materializes(self) -> bool:
        return False

    def output_shape(self, ins, ctx):
        c = ins[0][0]
        if divides(self.chunks, c) is False:
            raise SpecError(f"channels ({c}) must be divisible by chunks ({self.chunks})")
        if self.index >= self.chunks:
            raise SpecError(f"index {self.index} is out of range for {self.chunks} chunks", hint="count from 0")
        return (exact_div(c, self.chunks), *ins[0][1:])

    def build(self, ins, out):
        from ..executor.modules import Chunk as ChunkModule

        return ChunkModule(self.chunks, self.index)
