"""Every torchvision model imports exactly: classification, segmentation and video, the whole lists.

For each model, built without weights (nothing downloads), the imported spec must have torch's own
parameters and buffers, FlopCounterMode's MACs and the activations of a real forward (tests/zoo_truth.py),
and must pass ``cnnsize validate`` on CPU. Aux heads (googlenet, inception_v3) are imported: params count
them, and the MACs and activations of the eval forward are those of the spec with ``aux: false``.

Exactness is checked for every model (the slow ones under ``-m slow`` too); running an imported spec for real
on CPU takes seconds to minutes a model, so ``cnnsize validate`` runs by default on a representative few (one of
each family and structure) and on all the others under ``-m slow`` (.ci/zoo runs both).

``CNNSIZE_IMPORT_RESULTS=path`` appends one JSON line per model and test (tools/import_table.py makes the table of
what imports in docs/import.md from them; each model's row there must be what this run measures).
"""

from __future__ import annotations

import json
import os

import pytest

import cnnsize
from tools import import_table

from .conftest import need

try:  # the lists, at collection; without torchvision each test skips (or fails under CNNSIZE_REQUIRE_ZOO)
    import torchvision.models as _tv

    CLASSIFICATION = _tv.list_models(module=_tv)
    SEGMENTATION = _tv.list_models(module=_tv.segmentation)
    VIDEO = _tv.list_models(module=_tv.video)
except ImportError:
    CLASSIFICATION, SEGMENTATION, VIDEO = ["torchvision"], [], []

# the expensive ones (validation runs them for real on CPU): slow as well as zoo
SLOW = ("regnet_y_128gf", "regnet_y_32gf", "regnet_x_32gf", "regnet_y_16gf", "regnet_x_16gf", "vit_h_14",
        "vit_l_16", "vit_l_32", "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_l", "efficientnet_v2_m",
        "convnext_large", "convnext_base", "swin_v2_b", "swin_b", "swin_v2_s", "swin_s", "maxvit_t",
        "wide_resnet101_2", "resnext101_64x4d", "resnext101_32x8d", "densenet161", "densenet201",
        "mvit_v1_b", "mvit_v2_s", "swin3d_t", "swin3d_s", "swin3d_b", "s3d", "fcn_resnet101",
        "deeplabv3_resnet101")
SMALL_VIDEO = ("r3d_18", "mc3_18", "r2plus1d_18")
# validated in the default zoo run: plain, residual, dense, inception, depthwise, squeeze-excitation, grouped,
# shuffle, layer-norm, token, window-attention, fused-attention, segmentation and video networks, and one whose CPU
# training step takes oneDNN's GEMM-fallback scratchpad (deeplabv3_mobilenet_v3_large's ASPP: 93 MB of backend
# workspace, measured apart; about 30 s of CPU and 1.2 GB resident). deeplabv3_resnet50 (39 s, 2.3 GB),
# deeplabv3_resnet101 (70 s, 3.3 GB) and r3d_18 (19 s, 1.6 GB; 257 MB of workspace) validate under -m slow.
VALIDATED_BY_DEFAULT = ("alexnet", "resnet18", "densenet121", "googlenet", "inception_v3", "mobilenet_v3_small",
                        "efficientnet_b0", "regnet_x_400mf", "shufflenet_v2_x0_5", "squeezenet1_1", "convnext_tiny",
                        "vit_b_32", "swin_t", "lraspp_mobilenet_v3_large", "fcn_resnet50", "mc3_18",
                        "deeplabv3_mobilenet_v3_large")


def input_shape(family: str, name: str) -> tuple:
    if family == "video":
        return (3, 16, 112, 112) if name in SMALL_VIDEO else (3, 16, 224, 224)
    return (3, 299, 299) if name == "inception_v3" else (3, 224, 224)


def build(family: str, name: str, device: str):
    tv = need("torchvision").models
    module = {"classification": tv, "segmentation": tv.segmentation, "video": tv.video}[family]
    torch = need("torch")
    kwargs = {"weights": None, **({"weights_backbone": None} if family == "segmentation" else {})}
    try:
        with torch.device(device):
            return tv.get_model(name, **kwargs) if module is tv else getattr(module, name)(**kwargs)
    except NotImplementedError:  # a builder that reads tensor values (regnet's widths): build on CPU, then move
        model = tv.get_model(name, **kwargs) if module is tv else getattr(module, name)(**kwargs)
        return model.to(device)


def validation_input(spec: dict) -> tuple | None:
    """A smaller input for running the spec for real on CPU, where every layer takes it (the figures at the
    standard input are the ones compared with torch above); None keeps the spec's own."""
    small = (3, 8, 64, 64) if len(spec["input"]) == 4 else (3, 96, 96)
    try:
        cnnsize.analyze(spec, input_shape=small)
    except cnnsize.CnnsizeError:
        return None
    return small


