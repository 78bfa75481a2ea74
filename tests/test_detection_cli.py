"""torchvision's detectors from the command line: ``report torchvision:retinanet_resnet50_fpn`` sizes what the model
runs at the input given, a too small image and a factory that would download weights are one line each, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import cnnsize

from .conftest import ROOT, need, run_cli

pytestmark = pytest.mark.zoo


def test_report_a_named_detector_at_the_input_given():
    """The figures are from_torch's of the model built by hand (from_torch's are checked against torch in
    tests/test_detection_zoo.py), at the input given."""
    models = need("torchvision.models")
    done = run_cli("report", "torchvision:fcos_resnet50_fpn", "--input", "3x480x640", "--format", "json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    model = models.get_model("fcos_resnet50_fpn", weights=None, weights_backbone=None)
    expected = cnnsize.from_torch(model, (3, 480, 640)).analyze()
    assert found["totals"]["macs"] == expected.totals.macs
    assert found["totals"]["params"] == sum(p.numel() for p in model.parameters())


def test_an_image_too_small_for_the_largest_stride_is_one_line():
    """3×40×2000: the transform scales it to 26×1333, less than RetinaNet's P7 stride of 128."""
    need("torchvision")
    done = run_cli("report", "torchvision:retinanet_resnet50_fpn", "--input", "3x40x2000")
    assert done.returncode == 2
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "26×1333" in done.stderr and "128" in done.stderr and "Traceback" not in done.stderr


def test_a_factory_that_downloads_weights_is_refused(tmp_path):
    """torchvision's weights fetched through torch.hub: refused before anything is fetched (an empty TORCH_HOME,
    so nothing cached answers instead), with the fix, and no output file."""
    need("torchvision")
    (tmp_path / "pretrained.py").write_text(
        "import torchvision\n\n\ndef make():\n"
        "    return torchvision.models.detection.retinanet_resnet50_fpn(weights='DEFAULT')\n")
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "hub"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    out = tmp_path / "out.yaml"
    done = subprocess.run([sys.executable, "-m", "cnnsize", "import", "pretrained:make", "-o", str(out)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "weights=None" in done.stderr and "download" in done.stderr
    assert not out.exists() and not list((tmp_path / "hub").rglob("*.pth"))
