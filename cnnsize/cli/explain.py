"""`cnnsize explain SPEC [--layer NAME]`: every layer's arithmetic, written out as a lecture does."""

from __future__ import annotations

from .common import output_extensions, parse_shape, write_output
from .importer import resolve_named


def register(sub) -> None:
    p = sub.add_parser("explain", help="show each layer's arithmetic step by step",
                       description="Show each layer's output size, parameters, connections, activations and memory "
                                   "step by step, per image. When a layer does not fit, the layers before it are "
                                   "shown and the error says which arithmetic broke.")
    p.add_argument("spec", help="a spec file, a bundled spec name (alexnet_cs231n), or - for standard input")
    p.add_argument("-l", "--layer", help="only this layer (the layers before it are still sized)")
    p.add_argument("-i", "--input", help="input shape C x H x W, e.g. 3x224x224 (or 3xHxW)")
    p.add_argument("--fit", help="exact (default: a filter that does not fit is an error) or floor")
    p.add_argument("--dtype", default="float32", help="for the memory step: float32, float16, bfloat16, ...")
    p.add_argument("-o", "--output", help="write to this file (.txt) instead of standard output")
    output_extensions(p, ".txt")
    p.set_defaults(run=run_explain)


def run_explain(args) -> int:
    resolve_named(args)  # torchvision:NAME, timm:NAME, ultralytics:CONFIG: imported first
    import sys

    from ..api import load_graph
    from ..core.errors import CnnsizeError, unknown_name
    from ..engine.worked import iter_steps

    if args.fit is not None and args.fit not in ("exact", "floor"):
        raise unknown_name("fit rule", args.fit, ("exact", "floor"))
    graph = load_graph(args.spec)
    names = [n.name for n in graph.nodes]
    if args.layer is not None and args.layer not in names:
        raise unknown_name("layer", args.layer, names)
    shape = parse_shape(args.input) if args.input else None
    blocks: list[str] = []
    try:
        for steps in iter_steps(graph, shape, args.fit, args.dtype):
            if args.layer is None or steps.name == args.layer:
                blocks.append(str(steps))
            if steps.name == args.layer:
                break
    except CnnsizeError:
        if blocks and args.output is None:
            sys.stdout.write("\n\n".join(blocks) + "\n\n")
            sys.stdout.flush()
        raise
    write_output("\n\n".join(blocks) + "\n", args.output)
    return 0
