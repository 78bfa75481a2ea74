"""`cnnsize report` and `cnnsize specs`."""

from __future__ import annotations

import typer

from . import app
from .common import parse_shape, write_output

FORMAT_HELP = "table, markdown, csv or json"


@app.command()
def report(
    spec: str = typer.Argument(..., help="A spec file, a bundled spec name (vgg16), or - for standard input."),
    input: str = typer.Option(None, "--input", "-i", help="Input shape C x H x W, e.g. 3x224x224 (or 3xHxW)."),
    batch: int = typer.Option(1, "--batch", "-b", help="Batch size; activations, MACs and memory are per batch."),
    dtype: str = typer.Option("float32", "--dtype", help="float32, float16, bfloat16, int8 or float64."),
    fit: str = typer.Option(None, "--fit", help="exact (default: a filter that does not fit is an error) or floor."),
    format: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
    output: str = typer.Option(None, "--output", "-o", help="Write to this file (atomically) instead of stdout."),
    optimizer: str = typer.Option("adam", "--optimizer", help="For the training estimate: sgd, momentum, adam, adamw."),
    amp: bool = typer.Option(False, "--amp", help="Training estimate with mixed precision (16-bit activations)."),
    device: str = typer.Option("cuda", "--device", help="Device kind the training estimate is for: cuda or cpu."),
    freeze_until: str = typer.Option(None, "--freeze-until", help="Freeze this layer and all before it."),
    max_batch: bool = typer.Option(False, "--max-batch", help="Find the largest batch that fits --device-memory."),
    device_memory: str = typer.Option(None, "--device-memory", help="Device memory for --max-batch, e.g. 24GiB."),
) -> None:
    """Size every layer of a network and print the table with totals."""
    import sys

    from ..analysis import analyze_graph
    from ..errors import SpecError, unknown_name
    from ..render import FORMATS, render
    from ..sources import load_graph

    if format not in FORMATS:
        raise unknown_name("format", format, FORMATS)
    if max_batch and device_memory is None:
        raise SpecError("--max-batch needs --device-memory", hint="e.g. --max-batch --device-memory 24GiB")
    shape = parse_shape(input) if input else None
    graph = load_graph(spec)

    def run(b):
        return analyze_graph(graph, input_shape=shape, batch=b, dtype=dtype, fit=fit, optimizer=optimizer, amp=amp,
                             device=device, freeze_until=freeze_until)

    analysis = run(batch)
    if max_batch:
        from ..memory import max_batch as largest
        from ..memory import parse_bytes

        analysis.max_batch = largest(lambda b: run(b).totals["memory"], parse_bytes(device_memory))
    color = output is None and sys.stdout.isatty()
    text = render(analysis, format, color=color) if format == "table" else render(analysis, format)
    write_output(text, output)


@app.command()
def specs(format: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP)) -> None:
    """List the bundled specs with their totals."""
    import csv
    import io
    import json

    from ..analysis import analyze_graph
    from ..errors import unknown_name
    from ..render import FORMATS
    from ..render.text import human_count, num, shape_text
    from ..sources import bundled_names, load_graph

    if format not in FORMATS:
        raise unknown_name("format", format, FORMATS)
    records = []
    for name in bundled_names():
        a = analyze_graph(load_graph(name))
        t = a.totals
        rf = t["receptive_field"]
        records.append({"name": name, "input_shape": list(a.input_shape), "params": t["params"], "macs": t["macs"],
                        "activations": t["activations"], "weight_layers": t["weight_layers"],
                        "receptive_field": rf.size[0] if rf else None})
    if format == "json":
        write_output(json.dumps(records, indent=2) + "\n", None)
        return
    headers = ["Spec", "Input", "Params", "MACs", "Activations", "Weight layers", "RF"]
    cells = [[r["name"], shape_text(r["input_shape"]), num(r["params"]), human_count(r["macs"]),
              num(r["activations"]), str(r["weight_layers"]), str(r["receptive_field"] or "–")] for r in records]
    if format == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["name", "input_shape", "params", "macs", "activations", "weight_layers", "receptive_field"])
        for r in records:
            writer.writerow([r["name"], "x".join(map(str, r["input_shape"])), r["params"], r["macs"],
                             r["activations"], r["weight_layers"], r["receptive_field"] or ""])
        write_output(buf.getvalue(), None)
    elif format == "markdown":
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        write_output("\n".join(lines) + "\n", None)
    else:
        import sys

        from rich.table import Table

        from ..render.table import rendered

        table = Table(title="Bundled specs", title_justify="left")
        for i, h in enumerate(headers):
            table.add_column(h, justify="right" if 2 <= i <= 6 else "left")
        for row in cells:
            table.add_row(*row)
        write_output(rendered([table], color=sys.stdout.isatty()), None)
