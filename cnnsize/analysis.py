"""Walk a Graph with the layer kinds and collect every figure per layer and in total.

The result is plain data (rows and totals); renderers turn it into tables,
markdown, CSV or JSON. Nothing here imports torch, pandas or sympy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from typing import Any, ClassVar, cast

from .errors import CnnsizeError, SpecError, unknown_name
from .graph import INPUT, Graph
from .layers.base import RF, Counts, Ctx, LayerKind
from .numeric import Dim, is_int, is_symbolic, prod, tidy

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "float64": 8}
# torch's and numpy's other names (torch.half, torch.float, 'fp16'): suggested, not taken, so a spec says one thing
DTYPE_AKA = {"half": "float16", "fp16": "float16", "f16": "float16", "float": "float32", "fp32": "float32",
             "f32": "float32", "single": "float32", "double": "float64", "fp64": "float64", "f64": "float64",
             "bf16": "bfloat16", "qint8": "int8", "uint8": "int8"}
SCHEMA_VERSION = 1
COUNT_FIELDS = ("weights", "biases", "params", "trainable_params", "buffers", "activations", "connections",
                "macs", "flops")
# figures a report holds only when asked for (--count, --traffic, --device-profile): (key, column heading)
EXTRA_FIELDS = (("counted", "Counted"), ("bytes_read", "Bytes read"), ("bytes_written", "Bytes written"),
                ("arithmetic_intensity", "FLOP/byte"), ("predicted_seconds", "Predicted s"), ("bound", "Bound"))


class Record(Mapping):
    """A results dataclass that also reads as the dict it stands for: ``t["params"]``, ``t.get(...)``, ``dict(t)``.

    Optional fields (``_optional``) left at None are not keys, so the dict and the JSON stay as they were.
    Figures added later by an optional pass (``t["counted"] = ...``) are kept after the fields, in the order
    they were added, and read back as keys or attributes.
    """

    _optional: ClassVar[tuple[str, ...]] = ()

    def _added(self) -> dict:
        return self.__dict__.setdefault("_added_figures", {})

    def _keys(self) -> list[str]:
        own = [f.name for f in fields(cast(Any, self))
               if f.name not in self._optional or getattr(self, f.name) is not None]
        return own + [k for k in self._added() if k not in own]

    def __getitem__(self, key: str) -> Any:
        if isinstance(key, str) and key in self._keys():
            return getattr(self, key)
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key in {f.name for f in fields(cast(Any, self))}:
            setattr(self, key, value)
        else:
            self._added()[key] = value

    def replaced(self, **changes: Any):
        """dataclasses.replace that keeps the added figures too."""
        out = replace(cast(Any, self), **changes)
        out.__dict__["_added_figures"] = dict(self._added())
        return out

    def __getattr__(self, name: str) -> Any:  # only for names that are not fields: the added figures
        added = self.__dict__.get("_added_figures", {})
        if name in added:
            return added[name]
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def __iter__(self):
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def to_dict(self) -> dict:
        return dict(self.items())


@dataclass(eq=True)
class MemoryBudget(Record):
    """What the network needs in memory, in bytes, at the analysis' batch and dtype (see cnnsize.memory)."""

    params_bytes: Any
    buffers_bytes: Any
    activations_bytes: Any  # every activation of a forward pass, input included
    inference_peak_bytes: Any  # parameters and buffers + the live activations at the worst moment (None: unknown)
    inference_peak_activations_bytes: Any
    inference_peak_layer: str | None
    saved_for_backward_bytes: Any
    activation_gradients_bytes: Any
    training_activations_peak_bytes: Any
    gradients_bytes: Any
    optimizer_bytes: Any
    optimizer_temporaries_bytes: Any
    training_step_peak_bytes: Any
    training_peak_phase: str
    training_bytes: Any  # the whole budget of a training step
    training_bytes_all_trainable: Any = None  # with frozen layers: the budget training everything
    optimizer: str = "adam"
    amp: bool = False

    _optional: ClassVar[tuple[str, ...]] = ("training_bytes_all_trainable",)


