"""Memory you can budget on: the inference peak by liveness, and what training holds.

Inference: walk the graph in execution order; a tensor lives from the layer that
makes it until its last reader has run (the caller holds the input throughout,
and the result stays); in-place layers and views reuse their input's storage;
parameters and buffers stay resident. A composite layer (Swin's, MaxViT's, MViT's
attention) also holds, while it runs, the tensors it makes on the way
(LayerKind.transient), in training in its backward as well.

Training: one steady-state step, as torch runs it (see ``training_figures``):
the forward pass, where autograd keeps per layer kind the tensors its backward
needs (each kind's ``saved``; nothing when neither the inputs nor the layer's own
parameters require grad, so frozen prefixes cost nothing); the backward pass
layer by layer; the optimizer step with its temporaries. Parameters, buffers and
optimizer state are resident.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from itertools import accumulate, compress, islice
from math import prod
from operator import add, mul
from typing import Any

from ..core.errors import SpecError, unknown_name
from ..core.graph import Topology
from ..core.numeric import all_int, dmax, is_int
from ..core.plain import Plain
from ..layers.base import FLOAT32, LOWER, LayerKind
from . import optimizers
from .checkpoint import IMPLS, RNG_STATE_BYTES, check_impl

OPTIMIZER_STATES = optimizers.PER_ELEMENT  # the optimizers whose state is a multiple of the parameters
DEVICES = ("cuda", "cpu")
# how the step computes: float32; mixed (autocast to bf16 or fp16, float32 master weights and gradients; fp16 with a
# gradient scaler); or pure 16-bit (the model, its gradients and optimizer state in that type)
PRECISIONS = ("float32", "bf16-mixed", "fp16-mixed", "bf16", "fp16")
PURE_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
GRAD_SCALER_BYTES = 8  # torch.amp.GradScaler's state: its scale (float32) and growth tracker (int32), one each


class MemoryOptions(Plain):
    """How the network is trained: optimizer, precision (PRECISIONS), the device kind (dropout masks and autocast's
    lists differ), the micro-steps a step accumulates gradients over (1: none), and the segments activation
    checkpointing wraps (cnnsize.engine.checkpoint.Segment, by position) in torch.utils.checkpoint's variant
    ``checkpoint_impl`` (non-reentrant or reentrant)."""

    __slots__ = FIELDS = ("optimizer", "precision", "device", "accumulate", "checkpoint", "checkpoint_impl")
    __hash__ = Plain.hashed

    def __init__(self, optimizer: str = "adam", precision: str = "float32", device: str = "cuda",
                 accumulate: int = 1, checkpoint: tuple = (), checkpoint_impl: str = IMPLS[0]):
        self.optimizer, self.precision, self.device, self.accumulate = optimizer, precision, device, accumulate
        self.checkpoint, self.checkpoint_impl = tuple(checkpoint), checkpoint_impl

    @property
    def mixed(self) -> bool:
        """Autocast: activations per op in 16 bits or float32, float32 master weights, gradients and state."""
        return self.precision.endswith("-mixed")

    @property
    def amp(self) -> bool:
        return self.mixed

    def check(self) -> MemoryOptions:
        if self.optimizer not in optimizers.OPTIMIZERS:
            raise unknown_name("optimizer", self.optimizer, optimizers.OPTIMIZERS)
        if self.device not in DEVICES:
            raise unknown_name("device", self.device, DEVICES)
        if self.precision not in PRECISIONS:
            raise unknown_name("precision", self.precision, PRECISIONS)
        accumulate = self.accumulate
        if isinstance(accumulate, bool) or not isinstance(accumulate, int) or accumulate < 1:
            raise SpecError(f"accumulate must be a positive integer (micro-steps a training step accumulates), got "
                            f"{accumulate!r}", hint="e.g. accumulate=4: four micro-batches per optimizer step")
        check_impl(self.checkpoint_impl)
        return self


def activation_widths(topology: Topology, sized: list, itemsize: int, options: MemoryOptions) -> list[int]:
    """Bytes per element of each position's output in training: the analysis' dtype, or under mixed precision what
    autocast makes of it (the input comes as float32 data; each kind says what its op does: autocast_width)."""
    if not options.mixed:
        return [itemsize] * len(sized)
    widths = [4]
    for layer, srcs in zip(islice(sized, 1, None), islice(topology.srcs, 1, None)):
        widths.append(layer.kind.autocast_width(layer.ins, tuple(map(widths.__getitem__, srcs)), options.device))
    return widths


def output_bytes(sized: list, batch: Any, itemsize: int | list[int]) -> list:
    """Bytes of each position's output at ``batch``, at one itemsize or each position's: worked out once per distinct
    Sized (the layers of a repeat share one), then looked up position by position."""
    if isinstance(itemsize, int):
        once = {s: s.numel * s.batched(batch) * itemsize for s in set(sized)}
        return list(map(once.__getitem__, sized))
    elements = {s: s.numel * s.batched(batch) for s in set(sized)}
    return list(map(mul, map(elements.__getitem__, sized), itemsize))


def _live(owner: list[int], last_read: list[int], size: list, pinned: set,
          extras: Sequence[tuple[int, Any]] = ()) -> list:
    """Live bytes at each position: a storage lives from its owner until its last reader has run.

    The ``pinned`` ones live to the end; ``extras`` are (position, bytes) of tensors born there and kept
    to the end (what autograd saves besides activations).
    """
    n = len(owner)
    delta: list[Any] = [0] * (n + 1)
    for i in range(n):
        if owner[i] == i:
            delta[i] += size[i]
            delta[n if i in pinned else last_read[i] + 1] -= size[i]
    for i, nbytes in extras:
        delta[i] += nbytes
    return list(accumulate(delta[:n]))


def inference_peak(topology: Topology, sized: list, batch: Any, itemsize: int) -> tuple[Any, str]:
    """(peak activation bytes, the layer at which it occurs) for one forward pass at inference.

    ``sized[i]`` is what the analysis worked out for position i (``numel``: elements per sample).
    None and "" when sizes are formulas: which layer is the worst then depends on the values.
    """
    size = output_bytes(sized, batch, itemsize)
    if not all_int(size):
        return None, ""
    owner = topology.owner
    live = _live(owner, topology.last_read, size, {*topology.inputs, owner[-1]})
    for i, nbytes in _transients(sized, batch, itemsize, training=False).items():
        live[i] += nbytes  # a composite's intermediates, while it runs
    peak = max(live)
    return peak, topology.names[live.index(peak)]  # the first position at the peak


class _Kept:
    """What autograd keeps, where it is first kept: storage position -> bytes (each storage once), the bytes first
    kept per position, (position, bytes) of the tensors of their own the layers keep (masks, statistics), and the
    positions whose layer keeps anything at all (``packs``; ``after``: those that keep their output or a tensor of
    their own, so their op has run when the last one is packed). The forward's (``kept`` a list by position), or a
    checkpointed segment's, recomputed in its backward (a dict, and ``saved`` seeded with the storages the segment
    reads from before it, which checkpoint keeps as its inputs)."""

    __slots__ = ("saved", "kept", "extras", "packs", "after", "first", "inputs", "track")

    def __init__(self, kept: Any, inputs: set | None = None, track: bool = True):
        self.track = track  # packs, after and first: a segment's (the forward's are never read; not kept, for speed)
        self.inputs: set[int] = inputs or set()
        self.saved: dict[int, Any] = dict.fromkeys(self.inputs, 0)
        self.kept = kept
        self.extras: list[tuple[int, Any]] = []
        self.packs: list[int] = []
        self.after: set[int] = set()
        self.first: dict[int, int] = {}  # storage position -> the position that first kept it


class _Checkpointed:
    """The checkpointed segments of one training step (options.checkpoint) as training_figures walks the positions:
    what each keeps (a _Kept), whether the reentrant variant leaves it untrained (no input requires grad: torch
    makes no gradient for its parameters), and once walked, the positions recomputed and the recomputed tensors'
    lifetimes in backward (``recomputed``, a difference array over the positions)."""

    def __init__(self, topology: Topology, options: MemoryOptions, n: int):
        self.segments, self.reentrant = options.checkpoint, options.checkpoint_impl == "reentrant"
        self.cpu = options.device == "cpu"
        self.at = [-1] * n  # position -> its segment's index (-1: none)
        self.stores: list[_Kept] = []
        owner, srcs = topology.owner_training, topology.srcs
        for k, (_, start, end) in enumerate(self.segments):
            self.at[start:end + 1] = [k] * (end + 1 - start)
            outside = {owner[src] for j in range(start, end + 1) for src in srcs[j] if owner[src] < start}
            outside |= {owner[j] for j in range(start, end + 1) if owner[j] < start}  # views of what comes before
            self.stores.append(_Kept(defaultdict(int), outside))
        self.dead = [False] * len(self.segments)
        self.recomputed = [False] * n
        self.kept = [0] * (n + 1)  # recomputed tensors, as a difference array over positions (backward)
        self.spans: list[tuple[int, int, int]] = []  # (segment, first position recomputed, trigger position)
        self.running: dict[int, Any] = {}  # position -> bytes checkpoint holds while the layer runs its forward

    def store(self, i: int, forward: _Kept) -> _Kept:
        k = self.at[i]
        return forward if k < 0 else self.stores[k]

    def untrained(self, i: int, requires_grad: list[bool], srcs: list) -> bool:
        """Reentrant checkpoint: a segment none of whose inputs requires grad makes outputs that do not either; its
        layers get no gradients (torch warns "None of the inputs have requires_grad=True")."""
        k = self.at[i]
        if k < 0 or not self.reentrant:
            return False
        _, start, end = self.segments[k]
        if i == start:
            self.dead[k] = not any(requires_grad[src] for j in range(start, end + 1) for src in srcs[j] if src < start)
        return self.dead[k]

    def close(self, k: int, forward: _Kept, size: list, topology: Topology) -> None:
        """Segment ``k`` walked: its inputs (and on the CPU checkpoint's copy of the random generator's state) kept
        from the forward until its backward has run, its saved tensors recomputed in its backward: the reentrant
        variant runs the whole segment again and then its backward, holding its outputs; the non-reentrant one stops
        recomputing as the last tensor it needs is saved again (torch's early stop), at its last layer that saves."""
        store, (_, start, end) = self.stores[k], self.segments[k]
        if self.dead[k] and self.cpu:  # the reentrant variant's copy of the generator's state, while it runs
            self.running.update((j, self.running.get(j, 0) + RNG_STATE_BYTES) for j in range(start, end + 1))
        if self.dead[k] or (not store.packs and not self.reentrant):
            return  # nothing kept: torch lets the segment's inputs go, and recomputes nothing
        last = end if self.reentrant else store.packs[-1]
        keep_at = start if self.reentrant else store.packs[0]  # the segment lets its inputs go after that backward
        for key in sorted(store.inputs):  # kept as the forward keeps what it saves
            if key not in forward.saved:
                forward.saved[key] = size[key]
                forward.kept[keep_at] += size[key]
        if self.cpu:  # the reentrant variant's autograd node keeps it until the whole backward is done
            forward.extras.append((start, RNG_STATE_BYTES))
            forward.kept[0 if self.reentrant else keep_at] += RNG_STATE_BYTES
        for position, nbytes in store.kept.items():
            self.kept[position] += nbytes
            self.kept[last + 1] -= nbytes
        if self.reentrant:  # its recomputed outputs stay until its backward is done
            last_read, owner = topology.last_read_training, topology.owner_training
            for j in range(start, end + 1):
                if owner[j] == j and (last_read[j] > end or j == len(owner) - 1):
                    self.kept[start] += size[j]  # (where it is saved too, from there on it is counted as such)
                    self.kept[store.first.get(j, end + 1)] -= size[j]
        runs = end if self.reentrant else last if last in store.after else last - 1
        self.recomputed[start:runs + 1] = [True] * (runs + 1 - start)
        self.spans.append((k, start, last))

    def phases(self, topology: Topology, size: list, transients: dict, before: Callable[[int], Any]) -> dict:
        """Per segment, the peak while torch recomputes it: what is alive as its backward starts (``before(p)``,
        what lives at position p's backward before it runs) and the segment's forward with its saved tensors kept
        (up to where the recomputation stops)."""
        out = {}
        owner, last_read = topology.owner_training, topology.last_read_training
        for k, start, last in self.spans:
            store = self.stores[k]
            trigger = self.segments[k].end if self.reentrant else last
            held = {j for j in range(start, trigger + 1) if owner[j] == j and
                    (j in store.first or (self.reentrant and last_read[j] > trigger))}
            delta = [0] * (trigger - start + 2)
            for j in range(start, trigger + 1):
                if owner[j] == j:
                    delta[j - start] += size[j]
                    delta[(trigger if j in held else min(max(last_read[j], j), trigger)) - start + 1] -= size[j]
            for j, nbytes in store.extras:
                delta[j - start] += nbytes
            live = list(accumulate(delta[:-1]))
            worst = _max([value + transients.get(j, 0) for j, value in zip(range(start, trigger + 1), live)])
            label = self.segments[k].label
            out[f"recompute of {label}"] = before(trigger) + worst + (RNG_STATE_BYTES if self.cpu else 0)
        return out


def training_figures(topology: Topology, sized: list, trainable: list[bool], batch: Any, itemsize: int,
                     options: MemoryOptions, grads: list | None = None) -> dict[str, Any]:
    """What one training step allocates beyond the resident model, in a steady state (after the first step).

    ``trainable[i]``: whether position i's own parameters are trained; ``grads[i]``: the (weight, bias) elements
    of those it trains and holds itself (a layer sharing another's counts none: one gradient per tensor; default:
    all of them). Three phases, as torch runs them
    (gradients set to None between steps, torch's default):

    - forward: a tensor lives until its last reader has run, or to the end of the pass if autograd saved it;
    - backward, layer by layer from the last: what is saved stays until the first layer that saved it has
      run its backward; the gradient of a layer's output lives from the backward of its last reader until
      its own; each parameter's gradient, once made, stays until the optimizer step;
    - with gradient accumulation (``options.accumulate`` micro-steps), the micro-steps after the first: forward and
      backward with every parameter gradient already allocated, and in a layer's backward the gradients it makes
      for its own parameters besides them, until autograd adds them to those held (in place);
    - with activation checkpointing (``options.checkpoint``), a checkpointed segment's forward keeps only its
      inputs (its tensors live as at inference), and its backward first recomputes it (see _Checkpointed);
    - optimizer step: every parameter gradient, plus the step's temporaries (Adam and AdamW: one tensor
      the size of all parameters in torch's foreach form on CUDA; on the CPU, where torch updates one parameter
      at a time, the square root and quotient of one parameter beside the previous one's ``denom``, see
      _cpu_adam_temporaries).

    Optimizer state is resident (made by the first step) and counted apart, in ``optimizer_bytes``. The key
    ``checkpoint`` holds what checkpointing changes (the positions recomputed, and those left untrained).
    """
    widths = activation_widths(topology, sized, itemsize, options)
    master = 4 if options.mixed else itemsize  # parameters, their gradients and the optimizer state
    owner, n = topology.owner_training, len(sized)
    size = output_bytes(sized, batch, widths if options.mixed else itemsize)
    # mixed precision: the copies autocast makes (inputs cast to the type an op runs in, 16-bit weights)
    casts = _autocast_copies(topology, sized, widths, batch, options) if options.mixed else {}
    checkpointed = _Checkpointed(topology, options, n)
    trainable = list(trainable)
    flow = _gradient_flow(topology, sized, (trainable, grads, master), size, casts, checkpointed)
    requires_grad, act_grads, param_grads, own_grads, born, passing, trainable_total = flow
    only_forward: list[tuple[int, Any]] = []  # (position, bytes) of what lives to the forward's end, not saved
    # the activations autograd keeps (storage position -> bytes), the tensors of their own (masks...) and, in
    # backward, as a difference array over the positions (it visits them from the last): what is saved
    # lives from the start of backward until its first saver's backward
    forward = _Kept([0] * (n + 1), track=False)
    saved, kept, extras = forward.saved, forward.kept, forward.extras
    _keep_all(topology, sized, (trainable, requires_grad), (widths, master), size, casts, checkpointed, forward,
              (only_forward, passing), options.device, batch)
    segments = checkpointed.segments

    def tensors() -> list:  # the parameter tensors trained, in the built network's order (only Adam on a CPU asks)
        return [t for i in _module_order(topology.names) if i and trainable[i] and sized[i].params != 0
                for t in (grads[i] if grads is not None else sized[i].owned)]

    def shapes() -> list:  # their shapes (only Adafactor and the 8-bit optimizers ask)
        return [shape for i in _module_order(topology.names) if i and trainable[i] and sized[i].params != 0
                for shape in tensor_shapes(sized[i], grads[i] if grads is not None else sized[i].owned)]

    changed = {"recomputed": checkpointed.recomputed, "untrained": [i for i in range(1, n) if checkpointed.at[i] >= 0
                                                                     and checkpointed.dead[checkpointed.at[i]]]
               if segments else []}
    if not all_int(size):  # symbolic sizes: the peaks are maxima over hundreds of formulas, minutes of sympy
        return {**_symbolic_training(saved, extras, trainable_total, master, (tensors, shapes), options),
                "checkpoint": changed}
    forward_live = _live(owner, topology.last_read_training, size, {*topology.inputs, owner[-1], *saved},
                         [*extras, *only_forward])
    # a composite's intermediates, and casts, that autograd does not keep, while the layer runs (as at inference
    # inside a checkpointed segment)
    training_transients = _transients(sized, batch, widths, training=True)
    if segments:
        inside = [k >= 0 for k in checkpointed.at]
        _add_at(forward_live, {i: v for i, v in training_transients.items() if not inside[i]},
                {i: v for i, v in _transients(sized, batch, widths, training=False).items() if inside[i]}, passing,
                checkpointed.running)
    else:
        _add_at(forward_live, training_transients, passing)
    forward_peak = _max(forward_live)
    visited = list(compress(range(n), requires_grad))  # never the input (0)
    kept_at, grads_at = list(accumulate(kept[:n])), list(accumulate(act_grads[:n]))
    recomputed = map(add, kept_at, accumulate(checkpointed.kept[:n])) if segments else kept_at
    activations_at = list(map(add, recomputed, grads_at))
    for i, nbytes in _transients(sized, batch, widths, training=True, backward=True).items():
        activations_at[i] += nbytes if requires_grad[i] else 0  # and their gradients, in its backward
    params_at = list(accumulate(param_grads[:n]))
    alive_at = list(map(add, activations_at, params_at))  # with the parameter gradients
    backward = list(map(alive_at.__getitem__, visited))
    temporaries = _optimizer_temporaries(options, trainable_total, master, (tensors, shapes))
    step = trainable_total * master + temporaries
    phases = {"forward": forward_peak, "backward": backward, "optimizer step": step}
    phases.update(checkpointed.phases(topology, size, training_transients, lambda p: kept_at[p] + grads_at[p] - born[p]
                                      + params_at[p] - own_grads.get(p, 0)))
    if options.accumulate > 1:  # the micro-steps after the first run with every parameter gradient allocated
        phases["forward, gradients held"] = forward_peak + trainable_total * master
        phases["backward, gradients held"] = [activations_at[i] + trainable_total * master + own_grads.get(i, 0)
                                              for i in visited]
        phases.update({f"{name}, gradients held": value for name, value in checkpointed.phases(
            topology, size, training_transients, lambda p: kept_at[p] + grads_at[p] - born[p] + trainable_total * master
        ).items()})
    peak, where = _peak_phase(phases, visited, topology.names)
    # the step's peak apart from the optimizer's step: sharding and offload replace that phase (passes.sharding)
    # and, for FSDP's units (passes.sharding), the forward's peak and what each backward position holds besides
    # parameter gradients, where the step is plain (no checkpointed segment, no accumulation)
    plain = not segments and options.accumulate == 1
    changed["step"] = {"besides": _max([_max(v) if isinstance(v, list) else v for k, v in phases.items()
                                        if k != "optimizer step"]), "device": options.device,
                       "forward": forward_peak if plain else None,
                       "backward": (visited, activations_at) if plain else None}
    saved_total = sum(saved.values(), 0) + sum((nbytes for _, nbytes in extras), 0)
    return {
        "saved_for_backward_bytes": saved_total,
        "activation_gradients_bytes": _max(list(map(grads_at.__getitem__, visited))),
        "training_activations_peak_bytes": _max([forward_peak, *map(activations_at.__getitem__, visited)]),
        "gradients_bytes": trainable_total * master,
        "optimizer_bytes": optimizers.state_bytes(options.optimizer, shapes, trainable_total, master),
        "optimizer_temporaries_bytes": temporaries,
        "training_step_peak_bytes": peak,
        "training_peak_phase": where,
        "checkpoint": changed,
    }


def _gradient_flow(topology: Topology, sized: list, parameters: tuple, size: list, casts: dict,
                   checkpointed: _Checkpointed) -> tuple:
    """Which positions' outputs require grad (their own parameters train, or an input requires grad) and the
    gradients' lifetimes, in one pass over the positions: (requires_grad; difference arrays over positions of the
    activation gradients, from an output's last reader's backward to its own, and of the parameter gradients,
    from their layer's backward to the step; position -> bytes of the parameter gradients its backward makes;
    position -> bytes of the activation gradients its backward makes; position -> bytes of the casts a layer
    that does no backward holds while it runs; the parameter elements trained). ``parameters``: (whether each
    position's parameters train, which the reentrant checkpoint may clear; their (weight, bias) elements, see
    training_figures; the master weights' itemsize)."""
    trainable, grads, master = parameters
    n, srcs_of, last_reader, segments = len(sized), topology.srcs, topology.last_reader, checkpointed.segments
    requires_grad = [False] * n
    act_grads: list[Any] = [0] * (n + 1)
    param_grads: list[Any] = [0] * (n + 1)
    own_grads: dict[int, Any] = {}
    born: list[Any] = [0] * n
    passing: dict[int, Any] = {}
    trainable_total: Any = 0
    for i, layer, srcs, trains in zip(range(1, n), islice(sized, 1, None), islice(srcs_of, 1, None),
                                      islice(trainable, 1, None)):
        if segments and checkpointed.untrained(i, requires_grad, srcs_of):
            trains = trainable[i] = False
        if trains and layer.params != 0:
            weights, biases = grads[i] if grads is not None else layer.owned
            trainable_total += weights + biases
            param_grads[i + 1] -= (weights + biases) * master  # and param_grads[1] += the total, after the loop
            own_grads[i] = (weights + biases) * master
        elif layer.kind.constant or not (requires_grad[srcs[0]] if len(srcs) == 1 else
                                         any(map(requires_grad.__getitem__, srcs))):
            copies = casts.get(i)  # nothing saved: the casts live while it runs
            passing[i] = sum(copies[0].values(), 0) + sum(copies[1], 0) if copies else 0
            continue
        requires_grad[i] = True
        last = last_reader[i]
        if last > 0:
            nbytes = size[i]
            act_grads[i] += nbytes
            act_grads[last + 1] -= nbytes
            born[last] += nbytes
    param_grads[1] += trainable_total * master
    return requires_grad, act_grads, param_grads, own_grads, born, passing, trainable_total


def _keep_all(topology: Topology, sized: list, flags: tuple[list, list], widths: tuple[list, int], size: list,
              casts: dict, checkpointed: _Checkpointed, forward: _Kept, forward_only: tuple[list, dict], device: str,
              batch: Any) -> None:
    """What autograd keeps for each layer's backward (the layers whose output requires grad, in order): each
    storage once, in ``forward`` or its checkpointed segment's store, where first kept, closing each segment as
    the walk passes its end. ``flags``: (whether each position's parameters train, whether its output requires
    grad); ``widths``: (each position's activation itemsize, the parameters')."""
    (trainable, requires_grad), (width_at, master) = flags, widths
    owner, srcs_of, segments = topology.owner_training, topology.srcs, checkpointed.segments
    closing = iter(enumerate(segments))
    pending = next(closing, None)
    resolved: dict = {}  # (Sized, width, own parameters trained?) -> what it keeps (_saved)
    store = forward
    for i in compress(range(len(sized)), requires_grad):
        while pending is not None and pending[1].end < i:  # a segment walked
            checkpointed.close(pending[0], forward, size, topology)
            pending = next(closing, None)
        layer, width = sized[i], width_at[i]
        own = bool(trainable[i]) and layer.params != 0
        found = resolved.get((layer, width, own))
        if found is None:
            found = resolved[(layer, width, own)] = _saved(layer, own, device, (width, master), batch)
        refs, own_bytes = found
        if segments:
            store = checkpointed.store(i, forward)
        copies = casts.get(i) if casts else None
        if copies or store.track:  # autocast's copies, or a segment's packs: the general case
            _keep(i, found, copies, own, store, forward_only, (srcs_of[i], owner, requires_grad, size, sized, batch))
            continue
        saved, srcs, nbytes = store.saved, srcs_of[i], own_bytes
        for index, itemsize, needed in refs:  # each storage once, where first kept (see _kept)
            if needed and not any(requires_grad[srcs[j]] for j in needed):
                continue
            key = owner[srcs[index]] if index >= 0 else owner[i]
            if key not in saved:
                saved[key] = more = size[key] if itemsize is None else \
                    sized[key].numel * sized[key].batched(batch) * itemsize
                nbytes += more
        if own_bytes:
            store.extras.append((i, own_bytes))
        store.kept[i] += nbytes
    while pending is not None:
        checkpointed.close(pending[0], forward, size, topology)
        pending = next(closing, None)


def _keep(i: int, found: tuple, copies: Any, own: bool, store: _Kept, forward_only: tuple[list, dict],
          context: tuple) -> None:
    """Register what layer ``i`` keeps for its backward (``found``: _saved's) in ``store``: each storage once, where
    first kept; its autocast copies (see _keep_copies)."""
    srcs, owner, requires_grad, size, sized, batch = context
    refs, own_bytes = found
    only_forward, passing = forward_only
    saved, kept = store.saved, store.kept
    cast_inputs = copies[0] if copies else {}
    packs = bool(own_bytes)
    if copies:  # the cast copy is what it keeps (counted there), not its input
        nbytes = _keep_copies(i, refs, copies, own, (store.extras, only_forward, passing))
        kept[i] += nbytes
        packs = packs or bool(nbytes)
        refs = tuple(ref for ref in refs if ref[0] not in cast_inputs)
    for key, width in _kept(refs, srcs, owner, i, requires_grad):
        packs = True
        if key not in saved:  # saved first here: kept until this layer's backward
            saved[key] = nbytes = size[key] if width is None else \
                sized[key].numel * sized[key].batched(batch) * width
            kept[i] += nbytes
            if store.track:
                store.first[key] = i
    if own_bytes:
        store.extras.append((i, own_bytes))
        kept[i] += own_bytes
    if packs and store.track:
        store.packs.append(i)
        if own_bytes or any(ref[0] == -1 for ref in refs):
            store.after.add(i)


def _add_at(values: list, *amounts: dict[int, Any]) -> None:
    """Add each position's bytes (``amounts``) to ``values`` at that position."""
    for more in amounts:
        for i, nbytes in more.items():
            values[i] += nbytes


def _optimizer_temporaries(options: MemoryOptions, trainable_total: Any, master: int,
                           tensors: tuple[Callable[[], list], Callable[[], list]]) -> Any:
    """Bytes the optimizer's step allocates beyond the gradients: Adam and AdamW one tensor the size of all
    parameters (CUDA's foreach form) or one parameter's worth at a time (the CPU, _cpu_adam_temporaries); SGD and
    momentum update in place; Adafactor and 8-bit Adam: cnnsize.engine.optimizers.temporaries. ``tensors``: the
    trained tensors' sizes and their shapes, each asked only where needed."""
    sizes, shapes = tensors
    if options.optimizer not in ("adam", "adamw"):
        return optimizers.temporaries(options.optimizer, shapes, master)
    if options.device == "cuda":
        return trainable_total * master
    found = sizes()
    return _cpu_adam_temporaries(found) * master if all_int(found) else None


def _peak_phase(phases: dict[str, Any], visited: list[int], names: list[str]) -> tuple[Any, str]:
    """The step's peak and where it falls: the first phase at it, and for a backward phase (its figure per layer
    visited, ``visited`` their positions) the layer ("backward at layer4.1.conv2")."""
    peaks = {name: _max(value) if isinstance(value, list) else value for name, value in phases.items()}
    peak = _max(list(peaks.values()))
    where = next((name for name, value in peaks.items() if value == peak), "")
    values = phases.get(where)
    if isinstance(values, list) and all_int(values):
        where = f"{where} at {names[visited[values.index(peak)]]}"
    return peak, where


def _transients(sized: list, batch: Any, itemsize: int | list[int], training: bool,
                backward: bool = False) -> dict[int, Any]:
    """Position -> bytes of the intermediates a composite layer holds at once while it runs (LayerKind.transient),
    or while its backward runs (LayerKind.backward_transient); only the kinds that have them."""

    composite = {s for s in set(sized) if s.kind is not None and type(s.kind).transient is not LayerKind.transient}
    out: dict[int, Any] = {}
    if not composite:  # most networks: no layer asked, and no pass over the positions
        return out
    for i, layer in enumerate(sized):
        if layer in composite:
            elements = layer.kind.backward_transient(layer.ins, layer.out, batch) if backward else \
                layer.kind.transient(layer.ins, layer.out, batch, training)
            if elements:
                out[i] = elements * (itemsize if isinstance(itemsize, int) else itemsize[i])
    return out


def _autocast_copies(topology: Topology, sized: list, widths: list[int], batch: Any,
                     options: MemoryOptions) -> dict[int, tuple[dict[int, Any], tuple[Any, Any]]]:
    """Position -> ({input index: bytes of its cast}, (bytes of the weights' 16-bit copy, of the biases')) for the
    layers autocast runs in a type other than their inputs' (LayerKind.autocast: the 16-bit and float32 lists)."""
    out = {}
    for i, layer in enumerate(islice(sized, 1, None), 1):
        mode = layer.kind.autocast_mode(layer.ins, options.device)
        if mode not in (LOWER, FLOAT32):
            continue
        target = 2 if mode == LOWER else 4
        inputs = {j: sized[src].numel * sized[src].batched(batch) * target for j, src in enumerate(topology.srcs[i])
                  if widths[src] != target}
        weights, biases = layer.owned if mode == LOWER else (0, 0)
        if inputs or weights or biases:
            out[i] = (inputs, (2 * weights, 2 * biases))
    return out


def _keep_copies(i: int, refs: tuple, copies: tuple, own: bool, into: tuple[list, list, dict]) -> Any:
    """Where the autocast copies of layer ``i`` (which requires grad) live: the input casts it saves, and its 16-bit
    weight (saved with them), to its backward; trained weights are autocast's cache, to the forward's end (their bias
    copies too). Its backward lets go of the weight copy as it makes the weight's 16-bit gradient, of the same size,
    which is cast to the float32 gradient: no more at once than before. The casts it does not keep live while it
    runs. ``into``: (what is saved, what lives to the forward's end, what passes). Returns the bytes it keeps."""
    extras, only_forward, passing = into
    inputs, (weight, bias) = copies
    saved = sum((inputs[ref[0]] for ref in refs if ref[0] in inputs), 0)
    passing[i] = sum(inputs.values(), 0) - saved
    keep = saved + weight
    if keep:
        extras.append((i, keep))
    if own:
        only_forward.append((i, bias))
    return keep


def _kept(refs: tuple, srcs: tuple, owner: list[int], i: int, requires_grad: list[bool]) -> list[tuple]:
    """(storage position, itemsize or None) of the activations layer ``i`` keeps (``refs``, see _saved), leaving out
    those kept only for the gradients of inputs that do not require grad (a factor of x * mask where mask is an
    input: torch keeps mask, not x)."""
    return [(owner[srcs[index]] if index >= 0 else owner[i], width) for index, width, needed in refs
            if not needed or any(requires_grad[srcs[j]] for j in needed)]


def _saved(layer: Any, own: bool, device: str, sizes: tuple[int, int], batch: Any) -> tuple[tuple, Any]:
    """What autograd keeps for one layer's backward (its kind's ``saved``), resolved to bytes.

    ``sizes``: the activation's width and the parameters'. Returns the activations it keeps, as (input index, or -1
    for the output; itemsize, or None for the
    activation dtype; the inputs whose gradients need it, Saved.for_inputs), and the bytes of the tensors of its own
    (masks, indices, statistics).
    """
    (act_size, param_size), refs, own_bytes = sizes, [], 0
    one = is_int(batch) and batch == 1
    kind = layer.kind
    for item in kind.saved(layer.ins, layer.out, own, device):
        if item.batch_one is not None and item.batch_one != one:
            continue
        width = param_size if item.itemsize == "params" else item.itemsize or act_size
        if item.of == "new":
            own_bytes += item.numel * (batch if item.per_sample else 1) * width
        else:
            refs.append((item.index if item.of == "input" else -1, None if width == act_size else width,
                         item.for_inputs))
    return tuple(refs), own_bytes


def _symbolic_training(saved: dict, extras: list, trainable_total: Any, master: int,
                       tensors: tuple[Callable[[], list], Callable[[], list]],
                       options: MemoryOptions) -> dict[str, Any]:
    """The training figures that are sums (formulas); the peaks, maxima over every layer, are None: the
    report asks for numeric sizes instead (a Max of a few hundred formulas is neither readable nor quick)."""
    temporaries = _optimizer_temporaries(options, trainable_total, master, tensors)
    return {
        "saved_for_backward_bytes": sum(saved.values(), 0) + sum((nbytes for _, nbytes in extras), 0),
        "activation_gradients_bytes": None,
        "training_activations_peak_bytes": None,
        "gradients_bytes": trainable_total * master,
        "optimizer_bytes": optimizers.state_bytes(options.optimizer, tensors[1], trainable_total, master),
        "optimizer_temporaries_bytes": temporaries,
        "training_step_peak_bytes": None,
        "training_peak_phase": "",
    }


def tensor_shapes(layer: Any, held: tuple) -> list[tuple]:
    """The shapes of the parameter tensors a layer trains (``held``: its (weight, bias) elements trained): its kind's
    (LayerKind.param_shapes) where it trains all it holds, else each part as one vector."""
    if tuple(held) == tuple(layer.owned):
        return [shape for shape in layer.kind.param_shapes(layer.ins, layer.out) if prod(shape)]
    return [(n,) for n in held if n]


def _module_order(names: list[str]) -> list[int]:
    """Positions in the order torch's ``parameters()`` visits the built network, which Adam's CPU step follows: the
    builder nests dotted names ('layer4.1.conv1' under 'layer4'), so a layer comes with the first of its prefix."""
    root: dict = {}
    for i, name in enumerate(names):
        node = root
        for part in name.split("."):
            node = node.setdefault(part, {})
        node.setdefault("", []).append(i)  # a layer's own parameters come before those of the layers under it
    out: list[int] = []
    stack = [root]
    while stack:
        node = stack.pop()
        out.extend(node.get("", ()))
        stack.extend(reversed([child for key, child in node.items() if key]))
    return out


def _cpu_adam_temporaries(tensors: list) -> Any:
    """Elements Adam's CPU step holds beyond the gradients at its worst parameter.

    torch's single-tensor Adam computes ``denom = (exp_avg_sq.sqrt() / c).add_(eps)`` per parameter, in order, and
    the name keeps the previous parameter's ``denom`` until the new one is made: the square root and the quotient of
    one parameter live beside the previous parameter's ``denom``. ``tensors``: the sizes of the parameter tensors
    trained, in the built network's order (0 for a layer without biases, which makes no tensor)."""
    sizes = [t for t in tensors if t != 0]
    return _max([prev + 2 * cur for prev, cur in zip([0, *sizes], sizes)])


def _max(values: list) -> Any:
    if not values:
        return 0
    if all_int(values):
        return max(values)

    return dmax(*values)


MAX_DEVICE_BYTES = 2**64  # --device-memory at most 16 EiB: max_batch's search then takes at most ~130 analyses
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40,
          "p": 10**15, "pb": 10**15, "pib": 2**50, "e": 10**18, "eb": 10**18, "eib": 2**60}


