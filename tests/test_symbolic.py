"""Symbolic sizing: formulas from the layer classes checked against the seed slides, torch and the numeric path."""

from __future__ import annotations

import json
import re

import pytest
import sympy as sp

import cnnsize
from cnnsize.calc import conv_output_size, pool_output_size, window_output
from cnnsize.core.numeric import prod
from cnnsize.engine.result import COUNT_FIELDS
from cnnsize.layers import REGISTRY, RF, Ctx

H, W, I, J, K, C, N, F, S, P = sp.symbols("H W I J K C N F S P", positive=True, integer=True)  # noqa: E741
SYMBOLS = {"H": H, "W": W, "I": I, "J": J, "K": K, "C": C}


def slide_monomial(text: str):
    """A slide's product such as '$W^2H^2IJ$' or '3 * (3^2 C^2)' as a sympy expression (letters, ^powers, integers)."""
    out = sp.Integer(1)
    for token in re.findall(r"\d+\^\d+|\d+|[A-Z]\^\d+|[A-Z]", text):
        base, _, power = token.partition("^")
        value = SYMBOLS[base] if base.isalpha() else sp.Integer(int(base))
        out *= value ** int(power or 1)
    return out


# --- seed 003_6cfb033e448c35e6.txt: "Size of a Conv Net", fully connected vs convolution layer --------------
# 	fully connected layer	convolution layer
# # output units	$WHI$	$WHI$
# # weights	$W^2H^2IJ$	$K^2IJ$
# # connections	$W^2H^2IJ$	$WHK^2IJ$
SLIDE_003 = {"units": ("$WHI$", "$WHI$"), "weights": ("$W^2H^2IJ$", "$K^2IJ$"),
             "connections": ("$W^2H^2IJ$", "$WHK^2IJ$")}


def test_fc_vs_conv_table_from_the_layer_classes():
    # J input maps of W×H; I output maps of W×H; a K×K filter with 'same' padding (output as large as input).
    x = (J, H, W)
    ctx = Ctx()
    fc = REGISTRY["fc"]({"units": W * H * I, "bias": False})
    conv = REGISTRY["conv"]({"filters": I, "kernel": K, "pad": "same", "bias": False})
    figures = {}
    for name, layer in (("fc", fc), ("conv", conv)):
        out = layer.output_shape([x], ctx)
        counts = layer.counts([x], out)
        figures[name] = {"units": prod(out), "weights": counts.weights, "connections": counts.connections}
    for row, (fc_text, conv_text) in SLIDE_003.items():
        assert sp.simplify(figures["fc"][row] - slide_monomial(fc_text)) == 0, row
        assert sp.simplify(figures["conv"][row] - slide_monomial(conv_text)) == 0, row
    assert ctx.conditions == []  # 'same' padding fits for every H, W and K


def test_three_3x3_convs_against_one_7x7():
    # seed 000_ed85fa856022e0dc.txt: "Stack of three 3x3 conv (stride 1) layers has same effective receptive
    # field as one 7x7 conv layer ... And fewer parameters: 3 * (3^2 C^2) vs. 7^2 C^2 for C channels per layer"
    x = (C, H, W)
    stack = [REGISTRY["conv"]({"filters": C, "kernel": 3, "pad": 1, "bias": False}) for _ in range(3)]
    big = REGISTRY["conv"]({"filters": C, "kernel": 7, "pad": 3, "bias": False})
    ctx = Ctx()
    rf, shape, weights = RF.identity(2), x, 0
    for layer in stack:
        out = layer.output_shape([shape], ctx)
        weights += layer.counts([shape], out).weights
        rf = layer.receptive([rf], [shape], out)
        shape = out
    out7 = big.output_shape([x], ctx)
    rf7 = big.receptive([RF.identity(2)], [x], out7)
    assert rf.size == rf7.size == (7, 7)
    assert shape == out7 == x
    assert sp.expand(weights - slide_monomial("3 * (3^2 C^2)")) == 0
    assert sp.expand(big.counts([x], out7).weights - slide_monomial("7^2 C^2")) == 0


def test_output_size_formula_matches_the_slide():
    # seed 000: "Output size: (N - F) / stride + 1"
    assert sp.simplify(conv_output_size(N, F, S) - ((N - F) / S + 1)) == 0
    conditions: list = []
    window_output(N, F, S, P, conditions=conditions)
    assert conditions == [(N + 2 * P - F, S)]


@pytest.mark.parametrize("name, channels, size", [pytest.param("vgg16", 3, 224, marks=pytest.mark.slow),
                                                   pytest.param("alexnet_cs231n", 3, 227, marks=pytest.mark.slow),
                                                   ("lenet5", 1, 32)])
def test_symbolic_analysis_substituted_equals_numeric(name, channels, size):
    sym = cnnsize.analyze(name, input_shape=(channels, H, W))
    num = cnnsize.analyze(name)
    assert num.input_shape == (channels, size, size)
    at = {H: size, W: size}

    def value(v):
        return v if isinstance(v, int) else int(sp.sympify(v).subs(at))

    for s_row, n_row in zip(sym.layers, num.layers, strict=True):
        assert tuple(value(v) for v in s_row.output_shape) == n_row.output_shape, s_row.name
        for key in (*COUNT_FIELDS, "param_bytes", "activation_bytes"):
            assert value(getattr(s_row, key)) == getattr(n_row, key), (s_row.name, key)
        if n_row.receptive_field is not None:
            for part in ("size", "stride", "start"):
                got = tuple(value(v) for v in getattr(s_row.receptive_field, part))
                assert got == getattr(n_row.receptive_field, part), (s_row.name, part)
    for key in COUNT_FIELDS:
        assert value(sym.totals[key]) == num.totals[key], key
    for key, v in num.totals["memory"].items():
        if isinstance(v, int) and not isinstance(v, bool) and sym.totals["memory"][key] is not None:
            assert value(sym.totals["memory"][key]) == v, key
    assert sym.fit_conditions.holds({"H": size, "W": size})


