"""`cnnsize compare SPEC SPEC...`: totals side by side, with ratios against the first spec."""

from __future__ import annotations

import sys

from .common import FORMATS, add_format, add_output, add_sizing, add_width, parse_shape, table_width, write_output


def register(sub) -> None:
    p = sub.add_parser("compare", help="totals of several specs side by side, with ratios against the first",
                       description="Totals of several specs side by side (params, MACs, activations, memory, "
                                   "receptive field, depth), each with its ratio against the first spec.")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files or bundled spec names")
    add_sizing(p, "input shape for every spec, e.g. 3x224x224 (default: each spec's own)", dtype=True)
    add_format(p, FORMATS)
    add_output(p)
    add_width(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..api import compare
    from ..render.grid import render_grid
    from ..render.views import compare_grid

    shape = parse_shape(args.input) if args.input else None
    records = compare(args.specs, input_shape=shape, batch=args.batch, dtype=args.dtype, fit=args.fit)
    color = args.output is None and sys.stdout.isatty()
    text = render_grid(compare_grid(records), args.format, color=color, width=table_width(args))
    write_output(text, args.output, args.format)
    return 0
