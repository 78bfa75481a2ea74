"""`cnnsize import MODULE:FACTORY` (or `cnnsize import FILE.onnx`): write the equivalent spec of a torch model,
traced with torch.fx, or of an ONNX file (cnnsize.importers.onnx_import).

This imports MODULE and calls FACTORY() to make the model: it runs that code, on purpose, exactly
as ``python -c "import MODULE"`` would. Only import modules you trust.

While that code runs (import, factory, trace), whatever it prints goes to stderr, so that the spec on stdout
stays YAML; anything it raises, a BaseException that is not an Exception included, is one line (Ctrl-C stays
an interrupt). ``--timeout`` bounds it with a timer signal (SIGALRM) on the main thread, which interrupts Python
code (a loop in the factory, a forward traced for ever) but not one C call that never returns; where there is no
SIGALRM (Windows) or not on the main thread, there is no limit. A subprocess would bound C calls too, but the
import must hand the traced module back to this process, and it costs torch's start-up a second time.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Any

from ..core.errors import SpecError
from .common import onnx_shape, output_extensions, parse_inputs, write_output


def register(sub) -> None:
    p = sub.add_parser("import", help="write the spec of a torch model (MODULE:FACTORY), traced with torch.fx, or "
                                      "of an ONNX file (FILE.onnx)",
                       description="Import MODULE (running its code, as Python's import does), call FACTORY() "
                                   "to make an nn.Module, trace it with torch.fx and write the equivalent spec; or "
                                   "read FILE.onnx (with cnnsize[onnx]) and map its operators onto layers. "
                                   "An operation cnnsize cannot represent is an error naming it and where it is.")
    p.add_argument("target", metavar="MODULE:FACTORY|FILE.onnx|YOLO.yaml",
                   help="e.g. torchvision.models:resnet18, mymodels:Net or model.onnx; torchvision:NAME and "
                        "timm:NAME build a library's model with no weights at its own input size; an Ultralytics "
                        "model YAML such as yolov8n.yaml (a path, or a name an installed ultralytics ships)")
    p.add_argument("--scale", help="an Ultralytics YAML's scale letter (n, s, m, l, x; default: the one in the file "
                                   "name, as ultralytics reads it, else the YAML's first)")
    p.add_argument("-i", "--input", action="append",
                   help="input shape C x H x W (default 3x224x224; for ONNX: the model's own, this sizing its dynamic "
                        "axes); repeat it as NAME=SHAPE for a forward of several tensors, named as its arguments "
                        "(--input x1=3x32x32 --input x2=3x32x32), or as a dict argument's keys")
    p.add_argument("--name", help="the spec's name (default: FACTORY, or the file's name)")
    p.add_argument("-o", "--output", help="write the spec to this file (.yaml) instead of standard output")
    output_extensions(p, ".yaml", ".yml")
    p.add_argument("--opaque", action="store_true",
                   help="keep an operation cnnsize cannot represent as an 'opaque' layer with the output shape, "
                        "params and MACs torch measured for it (ONNX: shape inference's shape, the params it "
                        "reads, no MACs); it cannot be built or validated")
    p.add_argument("--kwargs", metavar="JSON",
                   help="the forward's other arguments (not tensors), as a JSON object, e.g. "
                        "'{\"task\": \"detect\"}': fixed for the trace (torch models only)")
    p.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"stop importing, building and tracing a torch model after this long (default "
                        f"{DEFAULT_TIMEOUT:g}; 0: no limit)")
    p.set_defaults(run=run)


def parse_kwargs(text: str | None) -> dict | None:
    """--kwargs: a JSON object (parsed by json, never evaluated), or one clear error."""
    import json

    if text is None:
        return None
    if len(text) > 100_000:
        raise SpecError("--kwargs is longer than 100,000 characters")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"--kwargs is not JSON: {exc.msg} at column {exc.colno}",
                        hint='give a JSON object, e.g. --kwargs \'{"task": "detect"}\'') from None
    except RecursionError:
        raise SpecError("--kwargs nests too deeply") from None
    if not isinstance(value, dict):
        raise SpecError(f"--kwargs must be a JSON object of argument names to values, got a JSON "
                        f"{type(value).__name__}", hint='e.g. --kwargs \'{"task": "detect"}\'')
    return value


YOLO_PREFIX = "ultralytics:"  # an Ultralytics model YAML by name (cnnsize.importers.yolo)
DEFAULT_TIMEOUT = 600.0  # the largest torchvision model (vit_h_14) builds and traces in about a minute


def _seconds(text: str) -> float:
    """argparse type of --timeout: 0 (no limit) or a positive number of seconds up to a day."""
    import argparse
    import math

    try:
        value = float(text) if len(text) <= 30 else math.nan
    except ValueError:
        value = math.nan
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"'{text[:30]}' is not a number of seconds from 0 (no limit) to 86400")
    return value


class ImportTimeout(BaseException):
    """Raised by the timer in the user's code; a BaseException so that its ``except Exception`` does not eat it."""


