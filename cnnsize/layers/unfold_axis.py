"""``unfold_axis``: Tensor.unfold(dim, size, step), the windows of ``size`` taken every ``step`` along one axis as a
new last axis (HaloNet's blocks with their halo): a view of the input, nothing copied and nothing computed."""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from .base import VIEW, Counts, LayerKind, Param, register


@register("unfold_axis")
class UnfoldAxis(LayerKind):
    """Windows of ``size`` every ``step`` along the per-sample ``axis``: that axis becomes the number of windows and a
    new last axis of ``size`` holds each window (torch's Tensor.unfold): a view."""
    tools_checked = True
    onnx_none = "not mapped yet: exporters write Gather or Slice and Concat"
    batch_anywhere = True  # along one per-sample axis (checked in from_torch)
    makes = VIEW

    cause = "views"
    params = {"axis": Param("count", doc="the per-sample axis, from 0"),
              "size": Param("int", doc="the window's length"),
              "step": Param("int", doc="the step between windows")}
    torch_modules = ("cnnsize.layers.nn.modules.UnfoldAxis",)
    torch_functions = ("unfold",)
    examples: ClassVar[dict] = {
        "unfold_axis_blocks": ([3, 8, 8], [{"conv": {"filters": 4, "kernel": 1}},
                                           {"unfold_axis": {"axis": 1, "size": 4, "step": 2}},
                                           {"unfold_axis": {"axis": 2, "size": 4, "step": 2}},
                                           {"contiguous": {}}, {"reshape": {"shape": [4, 9, 16]}}]),
    }

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {"axis": call.module.dim - 1, "size": call.module.size, "step": call.module.step}
        dim, size, step = call.arg(1, "dimension"), call.arg(2, "size"), call.arg(3, "step")
        if not all(isinstance(v, int) for v in (dim, size, step)) or "kernel_size" in call.kwargs:
            return None  # F.unfold: im2col's
        axis = call.axis(dim)
        if axis is None or call.axis(dim, merged=True) != axis:
            raise call.refuse(f"Tensor.unfold along dim {dim}, where the batch is")
        return {"axis": axis, "size": size, "step": step}

    def output_shape(self, ins, ctx):
        x = ins[0]
        if self.axis >= len(x) or x[self.axis] < self.size:
            raise SpecError(f"unfold_axis: a window of {self.size} along axis {self.axis} does not fit the input "
                            f"{'×'.join(map(str, x))}", hint="axis counts the per-sample axes from 0")
        n = (x[self.axis] - self.size) // self.step + 1
        return (*x[:self.axis], n, *x[self.axis + 1:], self.size)

    def counts(self, ins, out):
        return Counts()

    def receptive(self, rfs, ins, out):
        return None

    def saved(self, ins, out, trainable, device):
        return []

    def build(self, ins, out):
        from .nn.modules import UnfoldAxis as Module

        return Module(self.axis + 1, self.size, self.step)

    @classmethod
    def torch_examples(cls):
        import torch.nn as nn
        import torch.nn.functional as F

        class Halo(nn.Module):  # timm's HaloAttention: blocks with a halo, as windows of a padded map
            def __init__(self):
                super().__init__()
                self.kv = nn.Conv2d(3, 4, 1)

            def forward(self, x):
                kv = F.pad(self.kv(x), [1, 1, 1, 1]).unfold(2, 4, 2).unfold(3, 4, 2)
                return kv.reshape(x.shape[0], 4, 16, -1).permute(0, 2, 3, 1)

        return {"halo": (Halo, (3, 6, 6))}


__all__ = ["UnfoldAxis"]
