"""One exception family for everything a user can get wrong.

The lowest level says exactly what is wrong; the graph builder adds the layer
path and the spec location; the CLI is the one place that turns these into
messages and exit codes.
"""

from __future__ import annotations

from .plain import Plain
from .safe import printable


class Location(Plain):
    """Where something sits in a spec file (1-based line and column). Read-only."""

    __slots__ = FIELDS = ("file", "line", "column")
    __hash__ = Plain.hashed

    def __init__(self, file: str, line: int | None = None, column: int | None = None):
        self.file, self.line, self.column = file, line, column

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


class CnnsizeError(ValueError):
    """Base of every error cnnsize raises for bad input (a ValueError too)."""

    def __init__(self, message: str, *, hint: str | None = None,
                 location: Location | None = None, layer: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.location = location
        self.layer = layer

    def at(self, location: Location | None = None, layer: str | None = None) -> CnnsizeError:
        """Fill in where the error happened, keeping anything already known."""
        if self.location is None and location is not None:
            self.location = location
        if self.layer is None and layer is not None:
            self.layer = layer
        return self

    def one_line(self) -> str:
        """`file:line:col: layer 'x': what is wrong; how to fix it` on one line."""
        head = []
        if self.location is not None:
            head.append(str(self.location))
        if self.layer:
            head.append(f"layer '{self.layer}'")
        text = self.message if self.hint is None else f"{self.message}; {self.hint}"
        text = " ".join(text.split())  # never more than one line

        return printable(": ".join(head + [text]))

    def __str__(self) -> str:
        return self.one_line()


class SpecError(CnnsizeError):
    """The spec (or an argument standing in for it) is malformed."""


class DoesNotFit(CnnsizeError):
    """A filter or pooling window does not tile its input exactly."""


class LimitExceeded(SpecError):
    """A spec would expand past a safety limit (repeats, aliases, size)."""


class Unrepresentable(CnnsizeError):
    """A traced torch operation that no layer kind stands for (from_torch; ``--opaque`` keeps it as a layer)."""


class MissingDependency(CnnsizeError):
    """An optional dependency (torch, matplotlib) is needed but not installed."""


def closest(name: str, options) -> str | None:
    """The valid option closest to a mistyped name, or None if nothing is close."""
    import difflib

    name = str(name)
    if len(name) > 100:  # difflib is quadratic: a long name is no typo of a short one
        return None
    options = [str(o) for o in options]
    same = [o for o in options if o.lower() == name.lower()]  # a name in the wrong case is that name
    found = same or difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return found[0] if found else None


def unknown_name(what: str, name: str, options, *, aka=None, more: str | None = None) -> CnnsizeError:
    """An error for an unknown name that lists the valid ones and suggests one.

    ``aka`` maps other tools' names to ours ({'half': 'float16'}): such a name is suggested its equivalent.
    ``more`` (where to see them all, e.g. "cnnsize specs --kinds"): a long list is cut to the closest few.
    """
    options = sorted(map(str, options))
    shown = str(name) if len(str(name)) <= 60 else str(name)[:59] + "…"
    if not options:
        return SpecError(f"unknown {what} '{shown}'", hint=f"no {what}s are defined here")
    known = (aka or {}).get(str(name)) or (aka or {}).get(str(name).lower())
    guess = known or closest(name, options)
    hint = f"'{shown}' is cnnsize's '{guess}'; " if known else f"did you mean '{guess}'? " if guess else ""
    if more is not None and len(options) > MAX_LISTED:
        import difflib

        near = [o for o in difflib.get_close_matches(str(name)[:100], options, n=MAX_LISTED // 2, cutoff=0.3)
                if o != guess]
        hint += (f"close: {', '.join(near)}; " if near else "") + f"all {len(options)}: {more}"
        return SpecError(f"unknown {what} '{shown}'", hint=hint)
    listed = ", ".join(options)
    hint += "valid: " + (listed if len(listed) <= 2000 else listed[:1999] + "…")
    return SpecError(f"unknown {what} '{shown}'", hint=hint)


MAX_LISTED = 12  # names an error lists in full when it says where to see them all (unknown_name's ``more``)
