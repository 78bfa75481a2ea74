"""Counting conventions without the peer tools: the report keys, the conventions command, the rules table.

The tools themselves are run against every convention in tests/test_conventions_zoo.py (marked zoo);
here torch's own FlopCounterMode checks the ``torch`` convention, and the rest checks the plumbing.
"""

from __future__ import annotations

import json

import pytest

import cnnsize
from cnnsize.core.errors import CnnsizeError
from cnnsize.passes import conventions


def test_default_report_json_has_no_new_keys(cli):
    plain = json.loads(cli("report", "resnet18", "-f", "json").stdout)
    assert "count" not in plain and "counted" not in plain["totals"]
    assert not any(k in row for row in plain["layers"] for k in ("counted", "bytes_read", "predicted_seconds"))
    assert plain == json.loads(cnnsize.analyze("resnet18").to_json())


@pytest.mark.parametrize("count", ["torchinfo", "thop", "torchscan-dmas"])
def test_count_in_json(cli, count):
    doc = json.loads(cli("report", "googlenet", "--count", count, "-f", "json").stdout)
    assert list(doc)[:2] == ["schema_version", "count"] and doc["count"] == count
    assert all("counted" in row for row in doc["layers"])
    assert doc["totals"]["counted"] == sum(row["counted"] for row in doc["layers"])
    assert doc["totals"]["counted"] == cnnsize.analyze("googlenet", count=count).totals["counted"]


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "latex", "html"])
def test_count_in_every_format(cli, fmt):
    out = cli("report", "lenet5", "--count", "fvcore", "--traffic", "-f", fmt).stdout
    total = cnnsize.analyze("lenet5", count="fvcore").totals["counted"]
    assert f"{total:,}" in out or str(total) in out
    assert "Counted" in out or "counted" in out


