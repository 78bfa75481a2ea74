"""Exact arithmetic that works on Python ints and on sympy expressions alike.

Numbers stay ints (never floats); anything else is treated as a sympy
expression, and sympy is imported only when such a value shows up, so the
numeric report path never pays for it.
"""

from __future__ import annotations

from typing import Any

Dim = Any  # an int, or a sympy expression


def is_int(x: Any) -> bool:
    return type(x) is int or (isinstance(x, int) and not isinstance(x, bool))


def is_symbolic(x: Any) -> bool:
    return not is_int(x) and hasattr(x, "free_symbols")


def _sympy():
    import sympy

    return sympy


def exact_div(a: Dim, b: Dim) -> Dim:
    """a / b, exact: an int when both are ints and b divides a, else a sympy Rational/expr."""
    if is_int(a) and is_int(b):
        if a % b == 0:
            return a // b
        return _sympy().Rational(a, b)
    return _sympy().sympify(a) / b


def floor_div(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return a // b
    return _sympy().floor(_sympy().sympify(a) / b)


def ceil_div(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return -(-a // b)
    return _sympy().ceiling(_sympy().sympify(a) / b)


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
    if getattr(x, "is_Rational", False):
        return f"{float(x):.2f}".rstrip("0").rstrip(".")
    return str(x)


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
