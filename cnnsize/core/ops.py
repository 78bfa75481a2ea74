"""Reference convolution and pooling in plain numpy: slow, exact, easy to check by hand.

These are the operations the sizing formulas describe, written so that a reader can follow every index.
Each kernel tap adds one shifted, strided slice of the padded input times its weight: the slides'
"translate-and-scale" view. Integer inputs stay integers (the dtype is numpy's common type of the inputs,
so small int types can overflow exactly as numpy arithmetic does); nothing is converted to float.

Signal-processing forms (``convolve1d``, ``convolve2d``, ``correlate1d``, ``correlate2d``) follow
``scipy.signal.convolve``/``correlate``: ``mode`` is ``"full"``, ``"valid"`` or ``"same"``, and "same" is the
size of the first input, centered as scipy centers it. ``padding`` zero-pads the first input *before* the mode
is applied (so "same" keeps the padded size); ``dilation`` spreads the kernel taps apart (zeros between them);
``stride`` then keeps every ``stride``-th output, starting with the first. With ``mode="valid"`` these are
exactly the arguments of ``torch.nn.functional.conv1d``/``conv2d``.

CNN layers (``conv1d_layer``, ``conv2d_layer``) are cross-correlations over channels, exactly as torch computes
them; the pools match ``torch.nn.functional.max_pool2d``/``avg_pool2d`` with their defaults.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .errors import CnnsizeError

__all__ = ["BLUR", "LAPLACIAN", "SHARPEN", "SOBEL_X", "SOBEL_Y", "avg_pool2d", "conv1d_layer", "conv2d_layer",
           "convolve1d", "convolve2d", "correlate1d", "correlate2d", "max_pool2d"]

IntOrPair = int | Sequence[int]
MODES = ("full", "valid", "same")

BLUR = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]])
"""Weighted average of a pixel and its 4 neighbours (unnormalized: divide by 8 to keep brightness)."""

SHARPEN = np.array([[0, -1, 0], [-1, 8, -1], [0, -1, 0]])
"""Sharpen as shown on the CSC2515 slides: the pixel plus its Laplacian, centre 8 (a scaled 2*I + LAPLACIAN)."""

LAPLACIAN = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]])
"""Negative discrete Laplacian: zero on flat regions, large at edges in any direction."""

SOBEL_X = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]])
"""Horizontal gradient (responds to vertical edges), smoothed vertically by the 1-2-1 weights."""

SOBEL_Y = SOBEL_X.T.copy()
"""Vertical gradient (responds to horizontal edges): the transpose of SOBEL_X."""


# --- argument checks -------------------------------------------------------------------------------------------

def _array(a, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    """`a` as a non-empty real numeric array with an allowed number of dimensions."""
    arr = np.asarray(a)
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in ndims:
        raise CnnsizeError(f"{name} must have {' or '.join(map(str, ndims))} dimensions, got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise CnnsizeError(f"{name} must hold integers or floats, got dtype {arr.dtype}",
                           hint="bool, complex and object arrays are not supported")
    if arr.size == 0:
        raise CnnsizeError(f"{name} must not be empty, got shape {arr.shape}")
    return arr


def _tuple(value: IntOrPair, name: str, nd: int, minimum: int) -> tuple[int, ...]:
    """An int or an nd-sequence of ints, each >= minimum, as an nd-tuple."""
    if isinstance(value, int | np.integer):
        items = [value] * nd
    else:
        items = list(value) if isinstance(value, Sequence) else []
    if len(items) != nd or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in items):
        raise CnnsizeError(f"{name} must be an int or {nd} ints, got {value!r}")
    if any(v < minimum for v in items):
        raise CnnsizeError(f"{name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in items)


def _span(k: int, dilation: int) -> int:
    """How many input positions a kernel of k taps covers once dilated."""
    return dilation * (k - 1) + 1


def _tap_views(xp: np.ndarray, kshape: tuple[int, ...], stride: tuple[int, ...],
               dilation: tuple[int, ...]) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """For each kernel tap, the slice of the padded input (last len(kshape) axes) that tap multiplies.

    Output position o of a strided, dilated window uses input o*stride + tap*dilation.
    """
    nd = len(kshape)
    sizes = xp.shape[-nd:]
    out = [(sizes[i] - _span(kshape[i], dilation[i])) // stride[i] + 1 for i in range(nd)]
    for tap in np.ndindex(*kshape):
        starts = [tap[i] * dilation[i] for i in range(nd)]
        index = tuple(slice(starts[i], starts[i] + (out[i] - 1) * stride[i] + 1, stride[i]) for i in range(nd))
        yield tap, xp[(Ellipsis, *index)]  # type: ignore[arg-type]  # numpy's stubs omit Ellipsis in tuples


def _pad(x: np.ndarray, pads: Sequence[tuple[int, int]], value=0) -> np.ndarray:
    """Pad the last len(pads) axes with a constant."""
    return np.pad(x, [(0, 0)] * (x.ndim - len(pads)) + list(pads), constant_values=value)


# --- single-channel convolution and correlation ----------------------------------------------------------------

def _signal(a, v, nd: int, mode: str, stride: IntOrPair, padding: IntOrPair, dilation: IntOrPair,
            flip: bool) -> np.ndarray:
    """Correlate (or convolve, with the kernel flipped) two nd arrays; see the module docstring."""
    a, v = _array(a, "input", nd), _array(v, "kernel", nd)
    if mode not in MODES:
        raise CnnsizeError(f"unknown mode {mode!r}", hint="valid: " + ", ".join(MODES))
    s, p, d = _tuple(stride, "stride", nd, 1), _tuple(padding, "padding", nd, 0), _tuple(dilation, "dilation", nd, 1)
    spans = [_span(v.shape[i], d[i]) for i in range(nd)]
    sizes = [a.shape[i] + 2 * p[i] for i in range(nd)]  # the padded input
    if mode == "valid":
        # Like scipy: if the kernel is the larger one in every dimension, take the middle of the full output.
        if any(sizes[i] < spans[i] for i in range(nd)) and any(sizes[i] > spans[i] for i in range(nd)):
            raise CnnsizeError(f"mode 'valid' needs one input at least as large as the other in every dimension, "
                               f"got padded input {tuple(sizes)} and dilated kernel {tuple(spans)}")
        extra = [max(0, spans[i] - sizes[i]) for i in range(nd)]
        pads = [(p[i] + extra[i], p[i] + extra[i]) for i in range(nd)]
    elif mode == "full":
        pads = [(p[i] + spans[i] - 1, p[i] + spans[i] - 1) for i in range(nd)]
    else:  # "same": the centered part of "full", as scipy takes it (start (span - 1) // 2)
        pads = [(p[i] + spans[i] // 2, p[i] + (spans[i] - 1) // 2) for i in range(nd)]
    dtype = np.result_type(a, v)
    kernel = (v[(slice(None, None, -1),) * nd] if flip else v).astype(dtype, copy=False)
    xp = _pad(a.astype(dtype, copy=False), pads)
    out: Any = None
    for tap, view in _tap_views(xp, kernel.shape, s, d):
        out = kernel[tap] * view if out is None else out + kernel[tap] * view
    return out


def convolve1d(a, v, mode: str = "full", stride: int = 1, padding: int = 0, dilation: int = 1) -> np.ndarray:
    """True 1-D convolution, (a * v)[t] = sum_i a[i] v[t - i]; like numpy.convolve but "same" keeps len(a)."""
    return _signal(a, v, 1, mode, stride, padding, dilation, flip=True)


def correlate1d(a, v, mode: str = "full", stride: int = 1, padding: int = 0, dilation: int = 1) -> np.ndarray:
    """1-D cross-correlation, out[t] = sum_i a[t + i] v[i]; defaults to "full" like the rest (numpy's to "valid")."""
    return _signal(a, v, 1, mode, stride, padding, dilation, flip=False)


def convolve2d(a, v, mode: str = "full", stride: IntOrPair = 1, padding: IntOrPair = 0,
               dilation: IntOrPair = 1) -> np.ndarray:
    """True 2-D convolution (kernel flipped in both axes), as in scipy.signal.convolve2d."""
    return _signal(a, v, 2, mode, stride, padding, dilation, flip=True)


def correlate2d(a, v, mode: str = "full", stride: IntOrPair = 1, padding: IntOrPair = 0,
                dilation: IntOrPair = 1) -> np.ndarray:
    """2-D cross-correlation (kernel not flipped); "valid" is what a CNN layer computes.

    Matches scipy.signal.correlate, i.e. convolve2d with the kernel flipped, in every mode. (scipy.signal.correlate2d
    centers "same" one place differently for even-sized kernels.)
    """
    return _signal(a, v, 2, mode, stride, padding, dilation, flip=False)


# --- multi-channel CNN layers ----------------------------------------------------------------------------------

def _layer(x, weights, bias, stride: IntOrPair, padding: IntOrPair, dilation: IntOrPair, groups: int,
           nd: int) -> np.ndarray:
    """torch.nn.functional.conv{nd}d in numpy: cross-correlation summed over the channels of each group."""
    x = _array(x, "x", (nd + 1, nd + 2))
    w = _array(weights, "weights", nd + 2)
    batched = x.ndim == nd + 2
    if not batched:
        x = x[None]
    s, p, d = _tuple(stride, "stride", nd, 1), _tuple(padding, "padding", nd, 0), _tuple(dilation, "dilation", nd, 1)
    if not isinstance(groups, int | np.integer) or isinstance(groups, bool) or groups < 1:
        raise CnnsizeError(f"groups must be a positive int, got {groups!r}")
    n, c = x.shape[:2]
    k, cg = w.shape[:2]
    if c % groups or k % groups:
        raise CnnsizeError(f"groups={groups} must divide both the input channels ({c}) and the filters ({k})")
    if cg != c // groups:
        raise CnnsizeError(f"weights have {cg} input channels per filter, expected {c // groups} "
                           f"(= {c} channels / groups {groups})", hint="weights are (K, C/groups, *kernel)")
    spans = [_span(w.shape[2 + i], d[i]) for i in range(nd)]
    sizes = [x.shape[2 + i] + 2 * p[i] for i in range(nd)]
    if any(spans[i] > sizes[i] for i in range(nd)):
        raise CnnsizeError(f"kernel (dilated extent {tuple(spans)}) is larger than the padded input {tuple(sizes)}",
                           hint="add padding or use a smaller kernel or dilation")
    b = None if bias is None else _array(bias, "bias", 1)
    if b is not None and b.shape != (k,):
        raise CnnsizeError(f"bias must have shape ({k},) (one per filter), got {b.shape}")
    dtype = np.result_type(x, w) if b is None else np.result_type(x, w, b)
    xp = _pad(x.astype(dtype, copy=False), [(pi, pi) for pi in p])
    xg = xp.reshape(n, groups, cg, *xp.shape[2:])  # (N, G, C/G, *spatial)
    wg = w.astype(dtype, copy=False).reshape(groups, k // groups, cg, *w.shape[2:])  # (G, K/G, C/G, *kernel)
    out: Any = None
    for tap, view in _tap_views(xg, w.shape[2:], s, d):
        term = np.einsum("ngc...,gkc->ngk...", view, wg[(Ellipsis, *tap)])  # type: ignore[arg-type]
        out = term if out is None else out + term
    out = out.reshape(n, k, *out.shape[3:])
    if b is not None:
        out = out + b.astype(dtype, copy=False).reshape(k, *([1] * nd))
    return out if batched else out[0]


def conv1d_layer(x, weights, bias=None, stride: int = 1, padding: int = 0, dilation: int = 1,
                 groups: int = 1) -> np.ndarray:
    """A Conv1d layer's forward pass: x (C, L) or (N, C, L), weights (K, C/groups, k), bias (K,)."""
    return _layer(x, weights, bias, stride, padding, dilation, groups, nd=1)


def conv2d_layer(x, weights, bias=None, stride: IntOrPair = 1, padding: IntOrPair = 0, dilation: IntOrPair = 1,
                 groups: int = 1) -> np.ndarray:
    """A Conv2d layer's forward pass: x (C, H, W) or (N, C, H, W), weights (K, C/groups, kh, kw), bias (K,)."""
    return _layer(x, weights, bias, stride, padding, dilation, groups, nd=2)


# --- pooling ---------------------------------------------------------------------------------------------------

def _pool_args(x, kernel: IntOrPair, stride: IntOrPair | None, padding: IntOrPair):
    """Checked pooling arguments as (x, kernel, stride, padding) pairs, with torch's limits."""
    x = _array(x, "x", (2, 3, 4))
    k = _tuple(kernel, "kernel", 2, 1)
    s = k if stride is None else _tuple(stride, "stride", 2, 1)
    p = _tuple(padding, "padding", 2, 0)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        # As torch: more padding would allow windows of padding only.
        raise CnnsizeError(f"padding {p} must be at most half the kernel {k}")
    if x.shape[-2] + 2 * p[0] < k[0] or x.shape[-1] + 2 * p[1] < k[1]:
        raise CnnsizeError(f"kernel {k} is larger than the padded input {x.shape[-2:]} + 2 * {p}")
    return x, k, s, p


def max_pool2d(x, kernel: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0) -> np.ndarray:
    """Largest value in each window of the last two axes; padding never wins (it acts as -inf)."""
    x, k, s, p = _pool_args(x, kernel, stride, padding)
    lowest = np.iinfo(x.dtype).min if x.dtype.kind in "iu" else -np.inf
    out: Any = None
    for _, view in _tap_views(_pad(x, [(pi, pi) for pi in p], lowest), k, s, (1, 1)):
        out = view.copy() if out is None else np.maximum(out, view)
    return out


def avg_pool2d(x, kernel: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0) -> np.ndarray:
    """Mean of each window of the last two axes, padding zeros included (torch's count_include_pad=True).

    Integer inputs give float64 (a mean of integers is not an integer); float inputs keep their dtype.
    """
    x, k, s, p = _pool_args(x, kernel, stride, padding)
    if x.dtype.kind in "iu":
        x = x.astype(np.float64)  # sum without overflow; exact up to 2**53
    total = None
    for _, view in _tap_views(_pad(x, [(pi, pi) for pi in p]), k, s, (1, 1)):
        total = view.copy() if total is None else total + view
    return total / (k[0] * k[1])
