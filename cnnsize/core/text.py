"""Numbers and shapes as a person reads them: the words every renderer and every pass' summary line share."""

from __future__ import annotations

from .numeric import dim_text, is_int, is_symbolic, pretty


def num(value) -> str:
    """1234567 -> '1,234,567'; formulas as a person writes them: '2178·(H − 7)·(W − 7)'."""
    return f"{value:,}" if is_int(value) else pretty(value)


def shape_text(shape) -> str:
    """3×224×224; with formulas, spaced and bracketed so that each size reads alone: 96 × (H − 7)/4 × ..."""
    if not any(is_symbolic(v) for v in shape):
        return "×".join(str(v) for v in shape)
    return " × ".join(dim_text(v) for v in shape)


def extra_text(value) -> str:
    """A cell of a figure a pass adds (cnnsize.engine.result.Column): counts with separators, floats to 2 places."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:,.2f}"
    return num(value)


def seconds_text(value) -> str:
    if value is None:
        return "–"
    for scale, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value * 1e9:.3g} ns"


def short_count(n) -> str:
    """A count in three significant figures with a unit, exactly rounded from the integer: 138357544 -> '138M'.

    Integer arithmetic only, so any size reads (no float overflow); formulas as ``pretty`` writes them.
    """
    if not is_int(n):
        return pretty(n)
    sign, n = ("-" if n < 0 else ""), abs(n)
    if n < 1000:
        return f"{sign}{n}"
    units = ((3, "K"), (6, "M"), (9, "G"), (12, "T"))
    for i, (exp, unit) in enumerate(units):
        whole = n // 10**exp
        last = i == len(units) - 1
        if whole >= 1000 and not last:
            continue
        decimals = max(0, 3 - len(str(whole)))
        step = 10 ** (exp - decimals)
        value = (n + step // 2) // step
        if value >= 1000 * 10**decimals and not last:
            continue  # rounding carried into the next unit
        text = str(value).rjust(decimals + 1, "0")
        return f"{sign}{text[:-decimals]}.{text[-decimals:]}{unit}" if decimals else f"{sign}{text}{unit}"
    return f"{sign}{n}"  # pragma: no cover