@pytest.mark.slow  # a symbolic AlexNet: about 40 s of sympy
def test_alexnet_fit_condition_in_words():
    # seed 000: "[227x227x3] INPUT ... [55x55x96] CONV1: 96 11x11 filters at stride 4, pad 0"; 224 gives 54.25.
    a = cnnsize.analyze("alexnet_cs231n", input_shape=(3, H, W))
    rule = a.fit_conditions.rules["H"]
    assert rule.holds(227) and not rule.holds(224)
    assert a.condition_lines()[0] == "H ≡ 3 (mod 32) and H ≥ 67 (H = 67, 99, 131, …)"
    md = a.to_markdown()
    assert "Every layer fits exactly when: H ≡ 3 (mod 32)" in md
    # CONV1's MACs as a formula; at 227 it is the slide's 55·55·96 outputs times 11·11·3 weights each.
    assert "| 2178·(H − 7)·(W − 7) |" in md
    assert a.layer("CONV1").macs.subs({H: 227, W: 227}) == 55 * 55 * 96 * 11 * 11 * 3
    shape = a.layer("CONV1").output_shape
    assert all(sp.simplify(got - want) == 0 for got, want in zip(shape, (96, (H - 7) / 4, (W - 7) / 4), strict=True))
    assert "| CONV1 | conv (filters=96, kernel=11, stride=4) | 96 × (H − 7)/4 × (W − 7)/4 |" in md


@pytest.mark.parametrize("name", [pytest.param("vgg16", marks=pytest.mark.slow),
                                  pytest.param("alexnet_cs231n", marks=pytest.mark.slow), "lenet5"])
def test_symbolic_rule_agrees_with_the_numeric_walk(name):
    c = 1 if name == "lenet5" else 3
    rule = cnnsize.analyze(name, input_shape=(c, H, W)).fit_conditions.rules["H"]
    walk = cnnsize.fit_sizes(name, min=1, max=300)
    assert [n for n in range(1, 301) if rule.holds(n)] == walk.sizes


@pytest.mark.slow  # a symbolic VGG16
def test_json_formulas_parse_back():
    doc = json.loads(cnnsize.analyze("vgg16", input_shape=(3, H, W)).to_json())
    fc6 = next(r for r in doc["layers"] if r["name"] == "fc6")
    # seed 000, VGG16 table: "FC: [1x1x4096] ... params: 7 × 7 × 512 × 4096 = 102,760,448" (biases apart)
    assert sp.sympify(fc6["weights"], locals={"H": H, "W": W}).subs({H: 224, W: 224}) == 102_760_448
    assert doc["fits_exactly_when"] == ["H ≡ 0 (mod 32) and H ≥ 32 (H = 32, 64, 96, …)",
                                        "W ≡ 0 (mod 32) and W ≥ 32 (W = 32, 64, 96, …)"]


@pytest.mark.parametrize("kernel, stride, pad", [(2, 2, 0), (3, 2, 0), (3, 2, 1), (2, 3, 1), (3, 3, 1), (1, 2, 0)])
def test_ceil_mode_formula_matches_torch(kernel, stride, pad):
    torch = pytest.importorskip("torch")
    formula = pool_output_size(N, kernel, stride, pad, ceil_mode=True)
    for n in range(max(kernel, 2 * pad + 1), 40):
        x = torch.zeros(1, 1, n)
        expected = torch.nn.functional.max_pool1d(x, kernel, stride, pad, ceil_mode=True).shape[-1]
        assert int(sp.sympify(formula).subs(N, n)) == expected, n


@pytest.mark.parametrize("out", [1, 3, 7])
def test_adaptive_pool_connections_match_torch_windows(out):
    torch = pytest.importorskip("torch")
    layer = REGISTRY["adaptive_avgpool"]({"output": out})
    x = (1, N, N)
    counts = layer.counts([x], layer.output_shape([x], Ctx()))
    for n in (7, 10, 13, 224):
        # torch's own window lengths: averaging a ramp 0..n-1 and its squares gives each window's variance,
        # and a run of L consecutive integers has variance (L² − 1)/12.
        ramp = torch.arange(n, dtype=torch.float64).reshape(1, 1, n)
        mean = torch.nn.functional.adaptive_avg_pool1d(ramp, out)
        mean_sq = torch.nn.functional.adaptive_avg_pool1d(ramp**2, out)
        lengths = torch.sqrt(12 * (mean_sq - mean**2) + 1).round().long().flatten().tolist()
        assert int(counts.connections.subs(N, n)) == sum(lengths) ** 2


def test_symbolic_hyperparameters_left_as_conditions():
    a_conditions: list = []
    window_output(H, 5, S, conditions=a_conditions)
    from cnnsize.core.symbolic import solve

    assert solve(a_conditions, [], [H]).lines() == ["S divides H − 5"]
