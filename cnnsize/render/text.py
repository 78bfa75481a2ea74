"""Plain-text renderers: markdown, CSV and JSON. No third-party imports.

csv and json are imported by the renderers that use them: the terminal table needs neither.
"""

from __future__ import annotations

import io
from html import escape

from ..core.errors import MissingDependency
from ..core.layout import axes_label
from ..core.numeric import dim_text, human_bytes, human_count, is_int, is_symbolic, pretty  # noqa: F401 - human_* re-exported
from ..core.safe import json_text
from ..core.text import extra_text, num, seconds_text, shape_text  # noqa: F401 - re-exported
from ..engine.result import COUNT_FIELDS, VIEWS, Analysis
from ..layers.base import IN_PLACE, NEW
from .boxes import bar
from .grid import html_table, latex_table, markdown_table


def rf_text(rf) -> str:
    if rf is None:
        return "–"
    size = "×".join(pretty(v) for v in rf.size) if len(set(rf.size)) > 1 else pretty(rf.size[0])
    stride = "×".join(pretty(v) for v in rf.stride) if len(set(rf.stride)) > 1 else pretty(rf.stride[0])
    start = ",".join(pretty(v) for v in rf.start) if len(set(rf.start)) > 1 else pretty(rf.start[0])
    return f"{size} /{stride} @{start}"


def _inputs_text(a: Analysis) -> str:
    """``Input 3×32×32 (C×H×W)``; with several inputs each by name, ``Inputs image 3×32×32 (C×H×W), mask ...``."""
    inputs = a.inputs
    if len(inputs) == 1:
        return f"Input {shape_text(a.input_shape)} ({axes_label(a.input_shape)})"
    return "Inputs " + ", ".join(f"{name} {shape_text(shape)} ({axes_label(shape)})" for name, shape in inputs.items())


def summary_lines(a: Analysis) -> list[str]:
    """The totals in words, shared by the markdown and terminal renderers."""
    t = a.totals
    m = t["memory"]
    lines = [
        f"{_inputs_text(a)}, batch {a.batch}, {a.dtype}; "
        f"{t['weight_layers']} weight layer{'' if t['weight_layers'] == 1 else 's'}.",
        f"Parameters: {num(t['params'])} ({num(t['weights'])} weights + {num(t['biases'])} biases; "
        f"{num(t['trainable_params'])} trainable); buffers: {num(t['buffers'])}.",
        f"Compute: {num(t['macs'])} MACs = {num(t['flops'])} FLOPs ({human_count(t['macs'])} MACs); "
        f"{num(t['connections'])} connections.",
        f"Memory: parameters {human_bytes(m['params_bytes'])}, activations {human_bytes(m['activations_bytes'])} "
        f"({num(t['activations'])} values, input included, forward pass).",
    ]
    lines += axes_lines(a) + memory_lines(a)
    rf = t["receptive_field"]
    if rf is not None:
        lines.append(f"Receptive field: {rf_text(rf)} (size /effective stride @start).")
    lines += a.summaries.values()  # the totals lines of the passes asked for (--count, --traffic, ...)
    if a.symbolic:
        found = a.condition_lines()
        lines.append("Every layer fits exactly when: " + "; ".join(found) + "." if found
                     else "Every layer fits exactly at every size.")
    return lines


def axes_lines(a: Analysis) -> list[str]:
    """Where some outputs are on other axes than the input's: that their cells name them, and what T and D are."""
    first = a.label_axes()
    named = {axis for r in a.layers if len(r.output_shape) > 1 and r.axes != first for axis in r.axes or ("?",)}
    if not named:
        return []
    legend = (("T", "T tokens"), ("D", "D features"), ("?", "reshaped: axes the spec sets"))
    words = [w for key, w in legend if key in named]
    return [f"Outputs are on the input's axes ({'×'.join(first)}) unless their cell names others"
            + (f" ({', '.join(words)})" if words else "") + "."]