@dataclass(eq=True)
class Totals(Record):
    """The network's totals: the per-layer counts summed, the depth, the memory budget and the receptive field."""

    weights: Any
    biases: Any
    params: Any
    trainable_params: Any
    buffers: Any
    activations: Any
    connections: Any
    macs: Any
    flops: Any
    weight_layers: int
    memory: MemoryBudget
    receptive_field: RF | None


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
    counted: Any = None  # the figure of a counting convention (report --count), in the tool's unit
    bytes_read: Any = None  # memory traffic (report --traffic, cnnsize.traffic)
    bytes_written: Any = None
    arithmetic_intensity: Any = None
    predicted_seconds: Any = None  # roofline latency (report --device-profile, cnnsize.latency)
    bound: str | None = None
    folded: int = 1  # how many layers this row stands for (more than one in a collapsed analysis)
    function: str | None = None  # the spec's ``function``: a function or method in the source network, no module
    axes: tuple[str, ...] | None = field(default=None, repr=False, compare=False)  # Analysis.label_axes

    def axes_text(self, input_axes: tuple[str, ...] | None = None) -> str:
        """The output shape, with its axes where they are not ``input_axes`` (56×56×96 (H×W×C), 196×768 (T×D)).
        A 1-D output reads alone; axes no kind could name read 'reshaped'."""
        from .render.text import shape_text

        text = shape_text(self.output_shape)
        if len(self.output_shape) < 2 or self.axes == input_axes:
            return text
        return f"{text} ({'×'.join(self.axes) if self.axes else 'reshaped'})"

    @property
    def storage(self) -> str:
        """What the row's output is at inference (cnnsize.layers.base: new tensor, view, in place), from its kind."""
        from .layers.base import NEW

        return self.kind.storage if self.kind is not None else NEW

    @property
    def summary(self) -> str:
        """The layer's settings that differ from their defaults (for a folded row: how many layers it holds)."""
        if self.folded > 1:
            return f"{self.folded} layers"
        return self.kind.summary() if self.kind is not None else ""

    def __repr__(self) -> str:
        return (f"LayerResult(name={self.name!r}, type={self.type!r}, output={_shape(self.output_shape)}, "
                f"params={_count(self.params)}, macs={_count(self.macs)})")

    def to_dict(self) -> dict:
        out = {"name": self.name, "type": self.type, "inputs": list(self.inputs),
               "output_shape": [_json(v) for v in self.output_shape]}
        for key in COUNT_FIELDS:
            out[key] = _json(getattr(self, key))
        out["receptive_field"] = _rf_json(self.receptive_field)
        for key, _ in EXTRA_FIELDS:
            value = getattr(self, key)
            if value is not None:
                out[key] = _json(value)
        return out


