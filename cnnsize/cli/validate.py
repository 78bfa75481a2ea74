"""`cnnsize validate` (prove every figure against torch) and `cnnsize bench` (time it)."""

from __future__ import annotations

import sys

from ..core.safe import json_text
from .common import (
    NAMED_INPUTS,
    add_checkpoint,
    add_width,
    onnx_shape,
    parse_inputs,
    positive_int,
    table_width,
    write_output,
)
from .importer import resolve_named

DEVICE_HELP = "auto (CUDA when available), cpu, cuda or cuda:N"
DTYPE_HELP = "float32, float16, bfloat16 or float64"
OK, BAD = "✓", "✗"


def register(sub) -> None:
    v = sub.add_parser("validate", help="build the network in torch, run it once and compare every figure",
                       description="Build the network in torch, run it once, and compare every figure with the "
                                   "analysis; exit 1 on any difference.")
    _common(v)
    v.add_argument("--runs", type=int, default=10, help="timed forward passes after the check (0: no timing)")
    v.add_argument("--warmup", type=int, default=2, help="untimed passes before timing")
    v.add_argument("--accumulate", type=positive_int, metavar="N", help="measure a training step of N micro-steps "
                   "(gradient accumulation) against the predicted peak")
    v.add_argument("--optimizer", default="adam", help="the optimizer the measured training step runs: sgd, "
                   "momentum, adam (default), adamw, adafactor (torch's, at their defaults); adam8bit, adamw8bit "
                   "(bitsandbytes', on CUDA)")
    v.add_argument("--precision", metavar="NAME", help="measure the training step as it computes: float32, "
                   "bf16-mixed (torch.autocast), fp16-mixed (autocast and a GradScaler; CUDA only), bf16, fp16")
    add_checkpoint(v)
    v.add_argument("--device-memory", metavar="SIZE", help="device memory for --checkpoint auto, e.g. 24GiB")
    v.add_argument("--gpus", type=positive_int, metavar="N", help="train on N CPU processes over torch.distributed's "
                   "gloo backend, standing for N GPUs, and compare each rank's parameter, gradient, optimizer bytes "
                   "and peak with cnnsize's per-GPU figures")
    v.add_argument("--sharding", metavar="NAME", help="with --gpus: ddp (default), zero1, zero2, zero3, fsdp, hsdp")
    v.add_argument("--gpus-per-node", type=positive_int, metavar="N", help="with --sharding hsdp: ranks a node "
                   "(shard within a node, replicate across)")
    v.set_defaults(run=run_validate)

    b = sub.add_parser("bench", help="time the network: median, p10/p90, images/s, GFLOP/s, share of the peak",
                       description="Time the network's forward (or training) pass next to the device's measured "
                                   "matmul peak.")
    _common(b)
    b.add_argument("--runs", type=int, default=50, help="timed runs")
    b.add_argument("--warmup", type=int, default=10, help="untimed runs first")
    b.add_argument("--backward", action="store_true", help="time forward + backward (train mode)")
    b.add_argument("--channels-last", action="store_true", help="use the NHWC memory format")
    b.add_argument("--per-layer", action="store_true", help="also time each layer (perturbs the total)")
    b.add_argument("--no-peak", dest="peak", action="store_false", help="skip measuring the matmul peak")
    b.set_defaults(run=run_bench)


