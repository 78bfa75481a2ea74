"""Exact arithmetic that works on Python ints and on sympy expressions alike.

Numbers stay ints (never floats); anything else is treated as a sympy
expression, and sympy is imported only when such a value shows up, so the
numeric report path never pays for it. Fractions (a misfit's exact quotient) are
imported where one is made or read: fractions brings decimal with it, a few ms of
every start that a spec whose layers fit never needs.
"""

from __future__ import annotations

from typing import Any

Dim = Any  # an int, or a sympy expression


def is_int(x: Any) -> bool:
    return type(x) is int or (isinstance(x, int) and not isinstance(x, bool))


def all_int(values: list | tuple) -> bool:
    """Whether every value of a list or tuple is an int (plain ints checked at C speed first)."""
    return set(map(type, values)) <= _INT or all(map(is_int, values))


_INT = {int}


def is_symbolic(x: Any) -> bool:
    return not is_int(x) and hasattr(x, "free_symbols")


def as_expr(x: Any):
    """A sympy value for an int or an expression; never parses text (specs are untrusted)."""
    from fractions import Fraction

    if isinstance(x, str):
        raise TypeError("as_expr takes numbers or sympy expressions, not text")
    sp = _sympy()
    if isinstance(x, Fraction):
        return sp.Rational(x.numerator, x.denominator)
    return sp.Integer(x) if is_int(x) else x


def _sympy():
    import sympy

    return sympy


def exact_div(a: Dim, b: Dim) -> Dim:
    """a / b, exact: an int when both are ints and b divides a, a Fraction for other ints, else a sympy expr.

    A Fraction (not sympy's Rational) keeps the numeric path, where a misfit is merely reported, free of sympy.
    """
    if is_int(a) and is_int(b):
        if a % b == 0:
            return a // b
        from fractions import Fraction

        return Fraction(a, b)
    return as_expr(a) / b


