"""The tensors a traced forward takes: one input shape as ever, or several, each bound to an argument of the forward
by name or position, or packed into one argument that is a tuple, list or dict of tensors (fx's concrete ``PH``
placeholders, one per tensor, so that indexing it happens at trace time). torch is imported here only."""

from __future__ import annotations

import inspect
import operator
from typing import Any

from ..core.errors import SpecError, unknown_name
from ..core.plain import Plain

MAX_INPUTS = 64


class Feed(Plain):
    """How the given shapes feed the forward: ``names`` of the inputs in the spec's order (the first is the one the
    analysis walks from), ``shapes`` by name, ``placeholders`` (fx placeholder target -> input name; empty for one
    input, which goes to the first tensor placeholder as ever), ``bound`` (arguments that take a tensor each),
    ``concrete`` (an argument -> the tuple, list or dict of placeholders it is given)."""

    __slots__ = FIELDS = ("names", "shapes", "placeholders", "bound", "concrete")

    def __init__(self, names: list[str], shapes: dict[str, tuple], placeholders: dict[str, str], bound: set[str],
                 concrete: dict[str, Any]):
        self.names, self.shapes, self.placeholders, self.bound, self.concrete = (names, shapes, placeholders, bound,
                                                                                 concrete)

    @property
    def several(self) -> bool:
        return len(self.names) > 1 or bool(self.placeholders)


def _shape(value: Any, what: str) -> tuple | None:
    """A shape (1 to 4 positive integers) as a tuple, or None where ``value`` is not one."""
    if not isinstance(value, (tuple, list)) or not 1 <= len(value) <= 4:
        return None
    try:
        sizes = tuple(operator.index(v) for v in value if not isinstance(v, bool))
    except TypeError:
        return None
    if len(sizes) != len(value):
        return None
    if any(v < 1 for v in sizes):
        raise SpecError(f"{what} {list(sizes)} has a size below 1", hint="give positive sizes, e.g. (3, 224, 224)")
    return sizes


def read_shapes(given: Any) -> tuple[str, Any]:
    """What the caller gives: ("one", shape), ("seq", [shapes]) with the container's type, or ("named", {name:
    shape}). Anything else (a tensor, a dict holding a non-shape) is one clear error."""
    if isinstance(given, dict):
        if not given or len(given) > MAX_INPUTS:
            raise SpecError(f"{len(given)} inputs: give 1 to {MAX_INPUTS}", hint="e.g. {'x1': (3, 32, 32)}")
        out = {}
        for key, value in given.items():
            if not isinstance(key, str) or not key.isidentifier():
                raise SpecError(f"input name {key!r} is not a name", hint="name inputs as words, e.g. 'image'")
            shape = _shape(value, f"input '{key}'")
            # an argument holding a list of tensors (feature maps): a list of shapes
            out[key] = shape if shape is not None else _shapes(value, key)
        return "named", out
    one = _shape(given, "the input")
    if one is not None:
        return "one", one
    if isinstance(given, (tuple, list)) and given and len(given) <= MAX_INPUTS:
        shapes = [_shape(v, f"input {i}") for i, v in enumerate(given)]
        if all(s is not None for s in shapes):
            return "seq", (type(given), shapes)
    raise SpecError(f"the input shape is {_what(given)}",
                    hint="give one shape (3, 224, 224), a tuple of shapes for a forward of several tensors, or a "
                         "dict of names to shapes")


def _shapes(value: Any, key: str) -> list | tuple:
    """A tuple or list of shapes, for an argument that is a tuple or list of tensors; else one clear error."""
    shapes = [_shape(v, f"input '{key}'") for v in value] if isinstance(value, (tuple, list)) and value and \
        len(value) <= MAX_INPUTS else [None]
    if any(s is None for s in shapes):
        raise SpecError(f"input '{key}' is given {_what(value)}, not a shape",
                        hint=f"give its shape without the batch, e.g. {{'{key}': (3, 224, 224)}}, or a list of them "
                             "for a list of tensors")
    return type(value)(shapes)


def _what(value: Any) -> str:
    name = type(value).__name__
    if name == "Tensor":
        return "a tensor"
    return f"{value!r}"[:60] if isinstance(value, (tuple, list, int, str)) else f"a {name}"


def bind(given: Any, params: list[inspect.Parameter], fixed: dict, owner: str) -> Feed:
    """Bind the shapes given to the forward's arguments (``params``, the input first; ``fixed``: those with a value
    for the trace already, defaults and kwargs)."""
    import torch.fx as fx

    how, shapes = read_shapes(given)
    plain = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    free = [name for name in plain if name not in fixed]
    if how == "one":
        return Feed(["input"], {"input": shapes}, {}, set(plain[:1]), {})
    if how == "named":
        if all(name in plain for name in shapes):  # forward(self, x1, x2) given {"x1": ..., "x2": ...}
            return _by_argument(shapes)
        if len(free) == 1:  # forward(self, batch) reading batch["image"]: a dict of tensors
            return _packed(free[0], list(shapes), list(shapes.values()), {k: fx.PH for k in shapes})
        bad = next(name for name in shapes if name not in plain)
        raise unknown_name(f"argument of {owner}.forward", bad, plain)
    kind, seq = shapes
    if len(seq) == len(free) > 1:  # forward(self, x1, x2) given two shapes
        return Feed(list(free), dict(zip(free, seq)), {n: n for n in free}, set(free), {})
    if len(free) == 1:  # forward(self, xs) reading xs[0], xs[1]: a tuple or list of tensors
        names = [f"{free[0]}_{i + 1}" for i in range(len(seq))]
        return _packed(free[0], names, seq, kind(fx.PH for _ in seq))
    raise SpecError(f"{len(seq)} input shapes for {owner}.forward, which takes {len(free)} tensor argument"
                    f"{'' if len(free) == 1 else 's'} ({', '.join(free) or 'none'})",
                    hint="give one shape per argument, or a dict naming each: {'x1': (3, 32, 32), ...}")


def _by_argument(shapes: dict) -> Feed:
    """Each argument given by name a tensor's shape, or a list of shapes (``forward(self, x: List[Tensor])``, its
    tensors named ``x_1``, ``x_2``...)."""
    import torch.fx as fx

    names, by_name, targets, bound, concrete = [], {}, {}, set(), {}
    for argument, shape in shapes.items():
        if shape and isinstance(shape[0], tuple):  # a list (or tuple) of tensors
            packed = _packed(argument, [f"{argument}_{i + 1}" for i in range(len(shape))], list(shape),
                             type(shape)(fx.PH for _ in shape))
            names += packed.names
            by_name.update(packed.shapes)
            targets.update(packed.placeholders)
            concrete.update(packed.concrete)
        else:
            names.append(argument)
            by_name[argument] = shape
            targets[argument] = argument
            bound.add(argument)
    return Feed(names, by_name, targets, bound, concrete)


def _packed(argument: str, names: list[str], shapes: list, placeholders: Any) -> Feed:
    """One argument given a tuple, list or dict of tensors: fx makes a placeholder per tensor, ``argument_1``..."""
    targets = {f"{argument}_{i + 1}": name for i, name in enumerate(names)}
    return Feed(list(names), dict(zip(names, shapes)), targets, set(), {argument: placeholders})
