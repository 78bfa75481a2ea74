"""`cnnsize sweep SPEC`: one row of totals per combination of batch, input, dtype and spec variables."""

from __future__ import annotations

import re
import sys
from typing import Any

from ..core.errors import SpecError
from .common import FORMATS, add_format, add_width, parse_shape, table_width, write_output


def register(sub) -> None:
    p = sub.add_parser("sweep", help="one row of totals per combination of batch, input, dtype and variables",
                       description="One row of totals per combination of the given batch sizes, input shapes, "
                                   "dtypes and spec variables (vars:).")
    p.add_argument("spec", help="a spec file or bundled spec name")
    p.add_argument("-b", "--batch", default="1", help="batch sizes, comma-separated: 1,8,32")
    p.add_argument("-i", "--input", help="input shapes, comma-separated: 3x224x224,3x320x320")
    p.add_argument("--dtype", default="float32", help="dtypes, comma-separated: float32,float16")
    p.add_argument("--set", action="append", default=[], metavar="VAR=V1,V2",
                   help="values of a spec variable to sweep, e.g. --set width=32,64,128 (repeatable)")
    p.add_argument("--fit", help="exact (default) or floor")
    add_format(p, FORMATS)
    p.add_argument("-o", "--output", help="write to this file (atomically) instead of standard output")
    add_width(p)
    p.set_defaults(run=run)


def parse_value(text: str) -> Any:
    """A spec variable's value from the command line: an integer, a number, true/false, or a string."""
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(text)
    except ValueError:
        return text


def parse_sets(items: list[str]) -> dict[str, list]:
    """['width=32,64'] -> {'width': [32, 64]}."""
    out: dict[str, list] = {}
    for item in items:
        name, eq, values = item.partition("=")
        if not eq or not name.strip() or not values.strip():
            raise SpecError(f"--set '{item}' is not NAME=VALUES", hint="e.g. --set width=32,64,128")
        if name.strip() in out:
            raise SpecError(f"--set {name.strip()} is given twice", hint="list all its values once: NAME=V1,V2")
        out[name.strip()] = [parse_value(v) for v in values.split(",")]
    return out


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise SpecError(f"{what} '{text}' is not a comma-separated list of integers", hint="e.g. 1,8,32") from None
    return values


def run(args) -> int:
    from ..api import sweep_records
    from ..render.grid import render_grid
    from ..render.views import sweep_grid

    variables = parse_sets(args.set)
    shapes = [parse_shape(s) for s in args.input.split(",")] if args.input else None
    records = sweep_records(args.spec, batch=_ints(args.batch, "--batch"), input_shape=shapes,
                            dtype=[d.strip() for d in args.dtype.split(",")], variables=variables, fit=args.fit)
    title = f"Sweep of {args.spec}"
    color = args.output is None and sys.stdout.isatty()
    text = render_grid(sweep_grid(records, title, list(variables)), args.format, color=color, width=table_width(args))
    write_output(text, args.output, args.format)
    return 0
