"""``constpad``: constant padding of any per-sample axes, channels and tokens included (F.pad(x, (0, 0, l, r, t,
b)) on a channels-last (H, W, C) window, F.pad of a token axis). The paddings of the spatial axes alone are
``zeropad``, ``reflectpad`` and ``replicatepad`` (cnnsize/layers/shape.py)."""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from .base import Counts, LayerKind, Param, plain, register


def _per_axis(value, n: int, what: str) -> tuple:
    values = value if isinstance(value, tuple) else (value,) * n
    if len(values) != n:
        raise SpecError(f"constpad's {what} has {len(values)} entries but the input has {n} axes",
                        hint=f"give one number, or {n}: one per axis of the input, the first axis first")
    return values


@register("constpad")
class Pad(LayerKind):
    """Constant padding of every per-sample axis: ``pad`` values before (and after, unless ``pad_end`` is given),
    one per axis, the first axis first (torch's F.pad lists the last axis first). A new tensor, no arithmetic."""
    tools_checked = True
    onnx_none = "not mapped: ONNX Pad of the channel axis is refused (the spatial axes' Pad is zeropad)"
    batch_anywhere = True  # checked in from_torch: no padded axis is the batch's

    cause = "views"
    params = {"pad": Param("ints_or_zero", doc="values before (and after, unless pad_end is given), per axis"),
              "pad_end": Param("ints_or_zero", None, doc="values after, per axis"),
              "value": Param("fill", 0.0, doc="the constant padded with")}
    torch_modules = ("cnnsize.layers.nn.modules.Pad",)
    torch_functions = ("pad",)
    examples: ClassVar[dict] = {
        "pad_channels_last": ([4, 5, 6], [{"conv": {"filters": 6, "kernel": 1}}, {"constpad": {"pad": [1, 0, 2]}}]),
        "pad_tokens": ([5, 6], [{"linear": {"units": 4}}, {"constpad": {"pad": [0, 1], "pad_end": [3, 0]}},
                                {"linear": {"units": 2}}]),
    }

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            m = call.module
            return {"pad": plain(m.pad), "pad_end": plain(m.pad_end), "value": m.value}
        flat, mode, value = list(call.arg(1, "pad")), call.arg(2, "mode", "constant"), call.arg(3, "value")
        n = len(flat) // 2
        if mode != "constant" or (n <= call.rank - 2 and not call.batch):
            return None  # the spatial axes' padding (zeropad, reflectpad, replicatepad) or a refused mode
        if any(v < 0 for v in flat):
            raise call.refuse(f"padding by negative amounts {flat} of a tensor whose batch moved, or of the channels")
        axes = [call.axis(-k) for k in range(1, n + 1)]
        if any(a is None or call.axis(-k, merged=True) != a for k, a in zip(range(1, n + 1), axes)):
            raise call.refuse(f"F.pad of {n} axes, the batch's among them")
        rank = len(call.inputs[0]) - 1
        lo, hi = [0] * rank, [0] * rank
        for k, axis in enumerate(axes):  # torch lists the last axis first
            lo[axis], hi[axis] = flat[2 * k], flat[2 * k + 1]
        return {"pad": plain(lo), "pad_end": None if lo == hi else plain(hi), "value": float(value or 0.0)}

    def pads(self, x) -> list[tuple]:
        lo = _per_axis(self.pad, len(x), "pad")
        hi = lo if self.pad_end is None else _per_axis(self.pad_end, len(x), "pad_end")
        return list(zip(lo, hi))

    def output_shape(self, ins, ctx):
        return tuple(n + a + b for n, (a, b) in zip(ins[0], self.pads(ins[0])))

    def counts(self, ins, out):
        return Counts()

    def receptive(self, rfs, ins, out):
        return None  # a padded channel axis is no longer the image's

    def saved(self, ins, out, trainable, device):
        return []  # constant padding's gradient is a slice of the output's

    def build(self, ins, out):
        from .nn.modules import Pad as Module

        pads = self.pads(ins[0])
        return Module(tuple(a for a, _ in pads), tuple(b for _, b in pads), self.value)

    @classmethod
    def torch_examples(cls):
        import torch.nn as nn
        import torch.nn.functional as F

        class WindowPad(nn.Module):  # timm's DaViT, Swin: pad a channels-last map to whole windows
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(6, 6)

            def forward(self, x):
                return self.fc(F.pad(self.fc(x), (0, 0, 0, 2, 1, 1)))

        class TokenPad(nn.Module):  # a token axis padded, then a channel padded with a constant
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(6, 4)

            def forward(self, x):
                return F.pad(F.pad(self.fc(x), (0, 0, 2, 0)), (1, 1), value=-1.0)

        return {"window_pad": (WindowPad, (5, 3, 6)), "token_pad": (TokenPad, (5, 6))}


__all__ = ["Pad"]