def test_symbolic_sizes_are_refused_in_one_line(cli):
    for args in (["report", "lenet5", "-i", "1xHxW", "--count", "thop"], ["conventions", "lenet5", "-i", "1xHxW"]):
        r = cli(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr and "numeric" in r.stderr


def test_unknown_convention_is_one_line(cli):
    r = cli("report", "lenet5", "--count", "fvcor")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "fvcore" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("spec", ["lenet5", "resnet18", "mobilenet_v3_large", "squeezenet1_1"])
def test_torch_convention_is_flop_counter_mode(spec):
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    a = cnnsize.analyze(spec, count="torch", batch=2)
    model = cnnsize.build(a)
    with torch.no_grad(), FlopCounterMode(display=False) as mode:
        model(torch.zeros(2, *a.input_shape))
    assert a.totals["counted"] == mode.get_total_flops()


@pytest.mark.parametrize("spec", ["resnet50", "mobilenet_v2", "inception_v3"])
def test_differences_add_up(spec):
    a = cnnsize.analyze(spec)
    for row in conventions.records(a):
        assert sum(row["differences"].values()) == row["total"] - a.totals["macs"], row["count"]
        assert row["total"] == cnnsize.analyze(spec, count=row["count"]).totals["counted"]


def test_resnet50_why_the_tools_differ():
    """The issue's example: torchvision's 4.09 G and ptflops' figure differ by bias adds, norms, ReLUs, pooling."""
    a = cnnsize.analyze("resnet50")
    rows = {r["count"]: r for r in conventions.records(a)}
    assert rows["cnnsize"]["total"] == a.totals["macs"]
    causes = rows["ptflops"]["differences"]
    assert set(causes) == {"bias adds", "normalization", "activations", "pooling"}
    assert causes["bias adds"] == 1000  # fc's bias: the convolutions have none
    assert rows["torch"]["differences"] == {"flops unit": a.totals["macs"]}


def test_conventions_command_json_and_frame(cli):
    doc = json.loads(cli("conventions", "resnet18", "-f", "json").stdout)
    assert [d["count"] for d in doc] == list(conventions.CONVENTIONS)
    assert all(set(d) >= {"count", "total", "differences"} for d in doc)
    frame = cnnsize.analyze("resnet18").conventions()
    assert frame.loc["fvcore", "total"] == next(d["total"] for d in doc if d["count"] == "fvcore")
    for fmt in ("table", "markdown", "csv", "latex", "html"):
        r = cli("conventions", "resnet18", "-f", fmt)
        assert r.returncode == 0 and "torchscan-dmas" in r.stdout


def test_rules_table_in_docs_is_generated():
    """docs/conventions.md's table of rules is what ``python -m cnnsize.passes.conventions`` prints (one source of
    truth; ``python -m tools.regen`` rewrites it)."""
    from tools import regen

    assert regen.block("conventions") == conventions.rules_table(), "stale: run python -m tools.regen"


def test_every_kind_declares_a_known_cause():
    from cnnsize.layers import REGISTRY

    for name, cls in REGISTRY.items():
        assert cls.cause in (*conventions.CAUSES, "macs"), (name, cls.cause)


def test_rule_language_is_arithmetic_only():
    assert conventions.evaluate("2*inp + out - bias", {"inp": 3, "out": 4, "bias": 1}) == 9
    for bad in ("__import__('os')", "inp.real", "x + 1", "inp ** 2", "1.5*inp"):
        with pytest.raises((CnnsizeError, SyntaxError)):
            conventions.evaluate(bad, {"inp": 1})


def test_collapsed_rows_keep_the_asked_for_figures():
    """--depth folds rows: the counted figure, traffic and predicted time of a block add up to its layers'."""
    full = cnnsize.analyze("resnet18", count="fvcore", device_profile="h100")
    folded = full.collapse(1)
    for key in ("counted", "bytes_read", "bytes_written"):
        assert sum(getattr(r, key) for r in folded.layers) == sum(getattr(r, key) for r in full.layers)
    block = [r for r in full.layers if r.name.startswith("layer2.")]
    row = folded.layer("layer2")
    assert row.counted == sum(r.counted for r in block)
    assert row.predicted_seconds == pytest.approx(sum(r.predicted_seconds for r in block))
    assert row.bound in ("compute", "memory")


def test_a_kind_without_a_rule_is_refused_in_one_line(cli, monkeypatch):
    """A kind no test has checked against a tool (as a kind added on another branch would be) is refused by that
    tool's convention, naming the layer, never guessed; torch's convention and the default still count it."""
    from cnnsize.layers import REGISTRY

    monkeypatch.setattr(REGISTRY["elu"], "tools_checked", False)  # as the kind's file would declare it
    assert "elu" not in conventions.checked_kinds()
    spec = {"name": "t", "input": [3, 4, 4], "layers": [{"elu": {"name": "act"}}]}
    with pytest.raises(CnnsizeError, match=r"the thop convention has no rule yet for 'elu' layers \(act\)"):
        cnnsize.analyze(spec, count="thop")
    assert cnnsize.analyze(spec, count="torch").totals["counted"] == 0
    rows = {r["count"]: r for r in conventions.records(cnnsize.analyze(spec))}
    assert rows["thop"]["total"] is None and "no rule yet" in rows["thop"]["note"]
    assert rows["torch"]["total"] == 0


def test_opaque_layers_are_refused_by_the_tools_conventions(cli, tmp_path):
    spec = tmp_path / "o.yaml"
    spec.write_text("name: o\ninput: [3, 4, 4]\nlayers:\n  - opaque: {name: odd, op: torch.special.thing, "
                    "shape: [3, 4, 4], macs: 48}\n", encoding="utf-8")
    r = cli("report", str(spec), "--count", "ptflops")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "no rule for 'opaque' layers (odd, torch.special.thing)" in r.stderr
    assert cnnsize.analyze(str(spec), count="torch").totals["counted"] == 96
    doc = json.loads(cli("conventions", str(spec), "-f", "json").stdout)
    assert {d["count"]: d["total"] for d in doc}["ptflops"] is None


def test_function_layers_count_what_the_tools_see():
    """``function: F.relu`` (the importer writes it): module-hook tools do not see the layer; ptflops counts the
    functions it patches once (a module that calls them: twice); fvcore, a tracer, counts the op either way, except
    x.mean, which it has no handle for."""
    def spec(**marks):
        return {"name": "f", "input": [2, 4, 4], "layers": [
            {"relu": {"name": "r", **marks.get("r", {})}},
            {"global_avgpool": {"name": "g", **marks.get("g", {})}},
            {"flatten": {"name": "flat", **marks.get("f", {})}}]}

    def counted(count, **marks):
        return {r.name: r.counted for r in cnnsize.analyze(spec(**marks), count=count).layers[1:]}

    assert counted("ptflops") == {"r": 64, "g": 64, "flat": 0}
    functional = {"r": {"function": "F.relu"}, "g": {"function": "F.adaptive_avg_pool2d"},
                  "f": {"function": "torch.flatten"}}
    assert counted("ptflops", **functional) == {"r": 32, "g": 32, "flat": 0}
    assert counted("torchscan-dmas", **functional) == {"r": 0, "g": 0, "flat": 0}
    assert counted("torchscan-dmas")["flat"] == 4
    assert counted("fvcore", **functional) == counted("fvcore") == {"r": 0, "g": 32, "flat": 0}
    assert counted("fvcore", g={"function": ".mean"})["g"] == 0


def test_function_must_be_a_name():
    with pytest.raises(CnnsizeError, match="function must name the torch function") as info:
        cnnsize.analyze("name: f\ninput: [2, 4, 4]\nlayers:\n  - relu: {name: r, function: 3}\n")
    assert info.value.location is not None and info.value.layer == "r"


def test_importer_marks_function_calls():
    """from_torch writes ``function`` for a layer torch computes with a function or method, not for a module."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act = torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()

        def forward(self, x):
            x = F.relu(self.act(self.conv(x)))
            return torch.flatten(x.mean([2, 3]), 1)

    layers = [next(iter(d.items())) for d in cnnsize.from_torch(Net(), (3, 8, 8)).spec["layers"]]
    marks = {kind: body.get("function") for kind, body in layers}
    assert marks["conv"] is None
    assert [body.get("function") for kind, body in layers if kind == "relu"] == [None, "F.relu"]
    assert marks["global_avgpool"] == ".mean" and marks["flatten"] == "torch.flatten"


def test_swin_differences_by_cause():
    """Swin's window attention is one layer that the tools see in parts: its difference splits into the attention's
    own work, its bias adds and its softmax, and torch's doubling stays the FLOP unit. The softmax ptflops counts is
    every score of every window: Swin-T's stages at 224² (56², 28², 14², 7² tokens; 7×7 windows; 3, 6, 12, 24
    heads; 2, 2, 6, 2 blocks)."""
    a = cnnsize.analyze("swin_t")
    rows = {r["count"]: r for r in conventions.records(a)}
    for row in rows.values():
        assert sum(row["differences"].values()) == row["total"] - a.totals["macs"], row["count"]
    attention = sum(r.macs for r in a.layers if r.type == "swin_attention")
    assert rows["torch"]["differences"] == {"flops unit": a.totals["macs"]}
    assert rows["torchinfo"]["differences"]["attention"] == -attention  # no module runs inside it
    assert "attention" not in rows["fvcore"]["differences"] and "attention" not in rows["thop"]["differences"]
    scores = sum(blocks * (side // 7) ** 2 * heads * 49 * 49
                 for side, heads, blocks in ((56, 3, 2), (28, 6, 2), (14, 12, 6), (7, 24, 2)))
    assert rows["ptflops"]["differences"]["softmax"] == scores


SHARED_NO_BIAS = {"name": "shared_no_bias", "input": [10], "layers": [
    {"fc": {"name": "a", "units": 10, "bias": False}}, {"relu": {"name": "r"}},
    {"fc": {"name": "b", "units": 10, "bias": False, "shares": "a"}}]}


def test_shared_layer_counts_its_owners_weights_and_blames_no_bias():
    """A layer sharing another's parameters reports 0 of them, yet the tools see the module's weights on every call
    (checked against the tools in test_conventions_zoo.test_shared_layers_against_the_tool). In a network without
    biases no difference is 'bias adds': torchinfo counts each call's 100 weights (its total is the MACs), and
    torchscan-flops' shortfall is the first add of each of the 2 × 10 outputs (and the ReLU counts its 10 inputs)."""
    a = cnnsize.analyze(SHARED_NO_BIAS)
    assert a.totals["params"] == 100 and a.totals["macs"] == 200  # one 10×10 weight, two calls
    rows = {r["count"]: r for r in conventions.records(a)}
    assert all("bias adds" not in r["differences"] for r in rows.values()), rows
    assert rows["torchinfo"]["total"] == 200 and rows["torchinfo"]["differences"] == {}
    assert rows["torchscan-flops"]["differences"] == {"flops unit": 200, "first adds": -20, "activations": 10}
    assert [r.counted for r in cnnsize.analyze(SHARED_NO_BIAS, count="torchscan-macs").layers] == [0, 100, 0, 100]


