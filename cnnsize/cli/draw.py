"""`cnnsize draw SPEC -o FILE.svg|html|dot|mmd|tex`: the network as a picture, boxes shaded by a figure."""

from __future__ import annotations

from .common import add_sizing, onnx_shape, parse_inputs, write_output
from .importer import resolve_named

COLORS = ("macs", "params", "activations", "memory", "time")  # cnnsize.render.drawing.COLORS, without its import


def register(sub) -> None:
    p = sub.add_parser("draw", help="draw the network (SVG, HTML page, Graphviz DOT, Mermaid, TikZ) with its sizes",
                       description="Draw the network: a box per layer (or per block with --depth) with its output "
                                   "shape and the figure --color picks, edges labelled with the tensors they carry, "
                                   "laid out in layers. The format is the output's extension: .svg, .html (one "
                                   "self-contained page: search, select, sortable table), .dot, .mmd (Mermaid) or "
                                   ".tex (TikZ). Needs igraph: pip install 'cnnsize[draw]'.")
    p.add_argument("spec", help="a spec file, a bundled spec name (vgg16), an ONNX file, or - for standard input")
    p.add_argument("-o", "--output", required=True,
                   help="the file to write: FILE.svg, FILE.html, FILE.dot, FILE.mmd or FILE.tex")
    p.add_argument("--color", default="macs", metavar="FIGURE",
                   help="shade the boxes by " + ", ".join(COLORS) + " (time needs --device-profile); default macs")
    p.add_argument("--style", default="graph", metavar="STYLE", help="graph (default)")
    p.add_argument("--depth", type=int, metavar="N", help="fold layers nested deeper than N into one box per block")
    p.add_argument("--count", metavar="NAME", help="add each layer's figure as a tool counts it (see report)")
    p.add_argument("--device-profile", metavar="NAME|FILE", help="add the predicted time per layer (see report)")
    add_sizing(p, dtype=True, several=True)
    p.set_defaults(run=run)


def run(args) -> int:
    resolve_named(args)  # torchvision:NAME, timm:NAME: imported first
    from .. import passes
    from ..api import load_graph
    from ..engine.walk import analyze_graph
    from ..render.draw_formats import draw_text, format_of
    from ..spec.sources import is_onnx
    from .report import local_profile

    fmt = format_of(args.output)  # before any work: a bad name is refused at once
    shape = parse_inputs(args.input)
    graph = load_graph(args.spec, input_shape=onnx_shape(args.spec, shape))
    analysis = analyze_graph(graph, input_shape=None if is_onnx(args.spec) else shape, batch=args.batch,
                             dtype=args.dtype, fit=args.fit)
    passes.apply(analysis, count=args.count, count_mode="eval", traffic=False,
                 device_profile=local_profile(args.device_profile) if args.device_profile else None)
    write_output(draw_text(analysis, fmt, color=args.color, style=args.style, depth=args.depth), args.output, fmt)
    return 0
