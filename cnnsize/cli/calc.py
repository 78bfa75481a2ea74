"""`cnnsize calc conv|pool|fc|locally-connected`: one layer's sizes with the arithmetic, without a spec.

The figures come from the same layer classes a spec uses (cnnsize.layers), so a
quick question and a full report always agree. Sizes may be names (``3xHxW``,
``--kernel K``): they become sympy symbols and the answers become formulas.
"""

from __future__ import annotations

import re

from ..core.errors import SpecError
from .common import output_extensions, parse_shape, write_output

_NAME = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")
INPUT_HELP = "Input volume C x H x W, e.g. 3x32x32 (names such as 3xHxW give formulas)."
FIT_HELP = "exact (a filter that does not fit is an error) or floor (round down, as PyTorch)"


def parse_dims(text: str | None, option: str, minimum: int = 1, required: bool = True):
    """'5' -> 5, '5x3' -> (5, 3), 'K' -> Symbol K; a one-line SpecError for anything else."""
    if text is None:
        if required:
            raise SpecError(f"{option} is required", hint=f"give e.g. {option} 3")
        return None
    parts = [p.strip() for p in re.split(r"[x×,]", text.strip())]
    if not parts or any(not p for p in parts):
        raise SpecError(f"{option} '{text}' is not a size", hint=f"write a number such as {option} 3, or 3x5")
    out = []
    for part in parts:
        if part.isdigit():
            value = int(part)
            if value < minimum:
                raise SpecError(f"{option} must be at least {minimum}, got {value}")
            out.append(value)
        elif _NAME.match(part):
            import sympy

            sign = {"positive": True} if minimum >= 1 else {"nonnegative": True}
            out.append(sympy.Symbol(part, integer=True, **sign))
        else:
            raise SpecError(f"{option} '{text}': '{part}' is neither a whole number nor a name",
                            hint=f"write a number such as {option} 3, or a name such as {option} K")
    return out[0] if len(out) == 1 else tuple(out)


def _pad(text: str) -> object:
    return text if text in ("same", "valid") else parse_dims(text, "--pad", minimum=0)


def _input(text: str | None, spatial: bool = True, layout: str | None = None) -> tuple:
    if text is None:
        raise SpecError("--input is required", hint="give the input volume, e.g. --input 3x32x32")
    shape = parse_shape(text)
    if spatial and len(shape) < 2:
        raise SpecError(f"--input '{text}' has no spatial axes", hint="write channels x height x width, e.g. 3x32x32")
    if spatial:
        from ..core.layout import apply_layout

        shape = apply_layout(shape, layout, "--input")
    return shape


def _run(kind: str, values: dict, shape: tuple, fit: str, output: str | None) -> None:
    """Size one layer of ``kind`` on ``shape`` and print every figure with its arithmetic."""
    from ..core.errors import unknown_name
    from ..core.numeric import dim_text, fmt_num, is_symbolic
    from ..layers import REGISTRY, Ctx

    if fit not in ("exact", "floor"):
        raise unknown_name("fit rule", fit, ("exact", "floor"))
    layer = REGISTRY[kind]({k: v for k, v in values.items() if v is not None})
    ctx = Ctx(fit=fit)
    out = layer.output_shape([shape], ctx)
    counts = layer.counts([shape], out)
    steps = layer.explain([shape], out, ctx)
    sep = " × " if any(is_symbolic(v) for v in (*shape, *out)) else "×"
    lines = [f"input volume: {sep.join(dim_text(v) if is_symbolic(v) else fmt_num(v) for v in shape)}",
             f"output volume: {sep.join(dim_text(v) if is_symbolic(v) else fmt_num(v) for v in out)}"]
    lines += [f"  {s}" if s.split(":")[0] in ("height", "width", "depth", "length", "inputs") else s for s in steps]
    if not any(s.startswith("params") for s in steps):
        lines.append("params: 0")
    if not any("MACs" in s for s in steps):
        lines.append(f"MACs: {fmt_num(counts.macs)}")
    lines.append(f"weights {fmt_num(counts.weights)} + biases {fmt_num(counts.biases)} = "
                 f"{fmt_num(counts.weights + counts.biases)} parameters")
    write_output("\n".join(lines) + "\n", output)


