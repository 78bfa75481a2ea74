"""Walk a Graph with the layer kinds and collect every figure per layer and in total (an Analysis).

Nothing here imports torch, pandas or sympy.
"""

from __future__ import annotations

from itertools import compress, islice
from operator import attrgetter
from typing import Any

from ..core.dtypes import DTYPE_BYTES, parse_dtype
from ..core.errors import CnnsizeError, SpecError, unknown_name
from ..core.graph import Graph
from ..core.layout import apply_layout, axes_label, channels_first, looks_channels_last, shape_words
from ..core.numeric import human_bytes, is_int, is_symbolic, prod, tidy
from ..core.plain import replace
from ..layers.base import IN_PLACE, NEW, RF, VIEW, Counts, Ctx, LayerKind
from .checkpoint import IMPLS, blocks, segments
from .memory import (
    GRAD_SCALER_BYTES,
    PRECISIONS,
    PURE_DTYPES,
    MemoryOptions,
    inference_peak,
    parse_bytes,
    training_figures,
)
from .result import COUNT_FIELDS, Analysis, Figures, LayerResult, MemoryBudget, Totals


class Sized:
    """What a layer kind works out for one set of input shapes: the output shape and the counts.

    Computed once and shared by every layer with the same settings and inputs (the blocks of a ResNet
    stage, the repeats of a generated spec), which keeps the analysis linear and cheap per layer.
    ``figures`` are a row's counts at the analysis' batch and dtype with the parameters trained,
    ``frozen_figures`` the same with none trained.
    """

    __slots__ = ("kind", "ins", "out", "numel", "params", "figures", "frozen_figures", "param_bytes",
                 "activation_bytes", "weight_layer", "materializes", "field_step", "frozen", "owned")

    def __init__(self, kind: Any, ins: list[tuple], out: tuple, counts: Counts, batch: Any, itemsize: int,
                 materializes: bool = True):
        self.kind, self.ins, self.out = kind, ins, out
        self.numel = prod(out)
        self.params = params = counts.weights + counts.biases
        activations = (self.numel if materializes else 0) * self.batched(batch)
        macs = counts.macs * batch
        if kind is not None and type(kind).scratch is not LayerKind.scratch:  # a composite's intermediates
            activations += kind.scratch(ins, out, batch)
        if kind is not None and type(kind).call_macs is not LayerKind.call_macs:
            macs += kind.call_macs(ins, out)
        self.frozen = counts.frozen  # of the weights, those that never train (an opaque module's frozen ones)
        self.owned = (counts.weights, counts.biases)
        self.figures = Figures(weights=counts.weights, biases=counts.biases, params=params,
                               trainable_params=params - counts.frozen, buffers=counts.buffers,
                               activations=activations, connections=counts.connections, macs=macs, flops=2 * macs)
        self.frozen_figures = self.figures._replace(trainable_params=0)
        self.param_bytes, self.activation_bytes = params * itemsize, activations * itemsize
        self.weight_layer: bool = getattr(kind, "weight_layer", False)
        self.materializes = materializes
        # how the layer changes the receptive field, when its kind can say once for these shapes (see field_step)
        self.field_step = kind.field_step(ins) if kind is not None else ()

    def batched(self, batch: Any) -> Any:
        """The samples its output holds: the batch's, or 1 for a kind made once per call (``constant``)."""
        return 1 if getattr(self.kind, "constant", False) else batch

    @classmethod
    def of(cls, kind: Any, ins: list[tuple], ctx: Ctx, symbolic: bool, batch: Any, itemsize: int) -> Sized:
        out = tuple(kind.output_shape(ins, ctx))
        if symbolic:
            out = tuple(tidy(v) for v in out)
        counts = kind.counts(ins, out)
        return cls(kind, ins, out, counts, batch, itemsize, kind.materializes)


def _check_shared(node: Any, sized: Sized, owner: Sized) -> None:
    if sized.params != owner.params or sized.kind.values != owner.kind.values:
        raise SpecError(f"'{node.name}' shares the parameters of '{node.shares}', but its settings or input "
                        f"give {sized.params} parameters against {owner.params}",
                        hint="a shared layer has the settings and input channels of the one it shares",
                        location=node.loc, layer=node.name)