def _common(p) -> None:
    p.add_argument("spec", help="a spec file, a bundled spec name (vgg16), an ONNX file (run under ONNX Runtime), "
                                "or - for standard input")
    p.add_argument("-d", "--device", default="auto", help=DEVICE_HELP)
    p.add_argument("-b", "--batch", type=positive_int, default=1, help="batch size of the run")
    p.add_argument("--dtype", default="float32", help=DTYPE_HELP)
    p.add_argument("-i", "--input", action="append", help="input shape C x H x W, e.g. 3x32x32" + NAMED_INPUTS)
    p.add_argument("--layout", choices=("chw", "hwc"), metavar="LAYOUT",
                   help="hwc reads --input channels-last (32x32x3 is 3x32x32), chw as written; by default a shape "
                        "that looks channels-last is refused")
    p.add_argument("--fit", help="exact or floor (overrides the spec)")
    p.add_argument("--init", action="store_true", help="initialize weights randomly (default: zeros, faster)")
    p.add_argument("--force", action="store_true", help="run even if the predicted memory exceeds what is free")
    p.add_argument("-f", "--format", choices=("table", "json"), metavar="FORMAT",
                   help="table or json (default: from -o FILE's extension, .txt or .json; else table)")
    p.add_argument("-o", "--output", help="write to this file (.txt or .json) instead of standard output")
    p.set_defaults(format_choices=("table", "json"))
    add_width(p)


def _num(value) -> str:
    if isinstance(value, tuple):
        return "×".join(map(str, value))
    if isinstance(value, int):
        return f"{value:,}"
    return "–" if value is None else str(value)


FIGURES = (("output_shape", "Shape"), ("params", "Params"), ("buffers", "Buffers"), ("macs", "MACs"),
           ("activations", "Activations"))


def validation_text(v, color: bool = False, width: int | None = None) -> str:
    """Predicted and measured side by side, a mark per row, then totals, mismatches and timing; ``width`` fits
    the tables to that many cells (figures left out whole, predicted with measured, never shortened)."""
    from ..render.boxes import box_table, fit_columns, hidden_line, wrap

    headers = ["Layer", "Type"]
    for _, label in FIGURES:
        headers += [label, "torch"]
    headers.append("")
    cells, bad = [], set()
    for i, row in enumerate(v.layers):
        line = [row.name, row.type]
        for key, _ in FIGURES:
            f = row.figures.get(key)
            line += ["", ""] if f is None else [_num(f.predicted), _num(f.measured)]
        line.append(OK if row.ok else f"{BAD} " + ", ".join(row.mismatches()))
        if not row.ok:
            bad.add(i)
        cells.append(line)
    title = f"{v.name}: the analysis (left) against torch (right), {v.device}, {v.dtype}, batch {v.batch}"
    pairs = [[2 + 2 * i, 3 + 2 * i] for i in range(len(FIGURES))]
    heads, cells, right, _, hidden = fit_columns(headers, cells, set(range(2, len(headers) - 1)), width,
                                                 compact=False, keep=frozenset({0, len(headers) - 1}), groups=pairs)
    out = [box_table(heads, cells, right, title="\n".join(wrap(title, width, indent="")), highlight=bad,
                     color=color)]
    total_cells = [[key + ("" if f.exact else " (≈)"), _num(f.predicted), _num(f.measured),
                    str(f.batch if f.batch is not None else v.batch), "exact" if f.exact else f.tolerance or "≈",
                    OK if f.ok else BAD]
                   for key, f in v.totals.items()]
    heads, total_cells, right, _, more = fit_columns(["Total", "Predicted", "torch", "Batch", "Tolerance", ""],
                                                     total_cells, {1, 2, 3}, width, compact=False,
                                                     keep=frozenset({0, 1, 2, 5}))
    out.append(box_table(heads, total_cells, right,
                         title="\n".join(wrap("Totals (each at the batch shown, predicted and measured alike)",
                                              width, indent="")),
                         highlight={i for i, f in enumerate(v.totals.values()) if not f.ok}, color=color))
    lines = [hidden_line(hidden + more, width)] if hidden or more else []
    lines += [f"{OK} every figure matches torch"] if v.ok else [f"{BAD} {m}" for m in v.mismatches()]
    lines += [f"note: {n}" for n in v.notes]
    if v.timing is not None:
        lines += v.timing.lines()
    return "".join(out) + "".join(part + "\n" for line in lines for part in wrap(line, width))


