"""Plain records: the few services of a dataclass cnnsize uses, without the dataclasses module.

`cnnsize report` is meant to answer about as fast as Python starts. On its path, importing dataclasses (which
imports inspect, ast, dis and tokenize) and making two dozen dataclasses took about 17 ms and 20 ms of a run of
about 185 ms (benchmarks/report_startup.py), where Python itself starts in about 45 ms: dataclasses compile an
``__init__``, ``__repr__`` and ``__eq__`` for every class as the module is imported. A plain record writes its own
``__init__`` instead, names its fields once (``FIELDS``, in the constructor's order), and takes its repr, equality,
hashing (``__hash__ = Plain.hashed`` for the read-only ones) and copying from this base.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="Plain")


class Plain:
    """Base of a plain record: repr, equality and ``replace`` by its FIELDS (those in UNCOMPARED left out)."""

    __slots__ = ()
    FIELDS: ClassVar[tuple[str, ...]] = ()  # every field, in the constructor's order
    UNCOMPARED: ClassVar[frozenset[str]] = frozenset()  # fields neither compared nor shown in the repr

    def _values(self) -> tuple:
        skip = self.UNCOMPARED
        return tuple(getattr(self, name) for name in self.FIELDS if name not in skip)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    __hash__: Any = None  # as a dataclass that can change; read-only records set __hash__ = Plain.hashed

    def hashed(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        skip = self.UNCOMPARED
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS if name not in skip)
        return f"{type(self).__name__}({shown})"


def fields(record: Any) -> tuple[str, ...]:
    """The names of a record's (or a record class') fields, in the constructor's order."""
    return record.FIELDS


def replace(record: T, **changes: Any) -> T:
    """A copy of ``record`` with ``changes`` (dataclasses.replace for records)."""
    values = {name: getattr(record, name) for name in record.FIELDS}
    values.update(changes)
    return type(record)(**values)


def is_plain(value: Any) -> bool:
    return isinstance(value, Plain)