def _check_tie(node: Any, tensor: str, mine: Any, owner: str, theirs: Any) -> None:
    if mine != theirs:
        raise SpecError(f"'{node.name}' shares the {tensor} of '{owner}', but its settings or input give "
                        f"{mine} {tensor} elements against {theirs}",
                        hint=f"a tied {tensor} has the same size in both layers", location=node.loc, layer=node.name)


def _own_parameters(node: Any, sized: Sized, sized_at: list[Sized], position: dict, trained: Any,
                    figures: Figures, itemsize: int) -> tuple[Figures, Any, tuple, tuple]:
    """A row's figures and parameter bytes with only the parameters the layer holds itself (``shares``: none, or
    the tensors ``shares: {weight: a}`` leaves it) and trains (``trainable: [bias]``, an opaque layer's frozen
    ones), and the (weight, bias) elements it holds (less those frozen in the source) and those it trains: each
    tensor counts once, at the layer that holds it."""
    weights, biases = sized.owned
    if node.shares is not None:  # the parameters are the shared layer's: counted there, once
        _check_shared(node, sized, sized_at[position[node.shares]])
        return figures._replace(weights=0, biases=0, params=0, trainable_params=0, buffers=0), 0, (0, 0), (0, 0)
    for tensor, owner in node.ties:
        theirs = sized_at[position[owner]].owned[0 if tensor == "weight" else 1]
        _check_tie(node, tensor, weights if tensor == "weight" else biases, owner, theirs)
        weights, biases = (0, biases) if tensor == "weight" else (weights, 0)
    parts = node.trainable if isinstance(node.trainable, tuple) else ("weight", "bias")
    train_w = weights - sized.frozen if trained and "weight" in parts else 0
    train_b = biases if trained and "bias" in parts else 0
    params = weights + biases
    return (figures._replace(weights=weights, biases=biases, params=params, trainable_params=train_w + train_b),
            params * itemsize, (weights - sized.frozen, biases), (train_w, train_b))


