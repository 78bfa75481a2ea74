"""Layer kinds, one small registered class each, in a module of this package per family (or per kind).

Importing this package loads no kind: the registry (``REGISTRY``) loads a kind's module when the kind is first
looked up, as ``index.py`` (written by ``python -m tools.regen``) says where each kind lives.
"""

from .base import REGISTRY, RF, Counts, Ctx, LayerKind, Param, register

__all__ = ["REGISTRY", "Counts", "Ctx", "LayerKind", "Param", "RF", "register"]
