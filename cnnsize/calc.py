"""Pure calculators for homework-sized questions.

Every function takes ints or sympy symbols and returns exact values (no
floats). With ``explain=True`` a function returns a :class:`Worked` value that
also carries the arithmetic written out the way a lecture slide writes it.
A size that does not fit raises :class:`cnnsize.DoesNotFit` with that
arithmetic and the strides, paddings or input sizes that would fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .core.errors import CnnsizeError, DoesNotFit
from .core.numeric import (
    Dim,
    ceil_div,
    divides,
    dmin,
    exact_div,
    factor_text,
    floor_div,
    fmt_num,
    is_int,
    is_symbolic,
    prod,
    tidy,
)
from .core.plain import Plain

FIT_MODES = ("exact", "floor")


class Worked(Plain):
    """A result together with the steps that produced it."""

    __slots__ = FIELDS = ("value", "steps")

    def __init__(self, value: Any, steps: tuple[str, ...] = ()):
        self.value, self.steps = value, steps

    def __str__(self) -> str:
        return "\n".join(self.steps)

    def __int__(self) -> int:
        return int(self.value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Worked):
            return self.value == other.value
        return self.value == other

    def __hash__(self) -> int:
        return hash(self.value)


def _ret(value: Any, steps: list[str], explain: bool):
    value = tidy(value)
    return Worked(value, tuple(steps)) if explain else value


def _check_dim(name: str, value: Dim, minimum: int) -> None:
    if isinstance(value, bool) or not (is_int(value) or hasattr(value, "free_symbols")):
        raise CnnsizeError(f"{name} must be an integer, got {value!r}")
    if is_int(value) and value < minimum:
        raise CnnsizeError(f"{name} must be at least {minimum}, got {value}")


def window_arithmetic(size: Dim, kernel: Dim, stride: Dim, pad_lo: Dim, pad_hi: Dim, dilation: Dim) -> str:
    """The left side of (W − F + 2P)/S + 1 with this layer's numbers filled in."""
    parts = [fmt_num(size)]
    if pad_lo == pad_hi and pad_lo != 0:
        parts.append(f" + 2·{fmt_num(pad_lo)}")
    elif pad_lo != pad_hi and (is_symbolic(pad_lo) or is_symbolic(pad_hi)):
        parts.append(f" + {factor_text(tidy(pad_lo + pad_hi))}")  # 'same' with a symbolic kernel: K − 1 in all
    elif pad_lo != pad_hi:
        parts.append(f" + {fmt_num(pad_lo)} + {fmt_num(pad_hi)}")
    if dilation == 1:
        parts.append(f" − {fmt_num(kernel)}")
    else:
        parts.append(f" − {fmt_num(dilation)}·({fmt_num(kernel)} − 1) − 1")
    return f"({''.join(parts)})/{fmt_num(stride)} + 1"


SUGGEST_SEARCH = 256  # how far to look for strides and paddings that fit (bounded: specs can hold huge numbers)


def _suggest(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int, dilation: int) -> str:
    """Ways to make a window fit exactly, for a DoesNotFit message (bounded work for any numbers)."""
    span = dilation * (kernel - 1) + 1
    room = size + pad_lo + pad_hi - span
    ideas = []
    near = range(max(1, stride - SUGGEST_SEARCH), min(max(stride, span), stride + SUGGEST_SEARCH) + 1)
    strides = [s for s in near if s != stride and room % s == 0]
    strides = sorted(strides, key=lambda s: (abs(s - stride), s))[:3]
    if strides:
        ideas.append("stride " + " or ".join(f"{s} (output {room // s + 1})" for s in sorted(strides)))
    for p in range(0, min(span, SUGGEST_SEARCH) + 1):
        r = size + 2 * p - span
        if r >= 0 and r % stride == 0 and (p, p) != (pad_lo, pad_hi):
            ideas.append(f"pad {p} (output {r // stride + 1})")
            break
    # the nearest input sizes either side whose room is a multiple of the stride, found arithmetically
    below = size - room % stride
    above = size + stride - room % stride
    sizes = [n for n in (below, above) if n >= 1 and n + pad_lo + pad_hi - span >= 0]
    ideas.append("input " + " or ".join(str(n) for n in sizes))
    last = f"fit: floor (output {room // stride + 1}, as PyTorch computes it)"
    return "it would fit with " + ", with ".join(ideas) + f", or with {last}"


