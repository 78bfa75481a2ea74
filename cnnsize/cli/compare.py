"""`cnnsize compare SPEC SPEC...`: totals side by side, with ratios against the first spec."""

from __future__ import annotations

import sys

from .common import FORMATS, add_format, parse_shape, positive_int, write_output


def register(sub) -> None:
    p = sub.add_parser("compare", help="totals of several specs side by side, with ratios against the first",
                       description="Totals of several specs side by side (params, MACs, activations, memory, "
                                   "receptive field, depth), each with its ratio against the first spec.")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files or bundled spec names")
    p.add_argument("-i", "--input", help="input shape for every spec, e.g. 3x224x224 (default: each spec's own)")
    p.add_argument("-b", "--batch", type=positive_int, default=1, help="batch size")
    p.add_argument("--dtype", default="float32", help="float32, float16, bfloat16, int8 or float64")
    p.add_argument("--fit", help="exact (default) or floor")
    add_format(p, FORMATS)
    p.add_argument("-o", "--output", help="write to this file (atomically) instead of standard output")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..render.grid import render_grid
    from ..views import compare, compare_grid

    shape = parse_shape(args.input) if args.input else None
    records = compare(args.specs, input_shape=shape, batch=args.batch, dtype=args.dtype, fit=args.fit)
    color = args.output is None and sys.stdout.isatty()
    write_output(render_grid(compare_grid(records), args.format, color=color), args.output, args.format)
    return 0
