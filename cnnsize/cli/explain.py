"""`cnnsize explain SPEC [--layer NAME]`: every layer's arithmetic, written out as a lecture does."""

from __future__ import annotations

import typer

from . import app
from .common import parse_shape, write_output


@app.command()
def explain(
    spec: str = typer.Argument(..., help="A spec file, a bundled spec name (alexnet_cs231n), or - for standard input."),
    layer: str = typer.Option(None, "--layer", "-l", help="Only this layer (the layers before it are still sized)."),
    input: str = typer.Option(None, "--input", "-i", help="Input shape C x H x W, e.g. 3x224x224 (or 3xHxW)."),
    fit: str = typer.Option(None, "--fit", help="exact (default: a filter that does not fit is an error) or floor."),
    dtype: str = typer.Option("float32", "--dtype", help="For the memory step: float32, float16, bfloat16, ..."),
    output: str = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Show each layer's output size, parameters, connections, activations and memory step by step, per image.

    When a layer does not fit, the layers before it are shown and the error says which arithmetic broke.
    """
    import sys

    from ..errors import CnnsizeError, unknown_name
    from ..sources import load_graph
    from ..worked import iter_steps

    if fit is not None and fit not in ("exact", "floor"):
        raise unknown_name("fit rule", fit, ("exact", "floor"))
    graph = load_graph(spec)
    names = [n.name for n in graph.nodes]
    if layer is not None and layer not in names:
        raise unknown_name("layer", layer, names)
    shape = parse_shape(input) if input else None
    blocks: list[str] = []
    try:
        for steps in iter_steps(graph, shape, fit, dtype):
            if layer is None or steps.name == layer:
                blocks.append(str(steps))
            if steps.name == layer:
                break
    except CnnsizeError:
        if blocks and output is None:
            sys.stdout.write("\n\n".join(blocks) + "\n\n")
            sys.stdout.flush()
        raise
    write_output("\n\n".join(blocks) + "\n", output)
