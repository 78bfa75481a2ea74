"""Hypothesis fuzzing: any spec, however mangled, ends in a report or a located CnnsizeError.

Run long with: CNNSIZE_FUZZ_EXAMPLES=100000 python -m pytest tests/test_fuzz.py (the default set draws 200 per
test, the slow set's `_long` twins 1,000).
"""

from __future__ import annotations

import copy
import os

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cnnsize
from cnnsize.core.errors import CnnsizeError
from cnnsize.spec.sources import bundled_names, bundled_path

# the default set draws a few hundred examples per test; the slow set's `_long` twins the thousand of before
LONG = int(os.environ.get("CNNSIZE_FUZZ_EXAMPLES", "0"))
FAST = settings(max_examples=LONG or 200, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=max(LONG, 1000), deadline=None, suppress_health_check=list(HealthCheck))

SPECS = {name: yaml.safe_load(bundled_path(name).read_text()) for name in bundled_names()}
SMALL = [n for n in SPECS if n in ("lenet5", "alexnet_cs231n")] or list(SPECS)[:2]

EXTREME = st.one_of(
    st.integers(-(10**30), 10**30), st.sampled_from([0, -1, 1, 2, 3, 10**18, 2**63, 2**64 + 1]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.booleans(), st.none(),
    st.lists(st.integers(-3, 9), max_size=4), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sampled_from(["same", "valid", "x * 2", "{i}", "1/0", "2**9999", "width", "((", "3 +", "!!python/none"]))
KEYS = st.sampled_from(["filters", "kernel", "stride", "pad", "dilation", "groups", "bias", "units", "name", "from",
                        "p", "inplace", "ceil_mode", "output", "size", "trainable", "repeat", "layers", "kernal", ""])


def check(spec) -> None:
    try:
        a = cnnsize.analyze(spec)
    except CnnsizeError as exc:
        assert exc.location is not None, exc.one_line()
        line = exc.one_line()
        assert "\n" not in line and line
        return
    assert a.totals["params"] >= 0


@st.composite
def mutated(draw):
    doc = copy.deepcopy(SPECS[draw(st.sampled_from(SMALL))])
    layers = doc["layers"]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(layers) - 1))
        action = draw(st.sampled_from(["drop_key", "rename_key", "set_value", "add_key", "replace_layer",
                                       "drop_layer", "top_level"]))
        entry = layers[i]
        body = next(iter(entry.values())) if isinstance(entry, dict) and len(entry) == 1 else None
        if action == "drop_layer" and len(layers) > 1:
            layers.pop(i)
        elif action == "replace_layer":
            layers[i] = draw(st.one_of(EXTREME, st.sampled_from(["relu", "conv", "fc", "bogus", "repeat"])))
        elif action == "top_level":
            doc[draw(st.sampled_from(["input", "fit", "name", "layers", "vars", "extra"]))] = draw(EXTREME)
        elif isinstance(body, dict) and body:
            key = draw(st.sampled_from(sorted(body)))
            if action == "drop_key":
                body.pop(key)
            elif action == "rename_key":
                body[draw(KEYS)] = body.pop(key)
            else:
                body[key if action == "set_value" else draw(KEYS)] = draw(EXTREME)
    return doc


@FAST
@given(mutated())
def test_mutated_bundled_specs(doc):
    check(doc)


@pytest.mark.slow
@SLOW
@given(mutated())
def test_mutated_bundled_specs_long(doc):
    test_mutated_bundled_specs.hypothesis.inner_test(doc)


@FAST
@given(mutated())
def test_mutated_specs_as_yaml_text(doc):
    try:
        text = yaml.safe_dump(doc)
    except (yaml.YAMLError, ValueError):
        assume(False)
    check(text)


@pytest.mark.slow
@SLOW
@given(mutated())
def test_mutated_specs_as_yaml_text_long(doc):
    test_mutated_specs_as_yaml_text.hypothesis.inner_test(doc)


YAML_TEXT = st.text(alphabet=st.sampled_from(list("abc:-[]{},&*!|>'\"#\n\t 0123456789.xyz")), max_size=120)


@FAST
@given(YAML_TEXT)
def test_random_yaml_documents(text):
    check(text if "\n" in text or ":" in text else text + "\n")


@pytest.mark.slow
@SLOW
@given(YAML_TEXT)
def test_random_yaml_documents_long(text):
    test_random_yaml_documents.hypothesis.inner_test(text)


STRUCTURES = st.recursive(st.one_of(st.integers(-5, 300), st.text(max_size=6), st.none(), st.booleans()),
                          lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                  st.dictionaries(st.sampled_from(["input", "layers", "conv", "relu",
                                                                                   "repeat", "fc", "kernel", "filters",
                                                                                   "units", "name"]), inner,
                                                                  max_size=4)),
                          max_leaves=20)


@FAST
@given(STRUCTURES)
def test_random_structures(doc):
    check(yaml.safe_dump(doc))
    if isinstance(doc, dict):
        check(doc)


@pytest.mark.slow
@SLOW
@given(STRUCTURES)
def test_random_structures_long(doc):
    test_random_structures.hypothesis.inner_test(doc)