def memory_lines(a: Analysis) -> list[str]:
    """Inference peak, the training budget and its parts, fine-tuning, and the largest batch."""
    m = a.totals["memory"]
    lines = []
    if m.get("inference_peak_bytes") is not None:
        lines.append(f"Inference peak: {human_bytes(m['inference_peak_bytes'])} (parameters and buffers + "
                     f"{human_bytes(m['inference_peak_activations_bytes'])} of live activations at "
                     f"{m['inference_peak_layer']}).")
    precision = f"mixed precision, {m['precision']}" if m["amp"] else a.dtype
    if not is_int(m["training_bytes"]):  # symbolic sizes: the peak is a maximum over layers, unreadable as one formula
        lines.append(f"Training ({m['optimizer']}, {precision}): gradients {human_bytes(m['gradients_bytes'])}, "
                     f"optimizer state {human_bytes(m['optimizer_bytes'])}, saved for backward "
                     f"{human_bytes(m['saved_for_backward_bytes'])}; give numeric sizes for the peak.")
        return lines
    temporaries = m["optimizer_temporaries_bytes"]
    lines.append(
        f"Training ({m['optimizer']}, {precision}): {human_bytes(m['training_bytes'])} = parameters and buffers + "
        f"optimizer state {human_bytes(m['optimizer_bytes'])} + the step's peak "
        f"{human_bytes(m['training_step_peak_bytes'])}, in the {m['training_peak_phase']} (activations at most "
        f"{human_bytes(m['training_activations_peak_bytes'])}, of which saved for backward "
        f"{human_bytes(m['saved_for_backward_bytes'])}; parameter gradients {human_bytes(m['gradients_bytes'])}"
        + (f", optimizer temporaries {human_bytes(temporaries)}" if temporaries else "")
        + f"); the lecture's rule of thumb (forward activations x2, plus parameters) says "
        f"{human_bytes(2 * m['activations_bytes'] + m['params_bytes'])}.")
    if "training_bytes_all_trainable" in m:
        first = next((r.name for r in a.layers if r.trainable_params), None)
        lines.append(f"Fine-tuning (trainable from {first} on): {human_bytes(m['training_bytes'])}, against "
                     f"{human_bytes(m['training_bytes_all_trainable'])} training everything.")
    if a.max_batch is not None:
        mb = a.max_batch
        lines.append(f"Largest batch in {human_bytes(mb['device_memory_bytes'])}: {mb['inference']:,} for inference, "
                     f"{mb['training']:,} for training ({m['optimizer']}, {precision}).")
    return lines


HEADERS = ("Layer", "Type", "Output", "Weights", "Params", "Activations", "Connections", "MACs",
           "Receptive field")


def extra_cells(a: Analysis, source) -> tuple[str, ...]:
    """The asked-for figures of one row (a LayerResult) or of the totals (a dict)."""
    return tuple(c.cell(source.get(c.key)) for c in a.columns)


def headers(a: Analysis) -> tuple[str, ...]:
    """HEADERS and the headings of the asked-for figures (--count, --traffic, --device-profile). The output
    column's cells name their axes where they are not the input's (LayerResult.axes_text)."""
    return (*HEADERS, *(h for _, h in a.extra_fields()))


def activations_text(r, count=num, short: bool = False) -> str:
    """A row's activations with what its output is where that is not a new tensor (its kind says): '0 (view)',
    '0 (in place)' ('0' alone in a narrow table)."""

    storage = r.storage
    if storage == NEW or (short and storage == IN_PLACE):
        return count(r.activations)
    return f"{count(r.activations)} ({storage})"


def rows(a: Analysis) -> list[tuple[str, ...]]:
    out = []
    extra = bool(a.extra_fields())
    first = a.label_axes()
    for r in a.layers:
        kind = r.type + (f" ({r.summary})" if r.summary else "")
        act = activations_text(r, num)
        out.append((r.name, kind, r.axes_text(first), num(r.weights), num(r.params), act, num(r.connections),
                    num(r.macs), rf_text(r.receptive_field)) + (extra_cells(a, r) if extra else ()))
    return out


def total_row(a: Analysis) -> tuple[str, ...]:
    t = a.totals
    return ("total", "", "", num(t["weights"]), num(t["params"]), num(t["activations"]), num(t["connections"]),
            num(t["macs"]),
            rf_text(t["receptive_field"])) + extra_cells(a, t)


def _extra_right(a: Analysis) -> set[int]:
    """Column indexes of the asked-for figures (right-aligned, as numbers are)."""
    return set(range(len(HEADERS), len(HEADERS) + len(a.extra_fields())))


