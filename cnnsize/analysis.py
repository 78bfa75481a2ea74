"""Walk a Graph with the layer kinds and collect every figure per layer and in total.

The result is plain data (rows and totals); renderers turn it into tables,
markdown, CSV or JSON. Nothing here imports torch, pandas or sympy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from .errors import CnnsizeError, SpecError, unknown_name
from .graph import INPUT, Graph
from .layers.base import RF, Counts, Ctx
from .numeric import Dim, is_int, is_symbolic, prod, tidy

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "float64": 8}
SCHEMA_VERSION = 1
COUNT_FIELDS = ("weights", "biases", "params", "trainable_params", "buffers", "activations", "connections",
                "macs", "flops")


@dataclass(slots=True)
class LayerResult:
    """Every figure of one layer. Activations, MACs and FLOPs are for the whole batch."""

    name: str
    type: str
    inputs: list[str]
    output_shape: tuple
    weights: Dim = 0
    biases: Dim = 0
    params: Dim = 0
    trainable_params: Dim = 0
    buffers: Dim = 0
    activations: Dim = 0
    connections: Dim = 0
    macs: Dim = 0
    flops: Dim = 0
    receptive_field: RF | None = None
    param_bytes: Dim = 0
    activation_bytes: Dim = 0
    kind: Any = field(default=None, repr=False, compare=False)
    weight_layer: bool = False
    materialized: bool = True
    location: Any = None  # the spec Location (file:line:col)

    @property
    def summary(self) -> str:
        """The layer's settings that differ from their defaults."""
        return self.kind.summary() if self.kind is not None else ""

    def to_dict(self) -> dict:
        out = {"name": self.name, "type": self.type, "inputs": list(self.inputs),
               "output_shape": [_json(v) for v in self.output_shape]}
        for key in COUNT_FIELDS:
            out[key] = _json(getattr(self, key))
        out["receptive_field"] = _rf_json(self.receptive_field)
        return out


@dataclass
class Analysis:
    """The sized network: rows (the input first, then every layer) and totals."""

    name: str
    input_shape: tuple
    batch: int
    dtype: str
    layers: list[LayerResult]
    totals: dict[str, Any]
    graph: Graph
    notes: list[str] = field(default_factory=list)
    conditions: list = field(default_factory=list)
    fit_conditions: Any = None
    max_batch: dict | None = None  # filled by `report --max-batch`
    fit: str = "exact"  # the fit rule the shapes were computed with

    @property
    def symbolic(self) -> bool:
        """Whether any size is a formula (the input was given with symbols such as 3xHxW)."""
        return any(is_symbolic(v) for v in self.input_shape)

    def condition_lines(self) -> list[str]:
        """When every layer fits exactly, in words: ``H ≡ 3 (mod 32) and H ≥ 67 (H = 67, 99, 131, …)``."""
        return self.fit_conditions.lines() if self.fit_conditions is not None else []

    def to_dict(self) -> dict:
        """The JSON document of ``cnnsize report --format json`` (schema_version 1)."""
        totals = {k: _json(v) for k, v in self.totals.items() if k not in ("memory", "receptive_field")}
        totals["memory"] = {k: _json(v) for k, v in self.totals["memory"].items()}
        totals["receptive_field"] = _rf_json(self.totals["receptive_field"])
        out = {"schema_version": SCHEMA_VERSION, "name": self.name,
               "input_shape": [_json(v) for v in self.input_shape], "batch": self.batch, "dtype": self.dtype,
               "layers": [row.to_dict() for row in self.layers], "totals": totals}
        if self.symbolic:
            out["fits_exactly_when"] = self.condition_lines()
        if self.max_batch is not None:
            out["max_batch"] = dict(self.max_batch)
        return out

    def to_records(self) -> list[dict]:
        """Per-layer figures as flat plain dicts (one per row, the input first), ready for plotting.

        Besides the counts: ``output_shape`` ('64x112x112'), ``param_bytes``, ``activation_bytes``, ``depth``
        (weight layers so far) and the receptive field's ``rf_size``, ``rf_stride``, ``rf_start`` (lists per axis).
        """
        out, depth = [], 0
        for layer in self.layers:
            row = layer.to_dict()
            depth += layer.weight_layer
            rf = row.pop("receptive_field")
            row["rf_size"] = rf["size"] if rf else None
            row["rf_stride"] = rf["stride"] if rf else None
            row["rf_start"] = rf["start"] if rf else None
            row["inputs"] = ",".join(row["inputs"])
            row["output_shape"] = "x".join(str(v) for v in row["output_shape"])
            row["param_bytes"] = _json(layer.param_bytes)
            row["activation_bytes"] = _json(layer.activation_bytes)
            row["depth"] = depth
            out.append(row)
        return out

    def to_frame(self):
        """Per-layer figures as a pandas DataFrame indexed by layer name (the columns of ``to_records``)."""
        import pandas as pd

        return pd.DataFrame(self.to_records()).set_index("name")

    def to_markdown(self) -> str:
        from .render.text import markdown

        return markdown(self)

    def to_json(self) -> str:
        from .render.text import to_json

        return to_json(self)

    def to_csv(self) -> str:
        from .render.text import csv_text

        return csv_text(self)

    def layer(self, name: str) -> LayerResult:
        for row in self.layers:
            if row.name == name:
                return row
        raise unknown_name("layer", name, [r.name for r in self.layers])

    def to_latex(self) -> str:
        from .render.text import latex

        return latex(self)

    def to_html(self) -> str:
        from .render.text import html

        return html(self)

    def _repr_markdown_(self) -> str:  # Jupyter
        return self.to_markdown()

    def _repr_html_(self) -> str:  # Jupyter prefers this over markdown: a table with the heaviest layers shaded
        return self.to_html()


