"""`cnnsize validate` (prove every figure against torch) and `cnnsize bench` (time it)."""

from __future__ import annotations

import json
import sys

import typer

from . import app
from .common import parse_shape, write_output

DEVICE_HELP = "auto (CUDA when available), cpu, cuda or cuda:N."
DTYPE_HELP = "float32, float16, bfloat16 or float64."
OK, BAD = "✓", "✗"


def _check_format(format: str) -> None:
    from ..errors import unknown_name

    if format not in ("table", "json"):
        raise unknown_name("format", format, ("table", "json"))


def _console(width: int = 200):
    import io

    from rich.console import Console

    buf = io.StringIO()
    color = sys.stdout.isatty()
    return buf, Console(file=buf, force_terminal=color, color_system="auto" if color else None, width=width,
                        highlight=False)


def _num(value) -> str:
    if isinstance(value, tuple):
        return "×".join(map(str, value))
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def validation_text(v) -> str:
    """Predicted and measured side by side, a mark per row, then totals, mismatches and timing."""
    from rich.markup import escape
    from rich.table import Table

    buf, console = _console()
    table = Table(title=f"{v.name}: the analysis against torch ({v.device}, {v.dtype}, batch {v.batch})",
                  title_justify="left", header_style="bold")
    table.add_column("Layer", no_wrap=True)
    table.add_column("Type", no_wrap=True)
    figures = (("output_shape", "Shape"), ("params", "Params"), ("buffers", "Buffers"), ("macs", "MACs"),
               ("activations", "Activations"))
    for _, label in figures:
        table.add_column(f"{label}\npredicted", justify="right", no_wrap=True)
        table.add_column(f"{label}\ntorch", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    for row in v.layers:
        cells = [escape(row.name), row.type]
        for key, _ in figures:
            f = row.figures.get(key)
            if f is None:
                cells += ["", ""]
            else:
                style = "" if f.ok else "[bold red]"
                cells += [escape(_num(f.predicted)), f"{style}{escape(_num(f.measured))}" + ("[/]" if style else "")]
        mark = f"[green]{OK}[/]" if row.ok else f"[bold red]{BAD} " + ", ".join(row.mismatches()) + "[/]"
        table.add_row(*cells, mark)
    console.print(table)
    totals = Table(title="Totals", title_justify="left", header_style="bold")
    for label, justify in (("Figure", "left"), ("Predicted", "right"), ("Torch", "right"), ("", "left")):
        totals.add_column(label, justify=justify, no_wrap=True)
    for key, f in v.totals.items():
        mark = f"[green]{OK}[/]" if f.ok else f"[bold red]{BAD}[/]"
        totals.add_row(key + ("" if f.exact else " (≈)"), _num(f.predicted), _num(f.measured), mark)
    console.print(totals)
    if v.ok:
        console.print(f"[green]{OK} every figure matches torch[/]", soft_wrap=True)
    else:
        for line in v.mismatches():
            console.print(f"[bold red]{BAD} {escape(line)}[/]", soft_wrap=True)
    for note in v.notes:
        console.print(f"note: {note}", soft_wrap=True, markup=False)
    if v.timing is not None:
        for line in v.timing.lines():
            console.print(line, soft_wrap=True, markup=False)
    return buf.getvalue()


def timing_text(t) -> str:
    buf, console = _console(120)
    for line in t.lines():
        console.print(line, soft_wrap=True, markup=False)
    if t.per_layer_ms:
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="Per-layer forward time (perturbed)",
                      title_justify="left", header_style="bold")
        table.add_column("Layer", no_wrap=True)
        table.add_column("Median ms", justify="right")
        table.add_column("Share", justify="right")
        total = sum(t.per_layer_ms.values()) or 1.0
        for name, ms in t.per_layer_ms.items():
            table.add_row(escape(name), f"{ms:.4f}", f"{ms / total:.1%}")
        console.print(table)
    return buf.getvalue()


@app.command()
def validate(
    spec: str = typer.Argument(..., help="A spec file, a bundled spec name (vgg16), or - for standard input."),
    device: str = typer.Option("auto", "--device", "-d", help=DEVICE_HELP),
    batch: int = typer.Option(1, "--batch", "-b", help="Batch size of the run."),
    dtype: str = typer.Option("float32", "--dtype", help=DTYPE_HELP),
    input: str = typer.Option(None, "--input", "-i", help="Input shape C x H x W, e.g. 3x32x32."),
    fit: str = typer.Option(None, "--fit", help="exact or floor (overrides the spec)."),
    runs: int = typer.Option(10, "--runs", help="Timed forward passes after the check (0: no timing)."),
    warmup: int = typer.Option(2, "--warmup", help="Untimed passes before timing."),
    init: bool = typer.Option(False, "--init", help="Initialize weights randomly (default: zeros, faster)."),
    force: bool = typer.Option(False, "--force", help="Run even if the predicted memory exceeds what is free."),
    format: str = typer.Option("table", "--format", "-f", help="table or json"),
    output: str = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> int:
    """Build the network in torch, run it once, and compare every figure; exit 1 on any difference."""
    from ..executor import validate as run

    _check_format(format)
    result = run(spec, input_shape=parse_shape(input) if input else None, fit=fit, batch=batch, device=device,
                 dtype=dtype, runs=runs, warmup=warmup, force=force, init=init)
    if format == "json":
        write_output(json.dumps(result.to_dict(), indent=2) + "\n", output)
    else:
        write_output(validation_text(result), output)
    return 0 if result.ok else 1


@app.command()
def bench(
    spec: str = typer.Argument(..., help="A spec file, a bundled spec name (vgg16), or - for standard input."),
    device: str = typer.Option("auto", "--device", "-d", help=DEVICE_HELP),
    batch: int = typer.Option(1, "--batch", "-b", help="Batch size."),
    dtype: str = typer.Option("float32", "--dtype", help=DTYPE_HELP),
    input: str = typer.Option(None, "--input", "-i", help="Input shape C x H x W, e.g. 3x224x224."),
    fit: str = typer.Option(None, "--fit", help="exact or floor (overrides the spec)."),
    runs: int = typer.Option(50, "--runs", help="Timed runs."),
    warmup: int = typer.Option(10, "--warmup", help="Untimed runs first."),
    backward: bool = typer.Option(False, "--backward", help="Time forward + backward (train mode)."),
    channels_last: bool = typer.Option(False, "--channels-last", help="Use the NHWC memory format."),
    per_layer: bool = typer.Option(False, "--per-layer", help="Also time each layer (perturbs the total)."),
    peak: bool = typer.Option(True, "--peak/--no-peak", help="Measure the device's matmul peak for comparison."),
    init: bool = typer.Option(False, "--init", help="Initialize weights randomly (default: zeros, faster)."),
    force: bool = typer.Option(False, "--force", help="Run even if the predicted memory exceeds what is free."),
    format: str = typer.Option("table", "--format", "-f", help="table or json"),
    output: str = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> int:
    """Time the network: median, p10/p90, images/s, GFLOP/s and the fraction of the measured peak."""
    from ..executor import bench as run

    _check_format(format)
    result = run(spec, input_shape=parse_shape(input) if input else None, fit=fit, batch=batch, device=device,
                 dtype=dtype, runs=runs, warmup=warmup, backward=backward, channels_last=channels_last,
                 per_layer=per_layer, peak=peak, force=force, init=init)
    if format == "json":
        write_output(json.dumps(result.to_dict(), indent=2) + "\n", output)
    else:
        write_output(timing_text(result), output)
    return 0
