"""cnnsize: size convolutional networks from a short YAML spec, before training them.

    >>> import cnnsize
    >>> a = cnnsize.analyze("vgg16")
    >>> a.totals["params"]
    138357544

The executor (``build``, ``validate``, ``bench``) needs torch and is imported lazily.
"""

from __future__ import annotations

from typing import Any

from . import calc
from .analysis import Analysis, LayerResult
from .errors import CnnsizeError, DoesNotFit, LimitExceeded, SpecError

__version__ = "0.1.0"

__all__ = ["Analysis", "CnnsizeError", "DoesNotFit", "LayerResult", "LimitExceeded", "SpecError", "analyze",
           "calc", "load", "build", "validate", "bench", "ops", "__version__"]


def load(spec: Any, variables: dict | None = None):
    """Parse a spec (path, bundled name, YAML text or dict) into a layer Graph; ``variables`` override its vars."""
    from .sources import load_graph

    return load_graph(spec, variables=variables)


def analyze(spec: Any, input_shape: tuple | None = None, batch: int = 1, dtype: str = "float32",
            fit: str | None = None, variables: dict | None = None) -> Analysis:
    """Size a network: per-layer and total shapes, params, activations, connections, MACs, memory, RF.

    ``spec`` is a path, a bundled spec name (``"vgg16"``), YAML text, a dict, or a Graph.
    ``input_shape`` overrides the spec's input as (C, H, W); ``fit`` is ``exact`` or ``floor``;
    ``variables`` override the spec's ``vars`` (e.g. ``{"aux": True}``).
    """
    from .analysis import analyze_graph
    from .sources import load_graph

    graph = load_graph(spec, variables=variables)
    return analyze_graph(graph, input_shape=input_shape, batch=batch, dtype=dtype, fit=fit)


def __getattr__(name: str):
    if name in ("build", "validate", "bench"):
        from . import executor

        return getattr(executor, name)
    if name == "ops":
        from . import ops

        return ops
    raise AttributeError(f"module 'cnnsize' has no attribute '{name}'")
