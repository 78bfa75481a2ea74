"""A small, safe expression language for spec values: ``width * 4``, ``growth * i + 64``.

Written by hand on purpose: spec text is untrusted, so there is no ``eval`` and
no ``sympify``. Supported: integers and decimals, quoted strings, names of variables,
``in.channels`` (a field of a mapping), ``+ - * / // % **``, parentheses, comparisons,
``and``/``or``/``not``, ``a if cond else b``, ``true``/``false`` and the functions ``min``,
``max``, ``abs`` and ``make_divisible(v, d[, min])``. ``/`` must divide exactly (sizes are
integers); ``//`` rounds down.

The evaluator is total: every operation checks the types of its operands and says which were
wrong, nesting is bounded (MAX_DEPTH), and so is every result (MAX_INT_BITS for integers, finite
floats; no operation builds lists or text). Any problem is a SpecError naming the expression
(cut to about 200 characters) and, where the caller says, the setting it was written for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .errors import SpecError, closest
from .numeric import dmax, dmin, exact_div, floor_div

_TOKEN = re.compile(r"\s*(?:(\d+\.\d*|\.\d+|\d+)|([A-Za-z_][A-Za-z_0-9]*)|(\*\*|//|==|!=|<=|>=|[-+*/%()<>,.])"
                    r"|'([^']*)'|\"([^\"]*)\")")
FUNCTIONS = ("abs", "make_divisible", "max", "min")
MAX_INT_BITS = 16384  # 4,933 digits: above every number a spec may write (4,300 digits)
MAX_LENGTH = 1000
MAX_DEPTH = 50
SHOWN = 200  # characters of an expression quoted in a message
FLOAT_INT_LIMIT = 2**53  # a float stands for an integer only below this (every integer there is exact)


class _Problem(Exception):
    """What is wrong inside an expression; evaluate() adds the expression and the setting."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


def shorten(text: str, limit: int = SHOWN) -> str:
    """Text cut to about ``limit`` characters for a message (``…`` marks the cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(value: Any) -> str:
    """A value's kind and (short) value, as a message says it: ``a list [1]``, ``text 'a'``."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"the number {value}" if value.bit_length() < 200 else f"a {value.bit_length()}-bit integer"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"text '{shorten(value, 40)}'"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    if _is_formula(value):
        return f"the formula {shorten(str(value), 60)}"
    return f"a {type(value).__name__}"


def shown(value: Any) -> str:
    """``repr(value)`` when it is short, else describe(value): messages stay one readable line."""
    if isinstance(value, int) and value.bit_length() > 200:
        return describe(value)
    if isinstance(value, (list, tuple, Mapping)) and len(value) > 8:
        return describe(value)
    text = repr(value) if not _is_formula(value) else str(value)
    return text if len(text) <= 80 else describe(value)


def _is_formula(x: Any) -> bool:
    return not isinstance(x, (int, float, str)) and hasattr(x, "free_symbols")


def _is_number(x: Any) -> bool:
    return (isinstance(x, (int, float)) and not isinstance(x, bool)) or _is_formula(x)


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            bad = text[pos:].strip()[:1]
            raise _Problem(f"unexpected {bad!r}",
                           "expressions use numbers, variable names, + - * / // % ** and parentheses")
        number, name, op, single, double = m.groups()
        if single is not None or double is not None:
            out.append(("str", single if single is not None else double))
        elif number is not None:
            out.append(("num", _number(number)))
        elif name is not None:
            out.append(("name", name))
        else:
            out.append(("op", op))
        pos = m.end()
    out.append(("end", None))
    return out


def _number(text: str) -> int | float:
    if "." not in text:
        return int(text)  # at most MAX_LENGTH digits: far below Python's int-from-text limit
    value = float(text)
    if not math.isfinite(value):
        raise _Problem(f"the number {shorten(text, 40)} is too large")
    return value


