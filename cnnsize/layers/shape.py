"""Layers that move values around without weights: ``upsample``, the paddings, ``channel_shuffle``, ``chunk``,
``slice``."""

from __future__ import annotations

from typing import Any, ClassVar

from ..core.errors import SpecError
from ..core.numeric import divides, dmin, exact_div, floor_div, is_int, prod
from .base import (
    FLOAT32,
    PASS_THROUGH,
    RF,
    VIEW,
    Counts,
    LayerKind,
    Param,
    Saved,
    per_axis,
    plain,
    register,
    require_spatial,
    spatial,
)

LINEAR_MODES = ("linear", "bilinear", "bicubic", "trilinear")


@register("upsample")
class Upsample(LayerKind):
    """Resizing by an integer factor per axis, or to a given ``size`` (F.interpolate(x, size=...): any size, as
    torch's nearest and linear modes take it); nearest copies, the linear modes blend neighbours."""
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "fvcore.nearest.2": "out",
        "fvcore.bilinear.2": "4*out",
        "ptflops": "2*out",
        "thop.linear": "5*out",
        "thop.bilinear": "11*out",
        "thop.bicubic": "259*out",
        "thop.trilinear": "31*out",
    }

    cause = "upsampling"
    params = {"scale": Param("ints", None, doc="factor, one number or one per axis (or give size)"),
              "size": Param("size", None, doc="the output's spatial size, one number or one per axis (instead of "
                                              "scale)"),
              "mode": Param("choice", "nearest", choices=("nearest",) + LINEAR_MODES),
              "align_corners": Param("bool", False, doc="for the linear modes, as PyTorch's align_corners")}
    torch_modules = ("Upsample",)
    torch_functions = ("interpolate", "upsample")
    onnx_ops = ("Resize", "Upsample")

    def count_variant(self, out):
        return f"{self.mode}.{len(out) - 1}" if len(out) == 3 else self.mode

    @classmethod
    def from_onnx(cls, call):
        x, out = call.inputs[0], call.output
        if tuple(out[:2]) != tuple(x[:2]) or any(o % i for i, o in zip(x[2:], out[2:])):
            raise call.refuse(f"{call.op} from {list(x)} to {list(out)} (only an integer factor per spatial axis is "
                              "an upsample layer)")
        nd = len(x) - 2
        mode = call.attr("mode", "nearest")
        modes = {"nearest": "nearest", "linear": {1: "linear", 2: "bilinear", 3: "trilinear"}.get(nd),
                 "bilinear": "bilinear", "cubic": "bicubic" if nd == 2 else None}
        if modes.get(mode) is None:
            raise call.refuse(f"{call.op} with mode {mode} on {nd} spatial axes")
        settings = {"scale": plain(tuple(o // i for i, o in zip(x[2:], out[2:]))), "mode": modes[mode]}
        if settings["mode"] != "nearest":
            settings["align_corners"] = call.attr("coordinate_transformation_mode") == "align_corners"
        return settings

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if m is not None:
            scale, mode, align = m.scale_factor, m.mode, m.align_corners
        else:
            scale, mode, align = call.arg(2, "scale_factor"), call.arg(3, "mode", "nearest"), \
                call.arg(4, "align_corners")
        spatial_in, spatial_out = call.inputs[0][2:], call.output[2:]
        if mode not in cls.params["mode"].choices:
            raise call.refuse(f"interpolation in mode '{mode}'")
        factors = scale if isinstance(scale, (tuple, list)) else (scale,) * len(spatial_in)
        whole = not any(o % i for i, o in zip(spatial_in, spatial_out)) and \
            (scale is None or all(float(f) == int(f) for f in factors))
        if whole:
            settings = {"scale": plain(tuple(o // i for i, o in zip(spatial_in, spatial_out))), "mode": mode}
        else:  # to a size torch computed (a non-integer factor, or another tensor's size): the size itself
            settings = {"size": plain(tuple(spatial_out)), "mode": mode}
        if mode != "nearest":
            settings["align_corners"] = bool(align)
        return settings

    def output_shape(self, ins, ctx):
        nd = require_spatial(self.kind, ins[0])
        axes = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}.get(self.mode)
        if axes is not None and axes != nd:  # torch's interpolate refuses any other pairing
            modes = {1: "linear", 2: "bilinear or bicubic", 3: "trilinear"}
            raise SpecError(f"upsample mode {self.mode} is for {axes} spatial ax{'is' if axes == 1 else 'es'}, "
                            f"the input has {nd}", hint=f"use mode {modes.get(nd, 'nearest')} (or nearest)")
        if (self.scale is None) == (self.size is None):
            raise SpecError("upsample needs one of scale and size", hint="scale: 2 doubles each axis; size: [H, W] "
                                                                          "gives the output's size")
        if self.size is not None:
            return (ins[0][0], *per_axis(self.size, nd, "size"))
        return (ins[0][0], *(n * f for n, f in zip(spatial(ins[0]), per_axis(self.scale, nd, "scale"))))

    def counts(self, ins, out):
        taps = 1 if self.mode == "nearest" else {"bicubic": 4}.get(self.mode, 2) ** (len(out) - 1)
        return Counts(connections=prod(out) * taps)

    def receptive(self, rfs, ins, out):
        rf = rfs[0]
        if rf is None or self.scale is None:
            return None  # resized to a size: no whole step per output pixel
        scale = per_axis(self.scale, len(out) - 1, "scale")
        grow = 0 if self.mode == "nearest" else 1 if self.mode != "bicubic" else 3
        return RF(tuple(s + grow * j for s, j in zip(rf.size, rf.stride)),
                  tuple(exact_div(j, f) for j, f in zip(rf.stride, scale)), rf.start)

    def build(self, ins, out):
        import torch.nn as nn

        kwargs = {} if self.mode == "nearest" else {"align_corners": self.align_corners}
        if self.size is not None:
            return nn.Upsample(size=tuple(out[1:]), mode=self.mode, **kwargs)
        scale = per_axis(self.scale, len(out) - 1, "scale")
        return nn.Upsample(scale_factor=tuple(float(f) for f in scale), mode=self.mode, **kwargs)


@register("zeropad")
class ZeroPad(LayerKind):
    """Zero padding per spatial axis: ``pad`` on both sides, or ``pad`` before and ``pad_end`` after; ``value``
    fills with another constant (F.pad(x, pads, value=-inf) before a max pool)."""
    tools_checked = True

    cause = "views"
    params = {"pad": Param("ints_or_zero", doc="zeros before (and after, unless pad_end is given), per axis"),
              "pad_end": Param("ints_or_zero", None, doc="zeros after, per axis"),
              "value": Param("fill", 0.0, doc="the constant padded with (torch's ConstantPad value)")}
    torch_modules: ClassVar[tuple[str, ...]] = ("ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d",
                                                "ConstantPad3d")
    torch_functions: ClassVar[tuple[str, ...]] = ("pad",)
    mode = "constant"  # F.pad's mode this kind stands for
    onnx_ops = ("Pad",)
    onnx_mode = "constant"

    @classmethod
    def from_onnx(cls, call):
        mode = call.attr("mode", "constant")
        if mode != cls.onnx_mode:
            return None  # another padding kind's
        pads = call.const(1) if call.opset >= 11 else call.attr("pads")
        if call.opset >= 18 and call.arg(3) is not None:
            raise call.refuse("Pad of chosen axes", hint="export with pads for every axis")
        value = call.arg(2).scalar if call.opset >= 11 and call.arg(2) is not None else call.attr("value", 0.0)
        if pads is None:
            raise call.refuse("Pad with unknown pads (padding by constant amounts is a layer)")
        r = len(pads) // 2
        lo, hi = list(pads[:r]), list(pads[r:])
        if lo[:2] != [0, 0] or hi[:2] != [0, 0] or min(pads) < 0:
            raise call.refuse(f"Pad of the batch or channel axes, or negative pads ({list(pads)})")
        settings = {"pad": plain(lo[2:]), "pad_end": None if lo == hi else plain(hi[2:])}
        if mode == "constant" and value not in (0, 0.0, None):
            settings["value"] = float(value)  # ConstantPad's fill
        return settings

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            flat, value = list(call.module.padding), getattr(call.module, "value", 0.0)
        else:
            flat, mode, value = list(call.arg(1, "pad")), call.arg(2, "mode", "constant"), call.arg(3, "value")
            if mode != cls.mode:
                if mode not in ("constant", "reflect", "replicate"):
                    raise call.refuse(f"F.pad in mode '{mode}'")
                return None  # another padding kind's
            axes = call.rank - 2
            if len(flat) // 2 > axes:
                raise call.refuse(f"F.pad of {len(flat) // 2} axes (it pads the channels or the batch; cnnsize pads "
                                  "the spatial axes)")
            flat += [0] * (2 * axes - len(flat))
        lo, hi = flat[0::2][::-1], flat[1::2][::-1]  # torch lists the last axis first
        crops = cls.crops(call, lo, hi) if any(v < 0 for v in flat) else []
        lo, hi = [max(v, 0) for v in lo], [max(v, 0) for v in hi]
        settings = {"pad": plain(lo), "pad_end": None if lo == hi else plain(hi)}
        if "value" in cls.params:
            settings["value"] = float(value or 0.0)
        if not crops:
            return settings
        # a crop alone is still a new tensor in torch (F.pad copies): the slices' view copied
        return crops + [(cls.kind, settings) if any(lo + hi) else ("contiguous", {})]

    @classmethod
    def crops(cls, call, lo: list, hi: list) -> list:
        """Padding by negative amounts (NASNet's ZeroPad2d((-1, 1, -1, 1))) crops those sides: one ``slice`` per
        axis cropped, before the padding of the others."""
        if cls.mode != "constant":
            raise call.refuse(f"{cls.mode} padding by negative amounts (a crop)")
        shape = call.inputs[0][2:]
        return [("slice", {"axis": i + 1, "start": max(-a, 0), "end": n + b if b < 0 else None, "step": 1})
                for i, (n, a, b) in enumerate(zip(shape, lo, hi)) if a < 0 or b < 0]

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
        if self.value:
            return {1: nn.ConstantPad1d, 2: nn.ConstantPad2d, 3: nn.ConstantPad3d}[len(pads)](flat, self.value)
        return {1: nn.ZeroPad1d, 2: nn.ZeroPad2d, 3: nn.ZeroPad3d}[len(pads)](flat)


@register("reflectpad")
class ReflectPad(ZeroPad):
    """Padding by reflection at each border (the border value itself not repeated): torch's ReflectionPad."""
    def autocast_mode(self, ins, device):
        """The CPU's autocast runs the 1-D and 2-D forms (reflection_pad1d, 2d) in float32."""
        return FLOAT32 if device == "cpu" and len(ins[0]) in (2, 3) else super().autocast_mode(ins, device)

    tools_checked = True

    torch_name = "ReflectionPad"
    params = {k: v for k, v in ZeroPad.params.items() if k != "value"}
    torch_modules = ("ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d")  # ZeroPad's from_torch reads padding
    onnx_mode = "reflect"
    mode = "reflect"

    def output_shape(self, ins, ctx):
        for n, (a, b) in zip(spatial(ins[0]), self.pads(ins[0])):
            if is_int(n) and is_int(a) and is_int(b) and max(a, b) >= n:
                raise SpecError(f"{self.kind} of {max(a, b)} needs more than {n} values on that axis (torch's rule)",
                                hint="pad less than the axis' size")
        return super().output_shape(ins, ctx)

    def saved(self, ins, out, trainable, device):
        return [Saved("input")]  # its backward kernel reads the input

    def build(self, ins, out):
        import torch.nn as nn

        pads = self.pads(ins[0])
        flat = tuple(v for a, b in reversed(pads) for v in (a, b))
        return getattr(nn, f"{self.torch_name}{len(pads)}d")(flat)


@register("replicatepad")
class ReplicatePad(ReflectPad):
    """Padding by repeating the border value: torch's ReplicationPad."""
    autocast = {"cpu": FLOAT32}  # replication_pad1d, 2d, 3d: the CPU's float32 list
    tools_checked = True

    torch_name = "ReplicationPad"
    torch_modules = ("ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d")
    onnx_mode = "edge"
    mode = "replicate"

    def output_shape(self, ins, ctx):
        return ZeroPad.output_shape(self, ins, ctx)


@register("channel_shuffle")
class ChannelShuffle(LayerKind):
    """ShuffleNet's channel shuffle: interleaves the channels of ``groups`` groups; values move, nothing is computed."""
    onnx_none = "no ONNX operator: exporters write Reshape, Transpose, Reshape, imported as those kinds"
    tools_checked = True

    cause = "views"
    params = {"groups": Param("int", doc="number of channel groups")}
    torch_modules = ("ChannelShuffle",)

    def output_shape(self, ins, ctx):
        require_spatial(self.kind, ins[0])
        if divides(self.groups, ins[0][0]) is False:
            raise SpecError(f"channels ({ins[0][0]}) must be divisible by groups ({self.groups})")
        return tuple(ins[0])

    def build(self, ins, out):
        import torch.nn as nn

        return nn.ChannelShuffle(self.groups)


def _block(x: tuple, axis: int, start: Any, end: Any) -> tuple | None:
    """Entries start to end of ``axis`` of a contiguous per-sample tensor ``x`` as one block of its elements, where
    every axis before it has size 1 (else the range repeats, strided)."""
    if not all(is_int(v) for v in (*x, start, end)) or any(n != 1 for n in x[:axis]):
        return None
    inner = prod(x[axis + 1:])
    return start * inner, end * inner


@register("chunk")
class Chunk(LayerKind):
    """One of ``chunks`` equal slices of the channels (torch's ``x.chunk(chunks, 1)[index]``), or of another
    per-sample ``axis`` (the q, k, v of a packed projection): a view."""
    tools_checked = True
    makes = VIEW
    several_views = True  # torch's chunk is split: each part one of the views one call returns

    cause = "views"
    params = {"chunks": Param("int", doc="number of equal channel slices"),
              "index": Param("count", doc="which slice, from 0"),
              "axis": Param("count", 0, doc="the per-sample axis sliced, from 0 (the channels)")}
    batch_anywhere = True
    torch_modules = ("cnnsize.layers.nn.modules.Chunk",)
    torch_functions = ("chunk",)
    onnx_ops = ("Split", "Slice")

    @classmethod
    def from_onnx(cls, call):
        x = call.inputs[0]
        if call.op == "Split":  # equal parts along a per-sample axis, one layer per output used
            axis = call.attr("axis", 0) % len(x)
            parts = len(call.outputs)
            if axis == 0 or any(tuple(o) != tuple(call.output) for o in call.outputs):
                raise call.refuse(f"Split into {parts} along axis {axis} (cnnsize slices a per-sample axis into "
                                  "equal parts)")
            return {"chunks": parts, "index": call.index, "axis": axis - 1}
        starts, ends, axes, steps = (call.const(i) for i in range(1, 5))  # Slice: one contiguous equal part
        if starts is None or ends is None or len(starts) != 1 or (steps is not None and list(steps) != [1]):
            raise call.refuse("Slice of several axes, with steps or unknown bounds")
        axis = (axes[0] if axes is not None else 0) % len(x)
        size = x[axis]
        start, end = (max(0, min(v + size if v < 0 else v, size)) for v in (starts[0], ends[0]))
        width = end - start
        if axis == 0 or width <= 0 or size % width or start % width:
            raise call.refuse(f"Slice [{start}:{end}] of axis {axis} (cnnsize slices a per-sample axis into equal "
                              "parts)")
        return {"chunks": size // width, "index": start // width, "axis": axis - 1}

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {"chunks": call.module.chunks, "index": call.module.index, "axis": call.module.dim - 1}
        chunks, dim = call.arg(1, "chunks"), call.arg(2, "dim", 0)
        axis = call.axis(dim)
        if call.index is None or axis is None or call.inputs[0][axis + 1] % chunks:
            raise call.refuse(f"chunk into {chunks} along dim {dim} (cnnsize slices a per-sample axis into equal "
                              "parts)")
        return {"chunks": chunks, "index": call.index, "axis": axis}

    def output_shape(self, ins, ctx):
        x, a = ins[0], self.axis
        if a >= len(x):
            raise SpecError(f"chunk axis {a} is out of range for the {len(x)}-axis input {list(x)}",
                            hint=f"count the per-sample axes from 0: 0 to {len(x) - 1}")
        if divides(self.chunks, x[a]) is False:
            raise SpecError(f"{'channels' if a == 0 else f'axis {a}'} ({x[a]}) must be divisible by chunks "
                            f"({self.chunks})")
        if self.index >= self.chunks:
            raise SpecError(f"index {self.index} is out of range for {self.chunks} chunks", hint="count from 0")
        return (*x[:a], exact_div(x[a], self.chunks), *x[a + 1:])

    def receptive(self, rfs, ins, out):
        return rfs[0] if self.axis == 0 else None

    def block(self, ins):
        x, a = ins[0], self.axis
        width = x[a] // self.chunks
        return _block(x, a, self.index * width, (self.index + 1) * width)

    def build(self, ins, out):
        from .nn.modules import Chunk as ChunkModule

        return ChunkModule(self.chunks, self.index, self.axis + 1)


@register("slice")
class Slice(LayerKind):
    """A range of one per-sample axis, ``start`` to ``end`` in steps of ``step`` (``x[:, a:b]``, ``x[:, :, ::2]``,
    one part of ``torch.split``, ``narrow``): a view, nothing copied."""
    onnx_none = "ONNX Slice imports as chunk"
    tools_checked = True
    makes = VIEW

    cause = "views"
    params = {"axis": Param("count", 0, doc="the per-sample axis, from 0 (the channels)"),
              "start": Param("count", 0, doc="the first index kept"),
              "end": Param("count", None, doc="one past the last index kept (the axis' end)"),
              "step": Param("int", 1, doc="keep every step-th index")}
    batch_anywhere = True  # axes counted as torch holds them (TorchCall.axis)
    torch_modules = ("cnnsize.layers.nn.modules.Slice",)
    torch_functions = ("getitem", "split", "split_with_sizes", "narrow", "chunk")

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            m = call.module
            return {"axis": m.dim - 1, "start": m.start, "end": m.end, "step": m.step}
        shape, f = call.torch_inputs[0] if call.batch else call.inputs[0], call.function
        if f == "getitem":
            return cls._indexing(call, shape)
        dim = call.arg(2, "dim", 0) % len(shape) if f != "narrow" else call.arg(1, "dim") % len(shape)
        if f == "narrow":
            start = call.arg(2, "start") % shape[dim]
            return cls._one(call, dim, start, start + call.arg(3, "length"), 1, shape)
        n = shape[dim]
        if f == "chunk":
            chunks = call.arg(1, "chunks")
            step = -(-n // chunks)
            sizes = [min(step, n - i) for i in range(0, n, step)]
        else:
            arg = call.arg(1, "split_size_or_sections" if f == "split" else "split_sizes")
            sizes = list(arg) if isinstance(arg, (list, tuple)) else [min(arg, n - i) for i in range(0, n, arg)]
        if call.index is None or call.index >= len(sizes):
            raise call.refuse(f"{f} along dim {dim} used whole (cnnsize takes its parts one at a time)")
        start = sum(sizes[:call.index])
        return cls._one(call, dim, start, start + sizes[call.index], 1, shape)

    @classmethod
    def _one(cls, call, dim: int, start: int, end: int, step: int, shape: tuple) -> dict:
        axis = call.axis(dim)
        if axis is None:
            raise call.refuse("slicing the batch axis (cnnsize's axes are per sample)")
        return {"axis": axis, "start": start, "end": None if end >= shape[dim] else end, "step": step}

    @classmethod
    def _indexing(cls, call, shape):
        key = call.arg(1, "key")
        key = list(key) if isinstance(key, tuple) else [key]
        if any(k is Ellipsis for k in key):
            at = key.index(Ellipsis)
            key[at:at + 1] = [slice(None)] * (len(shape) - len(key) + 1)
        if not all(isinstance(k, slice) for k in key):
            return None  # an int index (select's), None or a tensor index
        steps = []
        for dim, k in enumerate(key):
            if k == slice(None):
                continue
            if not all(isinstance(v, int) or v is None for v in (k.start, k.stop, k.step)) or (k.step or 1) < 1:
                raise call.refuse(f"indexing with {k} (cnnsize slices with a constant positive step)")
            start, end, step = k.indices(shape[dim])
            steps.append(("slice", cls._one(call, dim, start, max(end, start), step, shape)))
        return steps or PASS_THROUGH

    def span(self, x) -> tuple:
        if self.axis >= len(x):
            raise SpecError(f"slice axis {self.axis} is out of range for the {len(x)}-axis input {list(x)}",
                            hint=f"count the per-sample axes from 0: 0 to {len(x) - 1}")
        n = x[self.axis]
        end = n if self.end is None else self.end
        if is_int(n) and is_int(end) and not self.start < min(end, n):
            raise SpecError(f"slice {self.start}:{end} keeps nothing of the {n} entries of axis {self.axis}",
                            hint="start must be below end and the axis' size")
        return self.start, (dmin(end, n) if self.end is not None else n)

    def output_shape(self, ins, ctx):
        x = ins[0]
        start, end = self.span(x)
        return (*x[:self.axis], floor_div(end - start - 1, self.step) + 1, *x[self.axis + 1:])

    def block(self, ins):
        start, end = self.span(ins[0])
        return _block(ins[0], self.axis, start, end) if self.step == 1 else None

    def receptive(self, rfs, ins, out):
        rf = rfs[0]
        if rf is None or self.axis == 0:
            return rf
        i = self.axis - 1
        if i >= len(rf.size):
            return None
        start = list(rf.start)
        stride = list(rf.stride)
        start[i] = rf.start[i] + self.start * rf.stride[i]
        stride[i] = rf.stride[i] * self.step
        return RF(rf.size, tuple(stride), tuple(start))

    def build(self, ins, out):
        from .nn.modules import Slice as Module

        self.span(ins[0])
        return Module(self.axis + 1, self.start, self.end, self.step)


@register("expand")
class Expand(LayerKind):
    """Size-1 axes repeated to ``shape`` without copying (``y.expand_as(x)``, ``y.expand(-1, -1, H, W)``: an ECA or
    squeeze-excitation gate made the size of what it scales): a view whose repeated axes take no memory."""
    tools_checked = True
    onnx_none = "not mapped yet: ONNX Expand of a computed tensor is refused (or kept whole with --opaque)"
    makes = VIEW
    batch_anywhere = True  # its shapes are per sample wherever the batch is

    cause = "views"
    params = {"shape": Param("size", doc="the per-sample shape, each axis the input's or, where that is 1, any")}
    max_inputs = 2  # y.expand_as(x) reads x's shape alone
    torch_modules = ("cnnsize.layers.nn.modules.Expand",)
    torch_functions = ("expand", "expand_as", "repeat_interleave")
    examples: ClassVar[dict] = {
        "expand_gate": ([4, 5, 6], [{"conv": {"filters": 4, "kernel": 1}}, {"global_avgpool": {}},
                                    {"reshape": {"shape": [4, 1, 1]}}, "sigmoid", {"expand": {"shape": [4, 5, 6]}},
                                    {"mul": {"from": ["expand1", "conv1"]}}]),
    }

    @classmethod
    def from_torch(cls, call):
        if call.function == "repeat_interleave":
            return cls.repeated(call)
        if len(call.inputs) != (2 if call.function == "expand_as" else 1) or not call.output or \
                call.output[0] != call.inputs[0][0]:
            raise call.refuse(f"{call.function} to {list(call.output)} (it repeats the batch axis)")
        if tuple(call.output) == tuple(call.inputs[0]):
            return PASS_THROUGH  # nothing repeated: the tensor itself
        return {"shape": list(call.output[1:])}

    @staticmethod
    def repeated(call) -> list:
        """``x.repeat_interleave(r, dim)``, each value r times in a row along ``dim`` (a new tensor), as torch's
        arithmetic does it: a size-1 axis inserted after ``dim``, expanded to r, copied in memory order, and merged
        into ``dim`` (a reshape). Over the batch (GCViT's global query, one per image, repeated for each of its
        windows, which the batch holds), the per-sample tensor is copied r times along a new first axis, the batch
        then merged with it."""
        r, dim = call.arg(1, "repeats"), call.arg(2, "dim")
        if isinstance(r, bool) or not isinstance(r, int) or not isinstance(dim, int):
            raise call.refuse("repeat_interleave without a number of repeats and a dim (a tensor of repeats, or of "
                              "the flattened tensor)", hint="give repeat_interleave(r, dim=d) with r a number")
        x, out = tuple(call.inputs[0][1:]), tuple(call.output[1:])
        axis = call.axis(dim, merged=True)
        at = 0 if axis is None else axis + 1
        expanded = [*x[:at], r, *x[at:]]
        steps: list = [("reshape", {"shape": [*x[:at], 1, *x[at:]]}), ("expand", {"shape": expanded}),
                       ("contiguous", {})]
        if tuple(expanded) != out:
            steps.append(("reshape", {"shape": list(out)}))
        return steps

    def output_shape(self, ins, ctx):
        x = ins[0]
        shape = self.shape if isinstance(self.shape, tuple) else (self.shape,)
        if len(shape) < len(x) or any(is_int(a) and is_int(b) and a not in (1, b)
                                      for a, b in zip(x[::-1], shape[::-1])):
            raise SpecError(f"expand cannot make {list(shape)} of {list(x)}",
                            hint="each axis keeps the input's size or repeats a size-1 axis")
        return shape

    def receptive(self, rfs, ins, out):
        return None

    def build(self, ins, out):
        from .nn.modules import Expand as Module

        return Module(tuple(out))

    @classmethod
    def torch_examples(cls):
        import torch.nn as nn

        class Eca(nn.Module):  # timm's EcaModule: a gate (B, C, 1, 1) expanded as the feature map it scales
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 1)
                self.gate = nn.Conv1d(1, 1, 3, padding=1)

            def forward(self, x):
                x = self.conv(x)
                y = self.gate(x.mean((2, 3)).view(x.shape[0], 1, -1)).sigmoid().view(x.shape[0], -1, 1, 1)
                return x * y.expand_as(x)

        class RepeatedQuery(nn.Module):  # GCViT's global query, one per image, repeated for each of its windows
            def __init__(self):
                super().__init__()
                self.q, self.kv = nn.Linear(4, 4), nn.Linear(4, 8)

            def forward(self, x):
                B, C, H, W = x.shape
                windows = x.view(B, C, 2, H // 2, 2, W // 2).permute(0, 2, 4, 3, 5, 1).reshape(-1, H * W // 4, C)
                q = self.q(x.flatten(2).transpose(1, 2)[:, :H * W // 4])
                q = q.repeat_interleave(windows.shape[0] // B, dim=0)
                k, v = self.kv(windows).chunk(2, -1)
                attn = (q @ k.transpose(-2, -1)).softmax(-1) @ v
                return attn.repeat_interleave(2, dim=-1).view(B, 4, -1)

        return {"eca": (Eca, (3, 5, 6)), "repeated_query": (RepeatedQuery, (4, 4, 6))}
