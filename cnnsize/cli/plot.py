"""`cnnsize plot SPEC -o FILE.png|svg`: memory per layer against parameters, and the receptive field's growth."""

from __future__ import annotations

from .common import add_sizing, parse_shape
from .importer import resolve_named


def register(sub) -> None:
    p = sub.add_parser("plot", help="picture of memory per layer and the receptive field (needs matplotlib)",
                       description="Per-layer activation memory against parameter memory (log scale) and the "
                                   "receptive field's growth with depth, as PNG or SVG. Needs matplotlib: "
                                   "pip install 'cnnsize[plot]'.")
    p.add_argument("spec", help="a spec file or bundled spec name")
    p.add_argument("-o", "--output", required=True, help="the picture to write: FILE.png or FILE.svg")
    add_sizing(p, dtype=True)
    p.set_defaults(run=run)


def run(args) -> int:
    resolve_named(args)  # torchvision:NAME, timm:NAME, ultralytics:CONFIG: imported first
    from ..api import load_graph
    from ..engine.walk import analyze_graph
    from ..render.plot import save_plot

    shape = parse_shape(args.input) if args.input else None
    analysis = analyze_graph(load_graph(args.spec), input_shape=shape, batch=args.batch, dtype=args.dtype,
                             fit=args.fit)
    path = save_plot(analysis, args.output)
    print(f"wrote {path}")
    return 0
