"""A small, safe expression language for spec values: ``width * 4``, ``growth * i + 64``.

Written by hand on purpose: spec text is untrusted, so there is no ``eval`` and
no ``sympify``. Supported: integers, quoted strings, names of variables,
``+ - * / // % **``, parentheses, comparisons, ``and``/``or``/``not``,
``a if cond else b``, ``true``/``false`` and the functions ``min``, ``max``,
``abs``. ``/`` must divide exactly (sizes are integers); ``//`` rounds down.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import SpecError, unknown_name
from ..numeric import is_int

_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z_0-9]*)|(\*\*|//|==|!=|<=|>=|[-+*/%()<>,])|'([^']*)'|\"([^\"]*)\")")
_FUNCS = {"min": min, "max": max, "abs": abs}
MAX_INT_BITS = 4096
MAX_LENGTH = 1000


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            bad = text[pos:].strip()[:1]
            raise SpecError(f"unexpected '{bad}' in expression '{text}'",
                            hint="expressions use integers, variable names, + - * / // % ** and parentheses")
        number, name, op, single, double = m.groups()
        if single is not None or double is not None:
            out.append(("str", single if single is not None else double))
        elif number is not None:
            out.append(("num", int(number)))
        elif name is not None:
            out.append(("name", name))
        else:
            out.append(("op", op))
        pos = m.end()
    out.append(("end", None))
    return out


class _Parser:
    def __init__(self, text: str, variables: Mapping[str, Any]):
        if len(text) > MAX_LENGTH:
            raise SpecError(f"expression longer than {MAX_LENGTH} characters")
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.vars = variables

    def peek(self):
        return self.toks[self.i]

    def take(self):
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, op: str):
        tok = self.take()
        if tok != ("op", op):
            raise SpecError(f"expected '{op}' in expression '{self.text}'")

    def parse(self):
        value = self.expr()
        if self.peek()[0] != "end":
            raise SpecError(f"unexpected '{self.peek()[1]}' in expression '{self.text}'")
        return value

    def expr(self):
        value = self.or_()
        if self.peek() == ("name", "if"):
            self.take()
            cond = self.or_()
            if self.take() != ("name", "else"):
                raise SpecError(f"expected 'else' in expression '{self.text}'", hint="write 'a if condition else b'")
            other = self.expr()
            return value if cond else other
        return value

    def or_(self):
        left = self.and_()
        while self.peek() == ("name", "or"):
            self.take()
            right = self.and_()
            left = bool(left) or bool(right)
        return left

    def and_(self):
        left = self.not_()
        while self.peek() == ("name", "and"):
            self.take()
            right = self.not_()
            left = bool(left) and bool(right)
        return left

    def not_(self):
        if self.peek() == ("name", "not"):
            self.take()
            return not bool(self.not_())
        return self.compare()

    def compare(self):
        left = self.sum()
        ops = {"==", "!=", "<", "<=", ">", ">="}
        if self.peek()[0] == "op" and self.peek()[1] in ops:
            op = self.take()[1]
            right = self.sum()
            return {"==": left == right, "!=": left != right, "<": left < right, "<=": left <= right,
                    ">": left > right, ">=": left >= right}[op]
        return left

    def sum(self):
        value = self.product()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.take()[1]
            right = self.product()
            self._numbers(value, right, op)
            value = value + right if op == "+" else value - right
        return self._bound(value)

    def product(self):
        value = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/", "//", "%"):
            op = self.take()[1]
            right = self.unary()
            self._numbers(value, right, op)
            if op == "*":
                value = value * right
            elif right == 0:
                raise SpecError(f"division by zero in expression '{self.text}'")
            elif op == "/":
                if is_int(value) and is_int(right):
                    if value % right:
                        raise SpecError(f"{value} / {right} is not a whole number in '{self.text}'",
                                        hint="use // to round down")
                    value = value // right
                else:
                    value = value / right
            elif op == "//":
                value = value // right
            else:
                value = value % right
            value = self._bound(value)
        return value

    def unary(self):
        if self.peek() == ("op", "-"):
            self.take()
            value = self.unary()
            self._numbers(value, 0, "-")
            return -value
        if self.peek() == ("op", "+"):
            self.take()
            return self.unary()
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek() == ("op", "**"):
            self.take()
            exp = self.unary()
            self._numbers(base, exp, "**")
            if is_int(exp) and (exp < 0 or exp > 256):
                raise SpecError(f"exponent {exp} out of range in '{self.text}'", hint="use 0..256")
            return self._bound(base ** exp)
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
            if value in _FUNCS and self.peek() == ("op", "("):
                self.take()
                args = [self.expr()]
                while self.peek() == ("op", ","):
                    self.take()
                    args.append(self.expr())
                self.expect(")")
                return _FUNCS[value](*args)
            if value in self.vars:
                return self.vars[value]
            raise unknown_name("variable", value, self.vars.keys())
        if kind == "end":
            raise SpecError(f"expression '{self.text}' ends too early")
        raise SpecError(f"unexpected '{value}' in expression '{self.text}'")

    def _numbers(self, a, b, op):
        for v in (a, b):
            if isinstance(v, str) or v is None:
                raise SpecError(f"'{op}' needs numbers, got {v!r} in '{self.text}'")

    def _bound(self, value):
        if is_int(value) and value.bit_length() > MAX_INT_BITS:
            raise SpecError(f"expression '{self.text}' gives a number too large to be a size")
        return value


def evaluate(text: str, variables: Mapping[str, Any]) -> Any:
    """Evaluate one expression against variables; raise SpecError on any problem."""
    return _Parser(text, variables).parse()


_BRACES = re.compile(r"\{([^{}]*)\}")


def interpolate(text: str, variables: Mapping[str, Any]) -> str:
    """Fill ``{expr}`` parts of a name such as ``conv{i + 1}``."""
    return _BRACES.sub(lambda m: str(evaluate(m.group(1), variables)), text)
