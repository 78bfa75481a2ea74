"""The expression evaluator is total: every value type, operator and function ends in a value or a SpecError."""

from __future__ import annotations

import math

import pytest

from cnnsize.core.errors import SpecError
from cnnsize.core.expr import MAX_DEPTH, evaluate, make_divisible

from .conftest import need


def torchvision_make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """torchvision.models._utils._make_divisible, re-derived line by line from its source (BSD licence)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # make sure that round down does not go down by more than 10%
        new_v += divisor
    return new_v


@pytest.mark.parametrize("v", [0, 1, 3, 4, 7, 8, 12, 15, 16, 17, 20, 23, 24, 33, 36, 72, 88, 96, 120, 184, 200, 240,
                               480, 672, 960, 1280, 10**6 + 3])
@pytest.mark.parametrize("d", [1, 2, 3, 4, 7, 8, 16])
def test_make_divisible_is_torchvisions_on_ints(v, d):
    assert make_divisible(v, d) == torchvision_make_divisible(v, d)
    assert make_divisible(v, d, 1) == torchvision_make_divisible(v, d, 1)


@pytest.mark.parametrize("mult", [0.25, 0.5, 0.75, 1.0, 1.1, 1.2, 1.4, 1.8, 2.0])
@pytest.mark.parametrize("c", [16, 24, 32, 40, 80, 112, 192, 320, 1280])
def test_make_divisible_is_torchvisions_on_width_multipliers(mult, c):
    """MobileNetV2/V3's _make_divisible(c * width_mult, 8) and EfficientNet's adjust_channels."""
    assert evaluate("make_divisible(c * m, 8)", {"c": c, "m": mult}) == torchvision_make_divisible(c * mult, 8)


@pytest.mark.zoo
def test_make_divisible_against_torchvision_source_when_installed():
    need("torchvision")
    import torchvision.models._utils as tv
    for v in range(0, 400):
        for d in (3, 8):
            assert make_divisible(v, d) == tv._make_divisible(v, d)
            assert make_divisible(v * 0.75, d) == tv._make_divisible(v * 0.75, d)


@pytest.mark.parametrize("text, variables, words", [
    ("min(4)", {}, "min() needs two or more numbers"),
    ("min(3, 'a')", {}, "needs numbers, got the number 3 and text 'a'"),
    ("'a' < 3", {}, "'<' compares two numbers or two texts"),
    ("abs('x')", {}, "needs numbers, got text 'x'"),
    ("min(k)", {"k": []}, "min() of an empty list"),
    ("-k", {"k": [1]}, "'-' needs numbers, got a list of 1"),
    ("d + 1", {"d": {"a": 1}}, "'+' needs numbers, got a mapping"),
    ("f ** 2", {"f": 1.0e300}, "overflows"),
    ("f * f", {"f": 1.0e300}, "overflows"),
    ("k * 10**8", {"k": [1, 2]}, "'*' needs numbers, got a list of 2"),
    ("'a' * 10**8", {}, "'*' needs numbers, got text 'a'"),
    ("2 ** 257", {}, "out of range"),
    ("x * x * x", {"x": 2**8000}, "too large to be a size"),
    ("make_divisible(8)", {}, "make_divisible() takes"),
    ("make_divisible(8, 0)", {}, "divisor must be a positive integer"),
    ("make_divisible(-8, 8)", {}, "value >= 0"),
    ("1 / 0", {}, "division by zero"),
    ("1.5 // 0.0", {}, "division by zero"),
    ("7 / 2", {}, "not a whole number"),
    ("in.channels", {"in": {"channels": 3}, "x": 1}, None),
    ("in.chanels", {"in": {"channels": 3}}, "in has no field 'chanels'"),
    ("x.y", {"x": 3}, "x has no field 'y'"),
    ("f < 1", {"f": math.nan}, "'<' on nan"),
    ("true + 1", {}, "'+' needs numbers, got a boolean"),
    ("(1", {}, "expected ')'"),
    ("min(1, 2", {}, "expected ')'"),
    ("1 +", {}, "ends too early"),
    ("1 if 2", {}, "expected 'else'"),
    ("nope", {"nop": 1}, "did you mean 'nop'?"),
])
def test_every_wrong_operand_is_a_spec_error_that_names_the_expression(text, variables, words):
    if words is None:
        assert evaluate(text, variables) == 3
        return
    with pytest.raises(SpecError) as err:
        evaluate(text, variables, "filters")
    line = err.value.one_line()
    assert words in line and f"filters: expression '{text}'" in line and "\n" not in line


@pytest.mark.parametrize("text", ["(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1), "-" * 999 + "1",
                                  "not " * 240 + "true", "2 ** " * 300 + "1", "1 if " * 190 + "true" + " else 1" * 190])
def test_deep_nesting_is_refused_without_recursion_error(text):
    text = text[:1000]
    with pytest.raises(SpecError, match="nested more than|ends too early|longer than|expected"):
        evaluate(text, {})


def test_long_expressions_are_cut_in_messages():
    text = "1 + " * 240 + "x"
    with pytest.raises(SpecError) as err:
        evaluate(text, {})
    assert len(err.value.one_line()) < 400


def test_valid_expressions_still_work():
    v = {"w": 64, "i": 2, "k": [1, 7], "down": True, "f": 0.5}
    assert evaluate("w * 4 + i", v) == 258
    assert evaluate("w / 2", v) == 32 and evaluate("w // 3", v) == 21 and evaluate("w % 5", v) == 4
    assert evaluate("2 ** 10", v) == 1024 and evaluate("-w", v) == -64
    assert evaluate("min(w, 3)", v) == 3 and evaluate("max(k)", v) == 7 and evaluate("abs(-3)", v) == 3
    assert evaluate("1 if down and i >= 2 else 0", v) == 1
    assert evaluate("not down or i == 2", v) is True
    assert evaluate("k", v) == [1, 7] and evaluate("'a' == 'a'", v) is True
    assert evaluate("w * f", v) == 32.0 and evaluate("w * 0.25", v) == 16.0


def test_symbolic_sizes_work_in_arithmetic_and_refuse_comparison():
    sp = pytest.importorskip("sympy")
    h = sp.Symbol("H", positive=True, integer=True)
    assert evaluate("h * 2 + 1", {"h": h}) == 2 * h + 1
    assert evaluate("max(h, 3)", {"h": h}) == sp.Max(h, 3)
    with pytest.raises(SpecError, match="depends on the input size"):
        evaluate("h > 3", {"h": h})


IN_SHAPE_SPEC = """
input: [3, 32, 32]
blocks:
  widen:
    args: {t: 6, out: ~, exp: "make_divisible(in.channels * t, 8)"}
    layers:
      - if: exp != in.channels
        layers: [{conv: {filters: exp, kernel: 1}}]
      - conv: {filters: out, kernel: 3, pad: 1}
  transition:
    layers:
      - conv: {filters: "in.channels // 2", kernel: 1}
      - avgpool: {kernel: 2, stride: 2}
  square:
    layers:
      - conv: {filters: "in.height // 4 + in.width // 8", kernel: 1}