class _Parser:
    def __init__(self, text: str, variables: Mapping[str, Any]):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.vars = variables
        self.depth = 0

    def peek(self):
        return self.toks[self.i]

    def take(self):
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, op: str):
        tok = self.take()
        if tok != ("op", op):
            found = "the end" if tok[0] == "end" else repr(tok[1])
            raise _Problem(f"expected '{op}', found {found}")

    def deeper(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Problem(f"nested more than {MAX_DEPTH} deep", "split it into variables")

    def parse(self):
        value = self.expr()
        kind, rest = self.peek()
        if kind == "name" and re.fullmatch(r"[eE]\d+", rest):
            raise _Problem(f"unexpected {rest!r}", f"write 10**{rest[1:]} for a power of ten")
        if kind != "end":
            raise _Problem(f"unexpected {rest!r}")
        return value

    def expr(self):
        self.deeper()
        value = self.or_()
        if self.peek() == ("name", "if"):
            self.take()
            cond = _truth(self.or_(), "if")
            if self.take() != ("name", "else"):
                raise _Problem("expected 'else'", "write 'a if condition else b'")
            other = self.expr()
            value = value if cond else other
        self.depth -= 1
        return value

    def or_(self):
        left = self.and_()
        while self.peek() == ("name", "or"):
            self.take()
            right = self.and_()
            left = _truth(left, "or") or _truth(right, "or")
        return left

    def and_(self):
        left = self.not_()
        while self.peek() == ("name", "and"):
            self.take()
            right = self.not_()
            left = _truth(left, "and") and _truth(right, "and")
        return left

    def not_(self):
        if self.peek() == ("name", "not"):
            self.take()
            self.deeper()
            value = not _truth(self.not_(), "not")
            self.depth -= 1
            return value
        return self.compare()

    def compare(self):
        left = self.sum()
        ops = {"==", "!=", "<", "<=", ">", ">="}
        if self.peek()[0] == "op" and self.peek()[1] in ops:
            op = self.take()[1]
            right = self.sum()
            return _compare(op, left, right)
        return left

    def sum(self):
        value = self.product()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.take()[1]
            value = _arith(op, value, self.product())
        return value

    def product(self):
        value = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/", "//", "%"):
            op = self.take()[1]
            value = _arith(op, value, self.unary())
        return value

    def unary(self):
        if self.peek() in (("op", "-"), ("op", "+")):
            op = self.take()[1]
            self.deeper()
            value = self.unary()
            self.depth -= 1
            _need_numbers(op, value)
            return -value if op == "-" else value
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek() == ("op", "**"):
            self.take()
            self.deeper()
            exp = self.unary()
            self.depth -= 1
            return _power(base, exp)
        return base

    def atom(self):
        kind, value = self.take()
        if kind in ("num", "str"):
            return value
        if kind == "op" and value == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if kind == "name":
            if value in ("true", "True"):
                return True
            if value in ("false", "False"):
                return False
            if value in FUNCTIONS and self.peek() == ("op", "("):
                self.take()
                args = []
                if self.peek() != ("op", ")"):
                    args.append(self.expr())
                    while self.peek() == ("op", ","):
                        self.take()
                        args.append(self.expr())
                self.expect(")")
                return _call(value, args)
            if value not in self.vars:
                guess = closest(value, list(self.vars))
                names = sorted(self.vars)
                hint = (f"did you mean '{guess}'? " if guess else "") + (
                    "variables here: " + shorten(", ".join(names), 300) if names else "no variables are defined here")
                if value == "in":
                    hint = "in.channels, in.height and in.width (the block's input) work inside a block"
                raise _Problem(f"unknown variable '{shorten(value, 40)}'", hint)
            found = self.vars[value]
            while self.peek() == ("op", "."):
                self.take()
                kind2, field = self.take()
                if kind2 != "name":
                    raise _Problem(f"'.' must be followed by a field name, e.g. {value}.channels")
                if not isinstance(found, Mapping) or field not in found:
                    fields = sorted(found) if isinstance(found, Mapping) else []
                    raise _Problem(f"{value} has no field '{shorten(field, 40)}'",
                                   ("fields: " + ", ".join(map(str, fields))) if fields else
                                   f"{value} is {describe(found)}, not a mapping")
                found = found[field]
            return found
        if kind == "end":
            raise _Problem("the expression ends too early")
        raise _Problem(f"unexpected {value!r}")


def _truth(value: Any, op: str) -> bool:
    """The truth of a condition: booleans and numbers (0 is false); a formula's truth is unknown."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    raise _Problem(f"'{op}' needs true/false or a number, got {describe(value)}")


def _need_numbers(op: str, *values: Any) -> None:
    wrong = [v for v in values if not _is_number(v)]
    if wrong:
        got = " and ".join(describe(v) for v in values)
        raise _Problem(f"'{op}' needs numbers, got {got}")
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            raise _Problem(f"'{op}' needs finite numbers, got {v!r}")


def _checked(value: Any, op: str) -> Any:
    """A result within bounds: integers of at most MAX_INT_BITS bits, finite floats."""
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _Problem(f"'{op}' gives a number larger than 2^{MAX_INT_BITS}, too large to be a size")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Problem(f"'{op}' overflows (the result is too large for a decimal number)")
    if isinstance(value, complex):
        raise _Problem(f"'{op}' gives a complex number")
    if _is_formula(value) and len(str(value)) > 10 * MAX_LENGTH:
        raise _Problem(f"'{op}' gives a formula too long to be a size")
    return value


def _arith(op: str, a: Any, b: Any) -> Any:
    _need_numbers(op, a, b)
    if op in ("/", "//", "%") and not _is_formula(b) and b == 0:
        raise _Problem("division by zero")
    try:
        if op == "+":
            value = a + b
        elif op == "-":
            value = a - b
        elif op == "*":
            if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS + 1:
                raise _Problem(f"'{op}' gives a number larger than 2^{MAX_INT_BITS}, too large to be a size")
            value = a * b
        elif op == "/":
            if isinstance(a, int) and isinstance(b, int):
                if a % b:
                    raise _Problem(f"{describe(a)} / {describe(b)} is not a whole number",
                                   "use // to round down")
                value = a // b
            elif _is_formula(a) or _is_formula(b):

                value = exact_div(a, b)
            else:
                value = a / b
        elif op == "//":
            if _is_formula(a) or _is_formula(b):

                value = floor_div(a, b)
            else:
                value = a // b
        else:
            value = a % b
    except _Problem:
        raise
    except (ArithmeticError, ValueError, TypeError) as exc:
        raise _Problem(f"'{op}' fails on {describe(a)} and {describe(b)} ({exc})") from None
    return _checked(value, op)


def _power(base: Any, exp: Any) -> Any:
    _need_numbers("**", base, exp)
    if not isinstance(exp, int):
        raise _Problem(f"'**' needs a whole exponent, got {describe(exp)}")
    if not 0 <= exp <= 256:
        raise _Problem(f"exponent {exp if exp.bit_length() < 64 else 'of ' + str(exp.bit_length()) + ' bits'} "
                       "out of range", "use 0..256")
    if isinstance(base, int) and base.bit_length() * exp > MAX_INT_BITS + exp:
        raise _Problem(f"'**' gives a number larger than 2^{MAX_INT_BITS}, too large to be a size")
    try:
        value = base**exp
    except (ArithmeticError, ValueError, TypeError):
        raise _Problem(f"'**' overflows on {describe(base)} and {describe(exp)}") from None
    return _checked(value, "**")


def _compare(op: str, a: Any, b: Any) -> bool:
    if op in ("==", "!="):
        same = _equal(a, b)
        return same if op == "==" else not same
    ok = (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str))
    if not ok:
        raise _Problem(f"'{op}' compares two numbers or two texts, got {describe(a)} and {describe(b)}")
    if _is_formula(a) or _is_formula(b):
        raise _Problem(f"'{op}' on {describe(a)} and {describe(b)} depends on the input size",
                       "give numeric sizes (--input) or compare numbers")
    for v in (a, b):
        if isinstance(v, float) and math.isnan(v):
            raise _Problem(f"'{op}' on nan")
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _equal(a: Any, b: Any) -> bool:
    if _is_formula(a) or _is_formula(b):
        difference = a - b if _is_number(a) and _is_number(b) else None
        if difference is None:
            return False
        if getattr(difference, "is_zero", None) is None and not isinstance(difference, (int, float)):
            raise _Problem(f"'==' on {describe(a)} and {describe(b)} depends on the input size",
                           "give numeric sizes (--input) or compare numbers")
        return difference == 0
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    try:
        return bool(a == b)
    except (TypeError, ValueError, RecursionError):  # pragma: no cover - plain YAML values always compare
        return False


def _call(name: str, args: list) -> Any:
    if name in ("min", "max"):
        values = args
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            values = list(args[0])
        elif len(args) == 1:
            raise _Problem(f"{name}() needs two or more numbers, or one list of numbers; got {describe(args[0])}")
        if not values:
            raise _Problem(f"{name}() of an empty list")
        _need_numbers(f"{name}()", *values)
        if any(_is_formula(v) for v in values):

            return dmin(*values) if name == "min" else dmax(*values)
        if any(isinstance(v, float) and math.isnan(v) for v in values):
            raise _Problem(f"{name}() of nan")
        return min(values) if name == "min" else max(values)
    if name == "abs":
        if len(args) != 1:
            raise _Problem(f"abs() takes one number, got {len(args)} arguments")
        _need_numbers("abs()", *args)
        return abs(args[0])
    return make_divisible(*args)


def make_divisible(*args: Any) -> int:
    """torchvision's ``_make_divisible(v, divisor, min_value=None)``: v rounded to the nearest multiple of
    divisor (halves up), at least min_value (default: divisor), and never more than 10% below v.

    The same arithmetic as torchvision's, exactly: ints stay exact, and a float ``v`` follows the same
    float operations torchvision does (``int(v + divisor / 2)``, ``new_v < 0.9 * v``).
    """
    if not 2 <= len(args) <= 3:
        raise _Problem(f"make_divisible() takes (value, divisor) or (value, divisor, minimum), got {len(args)} "
                       "arguments")
    v, divisor, *rest = args
    _need_numbers("make_divisible()", *args)
    if any(_is_formula(a) for a in args):
        raise _Problem("make_divisible() needs numbers, not formulas of the input size")
    for what, a in (("divisor", divisor), *(("minimum", m) for m in rest)):
        if not isinstance(a, int) or a < 1:
            raise _Problem(f"make_divisible()'s {what} must be a positive integer, got {describe(a)}")
    if v < 0:
        raise _Problem(f"make_divisible() needs a value >= 0, got {describe(v)}")
    minimum = rest[0] if rest else divisor
    if isinstance(v, int):
        new_v = max(minimum, (v + divisor // 2) // divisor * divisor)  # int(v + d/2) for v >= 0
        if 10 * new_v < 9 * v:
            new_v += divisor
    else:
        new_v = max(minimum, int(v + divisor / 2) // divisor * divisor)
        if new_v < 0.9 * v:
            new_v += divisor
    return _checked(new_v, "make_divisible()")


def evaluate(text: str, variables: Mapping[str, Any], setting: str | None = None) -> Any:
    """Evaluate one expression against variables; raise SpecError on any problem.

    ``setting`` (e.g. ``filters``) names, in messages, what the expression was written for.
    """
    where = f"{setting}: " if setting else ""
    if len(text) > MAX_LENGTH:
        raise SpecError(f"{where}expression '{shorten(text)}' is longer than {MAX_LENGTH} characters",
                        hint="split it into variables")
    try:
        return _Parser(text, variables).parse()
    except _Problem as exc:
        raise SpecError(f"{where}expression '{shorten(text)}': {exc.message}", hint=exc.hint) from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps far below Python's limit
        raise SpecError(f"{where}expression '{shorten(text)}' is nested too deeply") from None


_BRACES = re.compile(r"\{([^{}]*)\}")
MAX_NAME = 256  # characters of a layer name, with its block prefixes


def interpolate(text: str, variables: Mapping[str, Any], setting: str = "name") -> str:
    """Fill ``{expr}`` parts of a name such as ``conv{i + 1}``."""

    def fill(m: re.Match) -> str:
        value = evaluate(m.group(1), variables, setting)
        if isinstance(value, (Mapping, list, tuple)) or value is None:
            raise SpecError(f"{setting}: '{{{shorten(m.group(1), 60)}}}' gives {describe(value)}, "
                            "not a number or text")
        return str(value) if not isinstance(value, bool) else ("true" if value else "false")

    out = _BRACES.sub(fill, text) if "{" in text else text
    if len(out) > MAX_NAME:
        raise SpecError(f"{setting} '{shorten(out, 60)}' is {len(out):,} characters long, more than the {MAX_NAME} "
                        "allowed",
                        hint="use shorter names")
    return out
