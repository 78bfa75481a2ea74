"""`cnnsize conventions SPEC`: the total as every tool counts it, and why each differs from cnnsize's MACs."""

from __future__ import annotations

import sys

from .common import FORMATS, add_format, add_output, add_sizing, add_width, parse_shape, table_width, write_output
from .importer import resolve_named


def register(sub) -> None:
    p = sub.add_parser("conventions", help="the total as each tool counts it, and the difference by cause",
                       description="One row per counting convention (torch, torchinfo, fvcore, ptflops, thop, "
                                   "torchscan, ...): its total and how it differs from cnnsize's MACs, split by "
                                   "cause (bias adds, normalization, activations, pooling, ...).")
    p.add_argument("spec", help="a spec file, a bundled spec name (resnet50), a library's model "
                   "(torchvision:resnet50, timm:NAME, ultralytics:yolov8n.yaml), or - for standard input")
    add_sizing(p)
    p.add_argument("--train", action="store_true", help="the tools' figures for the network in training mode (fvcore "
                   "counts a training-mode batch norm otherwise); the default is eval mode")
    add_format(p, FORMATS)
    add_output(p)
    add_width(p)
    p.set_defaults(run=run)


def run(args) -> int:
    resolve_named(args)  # torchvision:NAME, timm:NAME, ultralytics:CONFIG: imported first
    from ..api import load_graph
    from ..engine.result import _json
    from ..engine.walk import analyze_graph
    from ..passes.conventions import records
    from ..render.grid import render_grid
    from ..render.views import conventions_grid

    shape = parse_shape(args.input) if args.input else None
    analysis = analyze_graph(load_graph(args.spec), input_shape=shape, batch=args.batch, fit=args.fit)
    rows = records(analysis, train=args.train)
    if args.format == "json":  # a plain list: count, unit, total, differences by cause
        from ..core.safe import json_text

        doc = [{"count": r["count"], "unit": r["unit"], "mode": r["mode"], "total": _json(r["total"]),
                "differences": {k: _json(v) for k, v in r["differences"].items()}} for r in rows]
        write_output(json_text(doc), args.output)
        return 0
    color = args.output is None and sys.stdout.isatty()
    text = render_grid(conventions_grid(analysis, rows), args.format, color=color, width=table_width(args))
    write_output(text, args.output, args.format)
    return 0
