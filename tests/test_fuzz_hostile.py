"""Fuzzing where the bugs were (issue 15): expression trees of every operator, function and value type; bundled
specs mutated as typos and hostile edits do; -o targets and standard-input encodings at the command line.

The property everywhere: a result whose per-layer sums equal its totals, or a CnnsizeError with a location (one
line); never another exception; bounded time. The default run keeps a few hundred examples per strategy; the
slow set runs at least 1,000 each, and CNNSIZE_FUZZ_EXAMPLES=N runs N (long runs).
"""

from __future__ import annotations

import copy
import io
import os
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnnsize
from cnnsize.core.errors import CnnsizeError, SpecError
from cnnsize.core.expr import evaluate
from cnnsize.core.numeric import is_int
from cnnsize.engine.result import COUNT_FIELDS
from cnnsize.spec.sources import bundled_names, bundled_path

LONG = int(os.environ.get("CNNSIZE_FUZZ_EXAMPLES", "0"))
FAST = settings(max_examples=LONG or 150, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=max(LONG, 1000), deadline=None, suppress_health_check=list(HealthCheck))


def both(strategy):
    """A fast test (default run) and a slow one (>= 1,000 examples) of one property."""
    def wrap(prop):
        fast = FAST(given(strategy)(prop))
        slow = pytest.mark.slow(SLOW(given(strategy)(prop)))
        return fast, slow
    return wrap


# -- expression trees ----------------------------------------------------------------------------------------
VARIABLES = {"n": 7, "z": 0, "neg": -3, "big": 10**300, "f": 1.0e300, "half": 0.5, "nan": float("nan"),
             "inf": float("inf"), "s": "text", "e": "", "l": [1, 2], "empty": [], "d": {"a": 1}, "t": True,
             "no": False, "none": None, "in": {"channels": 16, "height": 8, "width": 8}}
LEAVES = st.one_of(st.integers(0, 10**6).map(str), st.sampled_from(["0", "1", "2", "256", "4097", "9" * 400]),
                   st.sampled_from(sorted(VARIABLES)), st.sampled_from(["'a'", '"b"', "''", "true", "false",
                                                                         "1.5", "0.0", "1e3", "in.channels",
                                                                         "in.nope", "d.a", "l.x", "undefined"]))
BINARY = ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "and", "or"]


def _tree(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(BINARY), children).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(st.sampled_from(["-", "+", "not "]), children).map(lambda t: f"{t[0]}{t[1]}"),
        children.map(lambda c: f"({c})"),
        st.tuples(children, children, children).map(lambda t: f"{t[0]} if {t[1]} else {t[2]}"),
        st.tuples(st.sampled_from(["min", "max", "abs", "make_divisible"]),
                  st.lists(children, max_size=4)).map(lambda t: f"{t[0]}({', '.join(t[1])})"))


EXPRESSIONS = st.one_of(st.recursive(LEAVES, _tree, max_leaves=25),
                        st.integers(1, 200).map(lambda k: "(" * k + "1" + ")" * k),
                        st.integers(1, 990).map(lambda k: "-" * k + "1"),
                        st.text(alphabet="()+-*/%<>=!,.'\" 0123456789abcdefinlot_", max_size=80))


def expression_property(text):
    try:
        evaluate(text, VARIABLES, "filters")
    except SpecError as exc:
        line = exc.one_line()
        assert "\n" not in line and line.startswith("filters: ") and len(line) < 2000, line


test_expression_trees, test_expression_trees_long = both(EXPRESSIONS)(expression_property)


# -- bundled specs, mutated -----------------------------------------------------------------------------------
TEXTS = {name: bundled_path(name).read_text() for name in bundled_names()}
SMALL = [n for n in ("lenet5", "alexnet_cs231n", "mobilenet_v2", "resnet18", "squeezenet1_0") if n in TEXTS]
HOSTILE_VALUES = st.one_of(
    st.sampled_from([0, -1, 10**400, 2**53 + 1, 1.0e300, 12345678901234567.0, float("inf"), float("nan"), "",
                     "\x1b]0;PWNED\x07\x1b[2J", "a\nb", "x" * 300, [], {}, [[]], None, True, "1e400",
                     "min(4)", "k * 10**8", "(" * 80, "in.channels", "make_divisible(in.channels, 8)"]),
    st.integers(-(10**20), 10**20), st.text(max_size=10))


@st.composite
def mutated_spec(draw):
    """A bundled spec after 1-4 hostile edits, as YAML text (some edits work on the text: merge keys, typos)."""
    name = draw(st.sampled_from(SMALL))
    doc = yaml.safe_load(TEXTS[name])
    for _ in range(draw(st.integers(1, 4))):
        _edit(draw, doc)
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except (yaml.YAMLError, ValueError, OverflowError):
        text = TEXTS[name]
    action = draw(st.sampled_from(["none", "merge", "duplicate_key", "typo", "truncate"]))
    if action == "merge":
        text = ("defaults: &d {filters: 8, kernel: 3}\n" + text).replace("conv: {", "conv: {<<: *d, ", 1)
    elif action == "duplicate_key":
        text = text.replace("kernel:", "kernel: 3, kernel:", 1) if "kernel: " in text else text
    elif action == "typo" and len(text) > 10:
        i = draw(st.integers(0, len(text) - 1))
        text = text[:i] + draw(st.sampled_from(["", "x", ":", "-", "\t", "{", "\x1b", "é"])) + text[i + 1:]
    elif action == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    return text