def analyze_graph(graph: Graph, *, input_shape: tuple | dict | None = None, batch: int = 1, dtype: str = "float32",
                  fit: str | None = None, optimizer: str = "adam", amp: bool = False, device: str = "cuda",
                  freeze_until: str | None = None, layout: str | None = "chw",
                  accumulate: int | None = None, precision: str | None = None, checkpoint: str | None = None,
                  checkpoint_impl: str = IMPLS[0], device_memory: Any = None, grad_scaler: bool = True) -> Analysis:
    """Size every layer of a graph. Raises CnnsizeError (with location and layer) on any problem.

    ``optimizer``, ``precision`` (float32, bf16-mixed, fp16-mixed, bf16, fp16; ``amp`` is fp16-mixed; the pure
    ones make ``dtype`` theirs) and ``device`` shape the training memory estimate; ``freeze_until`` marks
    that layer and every layer before it as not trainable (fine-tuning the rest); ``accumulate``: micro-steps a step
    accumulates gradients over (the peak holds them between micro-steps); ``checkpoint``: activation checkpointing's
    segments (``every:N``, layer and block names joined by commas, or ``auto``: the every:N that fits
    ``device_memory`` with the least work recomputed; see cnnsize.engine.checkpoint) in torch's ``checkpoint_impl``
    variant (non-reentrant, reentrant); ``grad_scaler``: whether fp16-mixed trains with a gradient scaler (its state
    counted; without one it is refused: fp16 gradients underflow). ``layout``: ``chw`` takes
    the input as written, ``hwc`` converts a channels-last one, None (what users' entry points pass) refuses
    one that looks channels-last (32×32×3) with the shape to use.
    """

    given, others = _split_inputs(graph, input_shape)
    shape_in = _input_shape(graph, given, layout)  # channels first, of the spec's rank
    if graph.reexpand is not None and (shape_in != tuple(graph.input_shape) or others
                                       or (fit is not None and fit != graph.fit)):
        graph = graph.reexpand({graph.input_name: shape_in, **others}, fit or graph.fit)
    elif others:
        graph = graph.with_inputs(others)
    precision, dtype = resolve_precision(precision, amp, parse_dtype(dtype))
    check_grad_scaler(precision, grad_scaler)
    options = MemoryOptions(optimizer, precision, device, 1 if accumulate is None else accumulate, (),
                            checkpoint_impl).check()
    budget = _budget(checkpoint, device_memory)
    frozen = _frozen(graph, freeze_until)
    bad_batch = isinstance(batch, bool) or not (is_int(batch) or hasattr(batch, "free_symbols"))
    if bad_batch or (is_int(batch) and batch < 1):
        raise SpecError(f"batch must be a positive integer, got {batch!r}")
    if fit is not None and fit not in ("exact", "floor"):
        raise unknown_name("fit rule", fit, ("exact", "floor"))
    ctx = Ctx(fit=fit or graph.fit)
    symbolic = any(is_symbolic(v) for v in shape_in) or is_symbolic(batch) or \
        any(is_symbolic(v) for i in graph.topology.inputs[1:] for v in graph.nodes[i - 1].kind.shape)
    size = DTYPE_BYTES[dtype]
    topology = graph.topology  # by position: 0 is the input, then every layer in order
    walked = _walk(graph, topology, shape_in, ctx, symbolic, batch, size, frozen)
    sized_at, trainable, figures, trained_tensors, owned, rfs, param_bytes = walked
    rows: Any = _Rows(graph, sized_at, figures, rfs, param_bytes)  # each row made when the rows are first read
    columns: list[Any]  # each count's values, row by row
    if symbolic:
        rows = [_tidy_row(r) for r in rows.build()]
        columns = [list(map(attrgetter(key), rows)) for key in COUNT_FIELDS]
        rfs = [r.receptive_field for r in rows]
    else:
        columns = list(zip(*figures))
    totals: dict[str, Any] = {key: sum(column, 0) for key, column in zip(COUNT_FIELDS, columns)}
    flags = list(map(attrgetter("weight_layer"), sized_at))
    totals["weight_layers"] = sum(flags)
    ints = _int_buffers(sized_at, figures)  # int64 buffers: 8 bytes at any dtype (batch norm's num_batches_tracked)
    buffer_bytes = (totals["buffers"] - ints) * size + 8 * ints
    totals["memory"] = {"params_bytes": totals["params"] * size, "buffers_bytes": buffer_bytes,
                        "activations_bytes": totals["activations"] * size}
    totals["receptive_field"] = next((rf for rf in reversed(rfs) if rf), None)
    weights = sum(compress(columns[0], flags), 0)
    resident = (totals["params"] + totals["buffers"] - ints, 8 * ints)  # (elements at the dtype, int64 bytes)

    def memory_with(cut: tuple) -> tuple[MemoryOptions, dict]:
        chosen = replace(options, checkpoint=cut)
        return chosen, _memory(topology, sized_at, (trainable, trained_tensors, owned), resident, weights, batch, size,
                               chosen)

    setting, options, memory = _checkpointing(graph, checkpoint, budget, memory_with, figures)
    changed = memory.pop("checkpoint")
    totals["memory"].update(memory)
    fit_conditions = None
    if symbolic:
        from ..core.symbolic import solve

        totals = {k: tidy(v) if k not in ("memory", "receptive_field") else v for k, v in totals.items()}
        totals["memory"] = {k: tidy(v) if is_symbolic(v) else v for k, v in totals["memory"].items()}
        fit_conditions = solve(ctx.conditions, ctx.bounds, [v for v in shape_in if is_symbolic(v)])
    typed = Totals(**{**totals, "memory": MemoryBudget(**totals["memory"])})
    analysis = Analysis(name=graph.name, input_shape=shape_in, batch=batch, dtype=dtype, layers=rows, totals=typed,
                        graph=graph, notes=list(graph.notes), conditions=list(ctx.conditions),
                        fit_conditions=fit_conditions, fit=ctx.fit,
                        checkpoint=_checkpointed((checkpoint, setting), options, changed, topology) if checkpoint
                        else None)
    analysis.step_phases = changed.get("step")  # the step's peak apart from the optimizer's (passes.sharding)
    if any(type(kind).axes_note is not LayerKind.axes_note for kind in topology.kinds):
        analysis.notes += analysis.axes_notes()
    return analysis