layers:
  - conv: {filters: 20, kernel: 3, pad: 1}
  - widen: {out: 24}
  - widen: {out: 24, t: 1}
  - transition
  - square
"""


def test_blocks_read_their_inputs_shape_and_follow_input_overrides():
    """The same network written with every width by hand (the widths worked out here, independently), and torch's
    count of its parameters."""
    import cnnsize

    def by_hand(c: int, h: int) -> str:
        exp = torchvision_make_divisible(20 * 6, 8)
        return f"""
input: [{c}, {h}, {h}]
layers:
  - conv: {{filters: 20, kernel: 3, pad: 1}}
  - conv: {{filters: {exp}, kernel: 1}}
  - conv: {{filters: 24, kernel: 3, pad: 1}}
  - conv: {{filters: 24, kernel: 3, pad: 1}}
  - conv: {{filters: 12, kernel: 1}}
  - avgpool: {{kernel: 2, stride: 2}}
  - conv: {{filters: {h // 2 // 4 + h // 2 // 8}, kernel: 1}}
"""

    for shape in (None, (5, 64, 64)):
        got = cnnsize.analyze(IN_SHAPE_SPEC, input_shape=shape)
        want = cnnsize.analyze(by_hand(*(shape or (3, 32))[:2]))
        assert [r.output_shape for r in got.layers] == [r.output_shape for r in want.layers]
        assert got.totals["params"] == want.totals["params"]
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 20, 3, padding=1), nn.Conv2d(20, 120, 1), nn.Conv2d(120, 24, 3, padding=1),
                          nn.Conv2d(24, 24, 3, padding=1), nn.Conv2d(24, 12, 1), nn.AvgPool2d(2), nn.Conv2d(12, 6, 1))
    assert cnnsize.analyze(IN_SHAPE_SPEC).totals["params"] == sum(p.numel() for p in model.parameters())


def test_in_outside_a_block_says_where_it_works():
    import cnnsize

    with pytest.raises(SpecError, match="work inside a block"):
        cnnsize.analyze("input: [3, 8, 8]\nlayers: [{conv: {filters: in.channels, kernel: 1}}]\n")
