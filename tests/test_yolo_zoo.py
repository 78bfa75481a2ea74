"""Ultralytics YOLO model YAMLs (cnnsize.from_yolo) against the model ultralytics builds from the same YAML, with no
weights and nothing downloaded: parameters, buffers, FlopCounterMode's MACs / 2 and the storages of a real eval
forward (tests/zoo_truth.py), the output's shape, the state dict's keys and the output's values (the built spec
loaded with the model's own weights), at 640×640, 480×640 and 320×320, every scale of every config translated."""

from __future__ import annotations

import pytest

from .conftest import need

pytestmark = pytest.mark.zoo

SIZES = [(640, 640), (480, 640), (320, 320)]
CLS_SIZES = [(224, 224), (192, 256), (320, 320)]  # the classifiers, trained at 224
# the detection configs translated, each at every scale its YAML has
CONFIGS = {"v8/yolov8.yaml": "nslmx", "v8/yolov8-p2.yaml": "nslmx", "v5/yolov5.yaml": "nslmx",
           "v6/yolov6.yaml": "nslmx", "v3/yolov3.yaml": "-", "v3/yolov3-tiny.yaml": "-", "v3/yolov3-spp.yaml": "-",
           "11/yolo11.yaml": "nslmx", "v9/yolov9t.yaml": "-", "v9/yolov9s.yaml": "-", "v9/yolov9m.yaml": "-",
           "v9/yolov9c.yaml": "-", "v8/yolov8-cls.yaml": "nslmx", "11/yolo11-cls.yaml": "nslmx"}


def _model(cfg: str, scale: str):
    """ultralytics' DetectionModel from its own YAML at a scale (no weights), in eval mode, its anchors unmade."""
    need("ultralytics")
    from pathlib import Path

    import ultralytics
    from ultralytics.nn.tasks import ClassificationModel, DetectionModel, yaml_model_load

    path = Path(ultralytics.__file__).parent / "cfg" / "models" / cfg
    d = yaml_model_load(path)
    d["scale"] = "" if scale == "-" else scale
    model = (ClassificationModel if "-cls" in cfg else DetectionModel)(d, verbose=False).eval()
    return model, str(path)


def _truth(model, size):
    from .zoo_truth import torch_figures

    head = model.model[-1]
    if not hasattr(head, "stride"):
        return torch_figures(model, (3, *size))  # a classifier
    head.shape = None  # the anchors are made afresh at this size, as at a model's first forward at it
    truth = torch_figures(model, (3, *size))
    # Detect.stride is a plain tensor attribute (neither parameter nor buffer) that the decoding indexes in each
    # forward: the storage count sees it as a tensor the forward reads and did not make; it is not an activation
    truth["activations"] -= head.stride.numel()
    return truth


def _check(cfg: str, scale: str, sizes, values: bool):
    import torch

    import cnnsize

    model, path = _model(cfg, scale)
    for size in sizes:
        imported = cnnsize.from_yolo(path, None if scale == "-" else scale, input_shape=(3, *size))
        a = imported.analyze()
        truth = _truth(model, size)
        assert {k: a.totals[k] for k in truth} == truth, (cfg, scale, size)
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            out = model(x)[0]
        assert a.layers[-1].output_shape == tuple(out.shape[1:])
        if values:  # the spec built by cnnsize holds the model's state dict, key for key, and computes its output
            net = cnnsize.build(imported.spec).eval()
            assert set(net.state_dict()) == set(model.state_dict())
            net.load_state_dict(model.state_dict())
            with torch.no_grad():
                torch.testing.assert_close(net(x), out, rtol=1e-4, atol=1e-3)


def test_yolov8n_at_640_matches_ultralytics():
    _check("v8/yolov8.yaml", "n", [(640, 640)], values=True)


def test_yolov8n_validates_through_the_executor():
    """cnnsize's own executor measures the written spec's figures (the activations of every layer included)."""
    import cnnsize

    _, path = _model("v8/yolov8.yaml", "n")
    v = cnnsize.validate(cnnsize.from_yolo(path, "n", input_shape=(3, 320, 320)).spec, device="cpu", runs=0)
    assert v.ok, v.mismatches()


@pytest.mark.slow
@pytest.mark.parametrize(("cfg", "scale"), [(c, s) for c, scales in CONFIGS.items() for s in scales])
def test_every_scale_matches_ultralytics_at_three_sizes(cfg, scale):
    _check(cfg, scale, CLS_SIZES if "-cls" in cfg else SIZES, values=scale in "n-")


def test_a_config_ultralytics_ships_by_name(cli, tmp_path):
    """cnnsize import ultralytics:yolov8n.yaml reads the YAML the installed package ships (nothing downloaded)."""
    import cnnsize

    model, _ = _model("v8/yolov8.yaml", "n")
    out = tmp_path / "spec.yaml"
    result = cli("import", "ultralytics:yolov8n.yaml", "--input", "3x320x320", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert cnnsize.analyze(str(out)).totals["params"] == sum(p.numel() for p in model.parameters())