class _LazyText:
    """A string built on first use, so the numeric walks of `cnnsize fit` never format arithmetic they drop."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __format__(self, spec: str) -> str:
        return format(self.fn(*self.args), spec)


def _window_fast(size, kernel, stride, pad_lo, pad_hi, dilation, rule):
    """The common case (valid ints that fit) without building any text; None means take the full path."""
    if not (type(size) is type(kernel) is type(stride) is type(pad_lo) is type(pad_hi) is type(dilation) is int):
        return None
    if size < 1 or kernel < 1 or stride < 1 or pad_lo < 0 or pad_hi < 0 or dilation < 1:
        return None
    room = size + pad_lo + pad_hi - dilation * (kernel - 1) - 1
    if room < 0:
        return None
    if rule == "floor" or (rule == "exact" and room % stride == 0):
        return room // stride + 1
    if rule == "ceil":
        out = -(-room // stride) + 1
        return out - 1 if (out - 1) * stride >= size + pad_lo else out
    return None


def window_output(size: Dim, kernel: Dim, stride: Dim = 1, pad: Dim | tuple[Dim, Dim] = 0,
                  dilation: Dim = 1, *, rule: str = "exact", what: str = "filter",
                  conditions: list | None = None, bounds: list | None = None, explain: bool = False):
    """Output length of a sliding window along one axis: (W − F + 2P)/S + 1.

    ``rule`` is ``exact`` (a window that does not tile the input raises
    DoesNotFit), ``floor`` (the frameworks' rule) or ``ceil`` (pooling's
    ceil_mode, with PyTorch's rule that the last window starts inside the
    input or its left padding). With symbols, ``exact`` returns the exact
    quotient and appends the divisibility condition to ``conditions`` as a
    (room, stride) pair, and the room (which must be >= 0) to ``bounds``.
    """
    pad_lo, pad_hi = pad if isinstance(pad, tuple) else (pad, pad)
    fast = _window_fast(size, kernel, stride, pad_lo, pad_hi, dilation, rule) if not explain else None
    if fast is not None:
        return fast
    for name, value, low in (("size", size, 1), ("kernel", kernel, 1), ("stride", stride, 1),
                             ("padding", pad_lo, 0), ("padding", pad_hi, 0), ("dilation", dilation, 1)):
        _check_dim(name, value, low)
    span = dilation * (kernel - 1) + 1
    room = size + pad_lo + pad_hi - span
    text = _LazyText(window_arithmetic, size, kernel, stride, pad_lo, pad_hi, dilation)  # built only if shown
    # ceil mode (PyTorch's pooling) still makes one window when the span overhangs by less than a stride
    overhang_ok = rule == "ceil" and is_int(room) and is_int(stride) and ceil_div(room, stride) + 1 >= 1 \
        and ceil_div(room, stride) * stride < size + pad_lo
    if is_int(room) and room < 0 and not overhang_ok:
        raise DoesNotFit(
            f"the {fmt_num(span)}-wide {what} is larger than the {fmt_num(size + pad_lo + pad_hi)}-wide "
            f"padded input: {text} = {fmt_num(exact_div(room, stride) + 1)}",
            hint="use a smaller kernel or dilation, more padding, or a larger input")
    if bounds is not None and is_symbolic(room):
        bounds.append(room)
    note = ""
    if rule == "exact":
        ok = divides(stride, room)
        out = exact_div(room, stride) + 1
        if ok is False:
            raise DoesNotFit(f"{text} = {fmt_num(out)}: does not fit",
                             hint=_suggest(size, kernel, stride, pad_lo, pad_hi, dilation)
                             if all(is_int(v) for v in (size, kernel, stride, pad_lo, pad_hi, dilation)) else
                             "use fit: floor to round down as the frameworks do")
        if ok is None:
            if conditions is not None:
                conditions.append((room, stride))
            if explain:
                from .core.symbolic import solve

                note = "; ".join(solve([(room, stride)], [room]).lines())
                note = f", a whole number when {note}" if note else ""
    elif rule == "floor":
        out = floor_div(room, stride) + 1
    elif rule == "ceil":
        # PyTorch's ceil_mode drops a last window that would start in the right padding.
        if is_int(out := ceil_div(room, stride) + 1):
            if (out - 1) * stride >= size + pad_lo:
                out -= 1
        elif not all(is_int(v) for v in (stride, pad_hi, span)) or stride + pad_hi > span:
            out = dmin(ceil_div(room, stride), floor_div(size + pad_lo - 1, stride)) + 1
    else:
        raise CnnsizeError(f"unknown fit rule '{rule}'", hint="valid: exact, floor")
    return _ret(out, [f"{text} = {fmt_num(out)}{note}"] if explain else [], explain)


def conv_output_size(size: Dim, kernel: Dim, stride: Dim = 1, padding: Dim = 0, dilation: Dim = 1, *,
                     fit: str = "exact", explain: bool = False):
    """Spatial output size of a convolution: (W − F + 2P)/S + 1 (dilated: F → D·(F−1)+1)."""
    return window_output(size, kernel, stride, padding, dilation, rule=fit, explain=explain)


def pool_output_size(size: Dim, kernel: Dim, stride: Dim | None = None, padding: Dim = 0,
                     ceil_mode: bool = False, dilation: Dim = 1, *, fit: str = "exact", explain: bool = False):
    """Spatial output size of a pooling window; the stride defaults to the kernel, as in PyTorch."""
    stride = kernel if stride is None else stride
    rule = "ceil" if ceil_mode else fit
    return window_output(size, kernel, stride, padding, dilation, rule=rule, what="pooling window",
                         explain=explain)


def _kernel_area(kernel: Dim | Sequence[Dim]) -> tuple[Dim, str]:
    if isinstance(kernel, (tuple, list)):
        return prod(kernel), "·".join(factor_text(k) for k in kernel)
    assert not isinstance(kernel, Sequence)
    return kernel * kernel, f"{factor_text(kernel)}·{factor_text(kernel)}"


def conv_params(in_channels: Dim, filters: Dim, kernel: Dim | Sequence[Dim], bias: bool = True,
                groups: Dim = 1, *, explain: bool = False):
    """Weights and biases of a convolution: (F·F·C/groups + 1)·K, as "(5·5·3 + 1)·10 = 760"."""
    area, area_text = _kernel_area(kernel)
    _check_groups(in_channels, filters, groups)
    per_filter = area * exact_div(in_channels, groups)
    c_text = factor_text(in_channels) if groups == 1 else f"{factor_text(in_channels)}/{factor_text(groups)}"
    total = (per_filter + (1 if bias else 0)) * filters
    inner = f"{area_text}·{c_text}" + (" + 1" if bias else "")
    return _ret(total, [f"({inner})·{factor_text(filters)} = {fmt_num(total)}"], explain)


def _check_groups(in_channels: Dim, filters: Dim, groups: Dim) -> None:
    for what, n in (("input channels", in_channels), ("filters", filters)):
        if divides(groups, n) is False:
            raise CnnsizeError(f"{what} ({fmt_num(n)}) must be divisible by groups ({fmt_num(groups)})",
                               hint="change groups to a divisor of both")


def fc_params(in_features: Dim, out_features: Dim, bias: bool = True, *, explain: bool = False):
    """Weights and biases of a fully connected layer: (in + 1)·out."""
    total = (in_features + (1 if bias else 0)) * out_features
    inner = fmt_num(in_features) + (" + 1" if bias else "")
    text = f"({inner})·{factor_text(out_features)} = {fmt_num(total)}" if bias else \
        f"{factor_text(in_features)}·{factor_text(out_features)} = {fmt_num(total)}"
    return _ret(total, [text], explain)


def conv_macs(out_units: Dim, in_channels: Dim, kernel: Dim | Sequence[Dim], groups: Dim = 1, *,
              explain: bool = False):
    """Multiply-adds of a convolution: output units × F·F·C/groups (bias adds not counted)."""
    area, area_text = _kernel_area(kernel)
    total = out_units * area * exact_div(in_channels, groups)
    c_text = factor_text(in_channels) if groups == 1 else f"{factor_text(in_channels)}/{factor_text(groups)}"
    return _ret(total, [f"{factor_text(out_units)}·{area_text}·{c_text} = {fmt_num(total)}"], explain)


def locally_connected_params(in_channels: Dim, filters: Dim, kernel: Dim | Sequence[Dim],
                             out_size: Dim | Sequence[Dim], bias: bool = True, *, explain: bool = False):
    """A conv without weight sharing: every output position has its own filter."""
    area, area_text = _kernel_area(kernel)
    positions, pos_text = _kernel_area(out_size)
    weights = positions * filters * area * in_channels
    biases = positions * filters if bias else 0
    text = f"{pos_text}·{factor_text(filters)}·{area_text}·{factor_text(in_channels)}"
    if bias:
        text += f" + {pos_text}·{factor_text(filters)}"
    return _ret(weights + biases, [f"{text} = {fmt_num(weights + biases)}"], explain)