def _edit(draw, doc):
    layers = doc.get("layers") if isinstance(doc, dict) else None
    action = draw(st.sampled_from(["drop_key", "swap_type", "duplicate_layer", "shuffle_from", "huge", "top",
                                   "control", "drop_layer"]))
    if not isinstance(layers, list) or not layers:
        return
    i = draw(st.integers(0, len(layers) - 1))
    entry = layers[i]
    body = next(iter(entry.values())) if isinstance(entry, dict) and len(entry) == 1 else None
    if action == "duplicate_layer":
        layers.insert(i, copy.deepcopy(entry))
    elif action == "drop_layer" and len(layers) > 1:
        layers.pop(i)
    elif action == "top":
        doc[draw(st.sampled_from(["input", "fit", "name", "notes", "vars", "blocks"]))] = draw(HOSTILE_VALUES)
    elif action == "control":
        if isinstance(body, dict):
            body["name"] = draw(st.sampled_from(["\x1b[2J", "a\nb", "\x00", "\u202e", "tab\there"]))
    elif isinstance(body, dict) and body:
        key = draw(st.sampled_from(sorted(body)))
        if action == "drop_key":
            body.pop(key)
        elif action == "shuffle_from":
            body["from"] = draw(st.sampled_from(["input", "nope", "in", ["input", "input"], 3, "{i}"]))
        else:
            body[key] = draw(HOSTILE_VALUES)


def check_spec(text):
    try:
        a = cnnsize.analyze(text)
    except CnnsizeError as exc:
        line = exc.one_line()
        assert exc.location is not None and "\n" not in line, line
        return
    for key in COUNT_FIELDS:  # per-layer figures add up to the totals
        values = [getattr(r, key) for r in a.layers]
        if all(map(is_int, values)):
            assert sum(values) == a.totals[key], key


test_mutated_specs, test_mutated_specs_long = both(mutated_spec())(check_spec)


# -- the command line: -o targets and standard input -------------------------------------------------------------
TARGETS = st.sampled_from(["new.md", "new.json", "new.csv", "new.tex", "new.html", "new.txt", "noext", "ro.md",
                           "folder", "missing/x.md", "/dev/null", "link.csv", "-", ".", "x\x1b[2J.md"])
FORMATS = st.sampled_from([None, "table", "markdown", "csv", "json", "latex", "html"])


def cli_output_property(target, fmt, tmp_path_factory):
    from cnnsize.cli import main

    folder = tmp_path_factory.mktemp("out")
    (folder / "folder").mkdir()
    ro = folder / "ro.md"
    ro.write_text("keep")
    ro.chmod(0o444)
    (folder / "real.csv").write_text("x")
    (folder / "link.csv").symlink_to(folder / "real.csv")
    path = target if target.startswith("/") or target == "-" else str(folder / target)
    args = ["report", "lenet5", "-o", path] + (["-f", fmt] if fmt else [])
    err = io.StringIO()
    out = io.StringIO()
    real_err, real_out = sys.stderr, sys.stdout
    sys.stderr, sys.stdout = err, out
    try:
        code = main(args)
    finally:
        sys.stderr, sys.stdout = real_err, real_out
    assert code in (0, 2), err.getvalue()
    if code == 2:
        assert len(err.getvalue().strip().splitlines()) == 1 and "\x1b" not in err.getvalue()
    assert not [p for p in folder.iterdir() if p.name.startswith(".cnnsize-")]
    assert ro.read_text() == "keep"


@FAST
@given(TARGETS, FORMATS)
def test_output_targets(tmp_path_factory, target, fmt):
    cli_output_property(target, fmt, tmp_path_factory)


@pytest.mark.slow
@SLOW
@given(TARGETS, FORMATS)
def test_output_targets_long(tmp_path_factory, target, fmt):
    cli_output_property(target, fmt, tmp_path_factory)


SPEC_TEXT = "name: ünïcode ✓\ninput: [3, 32, 32]\nlayers: [{conv: {filters: 4, kernel: 3}}, relu]\n"
ENCODED = st.one_of(
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"]).map(
        lambda enc: SPEC_TEXT.encode(enc, "replace")),
    st.binary(max_size=200),
    st.binary(max_size=50).map(lambda b: SPEC_TEXT.encode() + b))


def stdin_property(data):
    from cnnsize.cli import main

    real_in, real_err, real_out = sys.stdin, sys.stderr, sys.stdout
    sys.stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    sys.stderr, sys.stdout = io.StringIO(), io.StringIO()
    try:
        code = main(["report", "-", "-f", "json"])
        err = sys.stderr.getvalue()
    finally:
        sys.stdin, sys.stderr, sys.stdout = real_in, real_err, real_out
    assert code in (0, 2), err
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "\x1b" not in err


test_stdin_encodings, test_stdin_encodings_long = both(ENCODED)(stdin_property)
