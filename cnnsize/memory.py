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
from .graph import INPUT, Graph
from .numeric import is_int, prod

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


def _storages(graph: Graph, training: bool) -> dict[str, str]:
    """Which storage each node's output lives in: its own, or (in place, views) its input's."""
    owner = {INPUT: INPUT}
    for node in graph.nodes:
        new = node.kind.materializes_training if training else node.kind.materializes
        owner[node.name] = node.name if new or not node.inputs else owner[node.inputs[0]]
    return owner


def _frees(graph: Graph, owner: dict[str, str], pinned) -> list[list[str]]:
    """For each node index, the storages whose last reader it is (never the pinned ones)."""
    last_use: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for src in node.inputs:
            last_use[owner[src]] = i
    frees: list[list[str]] = [[] for _ in graph.nodes]
    for storage, last in last_use.items():
        if storage not in pinned:
            frees[last].append(storage)
    return frees


def inference_peak(graph: Graph, shapes: dict[str, tuple], batch: Any, itemsize: int) -> tuple[Any, str]:
    """(peak activation bytes, the layer at which it occurs) for one forward pass at inference."""
    owner = _storages(graph, training=False)
    size = {name: prod(shapes[name]) * batch * itemsize for name in shapes}
    keep = {INPUT, owner[graph.nodes[-1].name]} if graph.nodes else {INPUT}
    frees = _frees(graph, owner, keep)
    live = size[INPUT]
    peak, where = live, INPUT
    for i, node in enumerate(graph.nodes):
        if owner[node.name] == node.name:
            live = live + size[node.name]
        if not (is_int(live) and is_int(peak)):
            return None, ""  # symbolic sizes: the peak layer depends on the values
        if live > peak:
            peak, where = live, node.name
        for storage in frees[i]:
            live -= size[storage]
    return peak, where


def training_figures(graph: Graph, shapes: dict[str, tuple], params: dict[str, Any], trainable: set[str],
                     batch: Any, itemsize: int, options: MemoryOptions) -> dict[str, Any]:
    """Activation bytes of one training step, gradients and optimizer state, per the options.

    Forward: a tensor lives until its last reader has run, or to the end if autograd saved it.
    Backward: everything saved, plus the largest gradient pair of one layer (output and input).
    The activation peak of the step is the larger of the two.
    """
    act_size = 2 if options.amp else itemsize
    owner = _storages(graph, training=True)
    numel = {name: prod(shape) for name, shape in shapes.items()}
    size = {name: n * batch * act_size for name, n in numel.items()}
    requires_grad = {INPUT: False}
    saved: dict[Any, Any] = {}  # storage (or extra tensor) -> bytes
    saved_at: dict[Any, int] = {}
    for i, node in enumerate(graph.nodes):
        own = node.name in trainable and params[node.name] != 0
        requires_grad[node.name] = own or any(requires_grad[src] for src in node.inputs)
        if not requires_grad[node.name]:
            continue
        ins = [shapes[src] for src in node.inputs]
        for k, item in enumerate(node.kind.saved(ins, shapes[node.name], own, options.device)):
            width = item.itemsize or act_size
            if item.of == "new":
                key, nbytes = (node.name, k), item.numel * (batch if item.per_sample else 1) * width
            else:
                key = owner[node.inputs[item.index]] if item.of == "input" else owner[node.name]
                nbytes = size[key] if width == act_size else numel[key] * batch * width
            saved[key] = nbytes
            saved_at.setdefault(key, i)
    forward_peak = _forward_peak(graph, owner, size, saved, saved_at)
    grad_pairs = [size[n.name] + sum(size[s] for s in n.inputs) for n in graph.nodes if requires_grad[n.name]]
    saved_total = sum(saved.values(), 0)
    backward = saved_total + _max(grad_pairs)
    trainable_total = sum((params[name] for name in trainable), 0)
    master = 4 if options.amp else itemsize
    return {
        "saved_for_backward_bytes": saved_total,
        "activation_gradients_bytes": _max(grad_pairs),
        "training_activations_peak_bytes": _max([forward_peak, backward]),
        "gradients_bytes": trainable_total * master,
        "optimizer_bytes": trainable_total * master * OPTIMIZER_STATES[options.optimizer],
    }


def _forward_peak(graph: Graph, owner: dict, size: dict, saved: dict, saved_at: dict) -> Any:
    """Live activation bytes at the worst moment of a training forward pass."""
    keep = {INPUT, owner[graph.nodes[-1].name]} if graph.nodes else {INPUT}
    frees = _frees(graph, owner, keep | set(saved))
    extras: list[Any] = [0] * len(graph.nodes)
    for key, nbytes in saved.items():
        if isinstance(key, tuple):  # a tensor of its own (a mask, indices, statistics), born when saved
            extras[saved_at[key]] += nbytes
    live = size[INPUT]
    peaks = [live]
    for i, node in enumerate(graph.nodes):
        if owner[node.name] == node.name:
            live = live + size[node.name]
        live = live + extras[i]
        peaks.append(live)
        for storage in frees[i]:
            live -= size[storage]
    return _max(peaks)


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
