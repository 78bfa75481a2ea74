"""The README's tables of the CNNs people deploy: every torchvision detector and every Ultralytics YOLO config
cnnsize imports, with its figures (``python -m tools.regen --zoo``, in the zoo environment: it builds the
detectors with torchvision, weights=None, and reads the YAMLs ultralytics ships).

The detectors' published figure is torchvision's own (its weights' ``meta["_ops"]``, GFLOPS in its tables): it
was measured on a square image, which the transform resizes to 800×800, and equals cnnsize's MACs there except
where the proposals depend on the weights (tests/test_deploy_table.py checks each). The COCO images they are
trained and quoted on are 800×1333 after the resize: the last column. The YOLO configs at their first scale at
640×640 (the classifiers at 224×224); docs/import.md has every scale.
"""

from __future__ import annotations

# torchvision.models.detection's builders, in the table's order
DETECTORS = ("fasterrcnn_resnet50_fpn", "fasterrcnn_mobilenet_v3_large_fpn",
             "fasterrcnn_mobilenet_v3_large_320_fpn", "retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2",
             "fcos_resnet50_fpn", "ssd300_vgg16", "ssdlite320_mobilenet_v3_large", "fasterrcnn_resnet50_fpn_v2",
             "maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2", "keypointrcnn_resnet50_fpn")
SQUARE, COCO = (3, 800, 800), (3, 800, 1333)


def published(name: str) -> float:
    """torchvision's published GFLOPS of a detector (its first weights' meta, nothing downloaded)."""
    import torchvision.models as models

    return float(next(iter(models.get_model_weights(name))).meta["_ops"])


def detector_macs(name: str) -> tuple[int, int, int]:
    """params, MACs on a square image and MACs on a COCO-sized one, as cnnsize imports the detector."""
    import torchvision.models as models

    import cnnsize

    model = models.get_model(name, weights=None, weights_backbone=None).eval()
    square = cnnsize.from_torch(model, SQUARE).analyze().totals
    coco = cnnsize.from_torch(model, COCO).analyze().totals
    return square["params"], square["macs"], coco["macs"]


def detectors_table() -> str:
    lines = ["| detector | params | GMACs at 800×800 | torchvision's published GFLOPS | GMACs at 800×1333 |",
             "|---|---|---|---|---|"]
    for name in DETECTORS:
        params, square, coco = detector_macs(name)
        lines.append(f"| {name} | {params:,} | {square / 1e9:.3f} | {published(name):.3f} | {coco / 1e9:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(detectors_table(), end="")
