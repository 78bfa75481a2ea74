"""Channels-first inputs, and the channels-last ones people type (``32x32x3``, the lecture's own notation).

cnnsize reads every shape channels first ([C, H, W], [C, L], [C, D, H, W]). A shape whose last axis looks
like image channels (1, 3 or 4) while its first looks like a size would be sized as, say, 32 channels of
32×3 images without a word; it is stopped with the channels-first shape to use instead, unless a layout is
given: ``hwc`` (channels last: converted) or ``chw`` (taken as written).
"""

from __future__ import annotations

from .errors import SpecError, unknown_name
from .numeric import is_int

CHANNEL_COUNTS = (1, 3, 4)  # grey, RGB, RGBA
MIN_SIZE = 8  # axes this long read as sizes, not as channels
LAYOUTS = ("chw", "hwc")
AXES = {1: "C", 2: "C×L", 3: "C×H×W", 4: "C×D×H×W"}  # what the axes of a shape are, by rank


def looks_channels_last(shape: tuple) -> bool:
    """Whether a (C, H, W)-style shape reads better as (H, W, C): 32x32x3, 224x224x1 (not 8x3x3: 3x3 maps)."""
    return (len(shape) >= 3 and all(is_int(v) for v in shape) and shape[-1] in CHANNEL_COUNTS
            and all(v >= MIN_SIZE for v in shape[:-1]))


def channels_first(shape: tuple) -> tuple:
    """(H, W, C) -> (C, H, W); any rank: the last axis moves to the front."""
    return (shape[-1], *shape[:-1])


def shape_words(shape: tuple) -> str:
    return "x".join(str(v) for v in shape)


def apply_layout(shape: tuple, layout: str | None, what: str = "--input") -> tuple:
    """The channels-first shape: converted for ``hwc``, as written for ``chw``, checked when no layout is given."""
    if layout is not None and layout not in LAYOUTS:
        raise unknown_name("layout", layout, LAYOUTS)
    if layout == "hwc":
        return channels_first(shape)
    if layout is None and looks_channels_last(shape):
        raise SpecError(f"{what} {shape_words(shape)} looks channels-last (H×W×C): did you mean "
                        f"{shape_words(channels_first(shape))}?",
                        hint=f"cnnsize reads channels first (C×H×W): give {shape_words(channels_first(shape))}, "
                             "or --layout hwc (layout='hwc' in Python) to convert it, chw to keep it as written")
    return tuple(shape)


def axes_label(shape: tuple) -> str:
    """'C×H×W' for images, 'C×L' for 1-D signals, 'C×D×H×W' for volumes (by the shape's rank)."""
    return AXES.get(len(shape), "×".join(["C"] + [f"D{i}" for i in range(1, len(shape))]))