def _params(family: str, names: list[str]) -> list:
    return [pytest.param(family, n, id=n, marks=[pytest.mark.zoo] + ([pytest.mark.slow] if n in SLOW else []))
            for n in names]


def _validation_params(family: str, names: list[str]) -> list:
    out = []
    for n in names:
        marks = [pytest.mark.zoo] + ([] if n in VALIDATED_BY_DEFAULT else [pytest.mark.slow])
        out.append(pytest.param(family, n, id=n, marks=marks))
    return out


def _record(result: dict) -> None:
    path = os.environ.get("CNNSIZE_IMPORT_RESULTS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")


def _import(family: str, name: str):
    """The model built on the meta device, its torch figures, and its import (or the error, raised)."""
    from .zoo_truth import torch_figures

    shape = input_shape(family, name)
    model = build(family, name, "meta")  # shapes, FLOPs and aliasing without values: seconds, not minutes
    devices: set = set()
    truth = torch_figures(model, shape, devices)
    torch = need("torch")
    if any(isinstance(m, torch.nn.MultiheadAttention) for m in model.modules()) or devices - {"meta"}:
        # where the meta device's storages could differ from a real forward's, they come from a real CPU forward:
        # at inference on CPU, MultiheadAttention takes a fused fast path that the meta device cannot; a forward
        # making tensors off the model's device (MViT's torch.arange) mixes meta and CPU kernels (FlopCounterMode
        # cannot see inside the fused kernel: MACs stay the meta's)
        model = build(family, name, "cpu")
        truth["activations"] = torch_figures(model, shape)["activations"]
    return shape, truth, model


@pytest.mark.parametrize("family,name", _params("classification", CLASSIFICATION)
                         + _params("segmentation", SEGMENTATION) + _params("video", VIDEO))
def test_torchvision_model_imports_exactly(family, name):
    need("torchvision")
    shape, truth, model = _import(family, name)
    result = {"name": name, "family": family, "input": list(shape), **{f"torch_{k}": v for k, v in truth.items()}}
    try:
        imported = cnnsize.from_torch(model, shape, name=name)
        full = imported.analyze()
        main = cnnsize.analyze(imported.spec, variables={"aux": False}) if "vars" in imported.spec else full
        got = {"params": full.totals["params"], "trainable_params": full.totals["trainable_params"],
               "buffers": full.totals["buffers"], "macs": main.totals["macs"],
               "activations": main.totals["activations"]}
        result.update({f"cnnsize_{k}": v for k, v in got.items()})
        result["exact"] = got == truth
    except cnnsize.CnnsizeError as exc:
        result["error"] = exc.one_line()
        raise
    finally:
        _record(result)
    assert got == truth
    row = import_table.documented(name)
    assert row is not None and row[:6] == import_table.figures(result) and row[6].startswith("exact"), (
        f"docs/import.md's row for {name} is {row}, not what torch measures now: regenerate the table "
        "(tools/import_table.py, then python -m tools.regen --import-results RUN.jsonl)")


@pytest.mark.parametrize("family,name", _validation_params("classification", CLASSIFICATION)
                         + _validation_params("segmentation", SEGMENTATION) + _validation_params("video", VIDEO))
def test_imported_torchvision_model_validates_on_cpu(family, name):
    """The imported spec, built and run for real on CPU, agrees with torch layer by layer (``cnnsize validate``)."""
    need("torchvision")
    shape, _, model = _import(family, name)
    imported = cnnsize.from_torch(model, shape, name=name)
    v = cnnsize.validate(imported.spec, device="cpu", runs=0, input_shape=validation_input(imported.spec))
    _record({"name": name, "family": family, "validates": bool(v.ok)})
    assert v.ok, v.mismatches()


@pytest.mark.zoo
def test_meta_truth_is_the_cpu_truth():
    """The meta device's figures (which the zoo test uses) are those of a real forward on CPU."""
    need("torchvision")
    torch = need("torch")
    from .zoo_truth import torch_figures

    for name in ("resnet18", "googlenet", "mobilenet_v3_small", "densenet121"):
        torch.manual_seed(0)
        real = torch_figures(build("classification", name, "cpu"), (3, 96, 96))
        meta = torch_figures(build("classification", name, "meta"), (3, 96, 96))
        assert real == meta, name


@pytest.mark.zoo
def test_googlenet_aux_heads_import_with_torchvisions_params():
    tv = need("torchvision").models
    model = tv.googlenet(weights=None)  # aux_logits defaults to True: two aux heads that training runs
    imported = cnnsize.from_torch(model, (3, 224, 224))
    assert imported.analyze().totals["params"] == sum(p.numel() for p in model.parameters())
    assert imported.spec["vars"] == {"aux": True}
    plain = cnnsize.analyze(imported.spec, variables={"aux": False})
    assert plain.totals["params"] == sum(p.numel() for n, p in model.named_parameters() if not n.startswith("aux"))
    assert plain.layers[-1].name == "fc"