class _Rows:
    """The rows of an analysis, made when first read (Analysis.layers): sizing a network needs only its
    figures, so a caller that reads the totals alone never pays for a row object per layer."""

    __slots__ = ("graph", "sized_at", "figures", "rfs", "param_bytes")

    def __init__(self, graph: Graph, sized_at: list[Sized], figures: list[Figures], rfs: list, param_bytes: dict):
        self.graph, self.sized_at, self.figures, self.rfs, self.param_bytes = graph, sized_at, figures, rfs, param_bytes

    def __len__(self) -> int:
        return len(self.sized_at)

    def build(self) -> list[LayerResult]:
        graph, sized_at, figures, rfs, own_bytes = self.graph, self.sized_at, self.figures, self.rfs, self.param_bytes
        first = sized_at[0]
        rows = [LayerResult(graph.input_name, "input", [], first.out, figures[0], rfs[0], 0, first.activation_bytes,
                            None, False, True, graph.input_loc)]
        new_row, append = LayerResult, rows.append
        for i, node, sized, counts, rf in zip(range(1, len(sized_at)), graph.nodes, islice(sized_at, 1, None),
                                             islice(figures, 1, None), islice(rfs, 1, None)):
            kind = node.kind
            append(new_row(node.name, kind.kind, list(node.inputs), sized.out, counts, rf,
                           own_bytes.get(i, sized.param_bytes) if own_bytes else sized.param_bytes,
                           sized.activation_bytes, kind, sized.weight_layer, sized.materializes, node.loc, 1,
                           node.function))
        return rows


def _walk(graph: Graph, topology: Any, shape_in: tuple, ctx: Ctx, symbolic: bool, batch: Any, size: int,
          frozen: set[str]) -> tuple[list[Sized], list[Any], list[Figures], list, list, list, dict]:
    """What was sized at each position (the input first), whether each position's parameters train (True, False,
    or the names of those that do), each row's counts, per position the (weight, bias) elements of the parameters
    it trains and of those it holds itself (not another layer's: shares), which gradients and optimizer state are
    made for, each position's receptive field, and the parameter bytes of the rows that hold other than their
    kind's (by position): the hot loop, one pass over the nodes, which makes no row (see _Rows)."""
    first_sized = Sized(None, [], shape_in, Counts(), batch, size)
    sized_at = [first_sized]
    rfs: list[RF | None] = [RF.identity(len(shape_in) - 1) if len(shape_in) > 1 else None]
    trained_at: list[Any] = [False]  # whether each position's parameters train (frozen ones cleared)
    trainable: list[Any] = [False]  # and whether they get gradients (the kind learns)
    special: dict[int, tuple] = {}  # position -> its own parameters, where not its kind's (_own_parameters)
    memo: dict = {}  # (kind, *input shapes) -> Sized; layer kinds with equal settings are one object
    add_sized, add_rf, add_trained, add_trainable = sized_at.append, rfs.append, trained_at.append, trainable.append
    for i, node, srcs in zip(range(1, len(topology.srcs)), graph.nodes, islice(topology.srcs, 1, None)):
        kind = node.kind
        try:
            if len(srcs) == 1:
                src = srcs[0]
                key: tuple[Any, ...] = (kind, sized_at[src].out)
                rf = rfs[src]
            else:
                key = (kind, *[sized_at[src].out for src in srcs])
                rf = rfs[srcs[0]] if srcs else None
            sized = memo.get(key)
            if sized is None:
                sized = Sized.of(kind, list(key[1:]), ctx, symbolic, batch, size)
                if not symbolic:  # symbolic layers also collect fit conditions: work each out
                    memo[key] = sized
            step = sized.field_step
            if step is None:  # sized.ins: these input shapes, as the key says
                rf = kind.receptive(list(map(rfs.__getitem__, srcs)), sized.ins, sized.out)
            elif step and rf is not None:  # a sliding window (() keeps the field as it is)
                rf = rf.window(*step)
        except CnnsizeError as exc:
            raise exc.at(node.loc, node.name)
        add_sized(sized)
        add_rf(rf)
        trained = node.trainable
        if node.shares is not None or node.ties or sized.frozen or trained.__class__ is tuple:
            if trained and frozen and node.name in frozen:
                trained = False
            special[i] = _own_parameters(node, sized, sized_at, topology.position, trained,
                                         sized.figures if trained else sized.frozen_figures, size)
        elif trained and frozen and node.name in frozen:
            trained = False
        add_trained(trained)
        add_trainable(trained and kind.learns)  # no gradients nor optimizer state where backward never reaches
    counted, owned, trained_tensors, param_bytes = _parameters(sized_at, trained_at, trainable, special)
    outs = list(map(attrgetter("out"), sized_at))  # output shape by position
    in_place = _in_place(graph.nodes, topology)
    _check_split_views(graph, topology, counted, in_place)
    if not symbolic:
        _check_overlaps(graph, topology, outs, batch, in_place)
    return sized_at, trainable, counted, trained_tensors, owned, rfs, param_bytes


