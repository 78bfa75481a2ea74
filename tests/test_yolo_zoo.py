"""Ultralytics YOLO model YAMLs (cnnsize.from_yolo) against the model ultralytics builds from the same YAML, with no
weights and nothing downloaded: parameters, buffers, FlopCounterMode's MACs / 2 and the storages of a real eval
forward (tests/zoo_truth.py), the output's shape, the state dict's keys and the output's values (the built spec
loaded with the model's own weights), at 640×640, 480×640 and 320×320, every scale of every config translated.
The sizes are measured on the model moved to the meta device (the same dispatch, figures and storages, without the
arithmetic; checked equal to the CPU forward's by the values tests' own forward at scale n)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.yolo_table import CONFIGS

from .conftest import need

pytestmark = pytest.mark.zoo

SIZES = [(640, 640), (480, 640), (320, 320)]
P6_SIZES = [(640, 640), (448, 640), (384, 384)]  # the P6 configs' maps need multiples of 64
CLS_SIZES = [(224, 224), (192, 256), (320, 320)]  # the classifiers, trained at 224
VALUES_SIZE = (128, 192)  # where the output's values are compared (a multiple of the P6 configs' stride 64)
# every model YAML ultralytics 8.4.190 ships that cnnsize translates: the docs' table's (tools/yolo_table.py)
# the ones it does not translate yet, and why (docs/import.md says the same)
NOT_TRANSLATED = {
    **dict.fromkeys(("rt-detr/rtdetr-l.yaml", "rt-detr/rtdetr-x.yaml", "rt-detr/rtdetr-resnet50.yaml",
                     "rt-detr/rtdetr-resnet101.yaml", "v8/yolov8-rtdetr.yaml"), "RT-DETR's decoder"),
}
CASES = [(c, s) for c, scales in CONFIGS.items() for s in scales]
# one scale per config at one size: the quick tier of the zoo set
QUICK = [(c, scales[0]) for c, scales in CONFIGS.items()]


def _root():
    need("ultralytics")
    from pathlib import Path

    import ultralytics

    return Path(ultralytics.__file__).parent / "cfg" / "models"


def _model_class(cfg: str):
    """The model class ultralytics builds a config's YAML with (ultralytics.nn.tasks.guess_model_task's families)."""
    from ultralytics.nn import tasks

    name = cfg.split("/")[-1]
    return (tasks.ClassificationModel if "-cls" in name else tasks.WorldModel if "world" in name else
            tasks.YOLOEModel if name.startswith("yoloe") else tasks.SemanticSegmentationModel if "-sem" in name else
            tasks.DepthModel if "-depth" in name else tasks.DetectionModel)


def _model(cfg: str, scale: str):
    """ultralytics' model from its own YAML at a scale (no weights), in eval mode, its anchors unmade."""
    from ultralytics.nn.tasks import yaml_model_load

    path = _root() / cfg
    d = yaml_model_load(path)
    d["scale"] = "" if scale == "-" else scale
    for row in d["backbone"] + d["head"]:
        if row[2] == "TorchVision":  # torchvision's model with no weights (its YAML asks for DEFAULT: a download)
            row[3][2] = None
    model = _model_class(cfg)(d, verbose=False).eval()
    return model, str(path)


def _sizes(cfg: str) -> list:
    return CLS_SIZES if "-cls" in cfg else P6_SIZES if "p6" in cfg else SIZES


def _on_meta(model):
    """The model's parameters on the meta device (its figures are the same, without the arithmetic; its head's
    strides, a plain attribute the decoding reads as numbers, stay where they are)."""
    head = model.model[-1]
    stride = getattr(head, "stride", None)
    model = model.to("meta")
    if stride is not None:
        head.stride = stride
    if hasattr(model, "txt_feats"):  # WorldModel's text features, a plain tensor attribute, go where the model is
        model.txt_feats = model.txt_feats.to("meta")
    return model


def _truth(model, size):
    from .zoo_truth import torch_figures

    head = model.model[-1]
    if not hasattr(head, "anchors"):
        return torch_figures(model, (3, *size))  # a classifier, a semantic segmenter: no decoding
    head.shape = None  # the anchors are made afresh at this size, as at a model's first forward at it
    truth = torch_figures(model, (3, *size))
    if type(model).__name__ == "YOLOEModel" and next(model.parameters()).is_meta:
        # YOLOEModel makes its class embeddings (torch.zeros(1, 80, 512), joined by torch.cat) on the CPU whatever
        # the model's device: on the meta device, type_as copies them there, a third tensor a CPU forward lacks
        truth["activations"] -= 80 * 512
    # Detect.stride is a plain tensor attribute (neither parameter nor buffer) that the decoding indexes in each
    # forward: the storage count sees it as a tensor the forward reads and did not make; it is not an activation
    truth["activations"] -= head.stride.numel()
    return truth


