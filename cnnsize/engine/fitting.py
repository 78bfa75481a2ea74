"""Which input sizes a network fits exactly: a cheap numeric walk over sizes.

Only output shapes are computed (no counts, no receptive fields), with plain
ints, so a thousand sizes of VGG16 take a fraction of a second and sympy is
never imported. Inputs are square (every spatial axis the same size n) with the
spec's channels; a size fits when every layer's window tiles its input exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.errors import CnnsizeError, DoesNotFit, SpecError, unknown_name
from ..core.graph import Graph
from ..layers.base import Ctx

SEARCH_LIMIT = 1 << 16  # how far nearest() looks beyond the range


def check_size(graph: Graph, n: int, channels: int | None = None, rule: str = "exact") -> CnnsizeError | None:
    """None when every layer fits an n×n input (under ``rule``: exact, or floor as PyTorch rounds); else the
    error (with layer name) saying where it breaks."""
    shape_in = graph.input_shape
    c = shape_in[0] if channels is None else channels
    shapes = {graph.input_name: (c, *(n,) * (len(shape_in) - 1))}
    ctx = Ctx(fit=rule)
    for node in graph.nodes:
        try:
            if node.kind.is_input and len(node.kind.shape) == len(shape_in):  # another image: at n×n too
                shapes[node.name] = (node.kind.shape[0], *(n,) * (len(shape_in) - 1))
                continue
            shapes[node.name] = node.kind.output_shape([shapes[s] for s in node.inputs], ctx)
        except CnnsizeError as exc:
            return exc.at(node.loc, node.name)
    return None


@dataclass
class FitSizes:
    """The sizes in [low, high] at which every layer fits, and helpers to ask about other sizes."""

    graph: Graph
    low: int
    high: int
    sizes: list[int]
    channels: int | None = None
    rule: str = "exact"  # exact: every window tiles its input; floor: sizes round down, as PyTorch's
    _cache: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return (f"FitSizes(name={self.graph.name!r}, rule={self.rule!r}, min={self.low}, max={self.high}, "
                f"sizes={self.summary()!r})")

    def __str__(self) -> str:
        """The sizes in a sentence, as ``cnnsize fit`` prints them."""
        how = "fits exactly" if self.rule == "exact" else "runs (sizes rounded down, fit: floor)"
        return f"{self.graph.name} (input {self.shape_text()}), n from {self.low} to {self.high}: " \
               f"every layer {how} at {self.summary()}"

    def shape_text(self) -> str:
        """The input tried, 3×n×n: the spec's channels (or those asked for) and n on every spatial axis."""
        c = self.graph.input_shape[0] if self.channels is None else self.channels
        return "×".join([str(c)] + ["n"] * (len(self.graph.input_shape) - 1))

    def fits(self, n: int) -> bool:
        return self.why_not(n) is None

    def why_not(self, n: int) -> CnnsizeError | None:
        """Why an n×n input does not fit (the first layer that breaks), or None when it fits."""
        if n not in self._cache:
            self._cache[n] = check_size(self.graph, n, self.channels, self.rule) if n >= 1 else SpecError("size < 1")
        return self._cache[n]

    def nearest(self, n: int) -> tuple[int | None, int | None]:
        """The closest sizes below and above n that fit (n itself excluded); None where there is none."""
        below = next((m for m in range(n - 1, 0, -1) if self.fits(m)), None)
        above = next((m for m in range(n + 1, n + SEARCH_LIMIT) if self.fits(m)), None)
        return below, above

    def progression(self) -> tuple[int, int] | None:
        """(first, step) when the sizes are every step-th size from first to the end of the range."""
        s = self.sizes
        if len(s) < 2:
            return None
        step = s[1] - s[0]
        if any(b - a != step for a, b in zip(s, s[1:])) or s[-1] + step <= self.high:
            return None
        return s[0], step

    def summary(self) -> str:
        """The sizes in words: 'every 32nd size from 67 (n ≡ 3 (mod 32)): 67, 99, ..., 995'."""
        s = self.sizes
        if not s:
            return f"no size from {self.low} to {self.high} fits exactly"
        listed = ", ".join(map(str, s)) if len(s) <= 8 else ", ".join(map(str, s[:4])) + ", …, " + str(s[-1])
        prog = self.progression()
        if prog is None or prog[1] == 1:
            head = "every size" if prog and prog[0] == self.low else f"{len(s)} sizes"
            if prog and prog[0] > self.low:
                head = f"every size from {prog[0]}"
            return f"{head}: {listed}"
        first, step = prog
        return f"every {_ordinal(step)} size from {first} (n ≡ {first % step} (mod {step})): {listed}"

    def to_dict(self) -> dict[str, Any]:
        prog = self.progression()
        return {"name": self.graph.name, "rule": self.rule, "min": self.low, "max": self.high,
                "sizes": list(self.sizes),
                "step": prog[1] if prog else None, "residue": prog[0] % prog[1] if prog else None}


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def check_range(min: int, max: int) -> None:  # noqa: A002
    """Refuse a range that is not two positive integers in order, or that would take long to walk."""
    for what, v in (("min", min), ("max", max)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SpecError(f"{what} must be a positive integer, got {v!r}")
    if min > max:
        raise SpecError(f"min ({min}) is larger than max ({max})", hint="swap them")
    if max - min > 1_000_000:
        raise SpecError("the range spans more than 1,000,000 sizes", hint="narrow --min/--max")


def fit_sizes(graph: Graph, min: int = 32, max: int = 1024, channels: int | None = None,  # noqa: A002
              rule: str = "exact") -> FitSizes:
    """The square input sizes n in [min, max] at which every layer of ``graph`` fits exactly.

    ``rule="floor"`` asks instead where the network runs when sizes round down (a spec's ``fit: floor``);
    ``rule="spec"`` takes the spec's own rule.
    """
    check_range(min, max)
    if rule == "spec":
        rule = graph.fit
    if rule not in ("exact", "floor"):

        raise unknown_name("fit rule", rule, ("exact", "floor", "spec"))
    if len(graph.input_shape) < 2:
        raise SpecError("the spec's input has no spatial axes, so every size fits")
    result = FitSizes(graph, min, max, [], channels, rule)
    errors = []
    for n in range(min, max + 1):
        err = result.why_not(n)
        if err is None:
            result.sizes.append(n)
        elif not isinstance(err, DoesNotFit):
            errors.append(err)
    if not result.sizes and errors:
        raise errors[0]  # the spec is broken at every size, not merely a misfit: say why
    return result
