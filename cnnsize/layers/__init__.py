"""Layer kinds, one small registered class each. Importing this package registers them all."""

from .base import REGISTRY, Counts, Ctx, LayerKind, Param, RF, register  # noqa: F401
from . import activation, conv, dense, merge, norm, pool, shape  # noqa: F401  (registration side effects)

__all__ = ["REGISTRY", "Counts", "Ctx", "LayerKind", "Param", "RF", "register"]