def _as_cnnsize(state: dict) -> dict:
    """ultralytics' state dict under the names and shapes cnnsize's built spec holds: MaxSigmoidAttnBlock's per-head
    bias (attn.bias, (nh,), read as bias[None, :, None, None]) is a bias_add layer's parameter attn.bias.weight of
    shape (nh, 1, 1); every other key and tensor is the model's own."""
    out = {}
    for key, value in state.items():
        if key.endswith(".attn.bias") and value.ndim == 1:
            key, value = key + ".weight", value[:, None, None]
        out[key] = value
    return out


def _output(out):
    """The detections (or class scores) of an eval forward's output: Segment's also holds the prototypes."""
    out = out[0] if isinstance(out, tuple) else out
    return out[0] if isinstance(out, tuple) else out


def _check(cfg: str, scale: str, sizes, values: bool):
    import torch

    import cnnsize

    model, path = _model(cfg, scale)
    if values:  # the spec built by cnnsize holds the model's state dict, key for key, and computes its output
        x = torch.randn(1, 3, *VALUES_SIZE)  # small: the values do not depend on the size, the time does
        with torch.no_grad():
            out = _output(model(x))
        imported = cnnsize.from_yolo(path, None if scale == "-" else scale, input_shape=x.shape[1:])
        net = cnnsize.build(imported.spec).eval()
        state = _as_cnnsize(model.state_dict())
        # modules the default forward never runs (YOLOE's prompt encoders) are unused layers: their tensors, as many
        unused = tuple(r.name + "." for r in imported.analyze().layers if r.type == "unused")
        for prefix in unused:
            assert sum(v.numel() for k, v in net.state_dict().items() if k.startswith(prefix)) == \
                sum(v.numel() for k, v in state.items() if k.startswith(prefix)), prefix
        state = {k: v for k, v in state.items() if not k.startswith(unused or ("\0",))}
        assert {k for k in net.state_dict() if not k.startswith(unused or ("\0",))} == set(state)
        net.load_state_dict(state, strict=not unused)
        if hasattr(model, "txt_feats"):  # the text features the model holds outside its state dict
            net.layer("txt_feats").value = model.txt_feats
        with torch.no_grad():
            torch.testing.assert_close(net(x), out, rtol=1e-4, atol=1e-3)
    model = _on_meta(model)
    for size in sizes:
        imported = cnnsize.from_yolo(path, None if scale == "-" else scale, input_shape=(3, *size))
        a = imported.analyze()
        truth = _truth(model, size)
        assert {k: a.totals[k] for k in truth} == truth, (cfg, scale, size)
        with torch.no_grad():
            out = _output(model(torch.empty(1, 3, *size, device="meta")))
        assert a.layers[-1].output_shape == tuple(out.shape[1:]), (cfg, scale, size)


def test_yolov8n_at_640_matches_ultralytics():
    _check("v8/yolov8.yaml", "n", [(640, 640)], values=True)


@pytest.mark.parametrize("cfg, scale, size", [("v8/yolov8.yaml", "n", (320, 256)),
                                              ("12/yolo12-seg.yaml", "n", (256, 320)),
                                              ("v8/yolov8-world.yaml", "n", (256, 320)),
                                              ("11/yoloe-11-seg.yaml", "n", (256, 320))])
def test_figures_on_the_meta_device_are_the_cpu_forwards(cfg, scale, size):
    """The sweep measures on the meta device: its figures equal a real CPU forward's."""
    cpu, _ = _model(cfg, scale)
    meta, _ = _model(cfg, scale)
    assert _truth(_on_meta(meta), size) == _truth(cpu, size)


def test_the_configs_table_is_a_fresh_generation():
    from tools.yolo_table import table

    page = (Path(__file__).resolve().parents[1] / "docs" / "import.md").read_text(encoding="utf-8")
    assert table().strip() in page, "stale YOLO table in docs/import.md: run python -m tools.regen --zoo"


def test_every_config_ultralytics_ships_is_translated_or_said_not_to_be():
    shipped = {str(p.relative_to(_root())) for p in _root().rglob("*.yaml")}
    assert shipped == set(CONFIGS) | set(NOT_TRANSLATED)


@pytest.mark.parametrize(("cfg", "size"), [("v8/yolov8.yaml", 320), ("11/yoloe-11-seg.yaml", 128)])
def test_yolov8n_validates_through_the_executor(cfg, size):
    """cnnsize's own executor measures the written spec's figures (the activations of every layer included); YOLOE's
    too (its const_tensor, contrastive and unused layers built and run)."""
    import cnnsize

    _, path = _model(cfg, "n")
    v = cnnsize.validate(cnnsize.from_yolo(path, "n", input_shape=(3, size, size)).spec, device="cpu", runs=0)
    assert v.ok, v.mismatches()


