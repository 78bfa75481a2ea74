"""The sized network as plain data: a row per layer (LayerResult), the totals, the memory budget, the Analysis.

Knows no engine, pass or renderer: the walk (cnnsize.engine.walk) fills it in, passes add columns, renderers read it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple

from ..core.errors import CnnsizeError, SpecError, unknown_name
from ..core.graph import Graph
from ..core.layout import axes_label
from ..core.numeric import Dim, is_int, is_symbolic
from ..core.plain import Plain, replace
from ..core.text import extra_text, shape_text
from ..layers.base import NEW, RF, LayerKind

SCHEMA_VERSION = 1
# What shows an analysis in a format (table, markdown, csv, json, latex, html; and views such as the conventions'
# frame): filled in by the modules that draw them when they are imported (cnnsize.render, cnnsize.passes.conventions),
# so that this plain result never imports a renderer. The pipelines (cnnsize.api) import them.
VIEWS: dict[str, Callable[..., Any]] = {}


def view(name: str) -> Callable[..., Any]:
    """The registered view ``name`` (see VIEWS)."""
    found = VIEWS.get(name)
    if found is None:
        raise CnnsizeError(f"no view '{name}' is loaded to show an analysis",
                           hint="import cnnsize.api (cnnsize.analyze does) or cnnsize.render first")
    return found


def fold_sum(key: str, members: list[LayerResult], row: LayerResult) -> Any:
    """A block's figure as its layers' sum (None where no layer has one)."""
    values = [m.get(key) for m in members]
    return sum((v for v in values if v is not None), 0) if any(v is not None for v in values) else None


class Column(Plain):
    """A figure a pass adds to every row and to the totals (report --count, --traffic, --device-profile).

    Renderers draw it and ``Analysis.collapse`` folds it from this declaration alone: ``cell`` writes one value,
    ``fold(key, layers, row)`` gives a block's value from its layers' (with the folded row so far at hand, for
    figures made of others). So no renderer and no fold names a pass' figure.
    """

    __slots__ = FIELDS = ("key", "heading", "cell", "fold")
    __hash__ = Plain.hashed

    def __init__(self, key: str, heading: str, cell: Callable[[Any], str] = extra_text,
                 fold: Callable[[str, list[LayerResult], LayerResult], Any] = fold_sum):
        self.key, self.heading, self.cell, self.fold = key, heading, cell, fold


class Record(Plain, Mapping):
    """A results record that also reads as the dict it stands for: ``t["params"]``, ``t.get(...)``, ``dict(t)``.

    Optional fields (``_optional``) left at None are not keys, so the dict and the JSON stay as they were.
    Figures added later by an optional pass (``t["counted"] = ...``) are kept after the fields, in the order
    they were added, and read back as keys or attributes.
    """

    _optional: ClassVar[tuple[str, ...]] = ()

    def _added(self) -> dict:
        return self.__dict__.setdefault("_added_figures", {})

    def _keys(self) -> list[str]:
        own = [name for name in self.FIELDS if name not in self._optional or getattr(self, name) is not None]
        return own + [k for k in self._added() if k not in own]

    def __getitem__(self, key: str) -> Any:
        if isinstance(key, str) and key in self._keys():
            return getattr(self, key)
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self.FIELDS:
            setattr(self, key, value)
        else:
            self._added()[key] = value

    def replaced(self, **changes: Any):
        """core.plain.replace that keeps the added figures too."""
        out = replace(self, **changes)
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


class MemoryBudget(Record):
    """What the network needs in memory, in bytes, at the analysis' batch and dtype (see cnnsize.engine.memory).

    ``activations_bytes``: every activation of a forward pass, input included; ``inference_peak_bytes``: parameters
    and buffers + the live activations at the worst moment (None: unknown); ``training_bytes``: the whole budget of
    a training step; ``training_bytes_all_trainable``: with frozen layers, the budget training everything.
    """

    FIELDS = ("params_bytes", "buffers_bytes", "activations_bytes", "inference_peak_bytes",
              "inference_peak_activations_bytes", "inference_peak_layer", "saved_for_backward_bytes",
              "activation_gradients_bytes", "training_activations_peak_bytes", "gradients_bytes", "optimizer_bytes",
              "optimizer_temporaries_bytes", "training_step_peak_bytes", "training_peak_phase", "training_bytes",
              "training_bytes_all_trainable", "optimizer", "amp", "precision")
    _optional: ClassVar[tuple[str, ...]] = ("training_bytes_all_trainable",)

    def __init__(self, params_bytes: Any, buffers_bytes: Any, activations_bytes: Any, inference_peak_bytes: Any,
                 inference_peak_activations_bytes: Any, inference_peak_layer: str | None, saved_for_backward_bytes: Any,
                 activation_gradients_bytes: Any, training_activations_peak_bytes: Any, gradients_bytes: Any,
                 optimizer_bytes: Any, optimizer_temporaries_bytes: Any, training_step_peak_bytes: Any,
                 training_peak_phase: str, training_bytes: Any, training_bytes_all_trainable: Any = None,
                 optimizer: str = "adam", amp: bool = False, precision: str = "float32"):
        self.params_bytes, self.buffers_bytes, self.activations_bytes = params_bytes, buffers_bytes, activations_bytes
        self.inference_peak_bytes, self.inference_peak_activations_bytes, self.inference_peak_layer = \
            inference_peak_bytes, inference_peak_activations_bytes, inference_peak_layer
        self.saved_for_backward_bytes, self.activation_gradients_bytes = \
            saved_for_backward_bytes, activation_gradients_bytes
        self.training_activations_peak_bytes, self.gradients_bytes = training_activations_peak_bytes, gradients_bytes
        self.optimizer_bytes, self.optimizer_temporaries_bytes = optimizer_bytes, optimizer_temporaries_bytes
        self.training_step_peak_bytes, self.training_peak_phase = training_step_peak_bytes, training_peak_phase
        self.training_bytes, self.training_bytes_all_trainable = training_bytes, training_bytes_all_trainable
        self.optimizer, self.amp, self.precision = optimizer, amp, precision


class Figures(NamedTuple):
    """A layer's counts (COUNT_FIELDS), which a row (LayerResult) reads as its attributes and the totals sum: what
    the walk works out once per distinct layer."""

    weights: Dim = 0
    biases: Dim = 0
    params: Dim = 0
    trainable_params: Dim = 0
    buffers: Dim = 0
    activations: Dim = 0
    connections: Dim = 0
    macs: Dim = 0
    flops: Dim = 0


COUNT_FIELDS = Figures._fields
_NONE = Figures()


class Totals(Record):
    """The network's totals: the per-layer counts summed (COUNT_FIELDS), the depth (weight layers), the memory budget
    and the receptive field."""

    FIELDS = (*COUNT_FIELDS, "weight_layers", "memory", "receptive_field")

    def __init__(self, weight_layers: int, memory: MemoryBudget, receptive_field: RF | None, **counts: Any):
        if counts.keys() != set(COUNT_FIELDS):
            raise TypeError(f"Totals takes the counts {', '.join(COUNT_FIELDS)}, got {', '.join(counts)}")
        self.__dict__.update(counts)
        self.weight_layers, self.memory, self.receptive_field = weight_layers, memory, receptive_field


_new = object.__new__


class LayerResult(Plain):
    """Every figure of one layer. Activations, MACs and FLOPs are for the whole batch.

    The counts (COUNT_FIELDS: ``row.params``, ``row.macs``, ...) are read from ``figures``, the Figures the walk
    worked out once for every layer alike; ``added`` holds the figures passes added (a Column's key -> value), read
    as attributes too (``row.counted``, ``row.bytes_read``). ``location`` is the spec's (file:line:col), ``folded``
    how many layers the row stands for (more than one in a collapsed analysis), ``function`` the spec's
    ``function`` (a function or method in the source network, no module), ``axes`` its output's (see
    Analysis.label_axes).
    """

    __slots__ = FIELDS = ("name", "type", "inputs", "output_shape", "figures", "receptive_field", "param_bytes",
                          "activation_bytes", "kind", "weight_layer", "materialized", "location", "folded", "function",
                          "axes", "added")
    UNCOMPARED = frozenset({"kind", "axes"})

    def __init__(self, name: str, type: str, inputs: list[str], output_shape: tuple, figures: Figures = _NONE,
                 receptive_field: RF | None = None, param_bytes: Dim = 0, activation_bytes: Dim = 0, kind: Any = None,
                 weight_layer: bool = False, materialized: bool = True, location: Any = None, folded: int = 1,
                 function: str | None = None, axes: tuple[str, ...] | None = None,
                 added: dict[str, Any] | None = None):
        self.name, self.type, self.inputs, self.output_shape, self.figures = name, type, inputs, output_shape, figures
        self.receptive_field, self.param_bytes, self.activation_bytes = receptive_field, param_bytes, activation_bytes
        self.kind, self.weight_layer, self.materialized, self.location = kind, weight_layer, materialized, location
        self.folded, self.function, self.axes, self.added = folded, function, axes, added

    def __getattr__(self, name: str) -> Any:  # only for names that are not fields: the added figures
        added = object.__getattribute__(self, "added")
        if added is not None and name in added:
            return added[name]
        raise AttributeError(f"'LayerResult' has no attribute {name!r}")

    def get(self, key: str, default: Any = None) -> Any:
        """A field or an added figure, ``default`` when the row has neither."""
        return getattr(self, key, default)

    def add(self, key: str, value: Any) -> None:
        """Set a figure a pass adds (its Column's key)."""
        if self.added is None:
            self.added = {}
        self.added[key] = value

    def axes_text(self, input_axes: tuple[str, ...] | None = None) -> str:
        """The output shape, with its axes where they are not ``input_axes`` (56×56×96 (H×W×C), 196×768 (T×D)).
        A 1-D output reads alone; axes no kind could name read 'reshaped'."""
        text = shape_text(self.output_shape)
        if len(self.output_shape) < 2 or self.axes == input_axes:
            return text
        return f"{text} ({'×'.join(self.axes) if self.axes else 'reshaped'})"

    @property
    def storage(self) -> str:
        """What the row's output is at inference (cnnsize.layers.base: new tensor, view, in place), from its kind."""
        return self.kind.storage if self.kind is not None else NEW

    @property
    def summary(self) -> str:
        """The layer's settings that differ from their defaults (for a folded row: how many layers it holds)."""
        if self.folded > 1:
            return f"{self.folded} layers"
        return self.kind.summary() if self.kind is not None else ""

    def __repr__(self) -> str:
        return (f"LayerResult(name={self.name!r}, type={self.type!r}, output={_shape(self.output_shape)}, "
                f"params={_number(self.figures.params)}, macs={_number(self.figures.macs)})")

    def to_dict(self) -> dict:
        out = {"name": self.name, "type": self.type, "inputs": list(self.inputs),
               "output_shape": [_json(v) for v in self.output_shape]}
        for key, value in zip(COUNT_FIELDS, self.figures):
            out[key] = _json(value)
        out["receptive_field"] = _rf_json(self.receptive_field)
        for key, value in (self.added or {}).items():
            if value is not None:
                out[key] = _json(value)
        return out


def _count(index: int, key: str) -> property:
    """A row's count ``key``: item ``index`` of its figures (which the rows of equal layers share)."""
    def read(row: LayerResult) -> Any:
        return row.figures[index]

    def write(row: LayerResult, value: Any) -> None:
        row.figures = row.figures._replace(**{key: value})

    return property(read, write)


for _index, _key in enumerate(COUNT_FIELDS):
    setattr(LayerResult, _key, _count(_index, _key))


class Analysis(Plain):
    """The sized network: rows (the input first, then every layer) and totals.

    ``layers``: the rows, which the walk makes only when they are first read (a 100,000-layer spec's totals need
    none, see cnnsize.engine.walk._Rows). ``max_batch``: filled by `report --max-batch`; ``fit``: the fit rule the
    shapes were computed with; ``count``: the counting convention of ``counted`` (report --count), None for
    cnnsize's own; ``count_mode``: the mode of the network ``counted`` is for (eval, or train: report --train);
    ``traffic``: rows and totals carry bytes_read, bytes_written, arithmetic_intensity; ``device_profile``: rows
    and totals carry predicted_seconds and bound; ``axes_labelled``: every row's ``axes`` set (label_axes);
    ``columns``: the figures passes added to every row, in order; ``summaries``: the passes' totals in words, by
    first column key; ``checkpoint``: activation checkpointing's setting, segments and layers recomputed (None:
    none).
    """

    FIELDS = ("name", "input_shape", "batch", "dtype", "layers", "totals", "graph", "notes", "conditions",
              "fit_conditions", "max_batch", "fit", "count", "count_mode", "traffic", "device_profile",
              "axes_labelled", "columns", "summaries", "checkpoint")
    # the training step's peak apart from the optimizer's step, and the device kind (cnnsize.engine.memory's phases):
    # sharding and offload replace that phase per GPU (passes.sharding); None with symbolic sizes
    step_phases: dict | None = None

    def __init__(self, name: str, input_shape: tuple, batch: int, dtype: str, layers: list[LayerResult],
                 totals: Totals, graph: Graph, notes: list[str] | None = None, conditions: list | None = None,
                 fit_conditions: Any = None, max_batch: dict | None = None, fit: str = "exact",
                 count: str | None = None, count_mode: str = "eval", traffic: bool = False,
                 device_profile: str | None = None, axes_labelled: bool = False, columns: list[Column] | None = None,
                 summaries: dict[str, str] | None = None, checkpoint: dict | None = None):
        self.name, self.input_shape, self.batch, self.dtype = name, input_shape, batch, dtype
        self._layers: Any = layers
        self.totals, self.graph, self.fit_conditions, self.max_batch = totals, graph, fit_conditions, max_batch
        self.notes: list[str] = [] if notes is None else notes
        self.conditions: list = [] if conditions is None else conditions
        self.fit, self.count, self.count_mode, self.traffic = fit, count, count_mode, traffic
        self.device_profile, self.axes_labelled = device_profile, axes_labelled
        self.columns: list[Column] = [] if columns is None else columns
        self.summaries: dict[str, str] = {} if summaries is None else summaries
        self.checkpoint = checkpoint  # activation checkpointing's segments and what it recomputes (walk._checkpointed)

    @property
    def layers(self) -> list[LayerResult]:
        rows = self._layers
        if type(rows) is not list and hasattr(rows, "build"):  # made when first read (cnnsize.engine.walk._Rows)
            rows = self._layers = rows.build()
        return rows

    @layers.setter
    def layers(self, rows: list[LayerResult]) -> None:
        self._layers = rows

    def add_columns(self, columns: list[Column], summary: str) -> None:
        """Declare the figures a pass filled in every row and its totals line; a pass run again replaces its own."""
        keys = {c.key for c in columns}
        self.columns = [c for c in self.columns if c.key not in keys] + list(columns)
        self.summaries[columns[0].key] = summary

    def extra_fields(self) -> list[tuple[str, str]]:
        """(key, heading) of the figures passes added beyond the default ones, in column order."""
        return [(c.key, c.heading) for c in self.columns]

    def __repr__(self) -> str:
        return (f"Analysis(name={self.name!r}, input={_shape(self.input_shape)}, batch={self.batch}, "
                f"dtype={self.dtype!r}, layers={len(self.layers)}, params={_number(self.totals['params'])}, "
                f"macs={_number(self.totals['macs'])})")

    def __str__(self) -> str:
        """The report table, fitted to the terminal when printing to one (``print(cnnsize.analyze("vgg16"))``)."""
        return view("terminal")(self).rstrip("\n")

    @property
    def symbolic(self) -> bool:
        """Whether any size is a formula (the input was given with symbols such as 3xHxW)."""
        return any(is_symbolic(v) for shape in self.inputs.values() for v in shape)

    @property
    def inputs(self) -> dict[str, tuple]:
        """Every input's shape by name (one, ``input``, unless the spec declares several with ``inputs:``)."""
        graph = self.graph
        if graph is None or not hasattr(graph, "input_shapes"):
            return {"input": tuple(self.input_shape)}
        shapes = graph.input_shapes()
        shapes[graph.input_name] = tuple(self.input_shape)
        return shapes

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
        inputs = self.inputs
        if len(inputs) > 1:  # several inputs: each by name (input_shape stays the first's)
            out = {**{k: v for k, v in out.items() if k not in ("batch", "dtype", "layers", "totals")},
                   "inputs": {k: [_json(v) for v in shape] for k, shape in inputs.items()},
                   **{k: out[k] for k in ("batch", "dtype", "layers", "totals")}}
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
        return view("conventions")(self, mode or self.count_mode)

    def to_markdown(self) -> str:
        return view("markdown")(self)

    def draw(self, fmt: str = "svg", color: str = "macs", depth: int | None = None) -> str:
        """The network drawn as ``fmt`` (svg, html, dot, mermaid, tikz): see cnnsize.draw. Needs igraph."""
        return view("draw")(self, fmt, color=color, depth=depth)

    def to_json(self) -> str:
        return view("json")(self)

    def to_csv(self) -> str:
        return view("csv")(self)

    def collapse(self, depth: int) -> Analysis:
        """The same analysis with the layers nested deeper than ``depth`` folded into one row per block.

        Nesting is read from the dotted names blocks and repeats give (``layer3.4.conv2``), as torchinfo reads
        module nesting: at depth 1 resnet152 shows its four stages (``layer1`` ... ``layer4``) beside its
        top-level layers, at depth 2 its 50 blocks (``layer3.4``). A folded row adds up its layers' counts and
        shows the last one's output and receptive field; the totals are the same.
        """

        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise SpecError(f"depth must be a positive integer, got {depth!r}", hint="e.g. --depth 1")
        groups: dict[str, list[LayerResult]] = {}
        for row in self.layers:
            parts = row.name.split(".")
            groups.setdefault(".".join(parts[:depth]) if len(parts) > depth else row.name, []).append(row)
        self.label_axes()  # while every layer is there: a folded row shows its last layer's
        rows = [members[0] if len(members) == 1 and members[0].name == key else fold_rows(key, members, self.columns)
                for key, members in groups.items()]
        return replace(self, layers=rows)

    def label_axes(self) -> tuple[str, ...]:
        """Name every row's output axes, each kind saying its own from its first input's; the input's axes.

        Done on demand (the report's output column), not in the analysis' hot loop."""
        first = tuple(axes_label(self.input_shape).split("×"))
        if self.axes_labelled:
            return first
        rows = {row.name: row for row in self.layers}
        for index, row in enumerate(self.layers):
            if row.type == "input":
                row.axes = first if index == 0 else tuple(axes_label(row.output_shape).split("×"))
            elif row.kind is not None:
                ins = [rows[name] for name in row.inputs if name in rows]
                row.axes = row.kind.output_axes(ins[0].axes if ins else None, [r.output_shape for r in ins],
                                                row.output_shape)
        self.axes_labelled = True
        return first

    def axes_notes(self) -> list[str]:
        """The notes of kinds that see their input's axes (a linear on a C×H×W image acts on W)."""
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
        return view("latex")(self)

    def to_html(self) -> str:
        return view("html")(self)

    def _repr_markdown_(self) -> str:  # Jupyter
        return self.to_markdown()

    def _repr_html_(self) -> str:  # Jupyter prefers this over markdown: a table with the heaviest layers shaded
        return self.to_html()


def _shape(shape: tuple) -> str:
    return "×".join(str(v) for v in shape)


def _number(value: Any) -> str:
    return f"{value:,}" if is_int(value) else str(value)


def fold_rows(name: str, members: list[LayerResult], columns: list[Column]) -> LayerResult:
    """One row standing for a block's layers: counts added up, the last layer's output and receptive field."""
    last = members[-1]
    figures = Figures(*(sum(column, 0) for column in zip(*(m.figures for m in members))))
    inside = {m.name for m in members}
    inputs = list(dict.fromkeys(src for m in members for src in m.inputs if src not in inside))
    row = LayerResult(name=name, type="block", inputs=inputs, output_shape=last.output_shape, figures=figures,
                      receptive_field=last.receptive_field, param_bytes=sum((m.param_bytes for m in members), 0),
                      activation_bytes=sum((m.activation_bytes for m in members), 0),
                      weight_layer=any(m.weight_layer for m in members), location=members[0].location,
                      folded=sum(m.folded for m in members), axes=last.axes)
    for column in columns:  # the figures of the passes, each folded as its pass declared
        row.add(column.key, column.fold(column.key, members, row))
    return row


def _json(value: Any) -> Any:
    if is_int(value) or value is None or isinstance(value, (bool, float, str)):
        return value
    if isinstance(value, dict):  # a pass' group of totals (totals.training)
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):  # a pass' list of records (totals.estimators)
        return [_json(v) for v in value]
    if getattr(value, "is_Integer", False):
        return int(value)
    return str(value)


def _rf_json(rf: RF | None):
    if rf is None:
        return None
    return {k: [_json(v) for v in vals] for k, vals in rf.to_dict().items()}
