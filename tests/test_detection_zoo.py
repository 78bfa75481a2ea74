"""torchvision's detectors (cnnsize.importers.detection, through from_torch) against a real eval forward of the model,
built with weights=None and weights_backbone=None (nothing downloaded), at three image sizes: a square one, a
non-square one the transform scales and pads, and one whose scaled side it floors.

Exact: parameters and buffers (the model's); the size the transform resizes and pads to (the backbone's input in the
real forward); MACs (FlopCounterMode's total / 2 of the real forward, post-processing included: it does no counted
product, nor does RoIAlign); the head's outputs (their values, from the same weights); the activations of everything
up to the head (tests/zoo_truth.py's storages of that part of the forward); for a Faster R-CNN, the proposals the
RoIAlign pools (the real forward's count) and the box head's and predictor's tensors. Stated: the boxes kept, pinned
here by score thresholds of 0 so that detections_per_img boxes (and post_nms_top_n proposals) survive, which the
real forward shows."""

from __future__ import annotations

import pytest

from tools.detector_specs import DETECTORS

from .conftest import ROOT, need, representative

pytestmark = pytest.mark.zoo

SIZES = [(480, 480), (480, 640), (333, 517)]  # 333×517: 800/333 scales 517 to 1242.04, floored, padded to 1248
MODELS = ["retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2", "fcos_resnet50_fpn", "ssd300_vgg16",
          "ssdlite320_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_320_fpn",
          "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2",
          "maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2", "keypointrcnn_resnet50_fpn"]
BRANCHES = ("mask", "keypoint")


def _model(name: str):
    tv = need("torchvision")
    import torch

    torch.manual_seed(0)
    model = tv.models.get_model(name, weights=None, weights_backbone=None).eval()
    if hasattr(model, "roi_heads"):
        model.roi_heads.score_thresh = 0.0
        model.rpn.score_thresh = 0.0
        model.rpn.nms_thresh = 1.0  # NMS drops no proposal (random weights leave overlapping ones): all 1000 kept
    else:
        model.score_thresh = 0.0  # every candidate passes: NMS leaves more than detections_per_img of them
    return model


