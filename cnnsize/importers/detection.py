"""torchvision's detectors (RetinaNet, FCOS, SSD, SSDlite, Faster, Mask and Keypoint R-CNN) as specs:
``detector_core``, which ``from_torch`` traces for them.

A detector's forward cannot be traced whole: its transform resizes each image by a scale computed from the image's
size, and its post-processing keeps a number of boxes that depends on the values. Both are taken apart here. The
transform's resize is computed concretely from the input size given, as GeneralizedRCNNTransform computes it
(``min_size``/``max_size``: the scale min(min_size / short side, max_size / long side), each side floored; or
SSD's ``fixed_size``), then padded to ``size_divisible``; the model is then traced as its own parts run: the
normalization, the resize (bilinear) and the padding, the backbone with its FPN, and the head on every level. The
post-processing is one ``detections`` layer with the model's settings (``detections_per_img``,
``topk_candidates``, ``score_thresh``, ``nms_thresh``): the number of boxes is stated, and the decoding and NMS,
in which torch counts no multiply-add, are counted as none and named so. The anchors follow from the maps' sizes
(constants). The model itself is never changed nor run.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import SpecError
from ..layers.nn.modules import Detections, RoIAlign

SINGLE_STAGE = ("RetinaNet", "FCOS", "SSD")  # torchvision.models.detection's classes this takes apart
TWO_STAGE = ("FasterRCNN", "MaskRCNN", "KeypointRCNN")


def is_detector(model: Any) -> bool:
    """Whether ``model`` is one of torchvision's detectors (its transform is a GeneralizedRCNNTransform)."""
    return type(getattr(model, "transform", None)).__name__ == "GeneralizedRCNNTransform" \
        and hasattr(model, "backbone") and not isinstance(model, SingleStage)  # not its own parts, traced


def resized(transform: Any, height: int, width: int) -> tuple[int, int]:
    """The size GeneralizedRCNNTransform resizes an image of ``height`` × ``width`` to in eval mode."""
    if transform.fixed_size is not None:
        return int(transform.fixed_size[1]), int(transform.fixed_size[0])
    scale = min(float(transform.min_size[-1]) / min(height, width), float(transform.max_size) / max(height, width))
    return math.floor(float(height) * scale), math.floor(float(width) * scale)


def padded(size: tuple[int, int], divisible: int) -> tuple[int, int]:
    """The batch's size: each side up to a multiple of ``divisible`` (GeneralizedRCNNTransform.batch_images)."""
    return tuple(int(math.ceil(float(s) / divisible) * divisible) for s in size)  # type: ignore[return-value]


class SingleStage(nn.Module):
    """A single-stage detector's eval forward without its data-dependent parts: normalize, resize to ``size``, pad
    to ``batch``, backbone (+FPN), head on every level, then the stated post-processing. Holds the model's own
    transform, backbone and head, under the model's names (so its parameters keep their names)."""

    transform: Any
    backbone: Any
    head: Any

    def __init__(self, model: Any, size: tuple[int, int], batch: tuple[int, int]):
        super().__init__()
        self.transform, self.backbone, self.head = model.transform, model.backbone, model.head
        self.size, self.batch = size, batch
        self.outputs = ("cls_logits", "bbox_regression", "bbox_ctrness")
        self.post = Detections(model.detections_per_img, model.topk_candidates, model.score_thresh,
                               model.nms_thresh, softmax=type(model).__name__ == "SSD")

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The transform and the backbone: what the head reads."""
        return list(self.backbone(self.image(x)).values())

    def image(self, x: torch.Tensor) -> torch.Tensor:
        """The transform: normalized, resized, padded."""
        # made from numbers alone (the input's dtype and device are not read: a trace that knows shapes would see
        # them as values the constants depend on); float32, as the input, and where tensors are made meanwhile
        mean = torch.as_tensor(self.transform.image_mean, dtype=torch.float32)
        std = torch.as_tensor(self.transform.image_std, dtype=torch.float32)
        x = (x - mean[:, None, None]) / std[:, None, None]
        x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        if self.batch != self.size:
            x = F.pad(x, (0, self.batch[1] - self.size[1], 0, self.batch[0] - self.size[0]))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.features(x))
        return self.post(*(out[key] for key in self.outputs if key in out))


class TwoStage(SingleStage):
    """A two-stage detector's eval forward without its data-dependent parts: the transform and backbone as
    SingleStage's, the RPN head on every level, the RPN's ``proposals`` (post_nms_top_n) as a ``detections`` layer
    (its pre_nms_top_n per level as candidates), MultiScaleRoIAlign on them (``roi_align``), the box head and
    predictor run once per proposal, then the detections; Mask R-CNN's and Keypoint R-CNN's branch pools each
    detection (``detections_per_img``) again and runs its head and predictor once per detection. The heads are the
    model's own modules run as torchvision runs them, on [B·P, C, H, W] (the boxes merged into the batch, which the
    per-box kinds keep as an axis of their own: cnnsize/layers/boxes.py)."""

    rpn: Any
    roi_heads: Any

    def __init__(self, model: Any, size: tuple[int, int], batch: tuple[int, int]):
        nn.Module.__init__(self)
        self.transform, self.backbone, self.rpn, self.roi_heads = \
            model.transform, model.backbone, model.rpn, model.roi_heads
        self.size, self.batch = size, batch
        rpn, heads = model.rpn, model.roi_heads
        self.proposals = Detections(rpn._post_nms_top_n["testing"], rpn._pre_nms_top_n["testing"],
                                    rpn.score_thresh, rpn.nms_thresh)
        self.pooled, self.roi = _pool(heads.box_roi_pool)
        self.post = Detections(heads.detections_per_img, rpn._post_nms_top_n["testing"], heads.score_thresh,
                               heads.nms_thresh, softmax=True)  # every proposal a candidate
        self.branch = next((b for b in BRANCHES if getattr(heads, f"{b}_predictor", None) is not None), None)
        if self.branch is not None:
            self.branch_pooled, self.branch_roi = _pool(getattr(heads, f"{self.branch}_roi_pool"))

    def forward(self, x: torch.Tensor) -> Any:
        features = self.backbone(self.image(x))
        objectness, deltas = self.rpn.head(list(features.values()))
        scores = torch.cat([_flat(o, 1) for o in objectness], 1)
        boxes = torch.cat([_flat(d, 4) for d in deltas], 1)
        proposals = self.proposals(scores, boxes)
        pooled = self.roi(proposals, *(f for name, f in features.items() if name in self.pooled))  # as it filters
        heads = self.roi_heads
        y = _run(heads.box_head, pooled.flatten(0, 1))  # torchvision's [B·P, C, 7, 7]
        y = y.flatten(1)  # FastRCNNPredictor's flatten
        n = x.shape[0]
        detections = self.post(heads.box_predictor.cls_score(y).unflatten(0, (n, -1)),
                               heads.box_predictor.bbox_pred(y).unflatten(0, (n, -1)))
        if self.branch is None:
            return detections
        maps = (f for name, f in features.items() if name in self.branch_pooled)
        z = _run(getattr(heads, f"{self.branch}_head"), self.branch_roi(detections, *maps).flatten(0, 1))
        z = getattr(heads, f"{self.branch}_predictor")(z)
        return detections, z.unflatten(0, (n, -1))


BRANCHES = ("mask", "keypoint")  # a RoIHeads' branches run on the detections, each with a head and a predictor


def _run(module: Any, x: torch.Tensor) -> torch.Tensor:
    """``module``'s forward on ``x``, a Sequential's children one by one, its nn.Flatten as the tensor's flatten (a
    view, as nn.Flatten's is; read as a reshape of each box where the boxes are merged into the batch)."""
    if not isinstance(module, nn.Sequential):
        return module(x)
    for child in module:
        x = x.flatten(child.start_dim, child.end_dim) if isinstance(child, nn.Flatten) else _run(child, x)
    return x