def markdown(a: Analysis, picture: str | None = None) -> str:
    """The report as markdown; ``picture`` (a relative path) puts that image above the table."""
    bold_total = tuple(f"**{c}**" if c else "" for c in total_row(a))
    lines = [f"# {a.name}", ""]
    if picture:
        lines += [f"![{a.name}: memory per layer (log scale) and receptive field by depth]({picture})", ""]
    lines += [markdown_table(headers(a), rows(a) + [bold_total], set(range(3, 8)) | _extra_right(a))]
    lines += [f"- {line}" for line in summary_lines(a)]
    if a.notes:
        lines += ["", "Notes:", ""] + [f"- {' '.join(n.split())}" for n in a.notes]
    return "\n".join(lines) + "\n"


def csv_text(a: Analysis) -> str:
    import csv

    buf = io.StringIO()
    extra = [k for k, _ in a.extra_fields()]
    fields = ["name", "type", "inputs", "output_shape", *COUNT_FIELDS, "rf_size", "rf_stride", "rf_start", *extra]
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    for r in a.layers:
        d = r.to_dict()
        rf = d["receptive_field"]
        writer.writerow([d["name"], d["type"], " ".join(d["inputs"]), "x".join(map(str, d["output_shape"])),
                         *[d[k] for k in COUNT_FIELDS],
                         *(["x".join(map(str, rf[k])) for k in ("size", "stride", "start")] if rf else ["", "", ""]),
                         *[d.get(k, "") for k in extra]])
    t = a.to_dict()["totals"]
    rf = t["receptive_field"]
    writer.writerow(["total", "", "", "", *[t[k] for k in COUNT_FIELDS],
                     *(["x".join(map(str, rf[k])) for k in ("size", "stride", "start")] if rf else ["", "", ""]),
                     *[t.get(k, "") for k in extra]])
    return buf.getvalue()


def to_json(a: Analysis) -> str:

    return json_text(a.to_dict())


def latex(a: Analysis) -> str:
    """The per-layer table as a booktabs LaTeX table, the totals in words as comments under it."""

    text = latex_table(headers(a), rows(a), set(range(3, 8)) | _extra_right(a), caption=a.name, footer=total_row(a))
    return text + "".join(f"% {line}\n" for line in summary_lines(a) + [" ".join(n.split()) for n in a.notes])


def html(a: Analysis) -> str:
    """The drawing of the network, then the per-layer table with its heaviest layers shaded, as self-contained
    HTML (``report --format html`` and Jupyter's rich display)."""

    marked = heaviest(a)
    shaded = {i for i, r in enumerate(a.layers) if r.name in marked}
    notes = summary_lines(a) + [" ".join(n.split()) for n in a.notes]
    table = html_table(headers(a), rows(a), set(range(3, 8)) | _extra_right(a), caption=a.name, footer=total_row(a),
                       notes=notes, highlight=shaded)
    return drawing_html(a) + table


def drawing_html(a: Analysis) -> str:
    """The drawing (cnnsize draw's SVG) in a scrolling frame, where the drawing view is loaded (cnnsize.api
    registers it) and igraph is installed; else nothing, or one line saying how to get it."""
    draw = VIEWS.get("draw")
    if draw is None:
        return ""
    try:
        picture = draw(a, "svg")
    except MissingDependency as exc:
        return f"<p>{escape(str(exc), quote=False)}</p>\n"
    body = picture[picture.index("<svg"):]
    return f'<div class="cnnsize-drawing" style="overflow:auto;max-height:640px">{body}</div>\n'


def heaviest(a: Analysis) -> set[str]:
    """The layers holding the most parameters, activations and MACs."""

    named = [r for r in a.layers if r.name != "input"]
    out = set()
    for key in ("params", "activations", "macs"):
        values = [r for r in named if is_int(getattr(r, key))]
        if values:
            top = max(values, key=lambda r: getattr(r, key))
            if getattr(top, key):
                out.add(top.name)
    return out


def share_cells(a: Analysis, key: str) -> list[str] | None:
    """Per row: a bar scaled to the largest layer and the layer's share of the total, e.g. '████▍    42%'.

    None when a figure is a formula (no share to draw).
    """

    values = [getattr(r, key) for r in a.layers]
    if not all(is_int(v) for v in values):
        return None
    total, top = sum(values), max(values, default=0)
    if not top:
        return [bar(0) + "   0%" for _ in values]
    return [f"{bar(v / top)} {round(100 * v / total):>3}%" for v in values]
