"""Where a spec comes from: a file, a bundled name, YAML text, a dict, or standard input."""

from __future__ import annotations

import os
from typing import Any

from ..core.errors import Location, SpecError, closest
from ..core.graph import Graph
from .expand import MAX_LAYERS, expand
from .load import MAX_SPEC_BYTES, load_yaml


def _specs_folder() -> str | None:
    """The bundled specs as a folder on disk, or None when the package is not on disk (a zip).

    Found with os.path alone: pathlib and importlib.resources would add about 15 ms to every run.
    ``specs/`` beside the package in a source checkout (or an editable install), else the installed
    ``cnnsize/specs`` package data.
    """
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # cnnsize/, above spec/
    for folder in (os.path.join(os.path.dirname(package), "specs"), os.path.join(package, "specs")):
        if os.path.isfile(os.path.join(folder, "__init__.py")):
            return folder
    return None


def bundled_dir():
    """The bundled specs: ``specs/`` beside the package in a source checkout, else the installed ``cnnsize.specs``.

    A Path, or an importlib.resources Traversable when the package is not on disk.
    """
    folder = _specs_folder()
    if folder is not None:
        from pathlib import Path

        return Path(folder)
    from importlib import resources

    return resources.files("cnnsize.specs")


def bundled_names() -> list[str]:
    """Names of the specs shipped with cnnsize (``vgg16``, ``lenet5``, ...)."""
    folder = _specs_folder()
    files = os.listdir(folder) if folder is not None else [p.name for p in bundled_dir().iterdir()]
    return sorted(name[:-5] for name in files if name.endswith(".yaml"))


def bundled_path(name: str):
    """The bundled spec file called ``name`` (a Path or Traversable), or None."""
    stem = name[:-5] if name.endswith(".yaml") else name
    path = bundled_dir() / f"{stem}.yaml"
    return path if path.is_file() else None


def _bundled_text(name: str) -> tuple[str, str] | None:
    """(text, file name) of the bundled spec called ``name``, or None; the report path, so os.path only."""
    stem = name[:-5] if name.endswith(".yaml") else name
    filename = f"{stem}.yaml"
    folder = _specs_folder()
    if folder is None:
        path = bundled_path(name)
        return (path.read_text(encoding="utf-8"), filename) if path is not None else None
    path = os.path.join(folder, filename)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return fh.read(), filename


def read_text(spec: str | os.PathLike) -> tuple[str, str]:
    """(text, display name) for a path or a bundled name; '-' reads standard input."""
    if str(spec) == "-":
        return _read_stdin(), "<stdin>"
    path = os.fspath(spec) or "."  # as Path(""), the current folder
    if os.path.isdir(path):
        raise SpecError(f"'{spec}' is a folder, not a spec file", hint="give a .yaml file inside it",
                        location=Location(str(spec)))
    if os.path.isfile(path):
        return _read(path, str(spec)), str(spec)
    found = _bundled_text(str(spec)) if "/" not in str(spec) and os.sep not in str(spec) else None
    if found is not None:
        return found
    names = bundled_names()
    stem = str(spec)[:-5] if str(spec).endswith(".yaml") else str(spec)
    guess = closest(stem, names)
    hint = (f"did you mean '{guess}'? " if guess else "") + "bundled specs: " + ", ".join(names)
    raise SpecError(f"no spec file or bundled spec named '{spec}'", hint=hint, location=Location(str(spec)))


def _read(path: str, shown: str) -> str:
    try:
        if os.stat(path).st_size > MAX_SPEC_BYTES:
            raise SpecError(f"the file is larger than {MAX_SPEC_BYTES:,} bytes", location=Location(shown))
        with open(path, "rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"cannot read the file: {exc.strerror}", location=Location(shown)) from None
    return _decode(data, shown, "the file")


def _read_stdin() -> str:
    """Standard input as text, decoded as a file is (bytes, not the terminal's encoding); closed is an error."""
    import sys

    stream = getattr(sys.stdin, "buffer", None)
    if stream is None or getattr(sys.stdin, "closed", False):
        raise SpecError("standard input is closed", hint="pipe a spec in (cnnsize report - < spec.yaml) or name a file",
                        location=Location("<stdin>"))
    try:
        data = stream.read(MAX_SPEC_BYTES + 1)
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read standard input: {getattr(exc, 'strerror', None) or exc}",
                        location=Location("<stdin>")) from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"standard input holds more than {MAX_SPEC_BYTES:,} bytes", location=Location("<stdin>"))
    return _decode(data, "<stdin>", "standard input")


