"""Per-box layers: a two-stage detector's RoI heads (Faster R-CNN v2's convolutional box head, Mask R-CNN's mask
head and predictor, Keypoint R-CNN's keypoint head and predictor) run a convolution, batch norm, transposed
convolution or resize on every pooled box, in torch on [B·P, C, H, W], the boxes merged into the batch. cnnsize
keeps the boxes as the first per-sample axis, [P, C, H, W] (as ``roi_align`` writes them), and these kinds are
``conv``, ``bn``, ``deconv`` and ``upsample`` on each of the P boxes: the same settings, parameters and buffers,
P times the products. What ``from_torch`` writes for a layer of those on a tensor whose batch is merged with the
axis before its channels (cnnsize.importers.detection's heads)."""

from __future__ import annotations

from typing import Any, ClassVar

from ..core.errors import SpecError
from ..core.numeric import prod
from .base import Counts, LayerKind, register
from .conv import Conv, Deconv
from .norm import BatchNorm
from .shape import Upsample


class _PerBox:
    """The base kind's rules on each of the P boxes of a [P, C, ...] input (a mixin before the base kind)."""

    batch_anywhere = True  # torch holds the boxes merged into the batch: from_torch checks it is that
    count_fact_names: ClassVar[dict[str, str]] = {"boxes": "the boxes of the batch (P per sample × N): the batch a "
                                                           "per-box layer's torch module runs on"}
    base: ClassVar[Any]

    @staticmethod
    def merged_boxes(call) -> bool:
        """Whether torch runs the call on boxes merged into its batch (axis 0), in and out: a per-box layer's."""
        boxes = call.inputs[0][1] if call.batch and len(call.inputs[0]) > 2 else None
        return boxes is not None and all(tuple(b) == (0, boxes) for b in call.batch) \
            and tuple(call.out_batch) == (0, boxes)

    @classmethod
    def from_torch(cls, call):
        if not cls.merged_boxes(call):
            return None  # the batch alone in front: the base kind's
        return cls.base.from_torch(call)

    @staticmethod
    def _each(ins):
        if len(ins[0]) < 2:
            raise SpecError(f"a per-box layer reads [boxes, C, ...spatial], got {'×'.join(map(str, ins[0]))}",
                            hint="give it roi_align's output, or a per-box layer's")
        return [ins[0][1:], *ins[1:]]

    def output_shape(self, ins, ctx):
        return (ins[0][0], *self.base.output_shape(self, self._each(ins), ctx))

    def counts(self, ins, out):
        c = self.base.counts(self, self._each(ins), out[1:])
        boxes = ins[0][0]
        return Counts(weights=c.weights, biases=c.biases, buffers=c.buffers, connections=c.connections * boxes,
                      macs=c.macs * boxes, frozen=c.frozen)

    def count_facts(self, ins, out, batch):
        """The base kind's facts with the channels on axis 1 (cnnsize.passes.conventions)."""
        x, n_out = ins[0], prod(out) * batch
        facts = dict(self.base.count_facts(self, self._each(ins), out[1:], batch))
        weights = self.counts(ins, out).weights
        facts.update({"C": out[1], "Cin": x[1], "positions": n_out // out[1], "nd": len(out) - 2,
                      "fanin": weights // out[1] if weights else 0, "rows": prod(x) * batch // x[1],
                      "boxes": x[0] * batch})
        return facts

    def count_variant(self, out):
        return self.base.count_variant(self, out[1:])

    def saved(self, ins, out, trainable, device):
        return self.base.saved(self, self._each(ins), out[1:], trainable, device)

    def receptive(self, rfs, ins, out):
        return None  # each box is pooled from anywhere in the image

    def field_step(self, ins):
        return None

    def explain(self, ins, out, ctx):
        steps = [f"on each of the {ins[0][0]} boxes:", *self.base.explain(self, self._each(ins), out[1:], ctx)]
        boxes, total = ins[0][0], self.counts(ins, out).connections
        if total:
            steps.append(f"connections = MACs: {total // boxes} per box × {boxes} boxes = {total}")
        return steps

    @classmethod
    def torch_examples(cls):
        """The base kind's torch layer on two boxes of [4, 5, 5], merged into the batch as torchvision's heads do."""
        from torch import nn

        from .nn.boxes import PerBox

        layer = {"box_conv": lambda: nn.Conv2d(4, 3, 3, padding=1), "box_bn": lambda: nn.BatchNorm2d(4),
                 "box_deconv": lambda: nn.ConvTranspose2d(4, 3, 2, stride=2),
                 "box_upsample": lambda: nn.Upsample(scale_factor=2.0, mode="bilinear")}[cls.kind]
        return {"per_box": (lambda: PerBox(layer()), (2, 4, 5, 5))}

    def build(self, ins, out):
        from .nn.boxes import PerBox

        return PerBox(self.base.build(self, self._each(ins), out[1:]))


