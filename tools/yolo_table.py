"""docs/import.md's table of every Ultralytics YOLO config cnnsize translates: parameters, MACs and the output at
640×640 (the classifiers at 224×224, their training size) as cnnsize computes them, and ultralytics' own GFLOPs
(``--count ultralytics``, model.info()'s figure) at that size. It reads the YAMLs of the installed ultralytics
(``python -m tools.regen --zoo``, in the zoo environment); tests/test_yolo_zoo.py checks every figure against the
model ultralytics builds, and the table against a fresh generation."""

from __future__ import annotations

# the configs in the table, in its order, with their scales ("-": none); the zoo tests check the same list
CONFIGS = {
    "v3/yolov3.yaml": "-", "v3/yolov3-tiny.yaml": "-", "v3/yolov3-spp.yaml": "-",
    "v5/yolov5.yaml": "nsmlx", "v5/yolov5-p6.yaml": "nsmlx", "v6/yolov6.yaml": "nsmlx",
    "v8/yolov8.yaml": "nsmlx", "v8/yolov8-p2.yaml": "nsmlx", "v8/yolov8-p6.yaml": "nsmlx",
    "v8/yolov8-ghost.yaml": "nsmlx", "v8/yolov8-ghost-p2.yaml": "nsmlx", "v8/yolov8-ghost-p6.yaml": "nsmlx",
    "v8/yolov8-seg.yaml": "nsmlx", "v8/yolov8-seg-p6.yaml": "nsmlx", "v8/yolov8-pose.yaml": "nsmlx",
    "v8/yolov8-pose-p6.yaml": "nsmlx", "v8/yolov8-obb.yaml": "nsmlx", "v8/yolov8-cls.yaml": "nsmlx",
    "v8/yolov8-cls-resnet50.yaml": "nsmlx", "v8/yolov8-cls-resnet101.yaml": "nsmlx",
    "v8/yolov8-world.yaml": "nsmlx", "v8/yolov8-worldv2.yaml": "nsmlx",
    "v8/yoloe-v8.yaml": "nsmlx", "v8/yoloe-v8-seg.yaml": "nsmlx",
    "v9/yolov9t.yaml": "-", "v9/yolov9s.yaml": "-", "v9/yolov9m.yaml": "-", "v9/yolov9c.yaml": "-",
    "v9/yolov9e.yaml": "-", "v9/yolov9c-seg.yaml": "-", "v9/yolov9e-seg.yaml": "-",
    "v10/yolov10n.yaml": "n", "v10/yolov10s.yaml": "s", "v10/yolov10m.yaml": "m", "v10/yolov10b.yaml": "b",
    "v10/yolov10l.yaml": "l", "v10/yolov10x.yaml": "x",
    "11/yolo11.yaml": "nsmlx", "11/yolo11-seg.yaml": "nsmlx", "11/yolo11-pose.yaml": "nsmlx",
    "11/yolo11-obb.yaml": "nsmlx", "11/yolo11-cls.yaml": "nsmlx",
    "11/yoloe-11.yaml": "nsmlx", "11/yoloe-11-seg.yaml": "nsmlx", "11/yolo11-cls-resnet18.yaml": "-",
    "12/yolo12.yaml": "nsmlx", "12/yolo12-seg.yaml": "nsmlx", "12/yolo12-pose.yaml": "nsmlx",
    "12/yolo12-obb.yaml": "nsmlx", "12/yolo12-cls.yaml": "nsmlx",
    "26/yolo26.yaml": "nsmlx", "26/yolo26-p2.yaml": "nsmlx", "26/yolo26-p6.yaml": "nsmlx",
    "26/yolo26-seg.yaml": "nsmlx", "26/yolo26-pose.yaml": "nsmlx", "26/yolo26-obb.yaml": "nsmlx",
    "26/yolo26-cls.yaml": "nsmlx", "26/yolo26-sem.yaml": "nsmlx", "26/yolo26-depth.yaml": "nsmlx",
    "26/yoloe-26.yaml": "nsmlx", "26/yoloe-26-seg.yaml": "nsmlx",
}


def root():
    """The model YAMLs of the installed ultralytics (found without importing it)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the YOLO table reads the YAMLs ultralytics ships: run it where ultralytics is installed")
    return Path(next(iter(spec.submodule_search_locations))) / "cfg" / "models"


def row(cfg: str, scale: str) -> str:
    import cnnsize
    from cnnsize.passes import conventions

    side = 224 if "-cls" in cfg else 640
    a = cnnsize.from_yolo(str(root() / cfg), None if scale == "-" else scale, input_shape=(3, side, side)).analyze()
    gflops = sum(conventions.counted(a, "ultralytics")) / 1e9
    name = cfg.split("/")[1].removesuffix(".yaml") + ("" if scale == "-" or cfg.startswith("v10/") else f" {scale}")
    shape = "×".join(map(str, a.layers[-1].output_shape))
    macs = a.totals["macs"] / 1e9
    return f"| {name} | {side} | {a.totals['params']:,} | {macs:.2f} | {2 * macs:.2f} | {gflops:.2f} | {shape} |"


HEADER = ["| config | size | params | GMACs | GFLOPs (torch) | GFLOPs (ultralytics) | output |",
          "|---|---|---|---|---|---|---|"]


def table(first_scale: bool = False) -> str:
    """Every config at every scale; with first_scale, at its first only (the README's)."""
    lines = HEADER + [row(cfg, s) for cfg, scales in CONFIGS.items() for s in (scales[:1] if first_scale else scales)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(), end="")
