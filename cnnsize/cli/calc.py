"""`cnnsize calc conv|pool|fc|locally-connected`: one layer's sizes with the arithmetic, without a spec.

The figures come from the same layer classes a spec uses (cnnsize.layers), so a
quick question and a full report always agree. Sizes may be names (``3xHxW``,
``--kernel K``): they become sympy symbols and the answers become formulas.
"""

from __future__ import annotations

import re

import typer

from ..errors import SpecError
from . import app
from .common import parse_shape, write_output

calc_app = typer.Typer(no_args_is_help=True, help="One layer's output volume, parameters, connections and MACs, "
                       "with the arithmetic written out (no spec needed).")
app.add_typer(calc_app, name="calc")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")
INPUT_HELP = "Input volume C x H x W, e.g. 3x32x32 (names such as 3xHxW give formulas)."
FIT_HELP = "exact (a filter that does not fit is an error) or floor (round down, as PyTorch)."


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


def _input(text: str | None, spatial: bool = True) -> tuple:
    if text is None:
        raise SpecError("--input is required", hint="give the input volume, e.g. --input 3x32x32")
    shape = parse_shape(text)
    if spatial and len(shape) < 2:
        raise SpecError(f"--input '{text}' has no spatial axes", hint="write channels x height x width, e.g. 3x32x32")
    return shape


def _run(kind: str, values: dict, shape: tuple, fit: str, output: str | None) -> None:
    """Size one layer of ``kind`` on ``shape`` and print every figure with its arithmetic."""
    from ..errors import unknown_name
    from ..layers import REGISTRY, Ctx
    from ..numeric import dim_text, fmt_num, is_symbolic

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


@calc_app.command("conv")
def conv(
    input: str = typer.Option(None, "--input", "-i", help=INPUT_HELP),
    filters: str = typer.Option(None, "--filters", "-k", help="Number of filters (output channels)."),
    kernel: str = typer.Option(None, "--kernel", "-f", help="Filter size F, or FxF2 per axis."),
    stride: str = typer.Option("1", "--stride", "-s", help="Stride S."),
    pad: str = typer.Option("0", "--pad", "-p", help="Zero padding P per side, or 'same' or 'valid'."),
    dilation: str = typer.Option("1", "--dilation", help="Dilation D."),
    groups: str = typer.Option("1", "--groups", help="Groups (channels are split among them)."),
    bias: bool = typer.Option(True, "--bias/--no-bias", help="One bias per filter."),
    fit: str = typer.Option("exact", "--fit", help=FIT_HELP),
    output: str = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """A convolution: (W − F + 2P)/S + 1 per axis, (F·F·C + 1)·K parameters, connections and MACs."""
    shape = _input(input)
    values = {"filters": parse_dims(filters, "--filters"), "kernel": parse_dims(kernel, "--kernel"),
              "stride": parse_dims(stride, "--stride"), "pad": _pad(pad),
              "dilation": parse_dims(dilation, "--dilation"),
              "groups": parse_dims(groups, "--groups"), "bias": bias}
    if isinstance(values["filters"], tuple) or isinstance(values["groups"], tuple):
        raise SpecError("--filters and --groups take one number each")
    _run("conv", values, shape, fit, output)


@calc_app.command("pool")
def pool(
    input: str = typer.Option(None, "--input", "-i", help=INPUT_HELP),
    kernel: str = typer.Option(None, "--kernel", "-f", help="Window size F, or FxF2 per axis."),
    stride: str = typer.Option(None, "--stride", "-s", help="Stride S (default: the window size)."),
    pad: str = typer.Option("0", "--pad", "-p", help="Padding per side."),
    type: str = typer.Option("max", "--type", "-t", help="max or avg."),
    ceil_mode: bool = typer.Option(False, "--ceil-mode", help="Round the output size up, as PyTorch's ceil_mode."),
    fit: str = typer.Option("exact", "--fit", help=FIT_HELP),
    output: str = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """A pooling layer: (W − F + 2P)/S + 1 per axis; no parameters; connections = outputs × window."""
    from ..errors import unknown_name

    if type not in ("max", "avg"):
        raise unknown_name("pooling type", type, ("max", "avg"))
    shape = _input(input)
    values = {"kernel": parse_dims(kernel, "--kernel"), "stride": parse_dims(stride, "--stride", required=False),
              "pad": parse_dims(pad, "--pad", minimum=0), "ceil_mode": ceil_mode}
    _run(f"{type}pool", values, shape, fit, output)


@calc_app.command("fc")
def fc(
    input: str = typer.Option(None, "--input", "-i", help="Input features (4096) or a volume to flatten (256x6x6)."),
    units: str = typer.Option(None, "--units", "-u", help="Output units."),
    bias: bool = typer.Option(True, "--bias/--no-bias", help="One bias per unit."),
    output: str = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """A fully connected layer: (M + 1)·N parameters, M·N connections and MACs."""
    shape = _input(input, spatial=False)
    n = parse_dims(units, "--units")
    if isinstance(n, tuple):
        raise SpecError("--units takes one number")
    _run("fc", {"units": n, "bias": bias}, shape, "exact", output)


@calc_app.command("locally-connected")
def locally_connected(
    input: str = typer.Option(None, "--input", "-i", help=INPUT_HELP),
    filters: str = typer.Option(None, "--filters", "-k", help="Filters per output position."),
    kernel: str = typer.Option(None, "--kernel", "-f", help="Filter size F, or FxF2 per axis."),
    stride: str = typer.Option("1", "--stride", "-s", help="Stride S."),
    pad: str = typer.Option("0", "--pad", "-p", help="Zero padding per side."),
    bias: bool = typer.Option(True, "--bias/--no-bias", help="One bias per output unit."),
    fit: str = typer.Option("exact", "--fit", help=FIT_HELP),
    output: str = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """A convolution without weight sharing: every output position has its own filters."""
    shape = _input(input)
    values = {"filters": parse_dims(filters, "--filters"), "kernel": parse_dims(kernel, "--kernel"),
              "stride": parse_dims(stride, "--stride"), "pad": _pad(pad), "bias": bias}
    if isinstance(values["filters"], tuple):
        raise SpecError("--filters takes one number")
    _run("locally_connected", values, shape, fit, output)