@dataclass
class Analysis:
    """The sized network: rows (the input first, then every layer) and totals."""

    name: str
    input_shape: tuple
    batch: int
    dtype: str
    layers: list[LayerResult]
    totals: Totals
    graph: Graph
    notes: list[str] = field(default_factory=list)
    conditions: list = field(default_factory=list)
    fit_conditions: Any = None
    max_batch: dict | None = None  # filled by `report --max-batch`
    fit: str = "exact"  # the fit rule the shapes were computed with
    count: str | None = None  # the counting convention of ``counted`` (report --count), None for cnnsize's own
    count_mode: str = "eval"  # the mode of the network ``counted`` is for: eval, or train (report --train)
    traffic: bool = False  # rows and totals carry bytes_read, bytes_written, arithmetic_intensity
    device_profile: str | None = None  # rows and totals carry predicted_seconds and bound
    axes_labelled: bool = False  # every row's ``axes`` set (label_axes)

    def extra_fields(self) -> list[tuple[str, str]]:
        """(key, heading) of the figures this report was asked for beyond the default ones, in column order."""
        out = []
        if self.count:
            out.append(("counted", f"Counted ({self.count})"))
        if self.traffic:
            out += [f for f in EXTRA_FIELDS if f[0] in ("bytes_read", "bytes_written", "arithmetic_intensity")]
        if self.device_profile:
            out += [f for f in EXTRA_FIELDS if f[0] in ("predicted_seconds", "bound")]
        return out

    def __repr__(self) -> str:
        return (f"Analysis(name={self.name!r}, input={_shape(self.input_shape)}, batch={self.batch}, "
                f"dtype={self.dtype!r}, layers={len(self.layers)}, params={_count(self.totals['params'])}, "
                f"macs={_count(self.totals['macs'])})")

    def __str__(self) -> str:
        """The report table, fitted to the terminal when printing to one (``print(cnnsize.analyze("vgg16"))``)."""
        from .render import render
        from .render.table import terminal_width

        return render(self, "table", width=terminal_width()).rstrip("\n")

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
        counting = {"count": self.count, "count_mode": self.count_mode} if self.count else {}
        out = {"schema_version": SCHEMA_VERSION, **counting, "name": self.name,
               "input_shape": [_json(v) for v in self.input_shape], "batch": self.batch, "dtype": self.dtype,
               "layers": [row.to_dict() for row in self.layers], "totals": totals}
        if self.symbolic:
            out["fits_exactly_when"] = self.condition_lines()
        if self.max_batch is not None:
            out["max_batch"] = dict(self.max_batch)
        if self.device_profile:
            out["device_profile"] = self.device_profile
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
            for key, _ in self.extra_fields():
                row.setdefault(key, None)
            out.append(row)
        return out

    def to_frame(self):
        """Per-layer figures as a pandas DataFrame indexed by layer name (the columns of ``to_records``)."""
        import pandas as pd

        return pd.DataFrame(self.to_records()).set_index("name")

    def conventions(self, mode: str | None = None):
        """Each counting convention's total and its difference from cnnsize's MACs by cause, as a pandas
        DataFrame indexed by convention (``cnnsize conventions SPEC``), for the network in ``mode`` (eval or
        train; default: the analysis' count_mode)."""
        import pandas as pd

        from .conventions import records

        rows = [{"count": r["count"], "unit": r["unit"], "total": r["total"], "difference": r["difference"],
                 **r["differences"]} for r in records(self, train=(mode or self.count_mode) == "train")]
        return pd.DataFrame(rows).set_index("count").fillna(0)

    def to_markdown(self) -> str:
        from .render.text import markdown

        return markdown(self)

    def to_json(self) -> str:
        from .render.text import to_json

        return to_json(self)

    def to_csv(self) -> str:
        from .render.text import csv_text

        return csv_text(self)

    def collapse(self, depth: int) -> Analysis:
        """The same analysis with the layers nested deeper than ``depth`` folded into one row per block.

        Nesting is read from the dotted names blocks and repeats give (``layer3.4.conv2``), as torchinfo reads
        module nesting: at depth 1 resnet152 shows its four stages (``layer1`` ... ``layer4``) beside its
        top-level layers, at depth 2 its 50 blocks (``layer3.4``). A folded row adds up its layers' counts and
        shows the last one's output and receptive field; the totals are the same.
        """
        from .errors import SpecError

        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise SpecError(f"depth must be a positive integer, got {depth!r}", hint="e.g. --depth 1")
        groups: dict[str, list[LayerResult]] = {}
        for row in self.layers:
            parts = row.name.split(".")
            groups.setdefault(".".join(parts[:depth]) if len(parts) > depth else row.name, []).append(row)
        self.label_axes()  # while every layer is there: a folded row shows its last layer's
        rows = [members[0] if len(members) == 1 and members[0].name == key else _fold(key, members)
                for key, members in groups.items()]
        return replace(self, layers=rows)

    def label_axes(self) -> tuple[str, ...]:
        """Name every row's output axes, each kind saying its own from its first input's; the input's axes.

        Done on demand (the report's output column), not in the analysis' hot loop."""
        from .layout import axes_label

        first = tuple(axes_label(self.input_shape).split("×"))
        if self.axes_labelled:
            return first
        rows = {row.name: row for row in self.layers}
        for row in self.layers:
            if row.type == "input":
                row.axes = first
            elif row.kind is not None:
                ins = [rows[name] for name in row.inputs if name in rows]
                row.axes = row.kind.output_axes(ins[0].axes if ins else None, [r.output_shape for r in ins],
                                                row.output_shape)
        self.axes_labelled = True
        return first

    def axes_notes(self) -> list[str]:
        """The notes of kinds that see their input's axes (a linear on a C×H×W image acts on W)."""
        from .layers.base import LayerKind

        if not any(r.kind is not None and type(r.kind).axes_note is not LayerKind.axes_note for r in self.layers):
            return []
        self.label_axes()
        rows = {row.name: row for row in self.layers}
        notes = []
        for row in self.layers:
            if row.kind is None or type(row.kind).axes_note is LayerKind.axes_note or not row.inputs:
                continue
            src = rows[row.inputs[0]]
            note = row.kind.axes_note(src.axes, [src.output_shape], row.output_shape)
            if note:
                notes.append(f"layer '{row.name}': {note}.")
        return notes

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


