"""torchvision's single-stage detectors (cnnsize.importers.detection, through from_torch) against a real eval forward
of the model, built with weights=None and weights_backbone=None (nothing downloaded), at three image sizes: a
square one, a non-square one the transform scales and pads, and one whose scaled side it floors.

Exact: parameters and buffers (the model's); the size the transform resizes to and pads to (the backbone's input in
the real forward); MACs (FlopCounterMode's total / 2 of the real forward, post-processing included: it does no
counted product); the head's outputs (their shapes, and their values from the same weights); the activations of
everything up to the head (tests/zoo_truth.py's storages of that part of the forward). Stated: the boxes kept,
pinned here by score_thresh 0 so that detections_per_img boxes survive, which the real forward's output shows."""

from __future__ import annotations

import pytest

from .conftest import need

pytestmark = pytest.mark.zoo

SIZES = [(480, 480), (480, 640), (333, 517)]  # 333×517: 800/333 scales 517 to 1242.04, floored, padded to 1248
MODELS = ["retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2", "fcos_resnet50_fpn", "ssd300_vgg16",
          "ssdlite320_mobilenet_v3_large"]


def _model(name: str):
    tv = need("torchvision")
    import torch

    torch.manual_seed(0)
    model = tv.models.get_model(name, weights=None, weights_backbone=None).eval()
    model.score_thresh = 0.0  # every candidate passes: NMS leaves more than detections_per_img of them
    return model


def _real(model, size):
    """The real forward on a random image: its FlopCounterMode total / 2, the backbone's input, the head's outputs,
    the detections."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    seen: dict = {}
    hooks = [model.backbone.register_forward_pre_hook(lambda m, args: seen.setdefault("image", args[0])),
             model.head.register_forward_hook(lambda m, args, out: seen.setdefault("head", out))]
    x = torch.rand(3, *size)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = model([x])[0]
    finally:
        for h in hooks:
            h.remove()
    return x, counter.get_total_flops() // 2, seen, out


def _head_part(core):
    """The detector's part up to the head (its outputs as the head returns them), for the storages' truth."""
    import torch

    class Part(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.core = core

        def forward(self, x):
            return tuple(self.core.head(self.core.features(x)).values())

    return Part()


@pytest.mark.parametrize("name", MODELS)
def test_detector_exact(name):
    import torch

    import cnnsize
    from cnnsize.importers.detection import _core

    from .zoo_truth import torch_figures

    model = _model(name)
    for size in SIZES:
        imported = cnnsize.from_torch(model, (3, *size))
        a = imported.analyze()
        x, macs, seen, out = _real(model, size)
        rows = {r.name: r for r in a.layers}
        post = rows["post"]
        assert a.totals["params"] == sum(p.numel() for p in model.parameters()), (name, size)
        assert a.totals["buffers"] == sum(b.numel() for b in model.buffers()), (name, size)
        assert a.totals["macs"] == macs, (name, size)
        image = seen["image"]
        first = rows["pad"] if "pad" in rows else rows["interpolate"]  # the padded batch, or the resize alone
        assert tuple(first.output_shape) == tuple(image.shape[1:]), (name, size)
        # the stated number of boxes is the real forward's, with every candidate above the threshold
        assert tuple(post.output_shape)[0] == len(out["boxes"]) == model.detections_per_img, (name, size)
        # the spec's parts are the model's: the same head outputs from the same weights
        core = _core(model, (3, *size))
        with torch.no_grad():
            mine = core.head(core.features(x[None]))
        for key, value in seen["head"].items():
            torch.testing.assert_close(mine[key], value, rtol=1e-4, atol=1e-4)
        truth = torch_figures(_head_part(core), (3, *size))
        # the transform makes its mean and std afresh in each forward (torch.as_tensor), storages the truth counts;
        # the spec holds them as const_op constants, not activations
        made = len(model.transform.image_mean) + len(model.transform.image_std)
        assert a.totals["activations"] - post.activations == truth["activations"] - made, (name, size)


def test_detector_sizes():
    """The resize is the transform's: a 333×517 image runs RetinaNet at 800×1242 padded to 800×1248."""
    from cnnsize.importers.detection import padded, resized

    model = _model("retinanet_resnet50_fpn")
    assert resized(model.transform, 333, 517) == (800, 1242)
    assert padded((800, 1242), 32) == (800, 1248)
