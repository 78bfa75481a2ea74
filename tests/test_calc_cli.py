"""`cnnsize calc`, `explain` and `fit` on the command line, and the worked arithmetic of the calculators."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnnsize import DoesNotFit
from cnnsize.calc import conv_output_size, conv_params
from cnnsize.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- the strings, from the seed slides -------------------------------------------------------------------

def test_worked_output_size():
    # seed 001_be9802bede35e9ba.txt: "(32+2*2-5)/1+1 = 32 spatially"
    assert conv_output_size(32, 5, 1, 2, explain=True).steps == ("(32 + 2·2 − 5)/1 + 1 = 32",)


def test_worked_params():
    # seed 001: "5*5*3 + 1 = 76 params (+1 for bias) => 76*10 = 760"
    worked = conv_params(3, 10, 5, explain=True)
    assert worked.steps == ("(5·5·3 + 1)·10 = 760",) and worked == 760


def test_worked_misfit():
    # seed 000_ed85fa856022e0dc.txt: "stride 3 => (7 - 3)/3 + 1 = 2.33: ... doesn't fit!"
    with pytest.raises(DoesNotFit) as info:
        conv_output_size(7, 3, 3, explain=True)
    assert info.value.message == "(7 − 3)/3 + 1 = 2.33: does not fit"


# --- calc ----------------------------------------------------------------------------------------------------------

def test_calc_conv(capsys):
    code, out, err = run(capsys, "calc", "conv", "--input", "3x32x32", "--filters", "10", "--kernel", "5",
                         "--stride", "1", "--pad", "2")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert "output volume: 10×32×32" in lines  # seed 001: "32x32x10" output (channels first in cnnsize)
    assert "  height: (32 + 2·2 − 5)/1 + 1 = 32" in lines
    assert "params: (5·5·3 + 1)·10 = 760" in lines
    # 10·32·32 outputs, each a 5·5·3 dot product
    assert f"connections = MACs: 10240·5·5·3 = {10 * 32 * 32 * 5 * 5 * 3}" in lines


def test_calc_conv_lenet_c1(capsys):
    # seed 003_6cfb033e448c35e6.txt, "Sizes of layers in LeNet": C1 4704 units, 117,600 connections, 150 weights
    code, out, _ = run(capsys, "calc", "conv", "-i", "1x32x32", "-k", "6", "-F", "5", "--no-bias")
    assert code == 0
    assert "output volume: 6×28×28" in out and "= 117600" in out and "weights 150 + biases 0 = 150" in out


def test_calc_pool_and_fc_lenet(capsys):
    # seed 003: S2 1176 units, 4704 connections; F5 120 units, 48,000 connections and weights
    code, out, _ = run(capsys, "calc", "pool", "-i", "6x28x28", "--kernel", "2")
    assert code == 0 and "output volume: 6×14×14" in out and "= 4704" in out and "params: 0" in out
    code, out, _ = run(capsys, "calc", "fc", "-i", "16x5x5", "--units", "120", "--no-bias")
    assert code == 0 and "connections = MACs: 400·120 = 48000" in out and "weights 48000 + biases 0" in out


def test_calc_alexnet_pool1(capsys):
    # seed 000: "[27x27x96] MAX POOL1: 3x3 filters at stride 2" after "[55x55x96] CONV1"
    code, out, _ = run(capsys, "calc", "pool", "-i", "96x55x55", "-F", "3", "-s", "2")
    assert code == 0 and "output volume: 96×27×27" in out and "  height: (55 − 3)/2 + 1 = 27" in out


def test_calc_locally_connected(capsys):
    # no weight sharing: every one of the 32·32 positions has its own 10 filters of 5·5·3 (+ a bias each)
    code, out, _ = run(capsys, "calc", "locally-connected", "-i", "3x32x32", "-k", "10", "-F", "5", "-p", "2")
    assert code == 0 and f"= {32 * 32 * 10 * (5 * 5 * 3 + 1)}" in out


def test_calc_symbolic(capsys):
    # seed 003's convolution column: K²IJ weights, WHK²IJ connections, for J input maps and I filters
    code, out, _ = run(capsys, "calc", "conv", "-i", "JxHxW", "-k", "I", "-F", "K", "--pad", "same", "--no-bias")
    assert code == 0
    assert "output volume: I × H × W" in out
    assert "weights I·J·K^2 + biases 0 = I·J·K^2 parameters" in out
    assert "connections = MACs: (H·I·W)·K·K·J = H·I·J·K^2·W" in out


def test_calc_does_not_fit(capsys):
    code, out, err = run(capsys, "calc", "conv", "-i", "1x7x7", "-k", "1", "-F", "3", "-s", "3")
    assert code == 2 and out == ""
    assert err.startswith("cnnsize: error: (7 − 3)/3 + 1 = 2.33: does not fit;") and err.count("\n") == 1


@pytest.mark.parametrize("argv, says", [
    (["calc", "conv", "-i", "3x32x32", "-F", "5"], "--filters is required"),
    (["calc", "conv", "-i", "3x32x32", "-k", "10", "-F", "0"], "--kernel must be at least 1, got 0"),
    (["calc", "conv", "-i", "3x32x32", "-k", "1.5", "-F", "5"], "'1.5' is neither a whole number nor a name"),
    (["calc", "conv", "-i", "3x4x4", "-k", "4", "-F", "5"], "the 5-wide filter is larger than the 4-wide padded input"),
    (["calc", "conv", "-i", "3x-2x32", "-k", "4", "-F", "5"], "'-2' is neither a positive integer nor a name"),
    (["calc", "conv", "-k", "4", "-F", "5"], "--input is required"),
    (["calc", "conv", "-i", "3x32x32", "-k", "10", "-F", "5", "--filtres", "3"], "unrecognized arguments: --filtres"),
    (["calc", "conv", "-i", "3x32x32", "-k", "10", "-F", "5", "--stride"], "expected one argument"),
    (["calc", "pool", "-i", "3x32x32", "-F", "2", "-t", "median"], "unknown pooling type 'median'"),
    (["calc", "conv", "-i", "3x32x32", "-k", "10", "-F", "5", "--fit", "round"], "unknown fit rule 'round'"),
    (["calc", "fc", "-i", "4096"], "--units is required"),
    (["explain", "lenet5", "--layer", "C9"], "unknown layer 'C9'"),
    (["fit", "vgg16", "--min", "300", "--max", "200"], "min (300) is larger than max (200)"),
])
def test_bad_arguments_are_one_line(capsys, argv, says):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("cnnsize: error: ") and says in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_no_traceback_from_the_real_script():
    proc = subprocess.run([sys.executable, "-m", "cnnsize", "calc", "conv", "--input", "3x32x32", "--zzz"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["cnnsize: error: unrecognized arguments: --zzz; see 'cnnsize calc conv -h'"]


# --- explain and fit ------------------------------------------------------------------------------------------------

def test_explain_layer(capsys):
    # seed 000: "[55x55x96] CONV1: 96 11x11 filters at stride 4, pad 0" on "[227x227x3] INPUT"
    code, out, _ = run(capsys, "explain", "alexnet_cs231n", "--layer", "CONV1")
    assert code == 0
    assert out.splitlines()[:5] == ["CONV1: conv (filters=96, kernel=11, stride=4)", "  3×227×227 → 96×55×55",
                                    "  height: (227 − 11)/4 + 1 = 55", "  width: (227 − 11)/4 + 1 = 55",
                                    "  params: (11·11·3 + 1)·96 = 34944"]


def test_explain_stops_where_it_breaks(capsys):
    code, out, err = run(capsys, "explain", "alexnet_cs231n", "--input", "3x224x224")
    assert code == 2 and out == ""
    assert "layer 'CONV1': (224 − 11)/4 + 1 = 54.25: does not fit" in err


def test_explain_symbolic(capsys):
    code, out, _ = run(capsys, "explain", "alexnet_cs231n", "--input", "3xHxW", "--layer", "CONV1")
    assert code == 0
    assert "  height: (H − 11)/4 + 1 = (H − 7)/4, a whole number when H ≡ 3 (mod 4) and H ≥ 11 (H = 11, 15, 19, …)" \
        in out.splitlines()


def test_fit_cli(capsys):
    # seed 000: AlexNet's input is 227x227 ("[227x227x3] INPUT"); 224 gives (224 − 11)/4 + 1 = 54.25
    code, out, _ = run(capsys, "fit", "alexnet_cs231n", "--size", "224")
    assert code == 0
    lines = out.splitlines()
    assert "every 32nd size from 67 (n ≡ 3 (mod 32))" in lines[0]
    assert lines[1].startswith("224 does not fit: ") and "54.25" in lines[1]
    assert lines[2].endswith(" and 227.")
    code, out, _ = run(capsys, "fit", "alexnet_cs231n", "--size", "227", "--min", "200", "--max", "300")
    assert code == 0 and "227, 259, 291" in out and out.splitlines()[1].startswith("227 fits.")


def test_fit_json(capsys):
    import json

    code, out, _ = run(capsys, "fit", "alexnet_cs231n", "--min", "200", "--max", "260", "--size", "224", "-f", "json")
    doc = json.loads(out)
    assert code == 0 and doc["sizes"] == [227, 259] and doc["step"] == 32
    assert doc["size"]["fits"] is False and doc["size"]["nearest_above"] == 227