def _shape(shape: tuple) -> str:
    return "×".join(str(v) for v in shape)


def _count(value: Any) -> str:
    return f"{value:,}" if is_int(value) else str(value)


def _fold(name: str, members: list[LayerResult]) -> LayerResult:
    """One row standing for a block's layers: counts added up, the last layer's output and receptive field."""
    last = members[-1]
    sums = {key: sum((getattr(m, key) for m in members), 0)
            for key in (*COUNT_FIELDS, "param_bytes", "activation_bytes")}
    inside = {m.name for m in members}
    inputs = list(dict.fromkeys(src for m in members for src in m.inputs if src not in inside))
    row = LayerResult(name=name, type="block", inputs=inputs, output_shape=last.output_shape,
                      receptive_field=last.receptive_field, weight_layer=any(m.weight_layer for m in members),
                      location=members[0].location, folded=sum(m.folded for m in members), axes=last.axes, **sums)
    for key in ("counted", "bytes_read", "bytes_written", "predicted_seconds"):  # figures of optional passes
        values = [getattr(m, key) for m in members]
        if any(v is not None for v in values):
            setattr(row, key, sum((v for v in values if v is not None), 0))
    if row.bytes_read is not None:
        moved = row.bytes_read + (row.bytes_written or 0)
        row.arithmetic_intensity = row.flops / moved if moved and is_int(row.flops) else None
    if row.predicted_seconds is not None:  # the bound that takes the larger share of the block's time
        share: dict[str, float] = {}
        for m in members:
            if m.bound is not None and m.predicted_seconds is not None:
                share[m.bound] = share.get(m.bound, 0.0) + m.predicted_seconds
        row.bound = max(share, key=share.__getitem__) if share else None
    return row


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
        raise unknown_name("dtype", dtype, DTYPE_BYTES, aka=DTYPE_AKA)
    return dtype


class Sized:
    """What a layer kind works out for one set of input shapes: the output shape and the counts.

    Computed once and shared by every layer with the same settings and inputs (the blocks of a ResNet
    stage, the repeats of a generated spec), which keeps the analysis linear and cheap per layer.
    ``figures`` and ``tail`` are a row's values in LayerResult's field order, at the analysis' batch and dtype.
    """

    __slots__ = ("kind", "ins", "out", "numel", "params", "figures", "frozen_figures", "tail", "field_step", "frozen",
                 "owned")

    def __init__(self, kind: Any, ins: list[tuple], out: tuple, counts: Counts, batch: Any, itemsize: int,
                 materializes: bool = True):
        self.kind, self.ins, self.out = kind, ins, out
        self.numel = prod(out)
        self.params = params = counts.weights + counts.biases
        activations = (self.numel if materializes else 0) * batch
        macs = counts.macs * batch
        if kind is not None and type(kind).scratch is not LayerKind.scratch:  # a composite's intermediates
            activations += kind.scratch(ins, out, batch)
        if kind is not None and type(kind).call_macs is not LayerKind.call_macs:
            macs += kind.call_macs(ins, out)
        head = (counts.weights, counts.biases, params)
        rest = (counts.buffers, activations, counts.connections, macs, 2 * macs)
        self.frozen = counts.frozen  # of the weights, those that never train (an opaque module's frozen ones)
        self.owned = (counts.weights, counts.biases)
        self.figures = (*head, params - counts.frozen, *rest)  # weights ... flops, with the parameters trained
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


