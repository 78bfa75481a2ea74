"""detections: a detection head's post-processing (torchvision's postprocess_detections: per-level top-k of the
scores above a threshold, box decoding against the anchors, class-wise NMS, the best ``detections`` kept), as a
layer whose work is stated, not counted: FlopCounterMode counts no multiply-add in any of it (sigmoid, topk,
the decoding's elementwise arithmetic, torchvision::nms), so cnnsize counts none, and says so in the report. How
many boxes survive depends on the values; the spec states the number (``detections``), as torchvision's
``detections_per_img`` caps it. What ``from_torch`` writes for a torchvision detector (cnnsize.importers.detection).
"""

from __future__ import annotations

from math import prod
from typing import ClassVar

from ..core.errors import SpecError
from .base import Counts, LayerKind, Param, register


@register("detections")
class Detections(LayerKind):
    """The boxes a detector keeps, ``[detections, 6]`` (x1, y1, x2, y2, score, label), from its head's class scores
    ``[A, C]`` and box regressions ``[A, 4]`` (or 4 per class) over all A anchors or proposals (and any other head
    output, FCOS' centerness), with torchvision's settings stated: ``candidates`` per level before NMS, the
    ``score`` threshold, NMS' ``iou``.
    No multiply-adds are counted (decoding and NMS do none that torch counts). The executor builds a stand-in of
    its shape (the best scores and their raw boxes, no decoding, no NMS)."""

    tools_checked = True
    onnx_none = "not mapped: an exported detector's NonMaxSuppression and TopK are data-dependent"
    torch_modules = ("cnnsize.layers.nn.modules.Detections",)
    min_inputs = 2
    max_inputs = 3
    learns = False
    passes_gradient = False  # top-k and NMS under no_grad, as in torchvision's inference
    params = {"detections": Param("count", 100, doc="boxes kept after NMS (torchvision's detections_per_img)"),
              "candidates": Param("count", 1000, doc="top-scoring candidates per level before NMS "
                                                     "(torchvision's topk_candidates); stated, not counted"),
              "score": Param("float", 0.05, doc="the score a candidate needs (score_thresh); stated"),
              "iou": Param("float", 0.5, doc="NMS' IoU threshold (nms_thresh); stated"),
              "softmax": Param("bool", False, doc="scores by a softmax over the classes (SSD), else a sigmoid")}
    examples: ClassVar[dict] = {
        "detections_head": ([8, 6, 6], [{"conv": {"filters": 3, "kernel": 1}},
                                        {"flatten": {"start": 1}}, {"transpose": {"axes": [0, 1]}}, "contiguous",
                                        {"conv": {"filters": 4, "kernel": 1, "from": "input"}},
                                        {"flatten": {"start": 1}}, {"transpose": {"axes": [0, 1]}}, "contiguous",
                                        {"detections": {"detections": 5, "from": ["contiguous1", "contiguous2"]}}]),
        "detections_softmax": ([4, 3], [{"linear": {"units": 5}}, {"linear": {"units": 4, "from": "input"}},
                                        {"detections": {"detections": 20, "softmax": True,
                                                        "from": ["linear1", "linear2"]}}]),
    }

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if m is None:
            return None
        return {"detections": m.detections, "candidates": m.candidates, "score": float(m.score),
                "iou": float(m.iou), "softmax": bool(m.softmax)}

    def _kept(self, ins) -> int:
        return min(self.detections, ins[0][0] * ins[0][1])

    def output_shape(self, ins, ctx):
        scores, boxes = ins[0], ins[1]
        if len(scores) != 2 or len(boxes) != 2 or boxes[0] != scores[0] or boxes[1] % 4:
            raise SpecError(f"detections reads class scores [A, C] and boxes [A, 4] (or 4 per class) of the same "
                            f"anchors, got {'×'.join(map(str, scores))} and {'×'.join(map(str, boxes))}",
                            hint="give it the head's outputs, flattened over the levels")
        return (self._kept(ins), 6)

    def counts(self, ins, out):
        return Counts()  # decoding, top-k and NMS: no multiply-add FlopCounterMode counts

    def scratch(self, ins, out, batch):
        """The stand-in's probabilities [A, C], its top scores, picked boxes and labels (6 per kept box)."""
        return (prod(ins[0]) + 6 * out[0]) * batch

    def receptive(self, rfs, ins, out):
        return None

    def backward_macs(self, ins, out, batch, grads, trains):
        return (0, 0)  # built with no grad: post-processing is not trained through

    def summary(self) -> str:
        return (f"top {self.detections} after NMS (iou {self.iou:g}, score > {self.score:g}, {self.candidates} "
                f"per level); decoding and NMS not counted")

    def build(self, ins, out):
        from .nn.modules import Detections as Module

        return Module(self.detections, self.candidates, self.score, self.iou, self.softmax)


__all__ = ["Detections"]
