"""Which symbolic input sizes make every layer fit: divisibility conditions solved into congruences.

A window fits exactly when ``room/stride`` is a whole number (room = W − F + 2P).
With a symbolic input such as H, each room is usually affine in H with rational
coefficients, so every condition is a linear congruence in H; together they
reduce to one rule "H ≡ r (mod m)", and the rooms being >= 0 give a smallest H.
AlexNet (CS231n) comes out as H ≡ 3 (mod 32), H ≥ 67: 227 fits, 224 does not.
Conditions that are not affine in one symbol (a symbolic stride, say) are kept
as they are, in words. This module imports sympy; only symbolic paths import it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from .numeric import as_expr, pretty, tidy


@dataclass(frozen=True)
class SizeRule:
    """The sizes of one symbol at which every layer fits: ``symbol ≡ residue (mod modulus)``, ``>= minimum``."""

    symbol: Any
    residue: int = 0
    modulus: int = 1
    minimum: int = 1

    def holds(self, n: int) -> bool:
        return n >= self.minimum and (n - self.residue) % self.modulus == 0

    def first(self, count: int = 3) -> list[int]:
        """The smallest sizes that fit."""
        start = self.minimum + (self.residue - self.minimum) % self.modulus
        return [start + i * self.modulus for i in range(count)]

    def __str__(self) -> str:
        name = str(self.symbol)
        parts = []
        if self.modulus > 1:
            parts.append(f"{name} ≡ {self.residue} (mod {self.modulus})")
        if self.minimum > 1:
            parts.append(f"{name} ≥ {self.minimum}")
        if not parts:
            return f"any {name} ≥ 1"
        return " and ".join(parts) + f" ({name} = " + ", ".join(map(str, self.first())) + ", …)"


@dataclass
class FitConditions:
    """Everything the symbolic sizes must satisfy for every layer to fit exactly."""

    rules: dict[str, SizeRule] = field(default_factory=dict)
    other: list[str] = field(default_factory=list)
    never: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One clearly worded line per symbol (and per condition that could not be solved)."""
        out = [f"never fits: {n}" for n in self.never]
        out += [str(rule) for rule in self.rules.values() if rule.modulus > 1 or rule.minimum > 1]
        out += self.other
        return out

    def holds(self, values: dict[str, int]) -> bool | None:
        """Whether sizes (by symbol name) fit; None when an unsolved condition is involved."""
        if self.never:
            return False
        ok = all(rule.holds(values[name]) for name, rule in self.rules.items() if name in values)
        return ok if not self.other else (None if ok else False)


def _affine(e, x):
    """(a, b) with e = a·x + b and rational a, b; None when e is not of that form."""
    if not e.is_polynomial(x) or sp.degree(e, x) > 1:
        return None
    a, b = e.coeff(x, 1), e.coeff(x, 0)
    if not (a.is_Rational and b.is_Rational):
        return None
    return a, b


def _combine(r1: int, m1: int, r2: int, m2: int) -> tuple[int, int] | None:
    """x ≡ r1 (mod m1) and x ≡ r2 (mod m2) as one congruence, or None when no x satisfies both."""
    g = math.gcd(m1, m2)
    if (r2 - r1) % g:
        return None
    lcm = m1 // g * m2
    for k in range(m2 // g):
        v = r1 + k * m1
        if v % m2 == r2 % m2:
            return v % lcm, lcm
    return None  # pragma: no cover - unreachable when the gcd test passed


def whole_number_text(room, stride) -> str:
    """An unsolved condition in words."""
    if isinstance(stride, int) or getattr(stride, "is_Integer", False):
        return f"{stride} divides {pretty(tidy(as_expr(room)))}"
    return f"{pretty(stride)} divides {pretty(tidy(as_expr(room)))}"


def solve(conditions: list, bounds: Sequence = (), symbols=()) -> FitConditions:
    """Solve ``room/stride`` is whole (each pair in ``conditions``) and ``room >= 0`` (each of ``bounds``).

    ``symbols`` lists the input's symbols, so that each gets a rule even when nothing constrains it.
    """
    state: dict[Any, tuple[int, int, int]] = {s: (0, 1, 1) for s in symbols}
    out = FitConditions()
    order = list(symbols)
    for room, stride in conditions:
        e = sp.expand(as_expr(room) / stride)
        free = e.free_symbols
        if not free:
            if not e.is_integer:
                out.never.append(f"{whole_number_text(room, stride)}")
            continue
        x = next(iter(free)) if len(free) == 1 else None
        ab = _affine(e, x) if x is not None and x.is_integer else None
        if ab is None:
            text = whole_number_text(room, stride)
            if text not in out.other:
                out.other.append(text)
            continue
        a, b = ab
        lcm = math.lcm(a.q, b.q)
        A, B = int(a * lcm), int(b * lcm)  # A·x + B ≡ 0 (mod lcm)
        g = math.gcd(A, lcm)
        if B % g:
            out.never.append(whole_number_text(room, stride))
            continue
        m2 = lcm // g
        r2 = (-(B // g) * pow(A // g, -1, m2)) % m2 if m2 > 1 else 0
        if x not in state:
            state[x] = (0, 1, 1)
            order.append(x)
        r, m, low = state[x]
        merged = _combine(r, m, r2, m2)
        if merged is None:
            out.never.append(f"{x} ≡ {r} (mod {m}) and {x} ≡ {r2} (mod {m2}) together")
            continue
        state[x] = (*merged, low)
    for room in bounds:
        e = sp.expand(as_expr(room))
        free = e.free_symbols
        if len(free) != 1:
            continue
        x = next(iter(free))
        ab = _affine(e, x)
        if ab is None or ab[0] <= 0:
            continue
        a, b = ab
        need = math.ceil(-b / a)
        if x not in state:
            state[x] = (0, 1, 1)
            order.append(x)
        r, m, low = state[x]
        state[x] = (r, m, max(low, need))
    for x in order:
        r, m, low = state[x]
        rule = SizeRule(x, r, m, low)
        out.rules[str(x)] = SizeRule(x, r, m, rule.first(1)[0])
    return out