def _own_parameters(node: Any, sized: Sized, by_name: dict, trained: Any, figures: tuple, tail: tuple,
                    itemsize: int) -> tuple[tuple, tuple, tuple, tuple]:
    """A row's figures and tail with only the parameters the layer holds itself (``shares``: none, or the tensors
    ``shares: {weight: a}`` leaves it) and trains (``trainable: [bias]``, an opaque layer's frozen ones), and the
    (weight, bias) elements it holds (less those frozen in the source) and those it trains: each tensor counts
    once, at the layer that holds it."""
    weights, biases = sized.owned
    if node.shares is not None:  # the parameters are the shared layer's: counted there, once
        _check_shared(node, sized, by_name[node.shares])
        return (0, 0, 0, 0, 0, *figures[5:]), (0, *tail[1:]), (0, 0), (0, 0)
    for tensor, owner in node.ties:
        theirs = by_name[owner].owned[0 if tensor == "weight" else 1]
        _check_tie(node, tensor, weights if tensor == "weight" else biases, owner, theirs)
        weights, biases = (0, biases) if tensor == "weight" else (weights, 0)
    parts = node.trainable if isinstance(node.trainable, tuple) else ("weight", "bias")
    train_w = weights - sized.frozen if trained and "weight" in parts else 0
    train_b = biases if trained and "bias" in parts else 0
    params = weights + biases
    return (weights, biases, params, train_w + train_b, *figures[4:]), (params * itemsize, *tail[1:]), \
        (weights - sized.frozen, biases), (train_w, train_b)


def analyze_graph(graph: Graph, *, input_shape: tuple | None = None, batch: int = 1, dtype: str = "float32",
                  fit: str | None = None, optimizer: str = "adam", amp: bool = False, device: str = "cuda",
                  freeze_until: str | None = None, count: str | None = None,
                  traffic: bool = False, device_profile: Any = None, layout: str | None = "chw",
                  count_mode: str = "eval") -> Analysis:
    """Size every layer of a graph. Raises CnnsizeError (with location and layer) on any problem.

    ``optimizer``, ``amp`` and ``device`` shape the training memory estimate; ``freeze_until`` marks
    that layer and every layer before it as not trainable (fine-tuning the rest). ``layout``: ``chw`` takes
    the input as written, ``hwc`` converts a channels-last one, None (what users' entry points pass) refuses
    one that looks channels-last (32×32×3) with the shape to use.
    """
    from .memory import MemoryOptions

    shape_in = _input_shape(graph, input_shape, layout)  # channels first, of the spec's rank
    if graph.reexpand is not None and (shape_in != tuple(graph.input_shape) or (fit is not None and fit != graph.fit)):
        graph = graph.reexpand(shape_in, fit or graph.fit)
    dtype = parse_dtype(dtype)
    options = MemoryOptions(optimizer, amp, device).check()
    frozen = _frozen(graph, freeze_until)
    bad_batch = isinstance(batch, bool) or not (is_int(batch) or hasattr(batch, "free_symbols"))
    if bad_batch or (is_int(batch) and batch < 1):
        raise SpecError(f"batch must be a positive integer, got {batch!r}")
    if fit is not None and fit not in ("exact", "floor"):
        raise unknown_name("fit rule", fit, ("exact", "floor"))
    ctx = Ctx(fit=fit or graph.fit)
    symbolic = any(is_symbolic(v) for v in shape_in) or is_symbolic(batch)
    size = DTYPE_BYTES[dtype]
    topology = graph.topology  # by position: 0 is the input, then every layer in order
    sized_at = [Sized(None, [], shape_in, Counts(), batch, size)]
    outs = [shape_in]  # output shape by position
    rfs: list[RF | None] = [RF.identity(len(shape_in) - 1) if len(shape_in) > 1 else None]
    trainable: list[Any] = [False]  # per position: True, False, or the names of the parameters that train
    rows = [LayerResult(name=INPUT, type="input", inputs=[], output_shape=shape_in,
                        activations=prod(shape_in) * batch, receptive_field=rfs[0], materialized=True,
                        location=graph.input_loc)]
    # per position, the (weight, bias) elements of the parameters it holds itself (not another layer's: shares),
    # all of them and those it trains: what gradients and optimizer state are made for
    owned: list[tuple] = [(0, 0)]
    trained_tensors: list[tuple] = [(0, 0)]
    memo: dict = {}  # (kind, *input shapes) -> Sized; layer kinds with equal settings are one object
    sized_by_name: dict[str, Sized] = {}
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
        trainable.append(trained and kind.learns)  # no gradients nor optimizer state where backward never reaches
        figures, tail = (sized.figures if trained else sized.frozen_figures), sized.tail
        if node.shares is not None or node.ties or sized.frozen or isinstance(node.trainable, tuple):
            figures, tail, held, grads = _own_parameters(node, sized, sized_by_name, trained, figures, tail, size)
        else:
            held = sized.owned
            grads = held if trained else (0, 0)
        owned.append(held)
        trained_tensors.append(grads if trained and kind.learns else (0, 0))
        sized_by_name[node.name] = sized
        rows.append(LayerResult(node.name, kind.kind, list(node.inputs), sized.out,  # type: ignore[call-arg,misc]
                                *figures, rf, *tail, node.loc, function=node.function))
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
    totals["memory"].update(_memory(topology, sized_at, (trainable, trained_tensors, owned), resident, weights,
                                    batch, size, options))
    fit_conditions = None
    if symbolic:
        from .symbolic import solve

        totals = {k: tidy(v) if k not in ("memory", "receptive_field") else v for k, v in totals.items()}
        totals["memory"] = {k: tidy(v) if is_symbolic(v) else v for k, v in totals["memory"].items()}
        fit_conditions = solve(ctx.conditions, ctx.bounds, [v for v in shape_in if is_symbolic(v)])
    typed = Totals(**{**totals, "memory": MemoryBudget(**totals["memory"])})
    analysis = Analysis(name=graph.name, input_shape=shape_in, batch=batch, dtype=dtype, layers=rows, totals=typed,
                        graph=graph, notes=list(graph.notes), conditions=list(ctx.conditions),
                        fit_conditions=fit_conditions, fit=ctx.fit)
    analysis.notes += analysis.axes_notes()
    if count_mode not in ("eval", "train"):
        raise unknown_name("count mode", count_mode, ("eval", "train"))
    if count is not None:
        from .conventions import apply

        apply(analysis, count, train=count_mode == "train")
    if traffic or device_profile is not None:
        from .traffic import apply as apply_traffic

        apply_traffic(analysis)
    if device_profile is not None:
        from .latency import apply as apply_latency

        apply_latency(analysis, device_profile)
    return analysis


