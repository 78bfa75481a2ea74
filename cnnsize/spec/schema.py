"""A JSON Schema of the spec format, generated from the layer registry (the one source of truth).

Editors validate and autocomplete specs with it: put
``# yaml-language-server: $schema=<path printed by `cnnsize schema --path`>`` on a spec's first line.
The package ships the generated file (``cnnsize/spec.schema.json``); ``cnnsize schema`` prints the
schema the running code generates, and a test keeps the shipped file equal to it.
Regenerate the file with ``python -m cnnsize.spec.schema``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..layers.base import COMMON_KEYS, REGISTRY
from . import expand

SCHEMA_FILE = Path(__file__).parent.parent / "spec.schema.json"  # cnnsize/spec.schema.json
EXPR = {"$ref": "#/definitions/expression"}


def _int(minimum: int) -> dict:
    return {"anyOf": [{"type": "integer", "minimum": minimum}, EXPR]}


def _ints(minimum: int) -> dict:
    one = _int(minimum)
    return {"anyOf": [{"type": "integer", "minimum": minimum}, EXPR,
                      {"type": "array", "minItems": 1, "items": one}]}


def param_schema(param) -> dict:
    """The JSON Schema of one layer parameter, from its declared type, default, choices and doc."""
    t = param.type
    if t == "int":
        out = _int(1)
    elif t == "count":
        out = _int(0)
    elif t in ("ints", "size"):
        out = _ints(1)
    elif t == "ints_or_zero":
        out = _ints(0)
    elif t == "pads":
        out = _ints(0)
        out["anyOf"].insert(0, {"enum": ["same", "valid"]})
    elif t == "bool":
        out = {"anyOf": [{"type": "boolean"}, EXPR]}
    elif t in ("float", "fill"):
        out = {"anyOf": [{"type": "number"}, EXPR]}
    elif t == "positive":
        out = {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, EXPR]}
    elif t == "probability":
        out = {"anyOf": [{"type": "number", "minimum": 0, "maximum": 1}, EXPR]}
    elif t == "choice":
        out = {"enum": list(param.choices)}
    elif t == "str":
        out = {"type": "string"}
    else:  # pragma: no cover - a new parameter type must be added here
        raise ValueError(f"no JSON Schema for parameter type {t!r}")
    if param.doc:
        out["description"] = param.doc
    if not param.required and param.default is not None:
        default = param.default
        out["default"] = list(default) if isinstance(default, tuple) else default
    return out


def near_misses(kinds: list[str]) -> str:
    """A regular expression matching every name one typo (a letter dropped, added, changed or swapped) from a
    layer kind, so that an editor flags ``reluu`` and ``maxpol`` rather than taking them for block uses."""
    import re

    alts: set[str] = set()
    for k in kinds:
        if len(k) < 4:  # too short: one edit from 'fc' is half the alphabet
            continue
        for i in range(len(k) + 1):
            alts.add(re.escape(k[:i]) + "." + re.escape(k[i:]))  # one added
            if i < len(k):
                alts.add(re.escape(k[:i] + k[i + 1:]))  # one dropped
                alts.add(re.escape(k[:i]) + "." + re.escape(k[i + 1:]))  # one changed
            if i < len(k) - 1:
                alts.add(re.escape(k[:i] + k[i + 1] + k[i] + k[i + 2:]))  # two swapped
    return "^(" + "|".join(sorted(alts)) + ")$"


def _first_line(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


def build_schema() -> dict[str, Any]:
    """The spec format as a JSON Schema (draft-07, which editors' YAML plugins support best)."""

    described = {"name": {"type": ["string", "integer"], "description": "the layer's name (default: kind + counter)"},
              "from": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                       "description": "the layer(s) it reads; default: the previous layer"},
              "trainable": {"anyOf": [{"type": "boolean"},
                                      {"type": "array", "items": {"enum": ["weight", "bias"]}, "minItems": 1}],
                            "default": True,
                            "description": "false freezes the layer's parameters; [bias] trains only the bias"},
              "shares": {"anyOf": [{"type": "string"},
                                   {"type": "object", "minProperties": 1, "additionalProperties": False,
                                    "properties": {"weight": {"type": "string"}, "bias": {"type": "string"}}}],
                         "description": "an earlier layer of the same kind whose parameters this one uses, or "
                                        "{weight: layer} where only its weight (or bias) is that layer's (tied)"},
              "function": {"type": "string", "maxLength": 100,
                           "description": "the torch function or method the source network computes this layer "
                                          "with (no module), e.g. F.adaptive_avg_pool2d; written by the importer, "
                                          "read by the counting conventions of tools that hook modules"},
              "discarded": {"type": "boolean", "default": False,
                            "description": "the source network computes this layer's output and discards it (no "
                                           "output needs it; nothing reads it): written by the importer, read by "
                                           "the counting conventions of tools that trace the graph (fvcore drops "
                                           "such values)"}}
    common: dict[str, Any] = {key: described[key] for key in COMMON_KEYS}  # a new common key fails here until described
    defs: dict[str, Any] = {
        "expression": {"type": "string",
                       "description": "an expression of spec variables, e.g. 'width * 2' (integers, + - * / // % "
                                      "**, min, max)"},
        "layers": {"type": "array", "items": {"$ref": "#/definitions/layer"}},
    }
    kinds = sorted(REGISTRY)
    defs["kind"] = {"enum": kinds, "description": "a layer kind"}
    defs["typo"] = {"type": "string", "pattern": near_misses(kinds),
                    "description": "a name one typo from a layer kind (reluu, maxpol): not taken for a block"}
    alternatives: list[dict] = [
        {"anyOf": [{"$ref": "#/definitions/kind"},
                   {"type": "string", "not": {"anyOf": [{"$ref": "#/definitions/typo"}, {"enum": ["repeat", "if"]}]}}],
         "description": "a layer kind without settings (relu), or a block without arguments"},
        {"$ref": "#/definitions/repeat"}, {"$ref": "#/definitions/if"}]
    for name in kinds:
        cls = REGISTRY[name]
        props = {key: param_schema(p) for key, p in cls.params.items()}
        props.update(common)
        body: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
        required = [k for k, p in cls.params.items() if p.required]
        if required:
            body["required"] = required
        else:
            body = {"anyOf": [body, {"type": "null"}]}
        doc = _first_line(cls.__doc__)
        defs[f"kind.{name}"] = {**body, "description": doc} if doc else body
        alternatives.append({"type": "object", "required": [name], "additionalProperties": False,
                             "properties": {name: {"$ref": f"#/definitions/kind.{name}"}}})
    keywords = [*kinds, "repeat", "if"]
    alternatives.append({"type": "object", "minProperties": 1, "maxProperties": 1,
                         "propertyNames": {"not": {"anyOf": [{"enum": keywords}, {"$ref": "#/definitions/typo"}]}},
                         "additionalProperties": {"type": ["object", "null"]},
                         "description": "a use of a block defined under 'blocks:', with its arguments"})
    defs["layer"] = {"anyOf": alternatives}
    repeat_props = {
        "repeat": {**_int(1), "description": "how many times"},
        "layers": {"$ref": "#/definitions/layers"},
        "name": {"type": "string", "description": "prefix: stage.0.conv1, ... (may use {i})"},
        "block": {"type": "string", "description": "a block to repeat instead of layers"},
        "args": {"type": "object", "description": "the block's arguments"},
        "first": {"type": "object", "description": "arguments of the first repetition only"},
    }
    defs["repeat"] = {"type": "object", "required": ["repeat"], "additionalProperties": False,
                      "properties": {k: repeat_props[k] for k in getattr(expand, "REPEAT_KEYS", ("repeat", "layers",
                                                                                                     "name"))}}
    defs["if"] = {"type": "object", "required": ["if", "layers"], "additionalProperties": False,
                  "properties": {"if": {"anyOf": [{"type": "boolean"}, EXPR]},
                                 "layers": {"$ref": "#/definitions/layers"},
                                 "else": {"$ref": "#/definitions/layers"}}}
    block_props = {"args": {"type": "object", "description": "argument names and defaults (~ for required)"},
                   "layers": {"$ref": "#/definitions/layers"}, "description": {"type": "string"},
                   "inline": {"type": "boolean", "description": "add no name prefix to the block's layers"}}
    defs["block"] = {"type": "object", "required": ["layers"], "additionalProperties": False,
                     "properties": {k: block_props[k] for k in getattr(expand, "BLOCK_KEYS", tuple(block_props))}}
    top = {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "source": {"type": "string", "description": "where the architecture comes from (paper, URL)"},
        "input": {"type": "array", "minItems": 1, "maxItems": expand.MAX_INPUT_DIMS, "items": _int(1),
                  "description": "channels, then the spatial sizes: [3, 224, 224]"},
        "inputs": {"type": "object", "minProperties": 1, "maxProperties": expand.MAX_INPUTS,
                   "additionalProperties": {"type": "array", "minItems": 1, "maxItems": expand.MAX_INPUT_DIMS,
                                            "items": _int(1)},
                   "description": "several inputs by name, each read with from: NAME: {image: [3, 224, 224], "
                                  "mask: [1, 224, 224]}"},
        "fit": {"enum": list(expand.FIT_RULES), "default": "exact",
                "description": "exact: a window that does not tile its input is an error; floor: as PyTorch"},
        "notes": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "vars": {"type": "object", "description": "variables for expressions (overridable: --set name=value)"},
        "blocks": {"type": "object", "additionalProperties": {"$ref": "#/definitions/block"}},
        "layers": {"$ref": "#/definitions/layers"},
    }
    return {"$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "https://github.com/cnnsize/cnnsize/spec.schema.json",
            "title": "cnnsize spec", "description": "A convolutional network for cnnsize to size.",
            "type": "object", "required": ["layers"], "additionalProperties": False,
            "oneOf": [{"required": ["input"]}, {"required": ["inputs"]}],
            "properties": {k: top[k] for k in expand.TOP_KEYS}, "definitions": defs}


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Regenerate the shipped schema file (``--check``: exit 1 if it is stale)."""
    args = sys.argv[1:] if argv is None else argv
    text = schema_text()
    fresh = SCHEMA_FILE.exists() and SCHEMA_FILE.read_text(encoding="utf-8") == text
    if "--check" in args:
        if not fresh:
            print(f"stale: {SCHEMA_FILE}; run python -m cnnsize.spec.schema")
        return 0 if fresh else 1
    if not fresh:
        SCHEMA_FILE.write_text(text, encoding="utf-8")
    print(f"{'wrote' if not fresh else 'up to date:'} {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
