"""Models named by their library: ``torchvision:resnet50``, ``timm:convnext_tiny``, built with no weights (nothing
is ever downloaded) at the input size the library gives them, for ``cnnsize report``, ``import``, ``validate`` and
``draw``."""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

from ..core.errors import SpecError, unknown_name

SOURCES = ("torchvision", "timm")
_NAMED = re.compile(r"^(torchvision|timm):([A-Za-z0-9_.\-]+)$")
VIDEO_FRAMES = 16  # torchvision's video classifiers take clips of 16 frames in its references
DETECTION_IMAGE = (800, 1333)  # the detectors' papers quote their figures at 800×1333, which they run unscaled


def named(target: Any) -> tuple[str, str] | None:
    """(library, model name) where ``target`` is ``torchvision:NAME`` or ``timm:NAME``; else None."""
    if not isinstance(target, str):
        return None
    found = _NAMED.match(target)
    return (found.group(1), found.group(2)) if found else None


def _library(source: str) -> Any:
    try:
        return importlib.import_module("torchvision.models" if source == "torchvision" else "timm")
    except ImportError as exc:
        package = "torchvision (the release matching your torch)" if source == "torchvision" else "timm"
        raise SpecError(f"'{source}:' models need {package}, which does not import here: {exc}",
                        hint=f"pip install {source}") from None


def build(source: str, name: str) -> tuple[Any, tuple]:
    """The model (no weights, eval mode) and the input (C, H, W) its library sizes it for."""
    library = _library(source)
    if source == "torchvision":
        return _torchvision(library, name)
    return _timm(library, name)


def _torchvision(models: Any, name: str) -> tuple[Any, tuple]:
    known = models.list_models()
    if name not in known:
        raise unknown_name("torchvision model", name, known)
    builder = models.get_model_builder(name)
    kwargs: dict[str, Any] = {"weights": None}
    if "weights_backbone" in inspect.signature(builder).parameters:  # detection, segmentation: no backbone weights
        kwargs["weights_backbone"] = None
    model = builder(**kwargs).eval()
    return model, _torchvision_shape(models, name)


def _torchvision_shape(models: Any, name: str) -> tuple:
    """The crop its default weights' transforms take (299 for Inception v3, 518 for ViT-H/14's SWAG weights, a
    clip of 16 frames for the video models), read from the weights' description (nothing downloaded)."""
    try:
        transforms = models.get_model_weights(name).DEFAULT.transforms()
        crop = tuple(getattr(transforms, "crop_size", ()) or ())
    except (ValueError, AttributeError, TypeError):
        crop = ()
    if len(crop) == 1:
        crop = (crop[0], crop[0])
    size = crop or (224, 224)
    if name in models.list_models(module=models.video):
        return (3, VIDEO_FRAMES, *size)
    if name in models.list_models(module=models.detection):  # its transform resizes whatever it is given
        return (3, *DETECTION_IMAGE)
    return (3, *size)


def _timm(timm: Any, name: str) -> tuple[Any, tuple]:
    known = timm.list_models()
    if name not in known:
        raise unknown_name("timm model", name, known)
    model = timm.create_model(name, pretrained=False).eval()
    shape = tuple(getattr(model, "pretrained_cfg", {}).get("input_size") or (3, 224, 224))
    return model, shape