def timing_text(t, width: int | None = None) -> str:
    from ..render.boxes import box_table, fit_columns, wrap

    text = "".join(part + "\n" for line in t.lines() for part in wrap(line, width))
    if t.per_layer_ms:
        total = sum(t.per_layer_ms.values()) or 1.0
        cells = [[name, f"{ms:.4f}", f"{ms / total:.1%}"] for name, ms in t.per_layer_ms.items()]
        heads, cells, right, _, _ = fit_columns(["Layer", "Median ms", "Share"], cells, {1, 2}, width,
                                                keep=frozenset({0, 1, 2}))
        title = "Per-layer forward time (synchronized around each layer: perturbs the total)"
        text += box_table(heads, cells, right, title="\n".join(wrap(title, width, indent="")))
    return text


def _analysis(args):
    """The analysis to run: the spec at --input (read as --layout says), --fit, --batch and --dtype."""
    from ..api import load_graph
    from ..engine.walk import analyze_graph

    shape = parse_inputs(args.input)
    return analyze_graph(load_graph(args.spec), input_shape=shape, fit=args.fit, batch=args.batch,
                         dtype=args.dtype, layout=args.layout)


def _onnx_shape(args):
    """--input for an ONNX file (its dynamic axes); the torch-only options are refused, not ignored."""
    from ..core.errors import SpecError

    torch_only = [flag for flag, on in (("--backward", getattr(args, "backward", False)),
                                        ("--channels-last", getattr(args, "channels_last", False)),
                                        ("--per-layer", getattr(args, "per_layer", False)),
                                        ("--accumulate", getattr(args, "accumulate", None)), ("--init", args.init),
                                        ("--precision", getattr(args, "precision", None)),
                                        ("--optimizer", getattr(args, "optimizer", "adam") != "adam"),
                                        ("--checkpoint", getattr(args, "checkpoint", None)),
                                        ("--gpus", getattr(args, "gpus", None)),
                                        ("--sharding", getattr(args, "sharding", None)),
                                        ("--fit", args.fit), ("--layout", args.layout))
                  if on]
    if torch_only:
        raise SpecError(f"{torch_only[0]} is for a spec run in torch; an ONNX file runs as it is under ONNX Runtime",
                        hint=f"leave {torch_only[0]} out")
    if args.dtype != "float32":
        raise SpecError(f"--dtype {args.dtype}: an ONNX file runs at the type it was exported with",
                        hint="leave --dtype out (export the model at that type instead)")
    return onnx_shape(args.spec, parse_inputs(args.input))


def run_validate(args) -> int:
    resolve_named(args)  # torchvision:NAME, timm:NAME: imported first
    from ..spec.sources import is_onnx

    if is_onnx(args.spec):  # under ONNX Runtime: every layer's output shape, and the timing
        from ..runtimes.onnxrt import validate_onnx
        from ..runtimes.onnxrt import validation_text as onnx_text

        result = validate_onnx(args.spec, input_shape=_onnx_shape(args), batch=args.batch, device=args.device,
                               runs=args.runs, warmup=args.warmup, force=args.force)
        text = json_text(result.to_dict()) if args.format == "json" else onnx_text(result)
        write_output(text, args.output, args.format)
        return 0 if result.ok else 1
    if (args.gpus or 1) > 1 or args.sharding is not None:  # --gpus 1 alone: one process, as plan plans one GPU
        return _run_sharded(args)
    from ..executor import validate

    result = validate(_analysis(args), batch=args.batch, device=args.device, dtype=args.dtype, runs=args.runs,
                      warmup=args.warmup, force=args.force, init=args.init, accumulate=args.accumulate or 1,
                      precision=args.precision, checkpoint=args.checkpoint, checkpoint_impl=args.checkpoint_impl,
                      device_memory=args.device_memory, optimizer=args.optimizer)
    if args.format == "json":
        write_output(json_text(result.to_dict()), args.output, "json")
    else:
        text = validation_text(result, color=args.output is None and sys.stdout.isatty(), width=table_width(args))
        write_output(text, args.output, "table")
    return 0 if result.ok else 1


