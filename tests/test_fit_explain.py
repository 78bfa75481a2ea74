"""The Python side of fit and explain: sizes that fit, nearest sizes, steps that agree with the analysis."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import cnnsize
from cnnsize.spec.sources import bundled_names


def test_alexnet_fits_at_227_not_224():
    # seed 000_ed85fa856022e0dc.txt: "[227x227x3] INPUT", "[55x55x96] CONV1: 96 11x11 filters at stride 4, pad 0";
    # at 224, (224 − 11)/4 + 1 = 54.25 is not a whole number.
    r = cnnsize.fit_sizes("alexnet_cs231n", min=200, max=260)
    assert 227 in r.sizes and 224 not in r.sizes
    assert r.fits(227) and not r.fits(224)
    assert r.nearest(224)[1] == 227
    why = r.why_not(224)
    assert isinstance(why, cnnsize.DoesNotFit) and why.layer == "CONV1" and "(224 − 11)/4 + 1 = 54.25" in why.message


def test_vgg16_fits_at_224():
    # seed 000: the VGG16 table starts "INPUT: [224x224x3]" and ends "POOL2: [7x7x512]" (five halvings of 224)
    r = cnnsize.fit_sizes("vgg16", min=32, max=1024)
    assert r.fits(224) and 224 in r.sizes
    assert r.progression()[1] == 2**5


def test_lenet_fits_at_32():
    # seed 003: LeNet's C1 has 4704 = 6·28·28 units on its 32×32 input
    assert 32 in cnnsize.fit_sizes("lenet5", min=20, max=40).sizes


def test_fit_rejects_bad_ranges():
    with pytest.raises(cnnsize.SpecError):
        cnnsize.fit_sizes("vgg16", min=0)
    with pytest.raises(cnnsize.SpecError):
        cnnsize.fit_sizes("vgg16", min=50, max=40)


def test_numeric_paths_do_not_import_sympy(tmp_path):
    code = f"""
import sys
import cnnsize
from cnnsize.cli import main
cnnsize.fit_sizes("alexnet_cs231n")
cnnsize.analyze("vgg16")
assert main(["report", "vgg16", "-o", r"{tmp_path / 'r.txt'}"]) == 0
assert main(["fit", "alexnet_cs231n", "--size", "224"]) == 0
assert main(["calc", "conv", "-i", "3x32x32", "-k", "10", "-F", "5", "-p", "2"]) == 0
assert "sympy" not in sys.modules, "sympy was imported"
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_explain_lenet_matches_the_lecture_table():
    # seed 003, "Sizes of layers in LeNet": Layer, # units, # connections, # weights
    table = {"C1": (4704, 117_600, 150), "S2": (1176, 4704, 0), "C3": (1600, 240_000, 2400), "S4": (400, 1600, 0),
             "F5": (120, 48_000, 48_000), "F6": (84, 10_080, 10_080), "output": (10, 840, 840)}
    e = cnnsize.explain("lenet5")
    for name, (units, connections, weights) in table.items():
        steps = e.layer(name).steps
        assert any(s.startswith("activations:") and s.endswith(f" {units}") for s in steps), name
        assert any(s.startswith("connections") and s.endswith(f" = {connections}") for s in steps), name
        # the table's weights leave out the biases, which are one per filter (conv) or unit (fc)
        params = [s for s in steps if s.startswith("params:")]
        if weights == 0:
            assert params == [], name
        else:
            assert params[0].endswith(f" = {weights + e.layer(name).output_shape[0]}"), name


@pytest.mark.parametrize("name", bundled_names())
def test_explain_agrees_with_the_analysis(name):
    a = cnnsize.analyze(name)
    for layer in cnnsize.explain(name).layers:
        row = a.layer(layer.name)
        assert layer.output_shape == row.output_shape
        last = {s.split(":")[0]: int(re.findall(r"= (\d+)(?: bytes)?$", s)[-1]) for s in layer.steps
                if re.search(r"= \d+( bytes)?$", s)}
        if "params" in last:
            assert last["params"] == row.params, layer.name
        for key in ("connections", "connections = MACs"):
            if key in last:
                assert last[key] == row.connections, layer.name
        if "memory" in last:
            assert last["memory"] == row.activation_bytes, layer.name


def test_explain_one_layer_and_unknown_layer():
    e = cnnsize.explain("alexnet_cs231n", layer="POOL1")
    assert [la.name for la in e.layers] == ["POOL1"]
    # seed 000: "[27x27x96] MAX POOL1: 3x3 filters at stride 2" after "[55x55x96] CONV1"
    assert e.layers[0].steps[0] == "height: (55 − 3)/2 + 1 = 27"
    with pytest.raises(cnnsize.SpecError, match="unknown layer 'POOL9'"):
        cnnsize.explain("alexnet_cs231n", layer="POOL9")


def test_docs_examples_stay_true(capsys):
    """The Python blocks of docs/autograder.md run, and print what the page says they print."""
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "autograder.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    printed = re.findall(r"```text\n(\(True.*?)```", page, re.S)[0]
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/autograder.md", "exec"), namespace)  # our own docs, not user input
    assert capsys.readouterr().out == printed
