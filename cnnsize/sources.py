"""Where a spec comes from: a file, a bundled name, YAML text, a dict, or standard input."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import Location, SpecError, closest
from .graph import Graph
from .spec.expand import MAX_LAYERS, expand
from .spec.load import MAX_SPEC_BYTES, load_yaml


def bundled_dir():
    """The bundled specs: ``specs/`` beside the package in a source checkout, else the installed ``cnnsize.specs``."""
    local = Path(__file__).resolve().parent.parent / "specs"
    if (local / "__init__.py").is_file():
        return local
    return resources.files("cnnsize.specs")


def bundled_names() -> list[str]:
    """Names of the specs shipped with cnnsize (``vgg16``, ``lenet5``, ...)."""
    return sorted(p.name[:-5] for p in bundled_dir().iterdir() if p.name.endswith(".yaml"))


def bundled_path(name: str):
    stem = name[:-5] if name.endswith(".yaml") else name
    path = bundled_dir() / f"{stem}.yaml"
    return path if path.is_file() else None


def read_text(spec: str | os.PathLike) -> tuple[str, str]:
    """(text, display name) for a path or a bundled name; '-' reads standard input."""
    if str(spec) == "-":
        import sys

        return sys.stdin.read(MAX_SPEC_BYTES + 1), "<stdin>"
    path = Path(spec)
    if path.is_dir():
        raise SpecError(f"'{spec}' is a folder, not a spec file", hint="give a .yaml file inside it",
                        location=Location(str(spec)))
    if path.is_file():
        return _read(path, str(spec)), str(spec)
    found = bundled_path(str(spec)) if "/" not in str(spec) and os.sep not in str(spec) else None
    if found is not None:
        return found.read_text(encoding="utf-8"), f"{found.name}"
    names = bundled_names()
    stem = str(spec)[:-5] if str(spec).endswith(".yaml") else str(spec)
    guess = closest(stem, names)
    hint = (f"did you mean '{guess}'? " if guess else "") + "bundled specs: " + ", ".join(names)
    raise SpecError(f"no spec file or bundled spec named '{spec}'", hint=hint, location=Location(str(spec)))


def _read(path: Path, shown: str) -> str:
    try:
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError(f"the file is larger than {MAX_SPEC_BYTES:,} bytes", location=Location(shown))
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                        location=Location(shown)) from None
    except OSError as exc:
        raise SpecError(f"cannot read the file: {exc.strerror}", location=Location(shown)) from None


def load_graph(spec: Any, max_layers: int = MAX_LAYERS, variables: dict | None = None) -> Graph:
    """A Graph from a path, a bundled name, YAML text, a dict or an existing Graph.

    ``variables`` override the spec's ``vars`` (e.g. ``{"aux": True}`` for Inception's auxiliary head).
    Graphs parsed from text are cached by their text (as ``re`` caches patterns): treat them as read-only.
    """
    if isinstance(spec, Graph):
        return spec
    if isinstance(spec, dict):
        return expand(spec, "<dict>", max_layers, variables)
    if isinstance(spec, os.PathLike):
        text, shown = read_text(spec)
    elif isinstance(spec, str):
        if "\n" in spec or (":" in spec and not Path(spec).exists()):
            text, shown = spec, "<string>"
        else:
            text, shown = read_text(spec)
    else:
        raise SpecError(f"a spec is a path, a bundled name, YAML text or a dict, got {type(spec).__name__}")
    key = (text, shown, max_layers, tuple(sorted((variables or {}).items(), key=lambda kv: kv[0])))
    try:
        hash(key)
    except TypeError:  # unhashable variable values: no caching
        return expand(load_yaml(text, shown), shown, max_layers, variables)
    graph = _CACHE.get(key)
    if graph is None:
        graph = expand(load_yaml(text, shown), shown, max_layers, variables)
        if len(_CACHE) >= 32:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = graph
    return graph


_CACHE: dict = {}