def _run_sharded(args) -> int:
    """``validate --gpus N --sharding S``: N gloo processes on the CPU (cnnsize.executor.distributed)."""
    from ..core.errors import SpecError

    if args.device not in ("auto", "cpu"):
        raise SpecError(f"--gpus runs CPU processes over gloo; --device {args.device} is not measured that way",
                        hint="leave --device out")
    other = [flag for flag, on in (("--accumulate", args.accumulate), ("--precision", args.precision),
                                   ("--checkpoint", args.checkpoint), ("--dtype", args.dtype != "float32"))
             if on]
    if other:
        raise SpecError(f"{other[0]} with --gpus: the processes measure a plain float32 step",
                        hint=f"leave {other[0]} out, or --gpus")
    from ..executor.distributed import validate_sharded

    result = validate_sharded(_analysis(args), gpus=args.gpus or 1, sharding=args.sharding,
                              gpus_per_node=args.gpus_per_node, batch=args.batch, optimizer=args.optimizer,
                              init=args.init)
    if args.format == "json":
        write_output(json_text(result.to_dict()), args.output, "json")
    else:
        write_output(sharded_text(result, color=args.output is None and sys.stdout.isatty(),
                                  width=table_width(args)), args.output, "table")
    return 0 if result.ok else 1


def sharded_text(v, color: bool = False, width: int | None = None) -> str:
    """Each rank's figures: predicted, measured, the difference and a mark."""
    from ..render.boxes import box_table, fit_columns, wrap

    cells, bad = [], set()
    for r, rank in enumerate(v.ranks):
        for key, f in rank.items():
            diff = f.measured - f.predicted
            share = f" ({diff / f.predicted:+.1%})" if f.predicted else ""
            cells.append([str(r), key + ("" if f.exact else " (≈)"), _num(f.predicted), _num(f.measured),
                          f"{diff:+,}{share}", "exact" if f.exact else f.tolerance or "≈", OK if f.ok else BAD])
            if not f.ok:
                bad.add(len(cells) - 1)
    title = (f"{v.name}: {v.sharding} over {v.gpus} CPU processes (gloo), batch {v.batch} per rank, {v.optimizer}; "
             "cnnsize's per-GPU figures (predicted) against each rank's")
    heads, cells, right, _, _ = fit_columns(["Rank", "Figure", "Predicted", "Measured", "Difference", "Tolerance", ""],
                                            cells, {0, 2, 3, 4}, width, compact=False,
                                            keep=frozenset({0, 1, 2, 3, 6}))
    out = box_table(heads, cells, right, title="\n".join(wrap(title, width, indent="")), highlight=bad, color=color)
    lines = [f"{OK} every figure matches torch"] if v.ok else [f"{BAD} {m}" for m in v.mismatches()]
    lines += [f"note: {n}" for n in v.notes]
    return out + "".join(part + "\n" for line in lines for part in wrap(line, width))


def run_bench(args) -> int:
    resolve_named(args)  # torchvision:NAME, timm:NAME: imported first
    from ..spec.sources import is_onnx

    if is_onnx(args.spec):
        from ..runtimes.onnxrt import bench_onnx

        result = bench_onnx(args.spec, input_shape=_onnx_shape(args), batch=args.batch, device=args.device,
                            runs=args.runs, warmup=args.warmup, force=args.force)
        text = json_text(result.to_dict()) if args.format == "json" else timing_text(result, table_width(args))
        write_output(text, args.output, args.format)
        return 0
    from ..executor import bench

    result = bench(_analysis(args), batch=args.batch, device=args.device, dtype=args.dtype, runs=args.runs,
                   warmup=args.warmup, backward=args.backward, channels_last=args.channels_last,
                   per_layer=args.per_layer, peak=args.peak, force=args.force, init=args.init)
    if args.format == "json":
        write_output(json_text(result.to_dict()), args.output, "json")
    else:
        write_output(timing_text(result, width=table_width(args)), args.output, "table")
    return 0
