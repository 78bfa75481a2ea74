"""Activation checkpointing's segments: which runs of layers torch.utils.checkpoint wraps, from what users write.

``--checkpoint every:N`` cuts the network's blocks into segments of N and checkpoints every segment but the last, as
torch.utils.checkpoint.checkpoint_sequential does (the last one's saved tensors are needed at once: recomputing them
saves nothing); ``--checkpoint layer1,layer2`` checkpoints each named layer or group (a dotted prefix) as one
segment. The blocks are the top-level layers and groups (the first part of a dotted name), where a group holding
more than half the network's layers stands for its own (torchvision's ``features`` or ``encoder.layers``
containers). How a checkpointed segment costs memory and work is cnnsize.engine.memory's (training_figures).
"""

from __future__ import annotations

from ..core.errors import SpecError, closest, unknown_name

IMPLS = ("non-reentrant", "reentrant")  # torch.utils.checkpoint's use_reentrant=False (torch's advice) and True
# torch.get_rng_state()'s bytes: the CPU generator's state, which checkpoint keeps per segment (preserve_rng_state)
# and copies once more while it recomputes (torch.random.fork_rng); CPU memory, not a GPU's
RNG_STATE_BYTES = 5056
MAX_EVERY = 10**6


class Segment(tuple):
    """(label, first position, last position) of a checkpointed run of layers (positions in the topology)."""

    __slots__ = ()

    def __new__(cls, label: str, start: int, end: int):
        return super().__new__(cls, (label, start, end))

    @property
    def label(self) -> str:
        return self[0]

    @property
    def start(self) -> int:
        return self[1]

    @property
    def end(self) -> int:
        return self[2]


def blocks(names: list[str]) -> list[Segment]:
    """The blocks of a network (``names``: every position's, the input first): runs of consecutive layers sharing
    their name's first part, a group of more than half the layers split on its next part, and so on."""
    positions = list(range(1, len(names)))
    return _split(names, positions, 0, len(positions) / 2)


def _split(names: list[str], positions: list[int], depth: int, half: float) -> list[Segment]:
    out: list[Segment] = []
    runs: list[tuple[str, list[int]]] = []
    for i in positions:
        parts = names[i].split(".")
        label = ".".join(parts[: depth + 1])
        if runs and runs[-1][0] == label and len(parts) > depth:
            runs[-1][1].append(i)
        else:
            runs.append((label, [i]))
    for label, members in runs:
        below = {names[i].split(".")[depth + 1] if names[i].count(".") > depth else "" for i in members}
        if len(members) > half and len(below) > 1:  # a container of most of the network: its parts are the blocks
            out += _split(names, members, depth + 1, half)
        else:
            out.append(Segment(label, members[0], members[-1]))
    return out


def segments(names: list[str], text: str, writes: dict[int, int] | None = None) -> tuple[Segment, ...]:
    """The checkpointed segments ``text`` asks for (``every:N`` or names joined by commas), each one line on error.

    ``writes``: position -> the storage position an in-place layer writes. torch cannot checkpoint a segment that
    writes in place a tensor from before it (checkpoint keeps it as an input, and the backward finds it changed):
    ``every:N`` moves such a layer into the segment before, named segments are refused."""
    text = str(text).strip()
    writes = writes or {}
    found = blocks(names)
    if len(found) < 2:
        raise SpecError(f"--checkpoint {text}: the network has {len(found)} block ({', '.join(b.label for b in found)})"
                        ", none to cut into segments",
                        hint="checkpointing needs two or more top-level layers or groups")
    if text.startswith("every:"):
        return _every(found, text, writes)
    out = _named(names, found, text)
    for segment in out:
        j = _writes_before(segment, segment.start, writes)
        if j is not None:
            raise SpecError(f"--checkpoint {segment.label}: its layer '{names[j]}' writes in place '{names[writes[j]]}'"
                            ", which comes from before the segment: torch's checkpoint keeps it as an input and fails "
                            "in backward (modified by an inplace operation)",
                            hint=f"checkpoint '{names[j]}' with the layer before it, or make it inplace: false")
    return out