def _guarded(exc: BaseException) -> None:
    """Let an interrupt, the timeout or a refused download through the handlers that turn the user's errors into
    one line."""
    if isinstance(exc, (KeyboardInterrupt, ImportTimeout, DownloadRefused)):
        raise exc


class DownloadRefused(SpecError):
    """The factory asked torch.hub to download weights: cnnsize never downloads."""


_HUB = ("load_state_dict_from_url", "download_url_to_file")  # what torchvision's weights and torch.hub fetch with
_refusing: list[bool] = []


def _refuser(original):
    """``original`` (a torch.hub function taking a URL first), refused while a model is built."""
    def refuse(url, *args, **kwargs):
        if _refusing:
            raise DownloadRefused(f"the model's factory tries to download weights ({str(url)[:200]})",
                                  hint="build it with weights=None (and weights_backbone=None for a detector): "
                                       "cnnsize never downloads")
        return original(url, *args, **kwargs)

    refuse.cnnsize_original = original  # type: ignore[attr-defined]
    return refuse


@contextlib.contextmanager
def _no_downloads(torch):
    """torch.hub's downloads refused while the model is built, with the fix: build it without weights (weights
    cached already load as before). The functions stay wrapped (a module importing them meanwhile keeps the wrapper,
    which refuses only then); torchvision's own reference to load_state_dict_from_url is wrapped too."""
    holders = [torch.hub] + [m for m in (sys.modules.get("torchvision.models._api"),) if m is not None]
    for holder in holders:
        for name in _HUB:
            function = getattr(holder, name, None)
            if function is not None and not hasattr(function, "cnnsize_original"):
                setattr(holder, name, _refuser(function))
    _refusing.append(True)
    try:
        yield
    finally:
        _refusing.pop()


def load_factory(target: str):
    """The callable named by 'package.module:attr' (the current folder is importable, as with python -m).

    Importing runs the module's code: whatever it raises (a SyntaxError, any exception, sys.exit) is one line.
    """
    module_name, colon, attr = target.partition(":")
    if not colon or not module_name or not attr:
        raise SpecError(f"'{target}' is not MODULE:FACTORY", hint="e.g. torchvision.models:resnet18")
    if module_name.startswith("."):
        raise SpecError(f"'{module_name}' is a relative module name", hint="give the full module name, e.g. pkg.mod")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(f"cannot import '{module_name}': {exc}") from None
    except SyntaxError as exc:
        where = f"{exc.filename}:{exc.lineno}" if exc.filename else module_name
        raise SpecError(f"cannot import '{module_name}': a SyntaxError at {where}: {exc.msg}") from None
    except SystemExit as exc:
        raise SpecError(f"importing '{module_name}' called sys.exit({exc.code!r})",
                        hint="a module to import must not exit") from None
    except BaseException as exc:  # noqa: BLE001 - the module's own code failed (GeneratorExit too): one line
        _guarded(exc)
        raise SpecError(f"importing '{module_name}' raised {_what(exc)}") from None
    obj = module
    for part in attr.split("."):
        if not part.isidentifier() or not hasattr(obj, part):
            from ..core.errors import unknown_name

            raise unknown_name(f"name in {module_name}", part, [n for n in dir(obj) if not n.startswith("_")])
        obj = getattr(obj, part)
    return obj


def make_model(factory, target: str, nn):
    """The nn.Module a factory gives (or is): its failures, arguments it needs and sys.exit are one line each."""
    if isinstance(factory, nn.Module):
        return factory
    if not callable(factory):
        raise SpecError(f"{target} is not callable (it is a {type(factory).__name__})",
                        hint="FACTORY must be an nn.Module class or a function returning one")
    try:
        model = factory()
    except SystemExit as exc:
        raise SpecError(f"{target}() called sys.exit({exc.code!r})",
                        hint="FACTORY() must return an nn.Module") from None
    except TypeError as exc:
        if "argument" in str(exc):
            raise SpecError(f"{target}() needs arguments: {exc}",
                            hint="give a factory that takes none, e.g. a small function in your own module") from None
        raise SpecError(f"{target}() raised {_what(exc)}") from None
    except BaseException as exc:  # noqa: BLE001 - the factory's own code failed (GeneratorExit too)
        _guarded(exc)
        raise SpecError(f"{target}() raised {_what(exc)}") from None
    if not isinstance(model, nn.Module):
        raise SpecError(f"{target}() did not give an nn.Module (it gave a {type(model).__name__})",
                        hint="FACTORY() must return an nn.Module")
    return model


