"""Training on several GPUs: what each GPU holds of the parameters, gradients and optimizer state, and what it sends
per step, for data parallelism and the sharding schemes people use, as torch runs them.

- ``ddp`` (DistributedDataParallel): every GPU holds everything, plus DDP's gradient buckets (a flat copy of the
  trainable parameters' gradients, ``gradient_as_bucket_view=False``, torch's default); the gradients are
  all-reduced.
- ``zero1`` (torch's ZeroRedundancyOptimizer over DDP): the optimizer state is partitioned by whole parameter
  tensors, the largest first, each to the GPU holding the least so far (its algorithm, so the shares are uneven
  where a few tensors dominate); parameters and gradients stay whole; after the step each GPU broadcasts the
  parameters it updated.
- ``zero2``, ``zero3``/``fsdp``, ``hsdp`` (FullyShardedDataParallel's SHARD_GRAD_OP, FULL_SHARD and HYBRID_SHARD,
  one unit per layer that holds parameters): each unit's parameters
  are one flat tensor padded to a multiple of the GPUs it is sharded over, each GPU keeping its slice of the
  parameters, their gradients and the optimizer state; ``hsdp`` shards within a node and replicates across nodes.
  ZeRO-2 keeps the gathered parameters from forward through backward; ZeRO-3 gathers a unit for its forward and
  again for its backward.

Communication per GPU and step (bytes sent, ring collectives, gradients in the master dtype): all-reduce 2(N−1)/N of
the data, all-gather and reduce-scatter (N−1)/N each; so DDP 2(N−1)/N of the gradients, ZeRO-1 that plus the
parameters' broadcast, ZeRO-2 2(N−1)/N, ZeRO-3 3(N−1)/N (the ZeRO paper's 1.5× of data parallelism), HSDP ZeRO-3's
within a node plus an all-reduce of its shard across nodes.
"""

from __future__ import annotations

from math import prod
from typing import Any

from ..core.dtypes import DTYPE_BYTES
from ..core.errors import SpecError, unknown_name
from ..core.numeric import human_bytes
from ..engine import optimizers
from ..engine.memory import _cpu_adam_temporaries, _module_order
from ..engine.result import Analysis
from . import offload as offload_pass

SHARDINGS = ("ddp", "zero1", "zero2", "zero3", "fsdp", "hsdp")


def tensors(analysis: Analysis) -> list[tuple[Any, bool]]:
    """(elements, trains) of every parameter tensor the layers hold themselves (a layer's weight, then its bias),
    in the order the built network's ``parameters()`` visits them; a layer sharing another's holds none."""
    rows = analysis.layers
    out = []
    for i in _module_order([row.name for row in rows]):
        if i == 0:
            continue
        row = rows[i]
        trains = row.trainable_params != 0
        out += [(n, trains) for n in (row.weights, row.biases) if n]
    return out


def units(analysis: Analysis) -> list[tuple[str, Any, Any]]:
    """(name, elements, trainable elements) of each FSDP unit: every layer that holds parameters is one (wrapped
    as torch's auto-wrap policies wrap modules with parameters), in the order the built network lists them."""
    rows = analysis.layers
    order = (rows[i] for i in _module_order([row.name for row in rows]) if i)
    return [(row.name, row.params, row.trainable_params) for row in order if row.params]


def tensor_shapes(analysis: Analysis) -> list[tuple]:
    """The shapes of the parameter tensors the layers train (LayerKind.param_shapes; a layer partly trained or
    sharing: its parts as vectors), in the order of ``tensors``."""
    rows = analysis.layers
    shapes = {row.name: row.output_shape for row in rows}
    out: list[tuple] = []
    for i in _module_order([row.name for row in rows]):
        row = rows[i]
        if not i or not row.trainable_params:
            continue
        found = row.kind.param_shapes([shapes[src] for src in row.inputs], row.output_shape)
        whole = row.trainable_params == row.weights + row.biases == sum(prod(shape) for shape in found)
        out += found if whole else [(n,) for n in (row.weights, row.biases) if n]
    return out


