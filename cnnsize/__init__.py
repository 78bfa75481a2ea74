"""cnnsize: size convolutional networks from a short YAML spec, before training them.

    >>> import cnnsize
    >>> a = cnnsize.analyze("vgg16")
    >>> a.totals["params"]
    138357544

The functions live in cnnsize.api (the pipelines) and are imported on first use: the executor (``build``,
``validate``, ``bench``) needs torch, and the rest would slow every command's start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core.errors import CnnsizeError, DoesNotFit, LimitExceeded, SpecError

if TYPE_CHECKING:
    from .api import analyze, bench, build, compare, draw, explain, fit_sizes, load, plot, sweep, validate  # noqa: F401
    from .engine.result import Analysis, LayerResult  # noqa: F401

__version__ = "0.1.0"

__all__ = ["Analysis", "CnnsizeError", "DoesNotFit", "LayerResult", "LimitExceeded", "SpecError", "analyze",
           "calc", "explain", "fit_sizes", "load", "build", "validate", "bench", "ops", "compare", "sweep",
           "plot", "draw", "estimators", "plan", "from_torch", "from_onnx", "from_yolo", "__version__"]

# name -> (module, attribute; None for the module itself), imported on first use
_LAZY: dict[str, tuple[str, str | None]] = {
    **{name: (".api", name) for name in ("analyze", "load", "explain", "fit_sizes", "build", "validate", "bench",
                                         "compare", "sweep", "plot", "draw", "estimators", "plan")},
    "Analysis": (".engine.result", "Analysis"), "LayerResult": (".engine.result", "LayerResult"),
    "calc": (".calc", None), "ops": (".core.ops", None),
    "from_torch": (".importers.torch_import", "from_torch"), "from_onnx": (".importers.onnx_import", "from_onnx"),
    "from_yolo": (".importers.yolo", "from_yolo"),
}


def __getattr__(name: str) -> Any:
    """The API, imported on first use so that ``import cnnsize`` (and the CLI) start fast."""
    if name not in _LAZY:
        raise AttributeError(f"module 'cnnsize' has no attribute '{name}'")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name, __name__)
    if module_name != ".api":
        importlib.import_module(".api", __name__)  # an Analysis shows itself through the renderers it registers
    return module if attribute is None else getattr(module, attribute)