def _writes_before(segment: Segment, start: int, writes: dict[int, int]) -> int | None:
    """The last position in ``segment`` (from ``start``) that writes in place a tensor from before ``start``."""
    found = [j for j in range(start, segment.end + 1) if writes.get(j, start) < start]
    return found[-1] if found else None


def _every(found: list[Segment], text: str, writes: dict[int, int]) -> tuple[Segment, ...]:
    value = text[len("every:"):]
    if not value.isdigit() or not 0 < int(value) <= MAX_EVERY:
        raise SpecError(f"--checkpoint {text}: N must be a positive integer (blocks per segment)",
                        hint="e.g. --checkpoint every:2")
    n = int(value)
    groups = [found[k:k + n] for k in range(0, len(found), n)]
    if len(groups) < 2:
        raise SpecError(f"--checkpoint {text}: the network has {len(found)} blocks, one segment of {n} leaves none "
                        "to checkpoint (torch runs the last segment without it)",
                        hint=f"give N below {len(found)}, e.g. every:{max(1, len(found) // 4)}")
    spans = [Segment(group[0].label if len(group) == 1 else f"{group[0].label}..{group[-1].label}",
                     group[0].start, group[-1].end) for group in groups]
    for k in range(1, len(spans)):  # a segment may not write what comes before it: the one before takes that layer
        start = spans[k].start
        while (j := _writes_before(spans[k], start, writes)) is not None:
            start = j + 1
        if start != spans[k].start:
            spans[k - 1] = Segment(spans[k - 1].label, spans[k - 1].start, start - 1)
            spans[k] = Segment(spans[k].label, start, spans[k].end)
    return tuple(s for s in spans[:-1] if s.start <= s.end)


def _named(names: list[str], found: list[Segment], text: str) -> tuple[Segment, ...]:
    """Each name (a layer, or a group: a dotted prefix) as one segment; they may not overlap."""
    wanted = [part.strip() for part in text.split(",")]
    if not text or any(not part for part in wanted):
        raise SpecError(f"--checkpoint '{text}' names no layer", hint="give every:N, auto, or layer and block names "
                        f"joined by commas, e.g. {','.join(b.label for b in found[:2])}")
    out = []
    for name in wanted:
        members = [i for i, n in enumerate(names) if i and (n == name or n.startswith(name + "."))]
        if not members:
            raise _unknown(name, names, found)
        if members != list(range(members[0], members[-1] + 1)):
            raise SpecError(f"--checkpoint {name}: its layers do not run one after another (another layer runs among "
                            "them), so torch cannot checkpoint them as one segment",
                            hint="name the parts that run in one piece")
        out.append(Segment(name, members[0], members[-1]))
    out.sort(key=lambda s: s.start)
    for a, b in zip(out, out[1:]):
        if b.start <= a.end:
            raise SpecError(f"--checkpoint names '{a.label}' and '{b.label}', which overlap",
                            hint="name each layer once: a group, or layers within it")
    return tuple(out)


def _unknown(name: str, names: list[str], found: list[Segment]) -> SpecError:
    """An unknown name: the closest layer or group, and the blocks (any layer's or group's name is valid too)."""
    groups = {".".join(n.split(".")[:depth]) for n in names[1:] for depth in range(1, n.count(".") + 1)}
    guess = closest(name, sorted(groups | set(names[1:])))
    listed = ", ".join(b.label for b in found)
    shown = name if len(name) <= 60 else name[:59] + "…"
    return SpecError(f"--checkpoint: no layer or group '{shown}'",
                     hint=(f"did you mean '{guess}'? " if guess else "") + "the blocks: "
                     + (listed if len(listed) <= 600 else listed[:599] + "…") + " (or any layer's or group's name)")


def check_impl(impl: str) -> str:
    if impl not in IMPLS:
        raise unknown_name("checkpoint variant", impl, IMPLS)
    return impl