def _ceil(a: Any, b: int) -> Any:
    return -(-a // b)


def zero1_partition(sizes: list[Any], gpus: int) -> list[Any]:
    """Elements per GPU as ZeroRedundancyOptimizer partitions tensors: largest first (a stable sort), each to the
    GPU with the fewest so far (the lowest rank among equals)."""
    return [sum((sizes[k] for k in mine), 0) for mine in zero1_assign(sizes, gpus)]


def zero1_assign(sizes: list[Any], gpus: int) -> list[list[int]]:
    """The tensors (indices into ``sizes``) each GPU steps under ZeroRedundancyOptimizer (see zero1_partition)."""
    held, mine = [0] * gpus, [[] for _ in range(gpus)]  # type: list[Any], list[list[int]]
    for k in sorted(range(len(sizes)), key=lambda k: -sizes[k]):
        rank = held.index(min(held))
        held[rank] += sizes[k]
        mine[rank].append(k)
    return mine


def shard(analysis: Analysis, gpus: int, sharding: str | None, gpus_per_node: int | None = None,
          offload: str | None = None, accumulate: int | None = None) -> dict[str, Any]:
    """Per GPU (a list, rank by rank) the bytes of parameters, gradients and optimizer state it holds after a step,
    DDP's buckets, the per-GPU peak (cnnsize's one-GPU budget with those parts replaced, plus the gathered units,
    and the optimizer step's temporaries of the share each GPU steps) and the bytes each GPU sends per step; with
    ``offload`` (see cnnsize.passes.offload) what moves to host memory (``accumulate``: the micro-steps a step, by
    default the training pass's). ``sharding`` None: one GPU (offload's)."""
    if sharding is None and (gpus != 1 or offload is None):
        raise SpecError("one GPU without sharding: nothing to shard", hint="give --gpus 2 or more")
    if sharding is not None and sharding not in SHARDINGS:
        raise unknown_name("sharding", sharding, SHARDINGS)
    if gpus < 2 and sharding not in ("ddp", None):
        raise SpecError(f"--sharding {sharding} with {gpus} GPU shards nothing", hint="give --gpus 2 or more")
    node = gpus_per_node or min(gpus, 8)
    if sharding == "hsdp" and (gpus % node or node == gpus):
        raise SpecError(f"--sharding hsdp needs several nodes of {node} GPUs, got {gpus} GPUs",
                        hint="give --gpus a multiple of --gpus-per-node, larger than it")
    memory = analysis.totals.memory
    master = 4 if memory.amp else DTYPE_BYTES[analysis.dtype]
    params = analysis.totals.params
    trained = analysis.totals.trainable_params
    shards = gpus if sharding != "hsdp" else node
    if sharding in ("ddp", "zero1", None):
        layout = _replicated(analysis, gpus, sharding or "ddp", master)
        if sharding is None:
            layout["buckets"] = [0]
    else:
        layout = _flat(analysis, gpus, shards, sharding, master)
    stepped = layout.pop("stepped")
    figures = {key: values if key == "optimizer" else [value * master for value in values]
               for key, values in layout.items()}
    comm = 0 if sharding is None else _communication(sharding, gpus, node, params * master, trained * master)
    one_gpu = memory.params_bytes + memory.gradients_bytes + memory.optimizer_bytes
    units_walk = _unit_phases(analysis, sharding, shards, master)
    if units_walk is None:  # one GPU's phases with its parts replaced by each GPU's
        steps = _step_peaks(analysis, stepped, master)
        peaks = [memory.training_bytes - memory.training_step_peak_bytes + steps[rank][0] - one_gpu
                 + sum(figures[key][rank] for key in figures) for rank in range(gpus)]
    else:  # FSDP: its units' walk through the step (_unit_phases), on what stays between steps
        steps = [(max(units_walk, step), max(units_walk, figures["gradients"][rank]))
                 for rank, step in enumerate(_shard_steps(analysis, stepped, figures["gradients"], master))]
        resident = memory.training_bytes - memory.training_step_peak_bytes - memory.params_bytes \
            - memory.optimizer_bytes  # buffers: besides parameters and optimizer state, what stays
        peaks = [resident + figures["params"][rank] + figures["optimizer"][rank] + steps[rank][0]
                 for rank in range(gpus)]
    found = {"gpus": gpus, "sharding": sharding, "gpus_per_node": node,
             **{f"{k}_bytes": v for k, v in figures.items()}, "per_gpu_peak_bytes": max(peaks),
             "per_gpu_peaks_bytes": peaks, "communication_bytes": comm}
    if offload is not None:
        if accumulate is None:
            accumulate = (analysis.totals.get("training") or {}).get("accumulate", 1)
        found.update(offload_pass.offload(analysis, found, (offload, accumulate), stepped, master, steps,
                                          _largest_shard(analysis, sharding, shards) * master))
    return found


def _largest_shard(analysis: Analysis, sharding: str | None, shards: int) -> Any:
    """Elements of the largest unit's own shard (its whole on one GPU): what a GPU keeps of it when gathered."""
    if sharding not in ("zero3", "fsdp", "hsdp", None):
        return 0
    return max((_ceil(total, shards) for _, total, _ in units(analysis)), default=0)


def _step_peaks(analysis: Analysis, stepped: list, master: int) -> list[tuple[Any, Any]]:
    """Per GPU, the training step's peak with the optimizer step's temporaries of the tensors that GPU steps
    (``stepped``: their shapes, per rank): the phases before the step as they are, the step's gradients and
    temporaries (cnnsize.engine.memory's phases). DDP steps everything: the one-GPU peak. Each with what it falls
    to without those temporaries (the other phases', or the gradients held: what offloading the step saves)."""
    memory = analysis.totals.memory
    phases = getattr(analysis, "step_phases", None)
    if phases is None or phases["besides"] is None:
        return [(memory.training_step_peak_bytes,) * 2] * len(stepped)
    name, device = memory.optimizer, phases["device"]
    floor = max(phases["besides"], memory.gradients_bytes)
    return [(memory.training_step_peak_bytes if shapes is None else
             max(phases["besides"], memory.gradients_bytes + step_temporaries(name, device, shapes, master)), floor)
            for shapes in stepped]


def _shard_steps(analysis: Analysis, stepped: list, gradients: list, master: int) -> list:
    """Per GPU, its optimizer step on its shards: their gradients (bytes) and the step's temporaries."""
    memory, device = analysis.totals.memory, (analysis.step_phases or {}).get("device", "cpu")
    return [grads + step_temporaries(memory.optimizer, device, shapes, master)
            for shapes, grads in zip(stepped, gradients, strict=True)]


def _unit_phases(analysis: Analysis, sharding: str | None, shards: int, master: int) -> Any:
    """The worst moment of FSDP's forward and backward beyond what stays between steps, one unit per layer with
    parameters, as torch runs them (None where the step is not plain: checkpointing, accumulation, symbolic
    sizes, or no FSDP). The forward holds its activations and the units gathered (ZeRO-2 gathers each unit
    and keeps it; ZeRO-3 gathers one at a time). In backward, at each layer: what the one-GPU walk holds there
    besides parameter gradients; the gradient shards of the units already reduced; the units still gathered
    (ZeRO-2: those not yet through their backward; ZeRO-3: the unit and the one before it, prefetched); and in a
    unit's own backward its whole gradient twice, the tensors' and their flat concatenation, which FSDP then
    reduce-scatters to this GPU's shard."""
    phases = analysis.step_phases
    if sharding not in ("zero2", "zero3", "fsdp", "hsdp") or not phases or phases.get("backward") is None:
        return None
    rows = analysis.layers
    at = [i for i in range(1, len(rows)) if rows[i].params]
    full = {i: rows[i].params * master for i in at}
    before = {i: (full[j] if j else 0) for i, j in zip(at, [0, *at])}  # the unit before each (the prefetched one)
    gathered_forward = sum(full.values(), 0) if sharding == "zero2" else max(full.values(), default=0)
    worst = [phases["forward"] + gathered_forward]
    reduced, still = 0, sum(full.values(), 0)  # shards of units through their backward; ZeRO-2's units gathered
    prefetched = 0  # ZeRO-3: the unit gathered ahead of its backward
    visited, held = phases["backward"]  # the positions backward visits, and what each holds then
    for i in reversed(visited):
        own = 2 * rows[i].trainable_params * master if i in full else 0
        if sharding == "zero2":
            gathered = still
        else:
            gathered = full[i] + before[i] if i in full else prefetched
        worst.append(held[i] + reduced + gathered + own)
        if i in full:
            reduced += _ceil(rows[i].trainable_params, shards) * master
            still -= full[i]
            prefetched = before[i]
    return max(worst)


def step_temporaries(optimizer: str, device: str, shapes: list[tuple], master: int) -> Any:
    """Bytes the optimizer's step allocates beyond the gradients, stepping these tensors (as
    cnnsize.engine.memory's _optimizer_temporaries for the whole network)."""
    if optimizer in ("adam", "adamw"):
        sizes = [prod(shape) for shape in shapes]
        return master * (sum(sizes) if device == "cuda" else _cpu_adam_temporaries(sizes))
    return optimizers.temporaries(optimizer, lambda: shapes, master)


def _replicated(analysis: Analysis, gpus: int, sharding: str, master: int) -> dict[str, list]:
    """Elements per GPU under DDP (and ZeRO-1, its optimizer state partitioned by tensor); the optimizer state in
    bytes."""
    params, trained = analysis.totals.params, analysis.totals.trainable_params
    name = analysis.totals.memory.optimizer
    states = optimizers.PER_ELEMENT.get(name)
    shapes = tensor_shapes(analysis)
    # the tensors each GPU steps, in its optimizer's order (ZeroRedundancyOptimizer's: largest first); DDP all
    mine = [] if sharding == "ddp" else zero1_assign([prod(shape) for shape in shapes], gpus)
    if sharding == "ddp":
        optimizer = [analysis.totals.memory.optimizer_bytes] * gpus
    elif states is not None:
        optimizer = [states * n * master for n in zero1_partition([n for n, trains in tensors(analysis) if trains],
                                                                  gpus)]
    else:  # the state of each GPU's tensors, by their shapes
        optimizer = [optimizers.state_bytes(name, lambda ks=ks: [shapes[k] for k in ks], 0, master) for ks in mine]
    stepped = [[shapes[k] for k in ks] for ks in mine] if mine else [None] * gpus  # None: all (the one-GPU step)
    return {"params": [params] * gpus, "gradients": [trained] * gpus, "optimizer": optimizer,
            "gathered": [0] * gpus, "buckets": [trained] * gpus, "stepped": stepped}


def _flat(analysis: Analysis, gpus: int, shards: int, sharding: str, master: int) -> dict[str, list]:
    """Elements per GPU under FSDP: each unit's flat parameter padded to a multiple of ``shards`` and split evenly
    (every GPU the same slice size: the last holds the padding); gradients and optimizer state of the slices that
    train. While computing, ZeRO-2 holds every unit gathered, ZeRO-3 the largest unit and its gradient."""
    found = units(analysis)
    mine = sum(_ceil(total, shards) for _, total, _ in found)
    trained = sum(_ceil(total, shards) for _, total, t in found if t)
    if sharding == "zero2":
        gathered = analysis.totals.params - mine
    else:
        gathered = 2 * max((total for _, total, _ in found), default=0) - 2 * max(
            (_ceil(total, shards) for _, total, _ in found), default=0)
    state = optimizers.flat_state_bytes(analysis.totals.memory.optimizer,
                                        [_ceil(total, shards) for _, total, t in found if t], master)
    flat = [(_ceil(total, shards),) for _, total, t in found if t]  # each unit's shard: a vector
    return {"params": [mine] * gpus, "gradients": [trained] * gpus, "optimizer": [state] * gpus,
            "gathered": [gathered] * gpus, "buckets": [0] * gpus, "stepped": [flat] * gpus}


def _communication(sharding: str, gpus: int, node: int, param_bytes: Any, grad_bytes: Any) -> Any:
    """Bytes each GPU sends in one step (ring collectives)."""
    n = gpus
    if sharding == "ddp":
        return 2 * (n - 1) * grad_bytes // n
    if sharding == "zero1":
        return 2 * (n - 1) * grad_bytes // n + (n - 1) * param_bytes // n
    if sharding == "zero2":
        return (n - 1) * (param_bytes + grad_bytes) // n
    if sharding in ("zero3", "fsdp"):
        return (n - 1) * (2 * param_bytes + grad_bytes) // n
    nodes = gpus // node  # hsdp: ZeRO-3 within a node, the shard's gradients all-reduced across nodes
    return (node - 1) * (2 * param_bytes + grad_bytes) // node + 2 * (nodes - 1) * grad_bytes // (node * nodes)


def summary(found: dict[str, Any]) -> str:
    """One line: the per-GPU peak and parts, and the step's communication."""
    most = {key: human_bytes(max(found[f"{key}_bytes"])) for key in ("params", "gradients", "optimizer")}
    return (f"On {found['gpus']} GPUs ({found['sharding']}): per GPU at most "
            f"{human_bytes(found['per_gpu_peak_bytes'])} (parameters {most['params']}, gradients {most['gradients']}, "
            f"optimizer state {most['optimizer']}); each GPU sends {human_bytes(found['communication_bytes'])} a step.")


def apply(analysis: Analysis, gpus: int, sharding: str | None, gpus_per_node: int | None = None,
          offload: str | None = None) -> Analysis:
    """``totals["training"]``'s ``gpus``, ``sharding``, ``per_gpu_peak_bytes`` and ``communication_bytes``, with
    each GPU's parts under ``per_gpu``, and a line in words (the training pass has run); with ``offload``
    (cnnsize.passes.offload) its figures too."""
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise SpecError(f"gpus must be a positive integer, got {gpus!r}", hint="e.g. --gpus 8")
    if gpus_per_node is not None and (isinstance(gpus_per_node, bool) or not isinstance(gpus_per_node, int)
                                      or gpus_per_node < 1):
        raise SpecError(f"gpus per node must be a positive integer, got {gpus_per_node!r}", hint="e.g. 8")
    one = gpus == 1 and sharding is None and offload is not None  # one GPU, offloading
    offload_pass.check(offload, sharding or (None if one else "ddp"), gpus)
    found = shard(analysis, gpus, None if one else sharding or "ddp", gpus_per_node, offload)
    training = analysis.totals["training"]
    training.update({key: found[key] for key in ("gpus", "sharding", "per_gpu_peak_bytes", "communication_bytes")})
    training["per_gpu"] = {key: found[key] for key in found if key.endswith("_bytes") and isinstance(found[key], list)
                           and not key.startswith("offload")}
    if offload is not None:
        training.update({key: found[key] for key in found if key.startswith("offload")})
        analysis.summaries["offload"] = offload_pass.summary(found)
    if not one:
        analysis.summaries["sharding"] = summary(found)
    return analysis