def _parameters(sized_at: list[Sized], trained_at: list, trainable: list, special: dict[int, tuple]) -> tuple:
    """Per position its row's counts, the (weight, bias) elements it holds and those it trains (see _walk), and the
    parameter bytes of the rows that hold other than their kind's: the kind's figures, trained or frozen, but at the
    ``special`` positions (what _own_parameters gave)."""
    no_grads = (0, 0)
    counted = [s.figures if trained else s.frozen_figures for s, trained in zip(sized_at, trained_at)]
    counted[0] = sized_at[0].figures  # the input
    owned = list(map(attrgetter("owned"), sized_at))
    trained_tensors = [s.owned if learns else no_grads for s, learns in zip(sized_at, trainable)]
    param_bytes: dict[int, Any] = {}  # position -> parameter bytes, where not its kind's (shares, frozen parts)
    for i, (figures, param_bytes[i], held, grads) in special.items():
        counted[i], owned[i] = figures, held
        trained_tensors[i] = grads if trainable[i] else no_grads
    return counted, owned, trained_tensors, param_bytes


def _check_overlaps(graph: Graph, topology: Any, outs: list[tuple], batch: Any, in_place: list[int]) -> None:
    """torch refuses an in-place operation whose other input covers part of the memory it writes (``x[:, 1:4] -=
    x[:, 0:3]`` at batch 1: "some elements of the input tensor and the written-to tensor refer to a single memory
    location"): the same refusal, in one line. torch checks where both are dense blocks of one storage (see
    LayerKind.block); a part of each sample in a batch of several is strided, which torch does not check."""
    nodes = graph.nodes
    for i in [i for i in in_place if len(topology.srcs[i]) > 1]:
        node = nodes[i - 1]
        srcs = topology.srcs[i]
        written = _region(nodes, topology, outs, srcs[0], batch)
        for j, src in enumerate(srcs[1:], 1):
            other = _region(nodes, topology, outs, src, batch)
            if written is None or other is None or other == written or other[0] != written[0]:
                continue
            if other[1] < written[2] and written[1] < other[2]:
                raise SpecError(f"{node.kind.kind} in place writes '{node.inputs[0]}', which shares memory with its "
                                f"input '{node.inputs[j]}' in part: torch refuses (some elements of the input and the "
                                "written-to tensor refer to a single memory location)",
                                hint="write inplace: false (torch: clone() one of them first)", location=node.loc,
                                layer=node.name)


def _check_split_views(graph: Graph, topology: Any, counted: list[Figures], in_place: list[int]) -> None:
    """torch's autograd refuses to write in place a view that one call returned among several (a chunk's part), or a
    view of it, where it requires grad ("Output 0 of Split is a view and is being modified inplace"): the same
    refusal, in one line, as the network trains (and as ``model(x)`` runs outside torch.no_grad())."""
    nodes, srcs, owner = graph.nodes, topology.srcs, topology.owner
    grad: list[bool] | None = None
    # those writing a view or another in-place layer's output (a new tensor owns its storage: nothing to check)
    for i in [i for i in in_place if srcs[i] and owner[srcs[i][0]] != srcs[i][0]]:
        node = nodes[i - 1]
        position, hops = srcs[i][0], 0
        while position and nodes[position - 1].kind.storage != NEW and hops < 64:
            source = nodes[position - 1]
            if source.kind.several_views:
                grad = grad or _needs_grad(srcs, counted)
                if grad[position]:
                    view = "" if source.name == node.inputs[0] else f", a view of '{source.name}'"
                    raise SpecError(f"{node.kind.kind} in place writes '{node.inputs[0]}'{view}, one of the several "
                                    f"views {source.kind.kind} returns: torch's autograd refuses to modify it in place "
                                    "(torch runs it only under torch.no_grad())",
                                    hint="write inplace: false", location=node.loc, layer=node.name)
                break
            position, hops = srcs[position][0] if srcs[position] else 0, hops + 1


