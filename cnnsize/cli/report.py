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
) -> None:
    """Size every layer of a network and print the table with totals."""
    import sys

    from ..analysis import analyze_graph
    from ..errors import unknown_name
    from ..render import FORMATS, render
    from ..sources import load_graph

    if format not in FORMATS:
        raise unknown_name("format", format, FORMATS)
    shape = parse_shape(input) if input else None
    analysis = analyze_graph(load_graph(spec), input_shape=shape, batch=batch, dtype=dtype, fit=fit)
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
        from rich.console import Console
        from rich.table import Table

        table = Table(title="Bundled specs", title_justify="left")
        for i, h in enumerate(headers):
            table.add_column(h, justify="right" if 2 <= i <= 6 else "left")
        for row in cells:
            table.add_row(*row)
        Console(highlight=False).print(table)