def _json(value: Any) -> Any:
    if is_int(value) or value is None or isinstance(value, (bool, float, str)):
        return value
    if getattr(value, "is_Integer", False):
        return int(value)
    return str(value)


def _rf_json(rf: RF | None):
    if rf is None:
        return None
    return {k: [_json(v) for v in vals] for k, vals in rf.to_dict().items()}


def parse_dtype(dtype: str) -> str:
    if dtype not in DTYPE_BYTES:
        raise unknown_name("dtype", dtype, DTYPE_BYTES)
    return dtype


class Sized:
    """What a layer kind works out for one set of input shapes: the output shape and the counts.

    Computed once and shared by every layer with the same settings and inputs (the blocks of a ResNet
    stage, the repeats of a generated spec), which keeps the analysis linear and cheap per layer.
    ``figures`` and ``tail`` are a row's values in LayerResult's field order, at the analysis' batch and dtype.
    """

    __slots__ = ("kind", "ins", "out", "numel", "params", "figures", "frozen_figures", "tail", "field_step")

    def __init__(self, kind: Any, ins: list[tuple], out: tuple, counts: Counts, batch: Any, itemsize: int,
                 materializes: bool = True):
        self.kind, self.ins, self.out = kind, ins, out
        self.numel = prod(out)
        self.params = params = counts.weights + counts.biases
        activations = self.numel * batch if materializes else 0
        macs = counts.macs * batch
        head = (counts.weights, counts.biases, params)
        rest = (counts.buffers, activations, counts.connections, macs, 2 * macs)
        self.figures = (*head, params, *rest)  # weights ... flops, with the parameters trained
        self.frozen_figures = (*head, 0, *rest)
        self.tail = (params * itemsize, activations * itemsize, kind, getattr(kind, "weight_layer", False),
                     materializes)
        # how the layer changes the receptive field, when its kind can say once for these shapes (see field_step)
        self.field_step = kind.field_step(ins) if kind is not None else ()

    @classmethod
    def of(cls, kind: Any, ins: list[tuple], ctx: Ctx, symbolic: bool, batch: Any, itemsize: int) -> Sized:
        out = tuple(kind.output_shape(ins, ctx))
        if symbolic:
            out = tuple(tidy(v) for v in out)
        return cls(kind, ins, out, kind.counts(ins, out), batch, itemsize, kind.materializes)


