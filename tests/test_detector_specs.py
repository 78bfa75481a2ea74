"""The bundled specs of torchvision's detectors (specs/<name>.yaml, written by tools/detector_specs.py): ``cnnsize
report NAME`` sizes each with no torch installed or imported. Their figures against independent truths: torchvision's
published parameter counts (its weights' metadata), plus the backbone's BatchNorm scales and shifts, which a model
built with weights=None holds as parameters where the trained one has FrozenBatchNorm2d buffers (counted from the
bundled ResNet-50 and MobileNetV3 specs, themselves checked against torchvision in tests/test_zoo.py); SSD's and
SSDlite's published GFLOPS (a multiply-add counted once). tests/test_detection_zoo.py checks each spec equals a
fresh import, and the import against the real eval forward."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import cnnsize
from tools.detector_specs import DETECTORS

from .conftest import ROOT

# torchvision.models.<Model>_Weights.COCO_V1.meta: (num_params, _ops in GFLOPS, the backbone whose BatchNorm its
# trained weights freeze: None where the trained model keeps BatchNorm2d too)
PUBLISHED = {
    "fasterrcnn_resnet50_fpn": (41755286, 134.38, "resnet50"),
    "fasterrcnn_resnet50_fpn_v2": (43712278, 280.371, None),
    "fasterrcnn_mobilenet_v3_large_fpn": (19386354, 4.494, "mobilenet_v3_large"),
    "fasterrcnn_mobilenet_v3_large_320_fpn": (19386354, 0.719, "mobilenet_v3_large"),
    "retinanet_resnet50_fpn": (34014999, 151.54, "resnet50"),
    "retinanet_resnet50_fpn_v2": (38198935, 152.238, None),
    "fcos_resnet50_fpn": (32269600, 128.207, "resnet50"),
    "ssd300_vgg16": (35641826, 34.858, None),
    "ssdlite320_mobilenet_v3_large": (3440060, 0.583, None),
    "maskrcnn_resnet50_fpn": (44401393, 134.38, "resnet50"),
    "maskrcnn_resnet50_fpn_v2": (46359409, 333.577, None),
    "keypointrcnn_resnet50_fpn": (59137258, 137.42, "resnet50"),
}
MACS_PUBLISHED = ("ssd300_vgg16", "ssdlite320_mobilenet_v3_large")  # the others' _ops are at another image size

# the CLI's report, then a check that nothing imported torch, in one fresh process
_REPORT = ("import io, sys, contextlib; from cnnsize.cli import main\n"
           "out = io.StringIO()\n"
           "with contextlib.redirect_stdout(out): code = main(['report', sys.argv[1], '--format', 'json'])\n"
           "assert 'torch' not in sys.modules, 'torch was imported'\n"
           "print(out.getvalue()); sys.exit(code)\n")


def test_every_bundled_detector_is_listed():
    assert set(DETECTORS) == set(PUBLISHED)
    assert all((ROOT / "specs" / f"{name}.yaml").is_file() for name in DETECTORS)


@pytest.mark.parametrize("name", list(DETECTORS))
def test_a_bundled_detector_reports_without_torch(name):
    done = subprocess.run([sys.executable, "-c", _REPORT, name], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    totals = json.loads(done.stdout)["totals"]
    params, gflops, frozen = PUBLISHED[name]
    bn = 0 if frozen is None else sum(r.params for r in cnnsize.analyze(frozen).layers if r.type == "bn")
    assert totals["params"] == params + bn
    assert tuple(cnnsize.analyze(name).input_shape) == DETECTORS[name]
    if name in MACS_PUBLISHED:
        assert round(totals["macs"] / 1e9, 3) == gflops