def _in_place(nodes: list, topology: Any) -> list[int]:
    """The positions of the layers that work in place (asking each distinct kind once)."""
    flags = {kind: kind.storage == IN_PLACE for kind in topology.kinds}
    if not any(flags.values()):
        return []
    return list(compress(range(1, len(nodes) + 1), map(flags.__getitem__, map(attrgetter("kind"), nodes))))


def _needs_grad(srcs: list, counted: list[Figures]) -> list[bool]:
    """Per position, whether its output requires grad: parameters trained there or before it."""
    grad = [False] * len(srcs)
    for i in range(1, len(srcs)):
        grad[i] = counted[i].trainable_params != 0 or any(grad[s] for s in srcs[i])
    return grad


def _region(nodes: list, topology: Any, outs: list[tuple], position: int, batch: Any) -> tuple | None:
    """(storage position, start, stop): the elements a layer's output covers in the storage it lives in, per sample,
    where they are one dense block for the whole batch; None where not (or not known)."""
    chain: list[int] = []
    while position and nodes[position - 1].kind.storage != NEW and len(chain) < 64:
        chain.append(position)
        position = topology.srcs[position][0]
    if position and nodes[position - 1].kind.storage != NEW:
        return None
    owner, start, stop = position, 0, prod(outs[position])
    for p in reversed(chain):
        kind = nodes[p - 1].kind
        if kind.storage == VIEW:
            block = kind.block([outs[s] for s in topology.srcs[p]])
            if block is None:
                return None
            start, stop = start + block[0], start + block[1]
    whole = (start, stop) == (0, prod(outs[owner]))
    return (owner, start, stop) if whole or batch == 1 else None


def _split_inputs(graph: Graph, given: Any) -> tuple[tuple | None, dict[str, tuple]]:
    """(the first input's shape, the others' by name) from what the caller gives: one shape (the first input's)
    or a mapping of input names to shapes, each of its input's rank; an unknown name lists the valid ones."""
    if not isinstance(given, dict):
        return given, {}
    shapes = graph.input_shapes()
    others = {}
    for name, shape in given.items():
        if name not in shapes:
            raise unknown_name("input", name, shapes)
        want = shapes[name]
        shape = tuple(shape)
        if name != graph.input_name and len(shape) != len(want):
            raise SpecError(f"input '{name}' {shape_words(shape)} has {len(shape)} ax"
                            f"{'i' if len(shape) == 1 else 'e'}s but {graph.name}'s {shape_words(want)} has "
                            f"{len(want)} ({axes_label(want)})",
                            hint=f"write {len(want)} sizes joined by x, e.g. {name}={shape_words(want)}")
        if name != graph.input_name and shape != want:
            others[name] = shape
    return given.get(graph.input_name), others


def _input_shape(graph: Graph, given: tuple | None, layout: str | None) -> tuple:
    """The input the analysis runs at: the one given (of the spec's rank) or the spec's, channels first."""

    if given is None:
        shape = tuple(graph.input_shape)
        if layout is None and looks_channels_last(shape):
            raise SpecError(f"the input {list(shape)} looks channels-last (H×W×C): did you mean "
                            f"{list(channels_first(shape))}?",
                            hint=f"cnnsize reads channels first: write input: {list(channels_first(shape))} "
                                 "(or analyze with layout 'hwc' to convert it, 'chw' to keep it as written)",
                            location=graph.input_loc)
        return apply_layout(shape, layout or "chw", "input")
    shape = apply_layout(tuple(given), layout, "input")
    want = graph.input_shape
    if len(shape) != len(want):
        raise SpecError(f"input {shape_words(shape)} has {len(shape)} ax{'i' if len(shape) == 1 else 'e'}s but "
                        f"{graph.name}'s input {shape_words(want)} has {len(want)} ({axes_label(want)})",
                        hint=f"write {len(want)} sizes joined by x, {axes_label(want)}, e.g. {shape_words(want)} "
                             "(names such as H give formulas)")
    return shape


def _tidy_row(row: LayerResult) -> LayerResult:
    """Every formula of a row in its most readable exact form."""
    row.figures = Figures(*map(tidy, row.figures))
    row.param_bytes, row.activation_bytes = tidy(row.param_bytes), tidy(row.activation_bytes)
    rf = row.receptive_field
    if rf is not None:
        row.receptive_field = RF(*(tuple(tidy(v) for v in vals) for vals in (rf.size, rf.stride, rf.start)))
    return row


