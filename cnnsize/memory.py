"""Memory you can budget on: the inference peak by liveness, and what training holds.

Inference: walk the graph in execution order; a tensor lives from the layer that
makes it until its last reader has run (the caller holds the input throughout,
and the result stays); in-place layers and views reuse their input's storage;
parameters and buffers stay resident.

Training: autograd keeps, per layer kind, the tensors its backward needs (each
kind's ``saved``); a layer keeps nothing when neither its inputs nor its own
parameters require grad, so frozen prefixes cost nothing. Add parameters,
gradients, optimizer state, and the largest pair of activation gradients alive
at once during backward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import unknown_name
from .numeric import is_int

OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}
DEVICES = ("cuda", "cpu")


@dataclass(frozen=True)
class MemoryOptions:
    """How the network is trained: optimizer, mixed precision, and the device kind (dropout masks differ)."""

    optimizer: str = "adam"
    amp: bool = False
    device: str = "cuda"

    def check(self) -> MemoryOptions:
        if self.optimizer not in OPTIMIZER_STATES:
            raise unknown_name("optimizer", self.optimizer, OPTIMIZER_STATES)
        if self.device not in DEVICES:
            raise unknown_name("device", self.device, DEVICES)
        return self


@dataclass(slots=True)
class Plan:
    """The graph as parallel lists by position (0 is the input, then every layer in order), for the walks below.

    ``sized[i]`` holds what the analysis worked out for position i (its kind, shapes, element count), shared
    between layers with the same settings and inputs; ``srcs[i]`` the positions it reads.
    """

    names: list[str]
    srcs: list[tuple[int, ...]]
    sized: list[Any]  # cnnsize.analysis.Sized


def _owners(plan: Plan, training: bool) -> list[int]:
    """The position whose storage each output lives in: its own, or (in place, views) its first input's."""
    owner = [0] * len(plan.srcs)
    for i in range(1, len(owner)):
        srcs = plan.srcs[i]
        sized = plan.sized[i]
        new = sized.materializes_training if training else sized.materializes
        owner[i] = i if new or not srcs else owner[srcs[0]]
    return owner


def _live(plan: Plan, owner: list[int], size: list, pinned, extras: list[tuple[int, Any]] = ()) -> list:
    """Live bytes at each position: a storage lives from its owner until its last reader has run.

    Storages nobody reads, and the ``pinned`` ones, live to the end; ``extras`` are (position, bytes) of tensors
    born there and kept to the end (what autograd saves besides activations).
    """
    n = len(owner)
    death = [n - 1] * n  # the position after which each storage is freed
    for i, srcs in enumerate(plan.srcs):
        for s in srcs:
            death[owner[s]] = i
    for i in pinned:
        if type(i) is int:
            death[i] = n - 1
    delta: list[Any] = [0] * (n + 1)
    for i in range(n):
        if owner[i] == i:
            delta[i] += size[i]
            delta[death[i] + 1] -= size[i]
    for i, nbytes in extras:
        delta[i] += nbytes
    live, running = [], 0
    for i in range(n):
        running = running + delta[i]
        live.append(running)
    return live


def inference_peak(plan: Plan, batch: Any, itemsize: int) -> tuple[Any, str]:
    """(peak activation bytes, the layer at which it occurs) for one forward pass at inference.

    None and "" when sizes are formulas: which layer is the worst then depends on the values.
    """
    size = [s.numel * batch * itemsize for s in plan.sized]
    if not all(is_int(v) for v in size):
        return None, ""
    owner = _owners(plan, training=False)
    live = _live(plan, owner, size, {0, owner[-1]})
    where = max(range(len(live)), key=live.__getitem__)  # the first position at the peak
    return live[where], plan.names[where]


def training_figures(plan: Plan, trainable: list[bool], batch: Any, itemsize: int,
                     options: MemoryOptions) -> dict[str, Any]:
    """Activation bytes of one training step, gradients and optimizer state, per the options.

    ``trainable[i]``: whether position i's own parameters are trained. Forward: a tensor lives until its
    last reader has run, or to the end if autograd saved it. Backward: everything saved, plus the largest
    gradient pair of one layer (output and input). The activation peak of the step is the larger of the two.
    """
    act_size = 2 if options.amp else itemsize
    owner = _owners(plan, training=True)
    n = len(owner)
    size = [s.numel * batch * act_size for s in plan.sized]
    requires_grad = [False] * n
    saved: dict[Any, Any] = {}  # storage position (or (position, k) for a tensor of its own) -> bytes
    extras: list[tuple[int, Any]] = []
    grad_pairs = []
    trainable_total: Any = 0
    for i in range(1, n):
        sized, srcs = plan.sized[i], plan.srcs[i]
        own = trainable[i] and sized.params != 0
        if own:
            trainable_total += sized.params
        elif not any(requires_grad[s] for s in srcs):
            continue
        requires_grad[i] = True
        grad_pairs.append(size[i] + sum(size[s] for s in srcs))
        for k, item in enumerate(sized.saved(own, options.device)):
            width = item.itemsize or act_size
            if item.of == "new":
                nbytes = item.numel * (batch if item.per_sample else 1) * width
                saved[(i, k)] = nbytes
                extras.append((i, nbytes))
                continue
            key = owner[srcs[item.index]] if item.of == "input" else owner[i]
            saved[key] = size[key] if width == act_size else plan.sized[key].numel * batch * width
    forward_peak = _max(_live(plan, owner, size, {0, owner[-1], *saved}, extras))
    saved_total = sum(saved.values(), 0)
    backward = saved_total + _max(grad_pairs)
    master = 4 if options.amp else itemsize
    return {
        "saved_for_backward_bytes": saved_total,
        "activation_gradients_bytes": _max(grad_pairs),
        "training_activations_peak_bytes": _max([forward_peak, backward]),
        "gradients_bytes": trainable_total * master,
        "optimizer_bytes": trainable_total * master * OPTIMIZER_STATES[options.optimizer],
    }


def _max(values: list) -> Any:
    if not values:
        return 0
    if all(is_int(v) for v in values):
        return max(values)
    import sympy

    return sympy.Max(*values)


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}


def parse_bytes(text: str) -> int:
    """'24GiB' -> 25769803776; '16GB' -> 16000000000; plain numbers are bytes."""
    import re

    from .errors import SpecError

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise SpecError(f"'{text}' is not a memory size", hint="write e.g. 24GiB, 16GB or 8000MiB")
    number, unit = m.groups()
    whole, _, frac = number.partition(".")
    scale = _UNITS[unit.lower()]
    return int(whole) * scale + (int(frac) * scale // 10 ** len(frac) if frac else 0)


def max_batch(analyze_at, device_bytes: int) -> dict[str, int]:
    """Largest batch whose inference peak and training budget fit in ``device_bytes``.

    Every figure is affine in the batch size, so two analyses (batch 1 and 2) give it exactly.
    ``analyze_at(batch)`` returns the totals' memory dict at that batch.
    """
    one, two = analyze_at(1), analyze_at(2)
    out = {"device_memory_bytes": device_bytes}
    for key, figure in (("inference", "inference_peak_bytes"), ("training", "training_bytes")):
        per = two[figure] - one[figure]
        fixed = one[figure] - per
        out[key] = max(0, (device_bytes - fixed) // per) if per > 0 else 0
    return out
