"""Networks of several inputs: specs that name them (``inputs:``), from_torch of forwards that take several tensors
(by argument, or packed in one tuple, list or dict argument) and ``--input NAME=SHAPE``. Every figure is checked
against torch itself: parameters as torch holds them, MACs as FlopCounterMode / 2, activations as the storages a real
forward creates (tests/torch_storages.py), memory and every per-layer figure by the executor's validation."""

from __future__ import annotations

import textwrap

import pytest

import cnnsize
from cnnsize.core.errors import CnnsizeError

from .conftest import run_cli
from .torch_storages import forward_activations

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


# -- modules of several inputs (written for these tests) ------------------------------------------------------------
class TwoStream(nn.Module):
    """Two streams of their own widths and input sizes, pooled and joined."""

    def __init__(self):
        super().__init__()
        self.rgb = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
        self.flow = nn.Sequential(nn.Conv2d(2, 4, 5, stride=2), nn.ReLU())
        self.head = nn.Linear(12, 5)

    def forward(self, rgb, flow):
        a = F.adaptive_avg_pool2d(self.rgb(rgb), 1).flatten(1)
        b = self.flow(flow).mean((2, 3))
        return self.head(torch.cat([a, b], 1))


class Siamese(nn.Module):
    """One backbone called on both images (its parameters count once), the L1 distance of the codes, a score."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 16), nn.Sigmoid())
        self.score = nn.Linear(16, 1)

    def forward(self, a, b):
        return torch.sigmoid(self.score(torch.abs(self.backbone(a) - self.backbone(b))))


class ImageMask(nn.Module):
    """An image and its one-channel mask: joined on the channels, and the mask gating the features."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, image, mask):
        x = F.relu(self.conv(torch.cat([image, mask], 1)))
        return self.out(x * mask)


class ImageMeta(nn.Module):
    """An image and a vector of metadata (age, sex, site...), embedded and joined before the classifier."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.meta = nn.Sequential(nn.Linear(7, 8), nn.ReLU())
        self.classifier = nn.Linear(24, 3)

    def forward(self, image, meta):
        return self.classifier(torch.cat([torch.flatten(self.features(image), 1), self.meta(meta)], 1))


class TowersOfVectors(nn.Module):
    """Two towers of linear layers on flat inputs, the second cast to float first, as torchinfo's test of inputs of
    different dtypes has them (joined on the features here: cnnsize sizes one sample, not a join of batches)."""

    def __init__(self):
        super().__init__()
        self.a1, self.a2 = nn.Linear(30, 20), nn.Linear(20, 6)
        self.b1, self.b2 = nn.Linear(30, 20), nn.Linear(20, 6)

    def forward(self, x1, x2):
        x1 = self.a2(F.relu(self.a1(x1)))
        x2 = self.b2(F.relu(self.b1(x2.float())))
        return F.log_softmax(torch.cat((x1, x2), 1), dim=1)


class SiameseTowers(nn.Module):
    """The shape of torchinfo's siamese test network (convolutions, max pooling, one fc for both, dropout before the
    score), at sizes of its own."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 7), nn.Conv2d(8, 16, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1, self.fc2 = nn.Linear(16 * 3 * 3, 32), nn.Linear(32, 1)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x1, x2):
        x1 = self.pool(F.relu(self.conv2(self.pool(F.relu(self.conv1(x1))))))
        x2 = self.pool(F.relu(self.conv2(self.pool(F.relu(self.conv1(x2))))))
        x1, x2 = self.fc1(x1.view(x1.size(0), -1)), self.fc1(x2.view(x2.size(0), -1))
        return torch.sigmoid(self.fc2(self.dropout(torch.abs(x1 - x2))))


class TupleArgument(TwoStream):
    def forward(self, xs):  # noqa: D102 - one argument holding both tensors
        return super().forward(xs[0], xs[1])


class ListArgument(ImageMask):
    def forward(self, xs: list):  # noqa: D102
        image, mask = xs
        return super().forward(image, mask)


class DictArgument(ImageMeta):
    def forward(self, batch: dict):  # noqa: D102
        return super().forward(batch["image"], batch["meta"])


