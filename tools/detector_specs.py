"""The bundled specs of torchvision's detectors (specs/<name>.yaml), written by the importer from the models
torchvision builds with no weights, at the input their papers quote (3×800×1333; SSD and SSDlite at their own fixed
size), so that ``cnnsize report fasterrcnn_resnet50_fpn`` needs no torch:

    python -m tools.detector_specs            # (re)write them (needs torchvision: the zoo environment)
    python -m tools.detector_specs --check    # write nothing; exit 1 naming every stale one

tests/test_detection_zoo.py checks each against a fresh import; the importer's figures are checked against the real
eval forward there too. The spec states the transform's resize for that input: at another input the resize (and so
every figure after it) differs, so size another image with ``cnnsize report torchvision:NAME --input 3xHxW``."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if not __package__:  # run as python tools/detector_specs.py: this checkout's cnnsize
    sys.path.insert(0, str(ROOT))

PAPERS = (3, 800, 1333)
DETECTORS = {
    "fasterrcnn_resnet50_fpn": PAPERS, "fasterrcnn_resnet50_fpn_v2": PAPERS,
    "fasterrcnn_mobilenet_v3_large_fpn": PAPERS,
    "fasterrcnn_mobilenet_v3_large_320_fpn": PAPERS, "retinanet_resnet50_fpn": PAPERS,
    "retinanet_resnet50_fpn_v2": PAPERS, "fcos_resnet50_fpn": PAPERS,
    "ssd300_vgg16": (3, 300, 300), "ssdlite320_mobilenet_v3_large": (3, 320, 320),
    "maskrcnn_resnet50_fpn": PAPERS, "maskrcnn_resnet50_fpn_v2": PAPERS, "keypointrcnn_resnet50_fpn": PAPERS,
}


def text(name: str) -> str:
    """The spec's text: a header saying where it comes from, then the importer's YAML."""
    import torchvision

    import cnnsize

    model = torchvision.models.get_model(name, weights=None, weights_backbone=None).eval()
    shape = DETECTORS[name]
    size = "×".join(map(str, shape))
    header = (f"# torchvision.models.detection.{name}(weights=None, weights_backbone=None) in eval mode, for an image "
              f"of {size},\n# written by `python -m tools.detector_specs` (the importer: cnnsize/importers/"
              "detection.py). At another input the transform resizes\n# differently: size it with `cnnsize report "
              f"torchvision:{name} --input 3xHxW`.\n")
    return header + cnnsize.from_torch(model, shape, name=name).yaml


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    stale = []
    for name in DETECTORS:
        path = ROOT / "specs" / f"{name}.yaml"
        fresh = text(name)
        if path.exists() and path.read_text(encoding="utf-8") == fresh:
            continue
        stale.append(path.name)
        if not check:
            path.write_text(fresh, encoding="utf-8")
    if stale:
        print(("stale: " if check else "wrote: ") + ", ".join(stale))
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