def analyze_graph(graph: Graph, *, input_shape: tuple | None = None, batch: int = 1, dtype: str = "float32",
                  fit: str | None = None, optimizer: str = "adam", amp: bool = False, device: str = "cuda",
                  freeze_until: str | None = None) -> Analysis:
    """Size every layer of a graph. Raises CnnsizeError (with location and layer) on any problem.

    ``optimizer``, ``amp`` and ``device`` shape the training memory estimate; ``freeze_until`` marks
    that layer and every layer before it as not trainable (fine-tuning the rest).
    """
    from .memory import MemoryOptions

    if graph.reexpand is not None and ((input_shape is not None and tuple(input_shape) != graph.input_shape)
                                       or (fit is not None and fit != graph.fit)):
        graph = graph.reexpand(tuple(input_shape) if input_shape is not None else graph.input_shape, fit or graph.fit)
    dtype = parse_dtype(dtype)
    options = MemoryOptions(optimizer, amp, device).check()
    frozen = _frozen(graph, freeze_until)
    bad_batch = isinstance(batch, bool) or not (is_int(batch) or hasattr(batch, "free_symbols"))
    if bad_batch or (is_int(batch) and batch < 1):
        raise SpecError(f"batch must be a positive integer, got {batch!r}")
    if fit is not None and fit not in ("exact", "floor"):
        raise unknown_name("fit rule", fit, ("exact", "floor"))
    ctx = Ctx(fit=fit or graph.fit)
    shape_in = tuple(input_shape) if input_shape is not None else graph.input_shape
    symbolic = any(is_symbolic(v) for v in shape_in) or is_symbolic(batch)
    size = DTYPE_BYTES[dtype]
    topology = graph.topology  # by position: 0 is the input, then every layer in order
    sized_at = [Sized(None, [], shape_in, Counts(), batch, size)]
    outs = [shape_in]  # output shape by position
    rfs: list[RF | None] = [RF.identity(len(shape_in) - 1) if len(shape_in) > 1 else None]
    trainable = [False]
    rows = [LayerResult(name=INPUT, type="input", inputs=[], output_shape=shape_in,
                        activations=prod(shape_in) * batch, receptive_field=rfs[0], materialized=True,
                        location=graph.input_loc)]
    memo: dict = {}  # (kind, *input shapes) -> Sized; layer kinds with equal settings are one object
    for node, srcs in zip(graph.nodes, topology.srcs[1:]):
        kind = node.kind
        ins = list(map(outs.__getitem__, srcs))
        try:
            sized = memo.get((kind, *ins))
            if sized is None:
                sized = Sized.of(kind, ins, ctx, symbolic, batch, size)
                if not symbolic:  # symbolic layers also collect fit conditions: work each out
                    memo[(kind, *ins)] = sized
            step = sized.field_step
            if step is None:
                rf = kind.receptive(list(map(rfs.__getitem__, srcs)), ins, sized.out)
            elif not step:  # the field as it is
                rf = rfs[srcs[0]]
            else:
                rf = rfs[srcs[0]]
                rf = rf and rf.window(*step)
        except CnnsizeError as exc:
            raise exc.at(node.loc, node.name)
        sized_at.append(sized)
        outs.append(sized.out)
        rfs.append(rf)
        trained = node.trainable and node.name not in frozen
        trainable.append(trained)
        rows.append(LayerResult(node.name, kind.kind, list(node.inputs), sized.out,
                                *(sized.figures if trained else sized.frozen_figures), rf, *sized.tail, node.loc))
    rows[0].activation_bytes = rows[0].activations * size
    if symbolic:
        rows = [_tidy_row(r) for r in rows]
    totals: dict[str, Any] = {key: sum(map(attrgetter(key), rows), 0) for key in COUNT_FIELDS}
    totals["weight_layers"] = sum(1 for r in rows if r.weight_layer)
    totals["memory"] = {"params_bytes": totals["params"] * size, "buffers_bytes": totals["buffers"] * size,
                        "activations_bytes": totals["activations"] * size}
    totals["receptive_field"] = next((r.receptive_field for r in reversed(rows) if r.receptive_field), None)
    weights = sum((r.weights for r in rows if r.weight_layer), 0)
    resident = totals["params"] + totals["buffers"]
    totals["memory"].update(_memory(topology, sized_at, trainable, resident, weights, batch, size, options))
    fit_conditions = None
    if symbolic:
        from .symbolic import solve

        totals = {k: tidy(v) if k not in ("memory", "receptive_field") else v for k, v in totals.items()}
        totals["memory"] = {k: tidy(v) if is_symbolic(v) else v for k, v in totals["memory"].items()}
        fit_conditions = solve(ctx.conditions, ctx.bounds, [v for v in shape_in if is_symbolic(v)])
    return Analysis(name=graph.name, input_shape=shape_in, batch=batch, dtype=dtype, layers=rows, totals=totals,
                    graph=graph, notes=list(graph.notes), conditions=list(ctx.conditions),
                    fit_conditions=fit_conditions, fit=ctx.fit)


def _tidy_row(row: LayerResult) -> LayerResult:
    """Every formula of a row in its most readable exact form."""
    for key in (*COUNT_FIELDS, "param_bytes", "activation_bytes"):
        setattr(row, key, tidy(getattr(row, key)))
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


def _memory(topology, sized: list[Sized], trainable: list[bool], resident: Any, weights: Any, batch: Any, itemsize: int,
            options) -> dict:
    """Inference peak and training budget, in bytes (see cnnsize.memory).

    ``resident``: parameters and buffers (elements), always in memory; ``weights``: those of the weight
    layers, of which mixed precision keeps a half-precision copy.
    """
    from .memory import inference_peak, training_figures

    peak, where = inference_peak(topology, sized, batch, itemsize)

    def training(chosen: list[bool]) -> dict:
        figures = training_figures(topology, sized, chosen, batch, itemsize, options)
        master = (4 if options.amp else itemsize) * resident
        copies = 2 * weights if options.amp else 0
        step_peak = figures["training_step_peak_bytes"]  # None with symbolic sizes (see memory.training_figures)
        figures["training_bytes"] = (None if step_peak is None
                                     else master + copies + figures["optimizer_bytes"] + step_peak)
        return figures

    out: dict = {"inference_peak_bytes": None if peak is None else resident * itemsize + peak,
                 "inference_peak_activations_bytes": peak, "inference_peak_layer": where}
    out.update(training(trainable))
    if not all(trainable[1:]):
        out["training_bytes_all_trainable"] = training([False] + [True] * (len(trainable) - 1))["training_bytes"]
    out["optimizer"] = options.optimizer
    out["amp"] = options.amp
    return out