def _what(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def run(args) -> int:
    from ..spec.sources import is_onnx

    kwargs = parse_kwargs(getattr(args, "kwargs", None))
    if args.target.lower().endswith((".yaml", ".yml")) or args.target.startswith(YOLO_PREFIX):
        from ..importers.yolo import from_yolo

        if kwargs is not None:
            raise SpecError("--kwargs is for torch models (a YOLO YAML has no forward arguments)")
        imported = from_yolo(args.target, args.scale, input_shape=_one_input(args.input), name=args.name)
        write_output(imported.yaml, args.output)
        return 0
    if getattr(args, "scale", None) is not None:
        raise SpecError("--scale is for Ultralytics model YAMLs (yolov8.yaml)")
    if is_onnx(args.target):
        from ..importers.onnx_import import from_onnx

        if kwargs is not None:
            raise SpecError("--kwargs is for torch models (an ONNX file's inputs are tensors)")

        imported = from_onnx(args.target, input_shape=onnx_shape(args.target, parse_inputs(args.input)),
                             name=args.name, opaque=args.opaque)
        write_output(imported.yaml, args.output)
        return 0
    imported = import_torch(args.target, args.input, name=args.name, opaque=args.opaque, kwargs=kwargs,
                            timeout=getattr(args, "timeout", DEFAULT_TIMEOUT), debug=getattr(args, "debug", False))
    write_output(imported.yaml, args.output)  # only after the user's code has run, and printed, to stderr
    return 0


def import_torch(target: str, input_text: Any, *, name: str | None = None, opaque: bool = False,
                 kwargs: dict | None = None, timeout: float = DEFAULT_TIMEOUT, debug: bool = False):
    """Build and trace the torch model ``target`` names (MODULE:FACTORY, or a library's model: torchvision:NAME,
    timm:NAME, at the input its library sizes it for unless ``input_text`` gives one); what its code prints goes to
    stderr, and it stops after ``timeout`` seconds."""
    from ..core.optional import require_torch
    from ..importers import named as named_models
    from ..importers.torch_import import from_torch

    torch = require_torch()
    nn = torch.nn
    library = named_models.named(target)
    with _time_limit(timeout), _prints_to_stderr(), _no_downloads(torch):
        if library is not None:
            model, default = named_models.build(*library)
        else:
            model, default = make_model(load_factory(target), target, nn), (3, 224, 224)
        shape = parse_inputs(input_text) or default  # one shape, or each input's by name
        return _trace(lambda: from_torch(model, shape, name=name or target.rpartition(":")[2], opaque=opaque,
                                         kwargs=kwargs), debug)


def _one_input(given: Any) -> tuple | None:
    """The one --input of a YOLO config (its image), or None for its default."""
    shape = parse_inputs(given)
    if isinstance(shape, dict):
        raise SpecError("a YOLO config takes one input, the image: --input NAME=SHAPE names the inputs of a spec",
                        hint="give one shape, e.g. --input 3x640x640")
    return shape


def resolve_named(args) -> None:
    """A library's model as the spec of report, validate or draw (``torchvision:resnet50``): imported first at the
    input given (or its library's), so ``args.spec`` becomes the spec and ``args.input`` is used up."""
    from ..importers.named import named

    spec = getattr(args, "spec", None)
    if isinstance(spec, str) and spec.startswith(YOLO_PREFIX):  # ultralytics:yolov8n.yaml, translated
        from ..importers.yolo import from_yolo

        args.spec, args.input = from_yolo(spec, input_shape=_one_input(getattr(args, "input", None))).spec, None
        return
    if named(spec) is None:
        return
    imported = import_torch(args.spec, getattr(args, "input", None), timeout=getattr(args, "timeout", DEFAULT_TIMEOUT))
    args.spec, args.input = imported.spec, None


@contextlib.contextmanager
def _prints_to_stderr():
    """What the user's code prints (Python's print and C's writes to descriptor 1) goes to stderr meanwhile."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no descriptor 1 (a closed stdout): Python's own stream is all there is
        saved = None
    try:
        if saved is not None:
            os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


@contextlib.contextmanager
def _time_limit(seconds: float):
    """ImportTimeout after ``seconds`` (0: none) in the main thread's Python code; one line for the CLI."""
    import signal
    import threading

    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise ImportTimeout

    before = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except ImportTimeout:
        raise SpecError(f"importing, building and tracing the model took more than {seconds:g} s (--timeout)",
                        hint="give --timeout a larger number of seconds, or 0 for no limit") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


def _trace(work, debug: bool):
    """Run the import; torch's own report of a failing forward (printed to stderr) is shown only with --debug."""
    import contextlib
    import io

    from ..core.errors import CnnsizeError

    if debug:
        return work()
    caught = io.StringIO()
    try:
        with contextlib.redirect_stderr(caught):
            return work()
    except CnnsizeError:
        raise
    except SystemExit as exc:
        raise SpecError(f"the model called sys.exit({exc.code!r}) while it was traced") from None
    except BaseException as exc:  # noqa: BLE001 - the forward failed (GeneratorExit too): torch's stack with --debug
        _guarded(exc)
        raise SpecError(f"the model's forward failed: {_what(exc)}",
                        hint="run with --debug for torch's stack") from None