def floor_div(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return a // b
    return _sympy().floor(as_expr(a) / b)


def ceil_div(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return -(-a // b)
    return _sympy().ceiling(as_expr(a) / b)


def divides(b: Dim, a: Dim) -> bool | None:
    """True/False when known, None when it depends on symbols."""
    if is_int(a) and is_int(b):
        return a % b == 0
    sp = _sympy()
    r = sp.Mod(a, b)
    if r == 0:
        return True
    if r.is_number:
        return False
    return None


def prod(values) -> Dim:
    out: Dim = 1
    for v in values:
        out = out * v
    return out


def simplify(x: Dim) -> Dim:
    if is_int(x):
        return x
    sp = _sympy()
    y = sp.simplify(x)
    if getattr(y, "is_Integer", False):
        return int(y)
    return y


def tidy(x: Dim) -> Dim:
    """The most readable exact form of a value: ints stay ints; a formula factored or expanded, whichever is shorter.

    ``(H - 7)/4`` reads better than ``H/4 - 7/4``, and ``2048*H*W + 4096`` better than a factored sum;
    the arguments of floor and ceiling are factored too. Never changes the value.
    """
    if not is_symbolic(x):
        return x
    if getattr(x, "is_Integer", False):
        return int(x)
    if getattr(x, "is_number", False):
        return x
    sp = _sympy()
    if x.has(sp.Max, sp.Min):  # left as built (see dmax): expanding or factoring inside a Max takes minutes
        return x
    known = _TIDIED.get(x)
    if known is not None:
        return known
    original = x
    best = None
    rounding = (sp.floor, sp.ceiling)
    x = x.replace(lambda n: isinstance(n, rounding), lambda n: n.func(_factored(n.args[0])))
    if sp.count_ops(x) > _TIDY_OPS:  # a whole network's total: factoring it takes seconds and reads no better
        best = x
    elif isinstance(x, sp.Mul):  # a product (most per-layer counts) is factored already: factor its sums alone
        factored = sp.Mul(*(_factored(a) if a.is_Add else a for a in x.args))
        if not isinstance(factored, sp.Mul):  # a number times one sum distributes: (H − 7)/4 is factor's job
            factored = _factored(x)
    else:
        factored = _factored(x)
    if best is None:
        expanded = sp.expand(x)
        ops_f, ops_e = sp.count_ops(factored), sp.count_ops(expanded)
        # a size in one symbol reads best factored, (H − 4)/2; a count in H and W best expanded, 2048·H·W + 4096
        best = factored if ops_f < ops_e or (ops_f == ops_e and len(x.free_symbols) == 1) else expanded
    best = int(best) if best.is_Integer else best
    if len(_TIDIED) > 4096:
        _TIDIED.clear()
    _TIDIED[original] = best
    if is_symbolic(best):
        _TIDIED[best] = best  # tidy again (a renderer tidies what analysis tidied): a lookup
    return best


def _factored(x):
    """sympy.factor, remembered: the same floor arguments recur in every later layer's formulas."""
    known = _FACTORED.get(x)
    if known is None:
        if len(_FACTORED) > 4096:
            _FACTORED.clear()
        known = _FACTORED[x] = _sympy().factor(x)
    return known


_FACTORED: dict = {}
_TIDY_OPS = 80  # beyond this many operations a formula is left as built (after tidying its floors)
_TIDIED: dict = {}  # formula -> its tidy form: a network repeats the same formulas row after row


def dmin(*values: Dim) -> Dim:
    """min() that also works on formulas (see dmax)."""
    if all(is_int(v) for v in values):
        return min(values)
    return _extreme(values, lowest=True)


def dmax(*values: Dim) -> Dim:
    """max() that also works on formulas: a sympy Max of the candidates no other one provably bounds.

    sympy's own Max compares every pair of its arguments through the assumptions system, which takes
    seconds to minutes for the few hundred candidates of a network's memory peak (issue 15). Here a
    candidate is dropped only when its difference from a kept one is a polynomial in positive-integer
    symbols with all coefficients >= 0 once each symbol is written 1 + s (s >= 0): sound, and a few ms.
    The rest stay in an unevaluated Max, which is exactly their maximum.
    """
    if all(is_int(v) for v in values):
        return max(values)
    return _extreme(values, lowest=False)


def _extreme(values, lowest: bool) -> Dim:
    sp = _sympy()
    flat: list = []
    for v in values:
        v = as_expr(v)
        flat.extend(v.args if isinstance(v, sp.Min if lowest else sp.Max) else (v,))
    unique = list(dict.fromkeys(flat))
    if len(unique) == 1:
        return to_int_if_possible(unique[0])
    shifted = {}
    for sym in set().union(*(u.free_symbols for u in unique)):
        if not (sym.is_integer and sym.is_positive):
            return (sp.Min if lowest else sp.Max)(*unique)  # no sign known: sympy's own comparisons
        shifted[sym] = sym + 1  # sym >= 1: sym = 1 + s with s >= 0
    probe = {sym: 10**6 + i for i, sym in enumerate(shifted)}
    order = sorted(unique, key=lambda u: _sample(u, probe), reverse=not lowest)
    kept: list = []
    for cand in order:
        if not any(_bounds(k, cand, shifted, lowest) for k in kept[:2]):
            kept.append(cand)
    if len(kept) == 1:
        return to_int_if_possible(kept[0])
    return (sp.Min if lowest else sp.Max)(*kept, evaluate=False)


def _sample(x, point: dict):
    try:
        value = x.xreplace(point) if hasattr(x, "xreplace") else x
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0


def _bounds(kept, cand, shifted: dict, lowest: bool) -> bool:
    """Whether ``kept`` is provably >= ``cand`` (<= when lowest) for every positive integer value of the symbols."""
    return _nonnegative((cand - kept) if lowest else (kept - cand), shifted)


def _nonnegative(x, shifted: dict) -> bool:
    """A sound (not complete) proof that x >= 0: a polynomial in the symbols whose coefficients are all >= 0
    once each symbol s is written 1 + s. Floors and ceilings are not looked into (proving them costs more
    than it saves): a candidate holding one is kept."""
    sp = _sympy()
    if getattr(x, "is_number", False):
        return bool(x >= 0)
    if x.has(sp.floor, sp.ceiling, sp.Max, sp.Min):
        return False
    try:
        poly = sp.Poly(x.xreplace(shifted), *shifted)
    except (sp.PolynomialError, sp.GeneratorsNeeded, TypeError, ValueError):
        return False
    return all(c.is_number and c >= 0 for c in poly.coeffs())


def pretty(x: Any) -> str:
    """A formula as a person writes it: ``2178·(H − 7)·(W − 7)``, ``H^2``; plain text otherwise.

    Works on the printed form, so it needs no sympy import.
    """
    if not is_symbolic(x):
        return str(x)
    known = _PRETTY.get(x)
    if known is None:  # printing a formula costs milliseconds, and a network prints the same shapes row after row
        if len(_PRETTY) > 4096:
            _PRETTY.clear()
        known = _PRETTY[x] = str(x).replace("**", "^").replace("*", "·").replace("-", "−")
    return known


_PRETTY: dict = {}


def to_int_if_possible(x: Dim) -> Dim:
    if is_int(x):
        return x
    if getattr(x, "is_Integer", False):
        return int(x)
    return x


def fmt_num(x: Dim) -> str:
    """Numbers as written in a worked example: ints plain, others as 2.33 or a formula."""
    if is_int(x):
        return str(x)
    if getattr(x, "is_Integer", False):
        return str(int(x))
    from fractions import Fraction

    if isinstance(x, Fraction) or getattr(x, "is_Rational", False):
        value = Fraction(int(x.numerator), int(x.denominator)) if not isinstance(x, Fraction) else x
        if abs(value) < 10**9:
            return f"{float(value):.2f}".rstrip("0").rstrip(".")
        whole, rest = divmod(value.numerator, value.denominator)  # too large for a float: exact
        return f"{whole} + {rest}/{value.denominator}"
    return pretty(tidy(x))


def dim_text(x: Any) -> str:
    """One size of a shape: a sum in parentheses, so that ``6 × (H − 4) × (W − 4)`` cannot be misread."""
    if is_int(x):
        return str(x)
    from fractions import Fraction

    text = pretty(x) if not isinstance(x, Fraction) else fmt_num(x)
    return f"({text})" if getattr(x, "is_Add", False) else text


def factor_text(x: Dim) -> str:
    """fmt_num, in parentheses when a formula would otherwise run into the next factor: ``(H − 7)/4``."""
    text = fmt_num(x)
    if is_symbolic(x) and not (getattr(x, "is_Symbol", False) or getattr(x, "is_number", False)):
        return f"({text})"
    return text


_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
_COUNT_UNITS = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))
_FLOAT_EXACT = 2**53  # below this an int converts to a float exactly


def _decimal(numerator: int, denominator: int, digits: int) -> str:
    """numerator / denominator with ``digits`` decimals and thousands separators, rounded half to even, exactly."""
    scale = 10**digits
    q, r = divmod(abs(numerator) * scale, denominator)
    if 2 * r > denominator or (2 * r == denominator and q % 2):
        q += 1
    whole, frac = divmod(q, scale)
    sign = "-" if numerator < 0 and q else ""
    return f"{sign}{whole:,}" + (f".{frac:0{digits}d}" if digits else "")


def human_bytes(n: Any) -> str:
    """A byte count in binary units, one decimal: ``1.5 KiB``, ``138.0 MiB``; exact for ints of any size.

    Formulas are shown as they are, with ``B``.
    """
    if not is_int(n):
        return f"{pretty(n)} B"
    for power, unit in enumerate(_BYTE_UNITS):
        if abs(n) < 1024 ** (power + 1) or unit == _BYTE_UNITS[-1]:
            if unit == "B":
                return f"{n:,} B"
            if abs(n) < _FLOAT_EXACT:  # the float path, as before: identical text for every ordinary size
                return f"{n / 1024**power:,.1f} {unit}"
            return f"{_decimal(n, 1024**power, 1)} {unit}"
    return f"{n:,} B"  # pragma: no cover


def human_count(n: Any, digits: int = 2) -> str:
    """A count with a decimal unit: ``1.82G``, ``11.69M``, ``964``; exact for ints of any size (no float overflow).

    ``digits`` decimals (a narrow table may want 1: ``1.8G``); formulas are shown as they are.
    """
    if not is_int(n):
        return pretty(n)
    for div, unit in _COUNT_UNITS:
        if abs(n) >= div:
            if abs(n) < _FLOAT_EXACT:
                return f"{n / div:.{digits}f}{unit}"
            return f"{_decimal(n, div, digits).replace(',', '')}{unit}"
    return str(n)


class no_gc:
    """Pause the cyclic garbage collector while building many small acyclic objects.

    Sizing a 100,000-layer spec allocates millions of small containers; the collector's
    repeated full scans of them would make the work grow faster than linearly.
    """

    def __enter__(self):
        import gc

        self.was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc):
        import gc

        if self.was_enabled:
            gc.enable()