def _input_shape(graph: Graph, given: tuple | None, layout: str | None) -> tuple:
    """The input the analysis runs at: the one given (of the spec's rank) or the spec's, channels first."""
    from .layout import apply_layout, axes_label, channels_first, looks_channels_last, shape_words

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


def _memory(topology, sized: list[Sized], parameters: tuple, resident: Any, weights: Any, batch: Any, itemsize: int,
            options) -> dict:
    """Inference peak and training budget, in bytes (see cnnsize.memory).

    ``parameters``: per position, whether its parameters train, the (weight, bias) elements it trains and those it
    holds (see analyze_graph); ``resident``: parameters and buffers (elements), always in memory; ``weights``:
    those of the weight layers, of which mixed precision keeps a half-precision copy.
    """
    from .memory import inference_peak, training_figures

    trainable, trained, owned = parameters
    peak, where = inference_peak(topology, sized, batch, itemsize)

    def training(chosen: list[bool], grads: list[tuple]) -> dict:
        figures = training_figures(topology, sized, chosen, batch, itemsize, options, grads)
        master = (4 if options.amp else itemsize) * resident
        copies = 2 * weights if options.amp else 0
        step_peak = figures["training_step_peak_bytes"]  # None with symbolic sizes (see memory.training_figures)
        figures["training_bytes"] = (None if step_peak is None
                                     else master + copies + figures["optimizer_bytes"] + step_peak)
        return figures

    out: dict = {"inference_peak_bytes": None if peak is None else resident * itemsize + peak,
                 "inference_peak_activations_bytes": peak, "inference_peak_layer": where}
    out.update(training(trainable, trained))
    if not all(trainable[1:]):
        everything = [False] + [s.kind.learns for s in sized[1:]]
        if everything != [bool(t) for t in trainable]:
            grads = [held if learns else (0, 0) for held, learns in zip(owned, everything)]
            out["training_bytes_all_trainable"] = training(everything, grads)["training_bytes"]
    out["optimizer"] = options.optimizer
    out["amp"] = options.amp
    return out