def _frozen(graph: Graph, freeze_until: str | None) -> set[str]:
    """Names of the layers up to and including ``freeze_until``."""
    if freeze_until is None:
        return set()
    names = [node.name for node in graph.nodes]
    if freeze_until not in names:
        raise unknown_name("layer", freeze_until, names).at(None, None)
    return set(names[: names.index(freeze_until) + 1])


def _int_buffers(sized: list, figures: list) -> Any:
    """The int64 buffers among the layers' buffers (those a layer holds itself: a shared layer's are counted once),
    asked only of kinds that have any."""
    default = LayerKind.int_buffers
    asked = {s: s.kind.int_buffers(s.ins, s.out) for s in set(sized)
             if s.kind is not None and type(s.kind).int_buffers is not default}  # once per distinct Sized
    if not asked:
        return 0
    return sum((asked[s] for s, f in zip(sized, figures) if f.buffers and s in asked), 0)


def _memory(topology, sized: list[Sized], parameters: tuple, resident: Any, weights: Any, batch: Any, itemsize: int,
            options) -> dict:
    """Inference peak and training budget, in bytes (see cnnsize.engine.memory).

    ``parameters``: per position, whether its parameters train, the (weight, bias) elements it trains and those it
    holds (see analyze_graph); ``resident``: parameters and floating-point buffers (elements) and int64 buffers
    (bytes), always in memory; ``weights``:
    those of the weight layers, of which mixed precision keeps a half-precision copy.
    """

    trainable, trained, owned = parameters
    peak, where = inference_peak(topology, sized, batch, itemsize)

    def training(chosen: list[bool], grads: list[tuple]) -> dict:
        figures = training_figures(topology, sized, chosen, batch, itemsize, options, grads)
        # mixed: float32 master weights; the 16-bit copies autocast makes are the step's (memory.training_figures),
        # not resident
        master = (4 if options.mixed else itemsize) * resident[0] + resident[1]
        scaler = GRAD_SCALER_BYTES if options.precision == "fp16-mixed" else 0
        step_peak = figures["training_step_peak_bytes"]  # None with symbolic sizes (see memory.training_figures)
        figures["training_bytes"] = (None if step_peak is None
                                     else master + scaler + figures["optimizer_bytes"] + step_peak)
        return figures

    out: dict = {"inference_peak_bytes": None if peak is None else resident[0] * itemsize + resident[1] + peak,
                 "inference_peak_activations_bytes": peak, "inference_peak_layer": where}
    out.update(training(trainable, trained))  # and "checkpoint": what checkpointing changed (analyze_graph's)
    if not all(trainable[1:]):
        learns = {kind: kind.learns for kind in topology.kinds}
        everything = [False, *map(learns.__getitem__, map(attrgetter("kind"), islice(sized, 1, None)))]
        if everything != list(map(bool, trainable)):
            grads = [held if learns else (0, 0) for held, learns in zip(owned, everything)]
            out["training_bytes_all_trainable"] = training(everything, grads)["training_bytes"]
    out["optimizer"] = options.optimizer
    out["amp"] = options.mixed
    out["precision"] = options.precision
    return out


def _writes(graph: Graph) -> dict[int, int]:
    """Position -> the storage position each in-place layer writes (its first input's), for checkpoint's segments."""
    topology = graph.topology
    return {i: topology.owner[topology.srcs[i][0]] for i in _in_place(graph.nodes, topology)}


def _budget(checkpoint: str | None, device_memory: Any) -> int | None:
    """The device memory ``--checkpoint auto`` fits the step in (bytes, or a size such as 24GiB), refused without."""
    if checkpoint != "auto":
        return None
    if device_memory is None:
        raise SpecError("--checkpoint auto picks the segments that fit a memory budget, and none was given",
                        hint="give --device-memory SIZE (device_memory=...), e.g. --device-memory 24GiB")
    return device_memory if is_int(device_memory) and not isinstance(device_memory, bool) else \
        parse_bytes(str(device_memory))