@pytest.mark.slow
@pytest.mark.parametrize("cfg", ["26/yolo26-pose.yaml", "26/yolo26-seg.yaml", "26/yolo26-depth.yaml",
                                 "26/yoloe-26-seg.yaml"])
def test_yolo26_heads_validate_through_the_executor(cfg):
    """YOLO26's heads built and run by cnnsize's executor: its measured figures (the Pose26 decoding's broadcast
    view, the training-only branches held, the Depth head's calibration by buffers) are the written spec's."""
    import cnnsize

    _, path = _model(cfg, "n")
    v = cnnsize.validate(cnnsize.from_yolo(path, "n", input_shape=(3, 128, 192)).spec, device="cpu", runs=0)
    assert v.ok, v.mismatches()


@pytest.mark.parametrize(("cfg", "scale"), QUICK)
def test_one_scale_of_each_config_matches_ultralytics(cfg, scale):
    """The quick tier: each config at its first scale, at one non-square size, its values at scale n."""
    _check(cfg, scale, [_sizes(cfg)[1]], values=scale in "n-")


@pytest.mark.slow
@pytest.mark.parametrize(("cfg", "scale"), CASES)
def test_every_scale_matches_ultralytics_at_three_sizes(cfg, scale):
    _check(cfg, scale, _sizes(cfg), values=False)


@pytest.mark.parametrize(("cfg", "scale"), [("v8/yolov8.yaml", "n"), ("11/yolo11.yaml", "s"),
                                            ("12/yolo12.yaml", "n"), ("v8/yolov8-cls.yaml", "n"),
                                            ("v10/yolov10n.yaml", "n"), ("v8/yolov8-seg.yaml", "n"),
                                            ("26/yolo26.yaml", "n"), ("26/yolo26-seg.yaml", "n"),
                                            ("26/yolo26-depth.yaml", "n"),
                                            ("v8/yolov8-world.yaml", "n"), ("v8/yolov8-worldv2.yaml", "s"),
                                            ("v8/yoloe-v8.yaml", "n"), ("11/yoloe-11-seg.yaml", "n"),
                                            ("26/yoloe-26-seg.yaml", "n")])
def test_count_ultralytics_is_model_info_gflops(cfg, scale):
    """--count ultralytics is ultralytics' own get_flops (model.info()'s GFLOPs), run on the same model: at 640
    (thop's proxies of one stride, extrapolated), at other sizes, and at one too small for proxies (a full run)."""
    import math

    from ultralytics.utils.torch_utils import get_flops

    import cnnsize
    from cnnsize.passes import conventions

    model, path = _model(cfg, scale)
    for size in [(640, 640), (480, 640), (320, 320), (64, 64)]:
        a = cnnsize.from_yolo(path, scale, input_shape=(3, *size)).analyze()
        figure = sum(conventions.counted(a, "ultralytics"))
        theirs = get_flops(model, list(size))
        assert theirs > 0 and math.isclose(figure / 1e9, theirs, rel_tol=1e-12), (cfg, size, figure, theirs)


def test_a_config_ultralytics_ships_by_name(cli, tmp_path):
    """cnnsize import ultralytics:yolov8n.yaml reads the YAML the installed package ships (nothing downloaded)."""
    import cnnsize

    model, _ = _model("v8/yolov8.yaml", "n")
    out = tmp_path / "spec.yaml"
    result = cli("import", "ultralytics:yolov8n.yaml", "--input", "3x320x320", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert cnnsize.analyze(str(out)).totals["params"] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("command", [["conventions", "--format", "json"], ["explain", "--layer", "model.0.conv"],
                                     ["plan", "--device", "h100", "--batch", "8", "--format", "json"]])
def test_every_command_that_sizes_a_spec_takes_a_config_by_name(cli, command):
    """conventions, explain and plan read ultralytics:NAME as report does; conventions' torch count is twice
    FlopCounterMode's MACs of the model ultralytics builds, its ultralytics count ultralytics' own get_flops."""
    import json

    result = cli(command[0], "ultralytics:yolov8n.yaml", "--input", "3x320x320", *command[1:])
    assert result.returncode == 0, result.stderr
    if command[0] == "conventions":
        import math

        from ultralytics.utils.torch_utils import get_flops

        model, _ = _model("v8/yolov8.yaml", "n")
        counts = {row["count"]: row["total"] for row in json.loads(result.stdout)}
        assert counts["torch"] == 2 * _truth(model, (320, 320))["macs"]
        assert math.isclose(counts["ultralytics"] / 1e9, get_flops(model, [320, 320]), rel_tol=1e-12)
    elif command[0] == "plan":
        assert json.loads(result.stdout)["configurations"]
    else:
        assert result.stdout.startswith("model.0.conv: conv")