class OptionalMask(nn.Module):
    """A mask that is optional (None by default): given, it gates the features."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x, mask=None):
        x = self.conv(x)
        if mask is not None:
            x = x * mask
        return x


class FeatureMapsHead(nn.Module):
    """A head run on every map of a list (an FPN's levels, as detection heads take them), one output per level."""

    def __init__(self):
        super().__init__()
        self.conv, self.cls = nn.Conv2d(16, 8, 3, padding=1), nn.Conv2d(8, 4, 1)

    def forward(self, x: list):
        return [self.cls(torch.relu(self.conv(level))) for level in x]


def _tensors(shapes):
    return [torch.randn(1, *s) for s in shapes]


# (module, the shapes as from_torch is given them, how the real forward is called with tensors of those shapes)
CASES = {
    "two_stream": (TwoStream, {"rgb": (3, 16, 16), "flow": (2, 20, 24)}, lambda t: ((t["rgb"], t["flow"]), {})),
    "two_stream_tuple": (TwoStream, ((3, 16, 16), (2, 20, 24)), lambda t: ((*t,), {})),
    "siamese": (Siamese, {"a": (1, 20, 20), "b": (1, 20, 20)}, lambda t: ((t["a"], t["b"]), {})),
    "image_mask": (ImageMask, {"image": (3, 12, 10), "mask": (1, 12, 10)}, lambda t: ((t["image"], t["mask"]), {})),
    "image_meta": (ImageMeta, {"image": (3, 16, 16), "meta": (7,)}, lambda t: ((t["image"], t["meta"]), {})),
    "towers_of_vectors": (TowersOfVectors, ((30,), (30,)), lambda t: ((*t,), {})),
    "siamese_towers": (SiameseTowers, {"x1": (1, 28, 28), "x2": (1, 28, 28)}, lambda t: ((t["x1"], t["x2"]), {})),
    "tuple_argument": (TupleArgument, ((3, 16, 16), (2, 20, 24)), lambda t: ((tuple(t),), {})),
    "list_argument": (ListArgument, [(3, 8, 8), (1, 8, 8)], lambda t: ((list(t),), {})),
    "dict_argument": (DictArgument, {"image": (3, 16, 16), "meta": (7,)}, lambda t: ((dict(t),), {})),
    "feature_maps": (FeatureMapsHead, {"x": [(16, 20, 20), (16, 10, 10), (16, 5, 5)]}, lambda t: ((t["x"],), {})),
    "optional_mask_given": (OptionalMask, {"x": (3, 9, 9), "mask": (1, 9, 9)}, lambda t: ((t["x"],),
                                                                                      {"mask": t["mask"]})),
}


def _truth(model, args, kwargs) -> dict:
    """Parameters, MACs (FlopCounterMode / 2) and activations of a real eval forward."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*args, **kwargs)
    return {"params": sum(p.numel() for p in model.parameters()), "buffers": sum(b.numel() for b in model.buffers()),
            "macs": counter.get_total_flops() // 2, "activations": forward_activations(model, *args, **kwargs)}


@pytest.mark.parametrize("case", list(CASES))
def test_several_inputs_import_exactly(case):
    make, given, call = CASES[case]
    torch.manual_seed(0)
    model = make().eval()
    tensors = {k: _tensors(s) if isinstance(s, list) else torch.randn(1, *s) for k, s in given.items()} \
        if isinstance(given, dict) else _tensors(given)
    args, kwargs = call(tensors)
    truth = _truth(model, args, kwargs)
    imported = cnnsize.from_torch(model, given)
    a = imported.analyze()
    ours = {k: a.totals[k] for k in truth}
    assert ours == truth
    if isinstance(given, dict):  # by name; a list's tensors as name_1, name_2...
        expected = {f"{k}_{i + 1}" if isinstance(v, list) else k: s for k, v in given.items()
                    for i, s in enumerate(v if isinstance(v, list) else [v])}
    else:
        expected = dict(zip(a.inputs, given))
    assert a.inputs == {k: tuple(s) for k, s in expected.items()} and list(imported.spec["inputs"]) == list(expected)


def test_an_input_only_a_left_out_part_reads_is_declared():
    """The head's other levels are outputs beside the main one (``if: aux``); left out, their inputs stay declared."""
    spec = cnnsize.from_torch(FeatureMapsHead().eval(), {"x": [(16, 20, 20), (16, 10, 10)]}).spec
    main = cnnsize.analyze(spec, variables={"aux": False})
    model = FeatureMapsHead().eval()
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model([torch.randn(1, 16, 20, 20)])
    assert len(main.inputs) == 2 and main.totals["macs"] == counter.get_total_flops() // 2


def test_a_shared_backbone_counts_its_parameters_once():
    a = cnnsize.from_torch(Siamese().eval(), {"a": (1, 20, 20), "b": (1, 20, 20)}).analyze()
    backbone = sum(p.numel() for p in Siamese().backbone.parameters())
    assert a.totals["params"] == backbone + 17  # the score's 16 weights and bias, beside the backbone once
    assert sum(r.params for r in a.layers if r.name.startswith("backbone")) == backbone


def test_one_input_named_or_given_as_ever_sizes_the_same():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    plain = cnnsize.from_torch(model, (3, 10, 10))
    named = cnnsize.from_torch(model, {"input": (3, 10, 10)})
    assert "input" in plain.spec and "inputs" not in plain.spec  # one shape: the spec writes input: as ever
    assert named.analyze().totals == plain.analyze().totals


SPEC = """\
name: gated
inputs:
  image: [3, 16, 16]
  mask: [1, 16, 16]
  meta: [5]
layers:
  - conv: {name: conv, filters: 8, kernel: 3, pad: 1, from: image}
  - mul: {name: gate, from: [conv, mask]}
  - relu
  - global_avgpool
  - flatten
  - linear: {name: embed, units: 8, from: meta}
  - concat: {name: joined, from: [flatten1, embed]}
  - fc: {name: out, units: 2}
"""


def test_a_spec_of_several_inputs_is_validated_in_torch(tmp_path):
    """The executor builds the spec with its three inputs and checks every figure, per layer and in total (memory
    included), against torch."""
    from cnnsize.executor.validation import run_validation

    path = tmp_path / "gated.yaml"
    path.write_text(SPEC, encoding="utf-8")
    result = run_validation(str(path), runs=0, batch=2)
    bad = [(row.name, k) for row in result.layers for k, f in row.figures.items() if not f.ok]
    bad += [k for k, f in result.totals.items() if not f.ok]
    assert not bad and result.layers[1].name == "mask" and result.layers[2].name == "meta"
    assert result.to_dict()["inputs"] == {"image": [3, 16, 16], "mask": [1, 16, 16], "meta": [5]}
    a = cnnsize.analyze(str(path), batch=2)
    assert a.inputs == {"image": (3, 16, 16), "mask": (1, 16, 16), "meta": (5,)}
    assert a.totals["activations"] == sum(r.activations for r in a.layers)


def test_backward_macs_of_several_inputs_are_flop_counter_modes(tmp_path):
    """A training step's backward, layer by layer, as FlopCounterMode counts it: no gradient for any input, so the
    gate's product needs only the conv's gradient (and the embedding of the metadata no input gradient)."""
    from .test_training import torch_backward

    path = tmp_path / "gated.yaml"
    path.write_text(SPEC, encoding="utf-8")
    a = cnnsize.analyze(str(path), batch=2, training=True)
    ours = {r.name: r.backward_macs for r in a.layers if r.kind is not None and not r.kind.is_input}
    assert ours == torch_backward(a, executor=True)
    assert a.layer("mask").backward_macs is None and a.layer("embed").input_grad_macs is None


def test_every_input_is_held_through_the_pass(tmp_path):
    """Each input counts in the inference peak as the first does: the caller holds it until the end. The peak's
    liveness, worked by hand: the image, the mask and the metadata (all held) with the layers live at 'gate'."""
    path = tmp_path / "gated.yaml"
    path.write_text(SPEC, encoding="utf-8")
    a = cnnsize.analyze(str(path))
    inputs = (3 * 16 * 16 + 16 * 16 + 5) * 4
    assert a.totals["memory"]["inference_peak_activations_bytes"] == inputs + 2 * 8 * 16 * 16 * 4
    assert a.totals["memory"]["inference_peak_layer"] == "gate"


def test_report_json_and_drawing_name_each_input(tmp_path):
    path = tmp_path / "gated.yaml"
    path.write_text(SPEC, encoding="utf-8")
    import json

    result = run_cli("report", str(path), "--input", "image=3x32x32", "--input", "mask=1x32x32", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["input_shape"] == [3, 32, 32]
    assert doc["inputs"] == {"image": [3, 32, 32], "mask": [1, 32, 32], "meta": [5]}
    assert doc["totals"]["activations"] == sum(row["activations"] for row in doc["layers"])
    text = run_cli("report", str(path)).stdout
    assert "Inputs image 3×16×16 (C×H×W), mask 1×16×16 (C×H×W), meta 5 (C), batch 1" in text
    from cnnsize.render.drawing import summary_lines

    assert "inputs image 3×16×16, mask 1×16×16, meta 5" in summary_lines(cnnsize.analyze(str(path)))[1]


def test_the_single_input_json_is_unchanged():
    doc = cnnsize.analyze("lenet5").to_dict()
    assert "inputs" not in doc and doc["input_shape"] == [1, 32, 32]


@pytest.mark.parametrize(("text", "expect"), [
    (SPEC.replace("meta: [5]", "meta: [5]\n  extra: [2]"), r"gated.yaml:6:\d+: no layer reads input 'extra'"),
    (SPEC.replace("from: meta", "from: mta"), r"'from' names unknown layer 'mta'.*did you mean 'meta'\?.*"
                                              r"an input \(image, mask, meta\)"),
    (SPEC.replace("inputs:", "input: [3, 8, 8]\ninputs:"), r"both 'input' and 'inputs'"),
    (SPEC.replace("  meta: [5]", "  meta:"), r"input 'meta' must be a list"),
    (SPEC.replace("  meta: [5]", "  in: [5]").replace("from: meta", "from: in"), r"input name 'in' cannot"),
])
def test_bad_inputs_in_a_spec_are_one_line_with_the_place(text, expect, tmp_path):
    path = tmp_path / "gated.yaml"
    path.write_text(text, encoding="utf-8")
    result = run_cli("report", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    import re

    assert re.search(expect, result.stderr), result.stderr


@pytest.mark.parametrize(("args", "expect"), [
    (["--input", "mas=1x8x8"], "unknown input 'mas'; did you mean 'mask'? valid: image, mask, meta"),
    (["--input", "mask="], "gives no size for input 'mask'"),
    (["--input", "mask=1x8"], "input 'mask' 1x8 has 2 axes"),
    (["--input", "image=3x8x8", "--input", "image=3x9x9"], "names input 'image' twice"),
    (["--input", "3x8x8", "--input", "mask=1x8x8"], "name each input"),
])
def test_bad_input_options_are_one_line(args, expect, tmp_path):
    path = tmp_path / "gated.yaml"
    path.write_text(SPEC, encoding="utf-8")
    for command in (["report", str(path)], ["draw", str(path), "-o", str(tmp_path / "d.svg")]):
        result = run_cli(*command, *args)
        assert result.returncode == 2 and expect in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "d.svg").exists()


def test_bad_inputs_to_from_torch_are_named():
    with pytest.raises(CnnsizeError, match=r"input 'meta' is given a tensor, not a shape"):
        cnnsize.from_torch(ImageMeta(), {"image": (3, 8, 8), "meta": torch.zeros(7)})
    with pytest.raises(CnnsizeError, match=r"input 'meta' is given 'seven', not a shape"):
        cnnsize.from_torch(ImageMeta(), {"image": (3, 8, 8), "meta": "seven"})
    with pytest.raises(CnnsizeError, match=r"unknown argument of ImageMeta.forward 'metta'; did you mean 'meta'"):
        cnnsize.from_torch(ImageMeta(), {"image": (3, 8, 8), "metta": (7,)})
    with pytest.raises(CnnsizeError, match=r"a second input 'meta' .* with no value given.*'meta': \.\.\."):
        cnnsize.from_torch(ImageMeta(), (3, 8, 8))
    with pytest.raises(CnnsizeError, match=r"3 input shapes for ImageMeta.forward, which takes 2 tensor arguments"):
        cnnsize.from_torch(ImageMeta(), ((3, 8, 8), (7,), (7,)))


@pytest.mark.slow  # a torch import in a subprocess: the slow set (the default run stays under 5 minutes)
def test_import_command_names_each_input(tmp_path):
    (tmp_path / "pairs.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Pair(nn.Module):
            def __init__(self):
                super().__init__()
                self.a, self.b = nn.Conv2d(3, 4, 3), nn.Conv2d(1, 4, 3)

            def forward(self, image, mask):
                return self.a(image) + self.b(mask)

        def pair():
            return Pair()
        """))
    out = tmp_path / "pair.yaml"
    result = run_cli("import", "pairs:pair", "--input", "image=3x10x10", "--input", "mask=1x10x10", "-o", str(out),
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    a = cnnsize.analyze(out)
    assert a.inputs == {"image": (3, 10, 10), "mask": (1, 10, 10)}
    assert a.totals["params"] == 3 * 4 * 9 + 4 + 4 * 9 + 4
    bad = run_cli("import", "pairs:pair", "--input", "image=3x10x10", "-o", str(out), cwd=tmp_path)
    assert bad.returncode == 2 and "a second input 'mask'" in bad.stderr and "--input mask=3x224x224" in bad.stderr
