"""Models named by their library (``cnnsize report torchvision:resnet18``, ``timm:resnet18``): built with no weights
at the input size the library gives them, the figures those of ``from_torch`` on the model built by hand."""

from __future__ import annotations

import importlib.util
import json

import pytest

import cnnsize

from .conftest import need, run_cli


def _report(target: str, *extra: str) -> dict:
    done = run_cli("report", target, "--format", "json", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.zoo
@pytest.mark.parametrize("name, shape", [("resnet18", (3, 224, 224)), ("inception_v3", (3, 299, 299)),
                                         ("r3d_18", (3, 16, 112, 112))])
def test_torchvision_names(name, shape):
    """In eval mode (no auxiliary heads), at the crop of the default weights' transforms (Inception v3's 299); video
    clips of 16 frames."""
    models = need("torchvision.models")
    found = _report(f"torchvision:{name}")
    assert tuple(found["input_shape"]) == shape
    expected = cnnsize.from_torch(models.get_model(name, weights=None).eval(), shape).analyze().to_dict()
    assert found["totals"] == expected["totals"]


@pytest.mark.zoo
def test_an_input_given_and_timm():
    timm = need("timm")
    found = _report("timm:resnet18", "--input", "3x96x128")
    expected = cnnsize.from_torch(timm.create_model("resnet18", pretrained=False), (3, 96, 128)).analyze()
    assert found["totals"]["macs"] == expected.totals.macs and found["totals"]["params"] == expected.totals.params


@pytest.mark.zoo
def test_unknown_names_suggest_the_closest():
    need("torchvision.models")
    done = run_cli("report", "torchvision:resnet51")
    assert done.returncode == 2 and "did you mean 'resnet50'" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_missing_library_is_one_line():
    """Without torchvision the name says what to install; with it, the model is sized."""
    done = run_cli("report", "torchvision:alexnet", "--input", "3x64x64")
    if importlib.util.find_spec("torchvision") is None:
        assert done.returncode == 2 and "need torchvision" in done.stderr and "pip install" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    else:
        assert done.returncode == 0, done.stderr
