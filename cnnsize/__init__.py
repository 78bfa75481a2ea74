"""cnnsize: size convolutional networks from a short YAML spec, before training them.

    >>> import cnnsize
    >>> a = cnnsize.analyze("vgg16")
    >>> a.totals["params"]
    138357544

Everything but the errors is imported on first use: the executor (``build``, ``validate``, ``bench``)
needs torch, and the rest would slow every command's start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.errors import CnnsizeError, DoesNotFit, LimitExceeded, SpecError

if TYPE_CHECKING:
    from .engine.result import Analysis

__version__ = "0.1.0"

__all__ = ["Analysis", "CnnsizeError", "DoesNotFit", "LayerResult", "LimitExceeded", "SpecError", "analyze",
           "calc", "explain", "fit_sizes", "load", "build", "validate", "bench", "ops", "compare", "sweep",
           "plot", "from_torch", "from_onnx", "__version__"]


def load(spec: Any, variables: dict | None = None):
    """Parse a spec (path, bundled name, YAML text or dict) into a layer Graph; ``variables`` override its vars."""
    from .core.numeric import no_gc
    from .spec.sources import load_graph

    with no_gc():
        return load_graph(spec, variables=variables)


def analyze(spec: Any, input_shape: tuple | None = None, batch: int = 1, dtype: str = "float32",
            fit: str | None = None, *, optimizer: str = "adam", amp: bool = False, device: str = "cuda",
            freeze_until: str | None = None, variables: dict | None = None, count: str | None = None,
            traffic: bool = False, device_profile: Any = None, layout: str | None = None,
            count_mode: str | None = None) -> Analysis:
    """Size a network: per-layer and total shapes, params, activations, connections, MACs, memory, RF.

    ``spec`` is a path, a bundled spec name (``"vgg16"``), YAML text, a dict, or a Graph.
    ``input_shape`` overrides the spec's input as (C, H, W); ``fit`` is ``exact`` or ``floor``.
    ``optimizer`` (sgd, momentum, adam, adamw), ``amp``, ``device`` (cuda, cpu) and ``freeze_until``
    (a layer name: it and everything before it are frozen) shape the training memory estimate.
    ``variables`` override the spec's ``vars`` (e.g. ``{"aux": True}``). ``count`` names a counting
    convention (torchinfo, fvcore, ptflops, thop, torch, torchscan-flops, ...; see cnnsize.passes.conventions):
    every row and the totals then carry ``counted``, that tool's figure, for the network in ``count_mode``
    ("eval", or "train": fvcore counts a training-mode batch norm otherwise; default: the mode of the module
    ``from_torch`` read, else eval). ``traffic`` adds each layer's
    bytes read and written and its arithmetic intensity; ``device_profile`` (a bundled name such as "a100",
    a file, or a DeviceProfile) adds the roofline's ``predicted_seconds`` and ``bound`` (and implies traffic).
    An input that looks channels-last (32×32×3) is refused with the channels-first shape to use, unless
    ``layout`` is ``"hwc"`` (convert) or ``"chw"`` (keep). ``spec`` may also be what ``from_torch`` returns, or a
    torch ``nn.Module`` with its ``input_shape``: ``analyze(model, (3, 224, 224))`` is
    ``from_torch(model, (3, 224, 224)).analyze()`` with these options (the model is not changed).
    """
    from .core.numeric import no_gc
    from .engine.walk import analyze_graph
    from .spec.sources import is_torch_module, load_graph

    if is_torch_module(spec) and input_shape is not None:  # torch is imported only here, for a module
        from .importers.torch_import import from_torch

        spec, input_shape = from_torch(spec, tuple(input_shape)).spec, None
    with no_gc():
        graph = load_graph(spec, variables=variables)
        return analyze_graph(graph, input_shape=input_shape, batch=batch, dtype=dtype, fit=fit,
                             optimizer=optimizer, amp=amp, device=device, freeze_until=freeze_until, count=count,
                             traffic=traffic or device_profile is not None, device_profile=device_profile,
                             layout=layout, count_mode=count_mode or getattr(spec, "mode", None) or "eval")


def fit_sizes(spec: Any, min: int = 32, max: int = 1024, channels: int | None = None,  # noqa: A002
              rule: str = "exact"):
    """The square input sizes n in [min, max] at which every layer fits exactly (a FitSizes).

    ``rule="floor"`` lists the sizes at which the network runs with sizes rounded down (PyTorch's rule),
    ``rule="spec"`` uses the spec's own ``fit:``.

    ``.sizes`` lists them, ``.fits(n)``, ``.why_not(n)`` and ``.nearest(n)`` answer for any size;
    AlexNet (CS231n) fits at 227 and not at 224. Numeric only: sympy is not imported.
    """
    from .engine.fitting import fit_sizes as _fit_sizes

    return _fit_sizes(spec, min=min, max=max, channels=channels, rule=rule)


def explain(spec: Any, input_shape: tuple | None = None, layer: str | None = None, fit: str | None = None,
            dtype: str = "float32"):
    """The worked arithmetic of every layer (or one ``layer``), e.g. "(227 − 11)/4 + 1 = 55" (an Explanation).

    ``input_shape`` may hold sympy symbols, as in ``analyze``; the steps are then formulas.
    """
    from .engine.worked import explain as _explain

    return _explain(spec, input_shape=input_shape, layer=layer, fit=fit, dtype=dtype)


def __getattr__(name: str):
    """The rest of the API, imported on first use so that ``import cnnsize`` (and the CLI) start fast."""
    import importlib

    if name in ("Analysis", "LayerResult"):
        return getattr(importlib.import_module(".engine.result", __name__), name)
    if name == "calc":
        return importlib.import_module(".calc", __name__)
    if name in ("build", "validate", "bench"):
        return getattr(importlib.import_module(".executor", __name__), name)
    if name in ("compare", "sweep"):
        return getattr(importlib.import_module(".render.views", __name__), name)
    if name == "plot":
        return importlib.import_module(".render.plot", __name__).plot
    if name == "from_torch":
        return importlib.import_module(".importers.torch_import", __name__).from_torch
    if name == "from_onnx":
        return importlib.import_module(".importers.onnx_import", __name__).from_onnx
    if name == "ops":
        return importlib.import_module(".core.ops", __name__)
    raise AttributeError(f"module 'cnnsize' has no attribute '{name}'")
