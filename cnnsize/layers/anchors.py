"""anchors: the anchor points (or their strides) of a detection head's feature maps, as Ultralytics' YOLO heads make
them at every new input size (ultralytics.utils.tal.make_anchors): a tensor of constants that depends on the maps'
sizes alone, which no other kind can make. What ``cnnsize import yolov8n.yaml`` writes for the Detect head's decoding
(cnnsize.importers.yolo)."""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from ..core.numeric import Dim
from .base import Counts, LayerKind, Param, Shape, register

OUTPUTS = ("points", "strides")


@register("anchors")
class Anchors(LayerKind):
    """The centres of every cell of the input feature maps, in each map's own grid units plus ``offset`` (``points``:
    ``[2, A]``, x then y, A the cells of all maps in order), or each cell's map ``stride`` (``strides``: ``[1, A]``):
    the ``anchors`` and ``strides`` a YOLO head's decoding reads. The maps are read for their sizes only."""

    tools_checked = True
    onnx_none = "not mapped: an ONNX export holds the anchors as a constant"
    min_inputs = 1
    max_inputs = 16
    learns = False
    constant = True  # a grid made from the maps' sizes: it never requires grad
    params = {"strides": Param("size", doc="each input map's stride (input pixels per cell), in order"),
              "output": Param("choice", "points", doc="points: the cells' centres [2, A]; strides: their strides "
                                                      "[1, A]", choices=OUTPUTS),
              "offset": Param("float", 0.5, doc="added to each cell's index (0.5: its centre)")}
    examples: ClassVar[dict] = {  # as the head reads them: a distance less the points, a box times the strides
        "anchor_points": ([2, 8, 6], [{"conv": {"filters": 2, "kernel": 2, "stride": 2}},
                                      {"anchors": {"strides": [1, 2], "from": ["input", "conv1"]}},
                                      {"flatten": {"start": 1, "from": "input"}},
                                      {"flatten": {"start": 1, "from": "conv1"}},
                                      {"cat": {"axis": 1, "from": ["flatten1", "flatten2"]}},
                                      {"sub": {"from": ["anchors1", "cat1"]}}]),
        "anchor_strides": ([4, 8, 6], [{"conv": {"filters": 1, "kernel": 1}}, {"flatten": {"start": 1}},
                                       {"anchors": {"strides": [8], "output": "strides", "from": ["input"]}},
                                       {"mul": {"from": ["flatten1", "anchors1"]}}]),
    }

    def _strides(self) -> tuple:
        return self.strides if isinstance(self.strides, tuple) else (self.strides,)

    def output_shape(self, ins, ctx):
        if len(self._strides()) != len(ins):
            raise SpecError(f"anchors has {len(self._strides())} strides for {len(ins)} input maps",
                            hint="give one stride per map it reads")
        for shape in ins:
            if len(shape) != 3:
                raise SpecError(f"anchors reads feature maps (C, H, W), got {'×'.join(map(str, shape))}")
        cells = sum(h * w for _, h, w in ins)
        return (2 if self.output == "points" else 1, cells)

    def counts(self, ins, out):
        return Counts()  # constants: no multiply-add (FlopCounterMode counts none of arange, add, stack)

    def receptive(self, rfs, ins, out):
        return None

    def scratch(self, ins: list[Shape], out: Shape, batch: Dim) -> Dim:
        """make_anchors' own tensors per map, once per call: for points the float aranges of the width and height
        and those plus the offset (w + h each twice), the stacked grid (2·h·w); for strides the per-map column
        (h·w) that torch.cat joins."""
        if self.output == "points":
            return sum(2 * (h + w) + 2 * h * w for _, h, w in ins)
        return sum(h * w for _, h, w in ins)

    def build(self, ins, out):
        from .nn.modules import Anchors as Module

        return Module(tuple(float(s) for s in self._strides()), self.output == "points", float(self.offset))


__all__ = ["Anchors"]