@register("box_conv")
class BoxConv(_PerBox, Conv):
    """``conv`` on each box of [P, C, H, W]: a RoI head's convolution (torchvision's on [B·P, C, H, W])."""
    base = Conv
    tools_checked = True
    onnx_none = "not mapped: an exported RoI head's Conv reads boxes computed at run time"
    count_rules = Conv.count_rules
    examples: ClassVar[dict] = {
        "box_conv_head": ([3, 4, 6, 6], [{"box_conv": {"filters": 5, "kernel": 3, "pad": 1}}, "relu",
                                         {"box_conv": {"filters": 2, "kernel": 1, "bias": False}}]),
    }


@register("box_bn")
class BoxBatchNorm(_PerBox, BatchNorm):
    """``bn`` on each box of [P, C, H, W] (the statistics per channel, the boxes a part of the batch)."""
    base = BatchNorm
    tools_checked = True
    onnx_none = "not mapped: an exported RoI head's BatchNormalization reads boxes computed at run time"
    count_rules = {**BatchNorm.count_rules, "torchinfo": "params*boxes"}  # its parameters once per box
    examples: ClassVar[dict] = {
        "box_bn_head": ([3, 4, 6, 6], [{"box_conv": {"filters": 5, "kernel": 3, "pad": 1, "bias": False}},
                                       "box_bn", "relu"]),
    }


@register("box_deconv")
class BoxDeconv(_PerBox, Deconv):
    """``deconv`` on each box of [P, C, H, W]: Mask and Keypoint R-CNN's predictors' ConvTranspose2d."""
    base = Deconv
    tools_checked = True
    onnx_none = "not mapped: an exported RoI head's ConvTranspose reads boxes computed at run time"
    count_rules = Deconv.count_rules
    examples: ClassVar[dict] = {
        "box_deconv_mask": ([2, 4, 5, 5], [{"box_deconv": {"filters": 3, "kernel": 2, "stride": 2}}, "relu",
                                           {"box_conv": {"filters": 2, "kernel": 1}}]),
    }


@register("box_upsample")
class BoxUpsample(_PerBox, Upsample):
    """``upsample`` on each box of [P, C, H, W]: Keypoint R-CNN's predictor's bilinear ×2 of its heatmaps."""
    base = Upsample
    tools_checked = True
    onnx_none = "not mapped: an exported RoI head's Resize reads boxes computed at run time"
    # ptflops counts the function's output, and its module hook the first of its outputs (one box, not a sample)
    count_rules = {**Upsample.count_rules, "ptflops": "out + out/boxes"}
    examples: ClassVar[dict] = {
        "box_upsample_heatmaps": ([2, 4, 5, 5], [{"box_deconv": {"filters": 3, "kernel": 4, "stride": 2, "pad": 1}},
                                                 {"box_upsample": {"scale": 2, "mode": "bilinear"}}]),
    }

    @classmethod
    def from_torch(cls, call):
        if not cls.merged_boxes(call):
            return None
        m = call.module
        scale, mode, align = (m.scale_factor, m.mode, m.align_corners) if m is not None else \
            (call.arg(2, "scale_factor"), call.arg(3, "mode", "nearest"), call.arg(4, "align_corners"))
        spatial_in, spatial_out = call.inputs[0][3:], call.output[3:]
        if mode not in cls.params["mode"].choices or any(o % i for i, o in zip(spatial_in, spatial_out)):
            return None
        settings: dict = {"scale": tuple(o // i for i, o in zip(spatial_in, spatial_out)), "mode": mode}
        settings["scale"] = settings["scale"][0] if len(set(settings["scale"])) == 1 else list(settings["scale"])
        if mode != "nearest":
            settings["align_corners"] = bool(align)
        return settings


_KINDS: list[type[LayerKind]] = [BoxConv, BoxBatchNorm, BoxDeconv, BoxUpsample]
for _kind in _KINDS:
    _kind.onnx_ops = ()  # not the base kind's ONNX operators (onnx_none says why)

__all__ = ["BoxBatchNorm", "BoxConv", "BoxDeconv", "BoxUpsample"]
