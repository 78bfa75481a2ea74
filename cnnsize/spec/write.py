"""A spec dict as the importers write it, and as YAML text: one writer, shared by the torch and ONNX importers."""

from __future__ import annotations

from typing import Any

from ..layers.base import REGISTRY, plain


def written_settings(kind: str, settings: dict) -> dict:
    """A layer's settings as a spec writes them: those at their default left out (unless required), tuples as
    lists. Shared by the torch and ONNX importers."""
    params = REGISTRY[kind].params
    out = {}
    for key, value in settings.items():
        default = params[key].default
        if isinstance(default, tuple):
            default = plain(default)
        if value != default or params[key].required:
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def layer_entry(kind: str, name: str, settings: dict, sources: list[str], last: str | None, *,
                trainable: bool | list[str] = True, shares: str | None = None, function: str | None = None) -> dict:
    """One layer of an imported spec, as both importers write it: ``from`` only where the layer does not read the
    one before it; ``trainable``, ``shares`` and ``function`` only where they say something."""
    body: dict[str, Any] = {"name": name, **written_settings(kind, settings)}
    if sources != [last]:
        body["from"] = sources[0] if len(sources) == 1 else sources
    if trainable is not True:
        body["trainable"] = trainable if trainable else False
    if shares is not None:
        body["shares"] = shares
    if function is not None:
        body["function"] = function  # no module: tools that hook modules do not see it (cnnsize.passes.conventions)
    return {kind: body}


def to_yaml(spec: dict) -> str:
    """The spec as YAML text, written by the YAML library: one flow-style line per layer."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's, where PyYAML has it: 20 times faster

    def dump(value, flow) -> str:
        return yaml.dump(value, Dumper=dumper, default_flow_style=flow, sort_keys=False, allow_unicode=True,
                         width=1 << 30).strip()

    lines = ["# Imported from torch by cnnsize.from_torch; shapes follow torch's rounding (fit: floor).",
             dump({key: value for key, value in spec.items() if key != "layers"}, None), "layers:"]
    for item in spec["layers"]:
        if "if" in item:  # a block of layers only the aux heads need
            lines += [f"  - if: {item['if']}", "    layers:"]
            lines += [f"      - {dump(layer, True)[1:-1]}" for layer in item["layers"]]
        else:
            lines.append(f"  - {dump(item, True)[1:-1]}")  # - kind: {settings}
    return "\n".join(lines) + "\n"
