"""Totals side by side: ``compare`` (several specs, ratios against the first) and ``sweep`` (one spec, every
combination of batch, input, dtype and spec variables).

Both produce plain records (dicts of numbers) and a Grid that renders in every report format;
``sweep`` in Python returns a pandas DataFrame (pandas is imported there only).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..core.errors import SpecError
from ..core.numeric import is_int
from ..engine.result import Analysis
from .grid import Column, Grid
from .text import human_bytes, human_count, num


def _shape(value) -> str:
    return "×".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


# Totals every view reports: key -> (header, how it reads)
TOTALS: dict[str, tuple[str, Any]] = {
    "params": ("Params", num),
    "macs": ("MACs", human_count),
    "activations": ("Activations", num),
    "params_bytes": ("Param memory", human_bytes),
    "activations_bytes": ("Act. memory", human_bytes),
    "inference_peak_bytes": ("Inference peak", human_bytes),
    "training_bytes": ("Training", human_bytes),
    "receptive_field": ("RF", _shape),
    "weight_layers": ("Depth", str),
}
RATIO_KEYS = ("params", "macs", "activations", "params_bytes", "activations_bytes", "inference_peak_bytes",
              "training_bytes", "receptive_field", "weight_layers")


def totals_record(a: Analysis) -> dict[str, Any]:
    """The headline totals of an analysis as a flat dict of plain numbers.

    ``receptive_field`` is the network's field size when it is square (else its per-axis list), None without one.
    """
    t, m = a.totals, a.totals["memory"]
    rf = t["receptive_field"]
    size = None if rf is None else (rf.size[0] if len(set(rf.size)) == 1 else list(rf.size))
    return {"params": t["params"], "macs": t["macs"], "flops": t["flops"], "activations": t["activations"],
            "connections": t["connections"], "params_bytes": m["params_bytes"],
            "activations_bytes": m["activations_bytes"], "inference_peak_bytes": m.get("inference_peak_bytes"),
            "training_bytes": m["training_bytes"], "receptive_field": size, "weight_layers": t["weight_layers"]}


def _ratio(value: Any, base: Any) -> float | None:
    if not (is_int(value) and is_int(base)) or base == 0:
        return None
    return value / base


def _ratio_text(value: Any, record: dict, key: str, reads) -> str:
    text = reads(value)
    ratio = record.get(f"{key}_ratio")
    return text if ratio is None else f"{text} ({ratio:.3g}×)"


def compare(specs: Sequence[Any], *, input_shape: tuple | None = None, batch: int = 1, dtype: str = "float32",
            fit: str | None = None) -> list[dict]:
    """Totals of several specs, one record each, with ``<key>_ratio`` against the first spec.

    Each spec is anything ``cnnsize.analyze`` takes; ``input_shape`` (if given) applies to all of them.
    """
    from ..engine.walk import analyze_graph
    from ..spec.sources import load_graph

    if not specs:
        raise SpecError("compare needs at least one spec")
    records = []
    for spec in specs:
        a = spec if isinstance(spec, Analysis) else analyze_graph(
            load_graph(spec), input_shape=input_shape, batch=batch, dtype=dtype, fit=fit)
        label = a.name if isinstance(spec, (Analysis, dict)) or not isinstance(spec, str) or "\n" in spec else spec
        records.append({"spec": label, "name": a.name, "input_shape": list(a.input_shape), "batch": a.batch,
                        "dtype": a.dtype, **totals_record(a)})
    first = records[0]
    for r in records:
        for key in RATIO_KEYS:
            r[f"{key}_ratio"] = _ratio(r[key], first[key])
    return records


def compare_grid(records: list[dict]) -> Grid:
    """Compared totals as a Grid: each figure with its ratio against the first spec."""
    cols = [Column("spec", "Spec", right=False), Column("input_shape", "Input", right=False, text=_shape)]
    for key, (header, reads) in TOTALS.items():
        cols.append(Column(key, header, whole=lambda rec, k=key, f=reads: "–" if rec.get(k) is None
                           else _ratio_text(rec[k], rec, k, f)))
    first = records[0]["spec"] if records else ""
    raw = ["spec", "name", "input_shape", "batch", "dtype", *TOTALS] + [f"{k}_ratio" for k in RATIO_KEYS]
    lines = [f"Ratios (×) against {first}; batch {records[0]['batch']}, {records[0]['dtype']}."] if records else []
    return Grid("Comparison", cols, records, lines=lines, raw_keys=raw)


def sweep_records(spec: Any, *, batch: Iterable[int] = (1,), input_shape: Iterable[tuple] | None = None,
                  dtype: Iterable[str] = ("float32",), variables: Mapping[str, Iterable[Any]] | None = None,
                  fit: str | None = None) -> list[dict]:
    """One record of totals per combination of the given settings (variables outermost, then input, batch, dtype).

    ``variables`` maps spec variables (``vars:``) to the values to try; an unknown name is an error.
    """
    from ..engine.walk import analyze_graph
    from ..spec.sources import load_graph

    variables = {k: list(v) for k, v in (variables or {}).items()}
    shapes = [None] if input_shape is None else [tuple(s) for s in input_shape]
    batches, dtypes = list(batch), list(dtype)
    for what, values in (("batch", batches), ("input_shape", shapes), ("dtype", dtypes), *variables.items()):
        if not values:
            raise SpecError(f"sweep: no values given for {what}")
    records = []
    names = list(variables)
    for combo in itertools.product(*(variables[k] for k in names)):
        chosen = dict(zip(names, combo))
        graph = load_graph(spec, variables=chosen or None)
        for shape in shapes:
            for b in batches:
                for d in dtypes:
                    a = analyze_graph(graph, input_shape=shape, batch=b, dtype=d, fit=fit)
                    records.append({**chosen, "input_shape": list(a.input_shape), "batch": b, "dtype": d,
                                    **totals_record(a)})
    return records


def sweep_grid(records: list[dict], title: str, variables: Sequence[str] = ()) -> Grid:
    """Swept totals as a Grid: the settings first, then the totals."""
    cols = [Column(v, v, right=False) for v in variables]
    cols += [Column("input_shape", "Input", right=False, text=_shape), Column("batch", "Batch"),
             Column("dtype", "Dtype", right=False)]
    cols += [Column(key, header, text=reads) for key, (header, reads) in TOTALS.items()]
    raw = [*variables, "input_shape", "batch", "dtype", *TOTALS]
    return Grid(title, cols, records, raw_keys=raw)


def sweep(spec: Any, *, batch: Iterable[int] = (1,), input_shape: Iterable[tuple] | None = None,
          dtype: Iterable[str] = ("float32",), variables: dict[str, Iterable[Any]] | None = None,
          fit: str | None = None):
    """Totals for every combination of the settings, as a pandas DataFrame (one row per combination).

        >>> cnnsize.sweep("resnet18", batch=[1, 32], dtype=["float32", "float16"])  # doctest: +SKIP
    """
    import pandas as pd

    records = sweep_records(spec, batch=batch, input_shape=input_shape, dtype=dtype, variables=variables, fit=fit)
    frame = pd.DataFrame(records)
    frame["input_shape"] = frame["input_shape"].map(_shape)
    return frame
