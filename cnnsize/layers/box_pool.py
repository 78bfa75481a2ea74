"""``maxpool`` on each box of [P, C, H, W]: a max pooling torch runs on windows (or boxes) merged into its batch,
[B·P, C, H, W] (SAM2's Hiera pools its queries inside each attention window). cnnsize keeps the windows as the first
per-sample axis, as the per-box kinds of cnnsize/layers/boxes.py do."""

from __future__ import annotations

from typing import ClassVar

from .base import LayerKind, register
from .boxes import _PerBox
from .pool import MaxPool


class _OneAxisLess:
    """A traced call seen with the boxes' axis left out of its rank (the pooling's number of spatial axes)."""

    def __init__(self, call):
        self._call = call

    def __getattr__(self, name):
        return getattr(self._call, name)

    @property
    def rank(self) -> int:
        return self._call.rank - 1


@register("box_maxpool")
class BoxMaxPool(_PerBox, MaxPool):
    """``maxpool`` on each box of [P, C, H, W]: the same settings, P times the windows."""
    base = MaxPool
    onnx_none = "not mapped: an exported MaxPool reads its windows merged into the batch at run time"
    count_rules = MaxPool.count_rules
    examples: ClassVar[dict] = {
        "box_maxpool_queries": ([4, 3, 6, 6], [{"box_conv": {"filters": 5, "kernel": 1}},
                                               {"box_maxpool": {"kernel": 2}}]),
    }

    @classmethod
    def from_torch(cls, call):
        if not cls.merged_boxes(call):
            return None
        return MaxPool.from_torch(_OneAxisLess(call))

    def autocast_mode(self, ins, device):
        return MaxPool.autocast_mode(self, self._each(ins), device)  # a box's rank (the boxes are the batch's)

    def saved(self, ins, out, trainable, device):
        return MaxPool.saved(self, ins, out, trainable, device)  # the input, and the indices of every box's windows

    @classmethod
    def torch_examples(cls):
        """torch's MaxPool2d on two boxes of [4, 6, 6], merged into the batch."""
        from torch import nn

        from .nn.boxes import PerBox

        return {"per_box": (lambda: PerBox(nn.MaxPool2d(2)), (2, 4, 6, 6))}


_KIND: type[LayerKind] = BoxMaxPool
_KIND.onnx_ops = ()  # not maxpool's ONNX operators (onnx_none says why)

__all__ = ["BoxMaxPool"]
