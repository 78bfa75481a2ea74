"""`cnnsize fit SPEC [--min 32 --max 1024] [--size 224]`: the input sizes at which every layer fits exactly."""

from __future__ import annotations

import typer

from . import app
from .common import write_output


@app.command()
def fit(
    spec: str = typer.Argument(..., help="A spec file, a bundled spec name (alexnet_cs231n), or - for standard input."),
    min: int = typer.Option(32, "--min", help="Smallest input size to try."),
    max: int = typer.Option(1024, "--max", help="Largest input size to try."),
    size: int = typer.Option(None, "--size", "-s", help="A size to ask about: does it fit, which sizes near it do."),
    format: str = typer.Option("text", "--format", "-f", help="text or json."),
) -> None:
    """List the square input sizes (C x n x n) at which every layer fits exactly, and the nearest ones to --size."""
    import json

    from ..errors import unknown_name
    from ..fitting import fit_sizes

    if format not in ("text", "json"):
        raise unknown_name("format", format, ("text", "json"))
    result = fit_sizes(spec, min=min, max=max)
    c = result.graph.input_shape[0]
    nd = len(result.graph.input_shape) - 1
    if format == "json":
        doc = result.to_dict()
        if size is not None:
            below, above = result.nearest(size)
            why = result.why_not(size)
            doc["size"] = {"size": size, "fits": why is None, "why_not": None if why is None else why.one_line(),
                           "nearest_below": below, "nearest_above": above}
        write_output(json.dumps(doc, indent=2) + "\n", None)
        return
    shape = "×".join([str(c)] + ["n"] * nd)
    lines = [f"{result.graph.name} (input {shape}), n from {min} to {max}: every layer fits exactly at "
             f"{result.summary()}"]
    if size is not None:
        why = result.why_not(size)
        below, above = result.nearest(size)
        near = " and ".join(str(v) for v in (below, above) if v is not None) or "none"
        if why is None:
            lines.append(f"{size} fits. Nearest other sizes that fit: {near}.")
        else:
            lines.append(f"{size} does not fit: {why.one_line()}")
            lines.append(f"Nearest sizes that fit: {near}.")
    write_output("\n".join(lines) + "\n", None)