def _pool(pool: Any) -> tuple[tuple[str, ...], RoIAlign]:
    """A MultiScaleRoIAlign's maps (by name) and the roi_align that stands for it."""
    return tuple(pool.featmap_names), RoIAlign(int(pool.output_size[0]), int(pool.sampling_ratio))


def _flat(layer: torch.Tensor, c: int) -> torch.Tensor:
    """torchvision's permute_and_flatten: [N, A·c, H, W] to [N, H·W·A, c] (its batch kept apart)."""
    n, _, h, w = layer.shape
    return layer.view(n, -1, c, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, c)


def largest_stride(model: Any) -> int:
    """The stride of a detector's coarsest level: 128 with FPN's P6 and P7, 64 with its max-pooled P6, else 32
    (SSD's fixed size is never too small)."""
    extra = type(getattr(getattr(model.backbone, "fpn", None), "extra_blocks", None)).__name__
    return {"LastLevelP6P7": 128, "LastLevelMaxPool": 64}.get(extra, 32)


def _check(model: Any, input_shape: Any) -> tuple[int, int, int]:
    if type(model).__name__ not in SINGLE_STAGE + TWO_STAGE:
        raise SpecError(f"torchvision's {type(model).__name__} is not imported: the detectors "
                        f"{', '.join(SINGLE_STAGE + TWO_STAGE)} are",
                        hint="import its backbone (model.backbone) and heads apart with from_torch")
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape) or shape[0] != 3:
        raise SpecError(f"a torchvision detector takes one RGB image (3, H, W), got {input_shape!r}",
                        hint="give --input 3xHxW, e.g. 3x480x640")
    return shape  # type: ignore[return-value]


def _core(model: Any, shape: tuple[int, int, int]) -> SingleStage:
    size = resized(model.transform, shape[1], shape[2])
    batch = padded(size, model.transform.size_divisible)
    stride = largest_stride(model)
    if min(size) < stride:
        raise SpecError(f"{type(model).__name__} resizes a {shape[1]}×{shape[2]} image to {size[0]}×{size[1]}, "
                        f"smaller than its largest stride ({stride}): its last level would hold no whole cell",
                        hint="give an image whose sides are closer in length (the transform scales the short side "
                             f"to {model.transform.min_size[-1]}, the long one to {model.transform.max_size} at most)")
    return (SingleStage if type(model).__name__ in SINGLE_STAGE else TwoStage)(model, size, batch)


def detector_core(model: Any, input_shape: Any) -> SingleStage:
    """What from_torch traces for a torchvision detector (SINGLE_STAGE, TWO_STAGE) and an image of
    ``input_shape`` (3, H, W): its eval forward with the resize computed and the post-processing stated (see the
    module's docstring). Holds the model's own modules, in the model's mode; changes nothing of them."""
    shape = _check(model, input_shape)
    core = _core(model, shape)
    core.training = model.training  # its own flag only: the model's modules are left as they are
    return core
