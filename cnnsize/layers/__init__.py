"""Layer kinds, one small registered class each. Importing this package registers them all."""

from . import activation, attention, conv, dense, merge, norm, opaque, pool, shape, swin, tokens  # noqa: F401  (registration side effects)
from .base import REGISTRY, RF, Counts, Ctx, LayerKind, Param, register  # noqa: F401

__all__ = ["REGISTRY", "Counts", "Ctx", "LayerKind", "Param", "RF", "register"]