def register(sub) -> None:
    help_text = "one layer's output volume, parameters, connections and MACs, with the arithmetic (no spec needed)"
    p = sub.add_parser("calc", help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
    kinds = p.add_subparsers(dest="calc_kind", metavar="KIND", parser_class=type(p))
    p.set_defaults(run=lambda args: _missing_kind(p))

    c = kinds.add_parser("conv", help="a convolution: (W − F + 2P)/S + 1 per axis, (F·F·C + 1)·K parameters",
                         description="A convolution: (W − F + 2P)/S + 1 per axis, (F·F·C + 1)·K parameters, "
                                     "connections and MACs.")
    _input_arg(c)
    c.add_argument("-k", "-K", "--filters", help="number of filters K (output channels)")
    c.add_argument("-F", "--kernel", help="filter size F, or FxF2 per axis")
    c.add_argument("-s", "-S", "--stride", default="1", help="stride S (default 1)")
    c.add_argument("-p", "-P", "--pad", default="0", help="zero padding P per side, or 'same' or 'valid' (default 0)")
    c.add_argument("--dilation", default="1", help="dilation D (default 1)")
    c.add_argument("--groups", default="1", help="groups (default 1)")
    _common(c, bias="one bias per filter")
    c.set_defaults(run=run_conv)

    q = kinds.add_parser("pool", help="a pooling layer: (W − F + 2P)/S + 1 per axis, no parameters",
                         description="A pooling layer: (W − F + 2P)/S + 1 per axis; no parameters; "
                                     "connections = outputs × window.")
    _input_arg(q)
    q.add_argument("-F", "--kernel", help="window size F, or FxF2 per axis")
    q.add_argument("-s", "-S", "--stride", help="stride S (default: the window size)")
    q.add_argument("-p", "-P", "--pad", default="0", help="padding P per side (default 0)")
    q.add_argument("-t", "--type", default="max", help="max or avg (default max)")
    q.add_argument("--ceil-mode", action="store_true", help="round the output size up, as PyTorch's ceil_mode")
    _common(q, bias=None)
    q.set_defaults(run=run_pool)

    f = kinds.add_parser("fc", help="a fully connected layer: (M + 1)·N parameters, M·N connections",
                         description="A fully connected layer: (M + 1)·N parameters, M·N connections and MACs.")
    f.add_argument("-i", "--input", help="input features (4096) or a volume to flatten (256x6x6)")
    f.add_argument("-u", "--units", help="output units")
    _common(f, bias="one bias per unit", fit=False)
    f.set_defaults(run=run_fc)

    lc = kinds.add_parser("locally-connected", help="a convolution without weight sharing",
                          description="A convolution without weight sharing: every output position has its own "
                                      "filters.")
    _input_arg(lc)
    lc.add_argument("-k", "-K", "--filters", help="filters K per output position")
    lc.add_argument("-F", "--kernel", help="filter size F, or FxF2 per axis")
    lc.add_argument("-s", "-S", "--stride", default="1", help="stride S (default 1)")
    lc.add_argument("-p", "-P", "--pad", default="0", help="zero padding P per side (default 0)")
    _common(lc, bias="one bias per output unit")
    lc.set_defaults(run=run_locally_connected)


def _missing_kind(parser) -> int:
    parser.print_help()
    return 2


def _input_arg(p) -> None:
    p.add_argument("-i", "--input", help=INPUT_HELP)
    p.add_argument("--layout", choices=("chw", "hwc"), metavar="LAYOUT",
                   help="hwc reads --input channels-last (32x32x3 is 3x32x32), chw as written; by default a shape "
                        "that looks channels-last is refused")


def _common(p, bias: str | None, fit: bool = True) -> None:
    import argparse

    # -f means --format everywhere else: here it only says so (the kernel is -F or --kernel)
    p.add_argument("-f", dest="old_kernel", help=argparse.SUPPRESS)
    if bias is not None:
        p.add_argument("--no-bias", dest="bias", action="store_false", help=f"leave out the biases ({bias})")
    if fit:
        p.add_argument("--fit", default="exact", help=FIT_HELP)
    p.add_argument("-o", "--output", help="write to this file (.txt) instead of standard output")
    output_extensions(p, ".txt")


def _no_f(args) -> None:
    if getattr(args, "old_kernel", None) is not None:
        raise SpecError(f"calc takes the filter size as -F or --kernel (-f {args.old_kernel}): -f means --format "
                        "in the other commands", hint=f"write --kernel {args.old_kernel}")


def _usage(kind: str):
    """A run whose bad or missing option says so with this subcommand's own help: see 'cnnsize calc conv -h'."""
    def wrap(run):
        def checked(args) -> int:
            try:
                return run(args)
            except SpecError as exc:
                if exc.location is None:
                    exc.hint = (f"{exc.hint} " if exc.hint else "") + f"(see 'cnnsize calc {kind} -h')"
                raise
        checked.__doc__ = run.__doc__
        return checked
    return wrap


@_usage("conv")
def run_conv(args) -> int:
    _no_f(args)
    shape = _input(args.input, layout=args.layout)
    values = {"filters": parse_dims(args.filters, "--filters"), "kernel": parse_dims(args.kernel, "--kernel"),
              "stride": parse_dims(args.stride, "--stride"), "pad": _pad(args.pad),
              "dilation": parse_dims(args.dilation, "--dilation"), "groups": parse_dims(args.groups, "--groups"),
              "bias": args.bias}
    if isinstance(values["filters"], tuple) or isinstance(values["groups"], tuple):
        raise SpecError("--filters and --groups take one number each")
    _run("conv", values, shape, args.fit, args.output)
    return 0


@_usage("pool")
def run_pool(args) -> int:
    from ..core.errors import unknown_name

    _no_f(args)
    if args.type not in ("max", "avg"):
        raise unknown_name("pooling type", args.type, ("max", "avg"))
    shape = _input(args.input, layout=args.layout)
    values = {"kernel": parse_dims(args.kernel, "--kernel"), "stride": parse_dims(args.stride, "--stride",
                                                                                  required=False),
              "pad": parse_dims(args.pad, "--pad", minimum=0), "ceil_mode": args.ceil_mode}
    _run(f"{args.type}pool", values, shape, args.fit, args.output)
    return 0


@_usage("fc")
def run_fc(args) -> int:
    _no_f(args)
    shape = _input(args.input, spatial=False)
    n = parse_dims(args.units, "--units")
    if isinstance(n, tuple):
        raise SpecError("--units takes one number")
    _run("fc", {"units": n, "bias": args.bias}, shape, "exact", args.output)
    return 0


@_usage("locally-connected")
def run_locally_connected(args) -> int:
    _no_f(args)
    shape = _input(args.input, layout=args.layout)
    values = {"filters": parse_dims(args.filters, "--filters"), "kernel": parse_dims(args.kernel, "--kernel"),
              "stride": parse_dims(args.stride, "--stride"), "pad": _pad(args.pad), "bias": args.bias}
    if isinstance(values["filters"], tuple):
        raise SpecError("--filters takes one number")
    _run("locally_connected", values, shape, args.fit, args.output)
    return 0
