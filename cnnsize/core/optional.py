"""The optional packages, each required in one place: imported on first use, or one clear error saying how to
install it (MissingDependency, exit 2 on the command line) instead of an ImportError's traceback."""

from __future__ import annotations

import importlib
from typing import Any

from .errors import MissingDependency

# package -> (what the message says, the install hint)
EXTRAS = {
    "torch": ("this needs PyTorch, which is not installed", "pip install 'cnnsize[torch]'"),
    "onnx": ("this needs the onnx package", "pip install 'cnnsize[onnx]'"),
    "onnxruntime": ("running an ONNX model needs onnxruntime", "pip install 'cnnsize[onnx]'"),
    "igraph": ("drawing a network needs igraph (its layered layout), which is not installed",
               "pip install 'cnnsize[draw]' (or pip install igraph)"),
    "matplotlib": ("plotting needs matplotlib, which is not installed",
                   "pip install 'cnnsize[plot]' (or pip install matplotlib)"),
}
INSTALL_HINT = EXTRAS["torch"][1]


def require(package: str) -> Any:
    """The module ``package`` (one of EXTRAS), or MissingDependency saying how to install it."""
    message, hint = EXTRAS[package]
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise MissingDependency(message, hint=hint) from exc


def require_torch() -> Any:
    return require("torch")


def require_onnx() -> Any:
    return require("onnx")


def require_ort() -> Any:
    return require("onnxruntime")