def test_training_mode_is_asked_for_and_said(cli):
    """fvcore counts a training-mode batch norm as inp·(4 + affine) where eval counts inp·(1 + affine) (checked
    against fvcore in test_conventions_zoo.test_training_mode_against_the_tool): --train asks for it, and every
    output says which mode its figures are for."""
    eval_, train = (cnnsize.analyze("resnet18", count="fvcore", count_mode=m) for m in ("eval", "train"))
    bn_inputs = sum(r.activations for r in eval_.layers if r.type == "bn")  # each bn's output: its input's size
    assert train.totals["counted"] - eval_.totals["counted"] == 3 * bn_inputs
    assert (eval_.count_mode, train.count_mode) == ("eval", "train")
    doc = json.loads(cli("report", "resnet18", "--count", "fvcore", "--train", "-f", "json").stdout)
    assert doc["count_mode"] == "train" and doc["totals"]["counted"] == train.totals["counted"]
    assert "train mode" in cli("report", "resnet18", "--count", "fvcore", "--train").stdout
    assert "eval mode" in cli("report", "resnet18", "--count", "fvcore").stdout
    rows = {d["count"]: d for d in json.loads(cli("conventions", "resnet18", "--train", "-f", "json").stdout)}
    assert rows["fvcore"]["mode"] == "train" and rows["fvcore"]["total"] == train.totals["counted"]
    assert rows["thop"]["total"] == cnnsize.analyze("resnet18", count="thop").totals["counted"]  # thop: same
    assert "train mode" in cli("conventions", "resnet18", "--train").stdout
    r = cli("report", "resnet18", "--train")  # alone: the training step's work (cnnsize.passes.training)
    assert r.returncode == 0 and "Training step" in r.stdout and "fvcore" not in r.stdout
    with pytest.raises(CnnsizeError, match="count mode"):
        cnnsize.analyze("lenet5", count="fvcore", count_mode="training")
