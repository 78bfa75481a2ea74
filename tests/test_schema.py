"""The JSON Schema of the spec format: shipped fresh, valid, accepting every bundled spec and rejecting the
mistakes cnnsize itself rejects."""

from __future__ import annotations

import json

import pytest
import yaml

import cnnsize
from cnnsize.spec.schema import SCHEMA_FILE, build_schema, schema_text
from cnnsize.spec.sources import bundled_names, bundled_path

from .conftest import heavy_detector, run_cli

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def validator():
    schema = build_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_shipped_schema_is_fresh_and_printed_by_the_cli():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), "run python -m cnnsize.spec.schema"
    result = run_cli("schema")
    assert result.returncode == 0 and json.loads(result.stdout) == build_schema()
    assert run_cli("schema", "--path").stdout.strip() == str(SCHEMA_FILE)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if heavy_detector(n) else n
                                  for n in bundled_names()])  # the big detectors' specs: seconds each, slow set
def test_every_bundled_spec_validates(name, validator):
    doc = yaml.safe_load(bundled_path(name).read_text(encoding="utf-8"))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, errors[:3]


BAD = {
    "typo in a setting": "input: [3, 8, 8]\nlayers:\n  - conv: {filters: 4, kernal: 3}\n",
    "missing required setting": "input: [3, 8, 8]\nlayers:\n  - conv: {kernel: 3}\n",
    "unknown top-level key": "input: [3, 8, 8]\nlayer:\n  - relu\n",
    "bad choice": "input: [3, 8, 8]\nfit: round\nlayers:\n  - relu\n",
    "negative size": "input: [3, 8, 8]\nlayers:\n  - conv: {filters: -1, kernel: 3}\n",
    "two kinds in one entry": "input: [3, 8, 8]\nlayers:\n  - {relu: {}, conv: {filters: 1, kernel: 1}}\n",
    "bad pad word": "input: [3, 8, 8]\nlayers:\n  - conv: {filters: 1, kernel: 3, pad: 1.5}\n",
}


@pytest.mark.parametrize("why", BAD)
def test_schema_rejects_what_cnnsize_rejects(why, validator):
    text = BAD[why]
    with pytest.raises(cnnsize.CnnsizeError):
        cnnsize.analyze(text)
    assert list(validator.iter_errors(yaml.safe_load(text))), why


def test_schema_accepts_expressions_lists_and_nulls(validator):
    text = ("vars: {w: 8}\ninput: [3, 16, 16]\nlayers:\n  - conv: {filters: w * 2, kernel: [3, 3], pad: same}\n"
            "  - bn: null\n  - relu\n  - repeat: 2\n    layers: [relu]\n  - flatten\n"
            "  - fc: {units: 10, bias: false}\n")
    cnnsize.analyze(text)
    assert not list(validator.iter_errors(yaml.safe_load(text)))


def test_every_layer_kind_and_setting_is_described(validator):
    from cnnsize.layers.base import REGISTRY

    defs = build_schema()["definitions"]
    for kind, cls in REGISTRY.items():
        body = defs[f"kind.{kind}"]
        obj = body if "properties" in body else body["anyOf"][0]
        assert set(cls.params) <= set(obj["properties"]), kind
        for key, p in cls.params.items():
            if p.choices:
                assert obj["properties"][key]["enum"] == list(p.choices)