def _real(model, size):
    """The real forward on a random image: its FlopCounterMode total / 2, the backbone's input, the head's outputs
    (and a Faster R-CNN's pooled proposals and box head tensors), the detections."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    seen: dict = {}
    hooks = [model.backbone.register_forward_pre_hook(lambda m, args: seen.setdefault("image", args[0]))]
    if hasattr(model, "roi_heads"):
        heads = model.roi_heads
        hooked = [("head", model.rpn.head), ("pooled", heads.box_roi_pool), ("box", heads.box_predictor)]
        hooked += [(key, getattr(heads, f"{b}_{part}")) for b in BRANCHES if getattr(heads, f"{b}_predictor", None)
                   for key, part in (("branch_pooled", "roi_pool"), ("branch", "predictor"))]
        hooks += [module.register_forward_hook(lambda m, args, out, key=key: seen.setdefault(key, out))
                  for key, module in hooked]
    else:
        hooks.append(model.head.register_forward_hook(lambda m, args, out: seen.setdefault("head", out)))
    x = torch.rand(3, *size)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = model([x])[0]
    finally:
        for hook in hooks:
            hook.remove()
    return x, counter.get_total_flops() // 2, seen, out


def _heads(core, x):
    """The spec's head outputs, from the model's own modules: a dict (single-stage) or (objectness, deltas)."""
    features = core.features(x)
    return core.rpn.head(features) if hasattr(core, "rpn") else core.head(features)


def _head_part(core):
    """The detector's part up to its head's outputs (a Faster R-CNN's flattened over the levels, as its RPN does),
    for the storages' truth."""
    import torch

    from cnnsize.importers.detection import _flat

    class Part(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.core = core

        def forward(self, x):
            out = _heads(self.core, x)
            if isinstance(out, dict):
                return tuple(out.values())
            return torch.cat([_flat(o, 1) for o in out[0]], 1), torch.cat([_flat(d, 4) for d in out[1]], 1)

    return Part()


def _same_heads(mine, real):
    import torch

    pairs = zip(mine.values(), real.values()) if isinstance(real, dict) else zip([*mine[0], *mine[1]],
                                                                                 [*real[0], *real[1]])
    for a, b in pairs:
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def _check_size(name, model, size):
    import torch

    import cnnsize
    from cnnsize.importers.detection import _core

    from .zoo_truth import torch_figures

    a = cnnsize.from_torch(model, (3, *size)).analyze()
    x, macs, seen, out = _real(model, size)
    rows = {r.name: r for r in a.layers}
    assert a.totals["params"] == sum(p.numel() for p in model.parameters()), (name, size)
    assert a.totals["buffers"] == sum(b.numel() for b in model.buffers()), (name, size)
    assert a.totals["macs"] == macs, (name, size)
    first = rows["pad"] if "pad" in rows else rows["interpolate"]  # the padded batch, or the resize alone
    assert tuple(first.output_shape) == tuple(seen["image"].shape[1:]), (name, size)
    # the stated number of boxes is the real forward's, with every candidate above the thresholds
    assert rows["post"].output_shape[0] == len(out["boxes"]), (name, size)
    core = _core(model, (3, *size))
    with torch.no_grad():
        _same_heads(_heads(core, x[None]), seen["head"])
    names = [r.name for r in a.layers]
    before = names.index("proposals" if "proposals" in rows else "post")
    made = len(model.transform.image_mean) + len(model.transform.image_std)
    # the transform makes its mean and std afresh in each forward (torch.as_tensor), storages the truth counts; the
    # spec holds them as const_op constants, not activations
    truth = torch_figures(_head_part(core), (3, *size))["activations"] - made
    assert sum(r.activations for r in a.layers[:before]) == truth, (name, size)
    if "proposals" in rows:  # the proposals pooled, and the box head on each of them
        assert tuple(rows["roi"].output_shape) == tuple(seen["pooled"].shape), (name, size)
        box = names[names.index("roi") + 1:names.index("post")]
        assert tuple(rows[box[-1]].output_shape) == tuple(seen["box"][1].shape), (name, size)
        assert sum(rows[n].activations for n in box) == _made(core, "box", seen["pooled"]), (name, size)
    if "branch_roi" in rows:  # the mask or keypoint branch on each detection
        assert tuple(rows["branch_roi"].output_shape) == tuple(seen["branch_pooled"].shape), (name, size)
        branch = [n for n in names[names.index("branch_roi") + 1:] if rows[n].type != "identity"]  # post's output
        real = seen["branch"]
        assert tuple(rows[branch[-1]].output_shape) == tuple(real.shape), (name, size)
        assert sum(rows[n].activations for n in branch) == _made(core, core.branch, seen["branch_pooled"]), \
            (name, size)


def _made(core, branch, pooled):
    """The elements of the tensors torchvision's RoI head and predictor (``branch``: box, mask or keypoint) make on
    the real pooled boxes, as torch_figures measures them (its input left out)."""
    import torch

    from .zoo_truth import torch_figures

    heads = core.roi_heads

    class Heads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head, self.predictor = getattr(heads, f"{branch}_head"), getattr(heads, f"{branch}_predictor")

        def forward(self, x):
            return self.predictor(self.head(x[0]))  # as RoIHeads calls them, on [B·P, C, S, S]

    return torch_figures(Heads(), tuple(pooled.shape))["activations"] - pooled.numel()


@pytest.mark.parametrize("name", representative(MODELS, {"retinanet_resnet50_fpn", "ssdlite320_mobilenet_v3_large",
                                                         "fasterrcnn_mobilenet_v3_large_320_fpn"}))
def test_detector_exact(name):
    model = _model(name)
    for size in SIZES:
        _check_size(name, model, size)


@pytest.mark.parametrize("name", representative(["fasterrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn_v2",
                                                  "keypointrcnn_resnet50_fpn"], {"maskrcnn_resnet50_fpn_v2"}))
def test_roi_heads_exact_at_one_size(name):
    """The per-box heads (the convolutional box head, the mask and keypoint branches on the detections) at the
    non-square size in the zoo set; test_detector_exact's slow cases take all three sizes and the other models."""
    _check_size(name, _model(name), SIZES[1])


def test_detector_sizes():
    """The resize is the transform's: a 333×517 image runs RetinaNet at 800×1242 padded to 800×1248."""
    from cnnsize.importers.detection import padded, resized

    model = _model("retinanet_resnet50_fpn")
    assert resized(model.transform, 333, 517) == (800, 1242)
    assert padded((800, 1242), 32) == (800, 1248)


@pytest.mark.parametrize("name", representative(DETECTORS, {"ssdlite320_mobilenet_v3_large",
                                                             "fasterrcnn_mobilenet_v3_large_320_fpn"}))
def test_bundled_detector_spec_is_a_fresh_import(name):
    """specs/NAME.yaml is what the importer writes now (tools/detector_specs.py), byte for byte; the importer's
    figures are test_detector_exact's."""
    need("torchvision")
    from tools.detector_specs import text

    assert (ROOT / "specs" / f"{name}.yaml").read_text(encoding="utf-8") == text(name), \
        f"specs/{name}.yaml is stale: run python -m tools.detector_specs"