def parse_bytes(text: str) -> int:
    """'24GiB' -> 25769803776; '16GB' -> 16000000000; plain numbers are bytes."""
    import re


    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise SpecError(f"'{text}' is not a memory size", hint="write e.g. 24GiB, 16GB or 8000MiB")
    number, unit = m.groups()
    whole, _, frac = number.partition(".")
    scale = _UNITS[unit.lower()]
    if len(whole) > 30 or len(frac) > 30:
        shown = f"'{text[:40]}…'" if len(text) > 40 else f"'{text}'"
        raise SpecError(f"memory size {shown} has too many digits", hint="sizes up to 16EiB (2^64 bytes) are supported")
    size = int(whole) * scale + (int(frac) * scale // 10 ** len(frac) if frac else 0)
    if size > MAX_DEVICE_BYTES:
        raise SpecError(f"memory size '{text}' is more than 16EiB (2^64 bytes), the largest supported",
                        hint="no device has more; give a smaller size")
    return size


def max_batch(analyze_at, device_bytes: int) -> dict[str, int]:
    """Largest batch whose inference peak and training budget fit in ``device_bytes`` (0: not even one).

    ``analyze_at(batch)`` returns the totals' memory dict at that batch. Every figure grows with the batch
    but the training one is not affine (the step's peak moves from the optimizer step to the activations as
    the batch grows), so the largest batch is found by doubling and then halving: about 2·log2(batch) analyses.
    """
    memo: dict[int, dict] = {}

    def figure_at(batch: int, figure: str) -> int:
        if batch not in memo:
            memo[batch] = analyze_at(batch)
        return memo[batch][figure]

    out = {"device_memory_bytes": device_bytes}
    for key, figure in (("inference", "inference_peak_bytes"), ("training", "training_bytes")):
        if figure_at(1, figure) > device_bytes:
            out[key] = 0
            continue
        low = 1  # fits
        while figure_at(2 * low, figure) <= device_bytes and low < 2 * MAX_DEVICE_BYTES:  # every sample takes >= 1 B
            low *= 2
        high = 2 * low  # does not fit
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (mid, high) if figure_at(mid, figure) <= device_bytes else (low, mid)
        out[key] = low
    return out
