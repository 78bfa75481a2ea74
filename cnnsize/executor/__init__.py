"""The executor: the same spec as a real torch network, checked and timed (needs torch).

This package's ``__init__`` stays light: torch is imported only when one of the
functions below runs, so ``import cnnsize`` never pays for it.
"""

from __future__ import annotations

from typing import Any

from ..core.optional import INSTALL_HINT, require_torch


def build(spec: Any, *, input_shape: tuple | None = None, fit: str | None = None, device: str = "cpu",
          dtype: str = "float32", init: bool = False):
    """The spec (or an Analysis) as an ``nn.Module`` whose submodules carry the spec's layer names.

    Built on the meta device, then allocated on ``device`` without random initialization
    (parameters are zero) unless ``init=True``.
    """
    require_torch()
    from .builder import build_module

    return build_module(spec, input_shape=input_shape, fit=fit, device=device, dtype=dtype, init=init)


def validate(spec: Any, **kwargs: Any):
    """Run the network once and compare every figure of the analysis with what torch measures.

    Returns a :class:`cnnsize.executor.validation.Validation` (``.ok``, ``.to_frame()``, ``.to_dict()``).
    Keyword arguments: input_shape, fit, batch, device, dtype, runs, warmup, force, init, accumulate, precision,
    checkpoint, checkpoint_impl, device_memory, optimizer.
    """
    require_torch()
    from .validation import run_validation

    return run_validation(spec, **kwargs)


def bench(spec: Any, **kwargs: Any):
    """Time the forward (and optionally backward) pass; see :func:`cnnsize.executor.timing.run_bench`."""
    require_torch()
    from .timing import run_bench

    return run_bench(spec, **kwargs)


__all__ = ["INSTALL_HINT", "bench", "build", "require_torch", "validate"]