def _checkpointing(graph: Graph, checkpoint: str | None, budget: int | None, memory_with: Any,
                   figures: list) -> tuple[str | None, MemoryOptions, dict]:
    """(the segments chosen, as a setting; the options; the memory figures) for ``checkpoint``: its segments, or for
    ``auto`` the every:N whose whole training budget fits ``budget`` with the fewest MACs recomputed (none, where the
    step fits without checkpointing)."""
    if checkpoint is None:
        return None, *memory_with(())
    names, writes = graph.topology.names, _writes(graph)
    if checkpoint != "auto":
        return checkpoint, *memory_with(segments(names, checkpoint, writes))
    plain = memory_with(())
    if plain[1]["training_bytes"] is None:
        raise SpecError("--checkpoint auto needs numeric sizes (the peaks of formulas are not compared)",
                        hint="give the input's sizes as numbers")
    if plain[1]["training_bytes"] <= budget:
        return None, *plain
    tried = []
    for n in range(1, len(blocks(names))):
        chosen = memory_with(segments(names, f"every:{n}", writes))
        redo = sum(figures[i].macs for i, flag in enumerate(chosen[1]["checkpoint"]["recomputed"]) if flag)
        tried.append((chosen[1]["training_bytes"] > budget, redo, chosen[1]["training_bytes"], n, chosen))
    if not tried:
        segments(names, "every:1", writes)  # one line: nothing to cut
    best = min(tried, key=lambda t: t[:3])
    if best[0]:
        least = min(tried, key=lambda t: t[2])
        raise SpecError(f"--checkpoint auto: no checkpointing fits the training step in {human_bytes(budget)}; the "
                        f"least it needs is {human_bytes(least[2])} (every:{least[3]}), against "
                        f"{human_bytes(plain[1]['training_bytes'])} without",
                        hint="a smaller --batch, more --device-memory, --precision bf16-mixed or several --gpus")
    return f"every:{best[3]}", *best[4]


def _checkpointed(settings: tuple, options: MemoryOptions, changed: dict, topology: Any) -> dict:
    """What the analysis says of its checkpointing (Analysis.checkpoint): the setting (and the segments ``auto``
    chose), torch's variant, the segments by name, the layers recomputed and those the reentrant variant leaves
    untrained."""
    names = topology.names
    setting, chosen = settings
    return {"setting": setting, "chosen": chosen, "impl": options.checkpoint_impl,
            "segments": [segment.label for segment in options.checkpoint], "spans": options.checkpoint,
            "recomputed": {names[i] for i, flag in enumerate(changed["recomputed"]) if flag},
            "untrained": {names[i] for i in changed["untrained"]}}


def check_grad_scaler(precision: str, grad_scaler: bool) -> None:
    """fp16-mixed without a gradient scaler is refused: its small gradients underflow to zero in float16 (bf16 has
    float32's range and needs none)."""
    if not isinstance(grad_scaler, bool):
        raise SpecError(f"grad_scaler must be True or False, got {grad_scaler!r}")
    if precision == "fp16-mixed" and not grad_scaler:
        raise SpecError("fp16 without a scaler underflows: fp16-mixed trains with a gradient scaler "
                        "(torch.amp.GradScaler)", hint="leave out --no-grad-scaler, or use --precision bf16-mixed")


def resolve_precision(precision: str | None, amp: bool, dtype: str) -> tuple[str, str]:
    """(precision, dtype): ``amp`` is fp16-mixed; pure bf16 and fp16 compute in that dtype (the default float32 then
    becomes theirs); mixed precision keeps float32 master weights, so its dtype is float32. Contradictions refused."""
    if amp and precision not in (None, "fp16-mixed"):
        raise SpecError(f"--amp is fp16-mixed, not {precision}", hint="give one of --amp and --precision")
    if precision is None:  # the analysis' dtype says it: a 16-bit one trains purely in it
        precision = "fp16-mixed" if amp else {pure: name for name, pure in PURE_DTYPES.items()}.get(dtype, "float32")
    if precision not in PRECISIONS:
        raise unknown_name("precision", precision, PRECISIONS)
    pure = PURE_DTYPES.get(precision)
    if pure is not None:
        if dtype not in ("float32", pure):
            raise SpecError(f"precision {precision} computes in {pure}, not dtype {dtype}",
                            hint=f"leave the dtype out, or give --dtype {pure}")
        return precision, pure
    if precision != "float32" and dtype != "float32":
        raise SpecError(f"precision {precision} keeps float32 master weights, not dtype {dtype}",
                        hint="leave the dtype out (float32)")
    return precision, dtype
