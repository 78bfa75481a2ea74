"""roi_align: torchvision's MultiScaleRoIAlign, the two-stage detectors' pooling of each proposal box from the FPN
level its size picks, as a layer run on a stated number of boxes (the ``proposals`` the RPN keeps, its input's
first axis): what ``from_torch`` writes for a Faster R-CNN (cnnsize.importers.detection). Its bilinear samples are
no multiply-add FlopCounterMode counts (torchvision::roi_align has no FLOP formula): none are counted."""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from .base import Counts, LayerKind, Param, register


@register("roi_align")
class RoIAlign(LayerKind):
    """``[P, C, output, output]``: each of the P boxes (the first input, ``[P, 4 or more]``, x1 y1 x2 y2 first) pooled
    from one of the feature maps that follow (``[C, H, W]`` each, all of C channels) by RoIAlign with ``sampling``
    points per bin; the map is the box's level (torchvision's LevelMapper: 224-pixel boxes on level 4). No
    multiply-adds counted. The executor builds a stand-in of its shape (each map's first pixel, spread)."""

    tools_checked = True
    onnx_none = "not mapped: torchvision's RoIAlign exports as RoiAlign on boxes computed at run time"
    torch_modules = ("cnnsize.layers.nn.modules.RoIAlign",)
    min_inputs = 2
    max_inputs = 9
    learns = False
    params = {"output": Param("int", 7, doc="bins per side of each pooled box"),
              "sampling": Param("int", 2, doc="sampling points per bin and axis (sampling_ratio); stated")}
    examples: ClassVar[dict] = {
        "roi_align_levels": ([4, 16, 16], [{"conv": {"filters": 4, "kernel": 3, "stride": 2, "pad": 1}},
                                           {"flatten": {"start": 1, "from": "input"}},
                                           {"transpose": {"axes": [0, 1]}}, "contiguous",
                                           {"roi_align": {"output": 3, "from": ["contiguous1", "input", "conv1"]}}]),
    }

    @classmethod
    def from_torch(cls, call):
        m = call.module
        return None if m is None else {"output": m.output, "sampling": m.sampling}

    def output_shape(self, ins, ctx):
        boxes, maps = ins[0], ins[1:]
        if len(boxes) != 2 or boxes[1] < 4:
            raise SpecError(f"roi_align reads boxes [P, 4 or more] first, got {'×'.join(map(str, boxes))}",
                            hint="give it the proposals, then the feature maps")
        if any(len(m) != 3 or m[0] != maps[0][0] for m in maps):
            raise SpecError("roi_align pools from feature maps [C, H, W] of the same channels, got "
                            + ", ".join('×'.join(map(str, m)) for m in maps))
        return (boxes[0], maps[0][0], self.output, self.output)

    def counts(self, ins, out):
        return Counts()  # bilinear sampling: no multiply-add FlopCounterMode counts

    def scratch(self, ins, out, batch):
        """The stand-in's first pixel of each map, joined."""
        return ins[1][0] * (len(ins) - 1) * batch

    def receptive(self, rfs, ins, out):
        return None

    def backward_macs(self, ins, out, batch, grads, trains):
        return (0, 0)

    def summary(self) -> str:
        return f"{self.output}×{self.output} per box, sampling {self.sampling}; not counted"

    def build(self, ins, out):
        from .nn.modules import RoIAlign as Module

        return Module(self.output, self.sampling)


__all__ = ["RoIAlign"]