def _decode(data: bytes, shown: str, what: str) -> str:
    """UTF-8 text (a BOM is allowed), or one clear error: UTF-16, binary, or which byte is wrong."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise SpecError(f"{what} is UTF-16 text; specs are UTF-8", hint="save it as UTF-8",
                        location=Location(shown))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        kind = "binary data, not text" if b"\x00" in data[:8192] else "not UTF-8 text"
        raise SpecError(f"{what} is {kind} ({exc.reason} at byte {exc.start})", hint="specs are UTF-8 YAML",
                        location=Location(shown)) from None
    if "\x00" in text:
        raise SpecError(f"{what} holds a NUL character at byte {data.index(0)}: binary data, not a spec",
                        location=Location(shown))
    return text


DEFAULT_MAX_LAYERS = MAX_LAYERS  # the command line lowers it to CLI_MAX_LAYERS (time and memory bounds)
CLI_MAX_LAYERS = 50_000  # the most layers `cnnsize` sizes: any format within 15 s and 1 GiB
DEFAULT_MAX_ONNX_NODES = MAX_LAYERS  # the command line lowers it to CLI_MAX_ONNX_NODES
CLI_MAX_ONNX_NODES = 30_000  # an ONNX node costs about twice a spec's layer to import: 15 s and 1 GiB as for specs


def is_onnx(spec: Any) -> bool:
    """Whether ``spec`` names an ONNX file (by its extension: only then is the onnx package imported)."""
    return isinstance(spec, (str, os.PathLike)) and os.fspath(spec).lower().endswith(".onnx")


def is_torch_module(obj: Any) -> bool:
    """Whether ``obj`` is a torch ``nn.Module`` (a TorchScript one too), told by its classes' names, so that
    torch is imported only when one is given."""
    return any(cls.__name__ in ("Module", "ScriptModule") and cls.__module__.startswith("torch.")
               for cls in type(obj).__mro__)


def load_graph(spec: Any, max_layers: int | None = None, variables: dict | None = None) -> Graph:
    """A Graph from a spec's path, a bundled name, YAML text, a dict or an existing Graph (an ONNX file through
    cnnsize.api.load_graph, which imports it).

    ``variables`` override the spec's ``vars`` (e.g. ``{"aux": True}`` for Inception's auxiliary head).
    Graphs parsed from text are cached by their text (as ``re`` caches patterns): treat them as read-only.
    """
    if isinstance(spec, Graph):
        return spec
    if not isinstance(spec, (str, dict, os.PathLike)) and isinstance(getattr(spec, "spec", None), dict):
        spec = spec.spec  # what cnnsize.from_torch returns (an ImportedSpec): its spec as a dict
    max_layers = DEFAULT_MAX_LAYERS if max_layers is None else max_layers
    if isinstance(spec, dict):
        return expand(spec, "<dict>", max_layers, variables)
    if isinstance(spec, os.PathLike):
        text, shown = read_text(spec)
    elif isinstance(spec, str):
        if "\n" in spec or (":" in spec and not os.path.exists(spec)):
            text, shown = spec, "<string>"
        else:
            text, shown = read_text(spec)
    elif is_torch_module(spec):
        raise SpecError(f"a torch model ({type(spec).__name__}) is sized from an input shape",
                        hint="cnnsize.analyze(model, input_shape=(3, 224, 224)), or "
                             "cnnsize.from_torch(model, (3, 224, 224)) for its spec")
    else:
        raise SpecError(f"a spec is a path, a bundled name, YAML text, a dict or a torch nn.Module, got "
                        f"{type(spec).__name__}")
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
