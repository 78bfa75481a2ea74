"""Totals side by side: ``compare`` (several specs, ratios against the first) and ``sweep`` (one spec, every
combination of batch, input, dtype and spec variables).

Both produce plain records (dicts of numbers) and a Grid that renders in every report format;
``sweep`` in Python returns a pandas DataFrame (pandas is imported there only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.numeric import is_int
from ..core.text import seconds_text
from ..engine.result import Analysis
from ..passes.conventions import CAUSES
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


def sweep_grid(records: list[dict], title: str, variables: Sequence[str] = ()) -> Grid:
    """Swept totals as a Grid: the settings first, then the totals."""
    cols = [Column(v, v, right=False) for v in variables]
    cols += [Column("input_shape", "Input", right=False, text=_shape), Column("batch", "Batch"),
             Column("dtype", "Dtype", right=False)]
    cols += [Column(key, header, text=reads) for key, (header, reads) in TOTALS.items()]
    raw = [*variables, "input_shape", "batch", "dtype", *TOTALS]
    return Grid(title, cols, records, raw_keys=raw)


def conventions_grid(analysis, rows: list[dict]) -> Grid:
    """The records as a Grid (every report format): a column per cause that any convention differs by."""
    causes = [c for c in CAUSES if any(c in r["differences"] for r in rows)]

    def signed(value) -> str:
        if value is None:
            return "–"
        return "0" if not value else ("+" if value > 0 else "−") + num(abs(value))

    cols = [Column("count", "Convention", right=False), Column("unit", "Unit", right=False),
            Column("total", "Total", text=num), Column("difference", "Difference", text=signed)]
    cols += [Column(c, c.capitalize(), text=signed) for c in causes]
    flat = [{**{k: v for k, v in r.items() if k != "differences"}, **{c: r["differences"].get(c, 0) for c in causes}}
            for r in rows]
    mode = rows[0].get("mode", "eval") if rows else "eval"
    lines = [f"{analysis.name}: each tool's total against cnnsize's {num(analysis.totals['macs'])} MACs, "
             f"split by cause (batch {analysis.batch}; the network in {mode} mode)."]
    lines += [f"{r['count']}: {r['note']}." for r in rows if r.get("note")]
    return Grid(f"{analysis.name}: counting conventions", cols, flat, lines=lines)


def plan_grid(found: dict) -> Grid:
    """A training plan (cnnsize.passes.plan) as a Grid: one row per configuration, fitting ones first; under it what
    would be needed where nothing fits, the estimators' lines and the notes."""
    def rate(value: Any) -> str:
        return "–" if value is None else f"{value:,.0f}"

    max_batch = found["batch"] is None
    cols = [Column("precision", "Precision", right=False), Column("accumulate", "Accum."),
            Column("micro_batch", "Micro-batch", short="Micro")]
    if max_batch:
        cols.append(Column("max_batch", "Max batch"))
    if found["gpus"] > 1:
        cols.append(Column("sharding", "Sharding", right=False))
    if "optimizers" in found:  # a search over optimizers and offload (plan's optimizer=/offload= lists)
        cols += [Column("optimizer", "Optimizer", right=False),
                 Column("offload", "Offload", right=False, whole=lambda c: c["offload"] or "–")]
    if any(c["checkpoint"] for c in found["configurations"]):
        cols.append(Column("checkpoint", "Checkpoint", right=False))
    cols += [Column("per_gpu_peak_bytes", "Per-GPU peak", text=human_bytes, short="Peak"),
             Column("fits", "Fits", right=False, whole=lambda c: "yes" if c["fits"] else "no"),
             Column("predicted_step_seconds", "Step", text=seconds_text),
             Column("samples_per_second", "Samples/s", text=rate)]
    if any(c["reason"] for c in found["configurations"]):
        memory = found["device_memory_bytes"]  # the JSON's reason in short: by how much it does not fit
        cols.append(Column("reason", "Over by", whole=lambda c: "–" if c["fits"] else
                           human_bytes(c["per_gpu_peak_bytes"] - memory)))
    cols.append(Column("step_macs", "Step MACs", text=human_count))
    batch = "the largest batch that fits" if max_batch else f"batch {found['batch']} per GPU"
    title = (f"Training plan: {found['spec']} on {found['gpus']} × {found['device']} "
             f"({human_bytes(found['device_memory_bytes'])}), {batch}"
             + (f", {found['offload']} offloaded to host memory" if isinstance(found.get("offload"), str) else ""))
    lines = [found["needed"]] if found["needed"] else []
    lines += estimator_lines(found["estimators"], found["estimators_batch"]) + found["notes"]
    return Grid(title, cols, found["configurations"], lines=lines)


def estimator_lines(found: list[dict], batch: int) -> list[str]:
    """One line per estimator: its figure and what it leaves out against cnnsize's one-GPU budget."""
    lines = []
    for e in found:
        label = e["name"] + (f" ({e['settings']['dtype']})" if "dtype" in e["settings"] else "")
        missed = e["differences"]
        if not missed:
            lines.append(f"Estimator {label}: {human_bytes(e['bytes'])} per GPU ({e['note']}).")
            continue
        left = ", ".join(f"{key} {human_bytes(value)}" for key, value in missed.items() if key != "total" and value)
        lines.append(f"Estimator {label}: {human_bytes(e['bytes'])}; cnnsize's one-GPU budget at batch {batch} is "
                     f"{human_bytes(missed['total'])} more (by part: {left}).")
    return lines
