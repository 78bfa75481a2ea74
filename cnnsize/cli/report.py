"""`cnnsize report` and `cnnsize specs`."""

from __future__ import annotations

import os
import sys

from .common import (
    NAMED_INPUTS,
    add_checkpoint,
    add_format,
    add_grad_scaler,
    add_width,
    onnx_shape,
    parse_inputs,
    positive_int,
    table_width,
    write_output,
)
from .importer import resolve_named

LAYOUT_HELP = ("how to read --input (and the spec's input): hwc converts channels-last 32x32x3 to 3x32x32, chw "
               "keeps it as written (default: channels first, and a shape that looks channels-last is refused)")
# the table's column keys (cnnsize.render.table.COLUMNS), listed here so that help needs no import
COLUMN_KEYS = ("name", "type", "output", "weights", "biases", "params", "buffers", "activations", "connections",
               "macs", "flops", "rf", "memory", "share")


def register(sub) -> None:
    p = sub.add_parser("report", help="size every layer of a network and print the table with totals",
                       description="Size every layer of a network and print the table with totals.")
    p.add_argument("spec", help="a spec file, a bundled spec name (vgg16), an ONNX file (model.onnx, with "
                                "cnnsize[onnx]), or - for standard input")
    p.add_argument("-i", "--input", action="append",
                   help="input shape C x H x W, e.g. 3x224x224 (or 3xHxW; an ONNX model's dynamic axes take their "
                        "sizes from it)" + NAMED_INPUTS)
    p.add_argument("--layout", choices=("chw", "hwc"), metavar="LAYOUT", help=LAYOUT_HELP)
    p.add_argument("-b", "--batch", type=positive_int, default=1,
                   help="batch size (activations, MACs, memory are per batch)")
    p.add_argument("--dtype", default="float32", help="float32, float16, bfloat16, int8 or float64")
    p.add_argument("--fit", help="exact (default: a filter that does not fit is an error) or floor")
    add_format(p)
    p.add_argument("-o", "--output", help="write to this file (atomically) instead of standard output")
    c = p.add_argument_group("conventions, traffic and latency")
    c.add_argument("--count", metavar="NAME", help="add each layer's figure as a tool counts it: torch, torchinfo, "
                   "fvcore, ptflops, ptflops-aten, thop, torchscan-flops, torchscan-macs, torchscan-dmas")
    c.add_argument("--train", action="store_true", help="the training step's work: each layer's backward MACs "
                   "(input and weight gradients) and the step's total; and --count's figures for the network in "
                   "training mode (fvcore counts a training-mode batch norm otherwise); the default is eval mode")
    c.add_argument("--estimators", action="store_true", help="add what accelerate's estimate-memory and DeepSpeed's "
                   "ZeRO-2 and ZeRO-3 estimators say for this network, and what each leaves out of the training step")
    c.add_argument("--traffic", action="store_true", help="add bytes read and written and FLOPs per byte per layer")
    c.add_argument("--device-profile", metavar="NAME|FILE", help="add the predicted time per layer on a device: "
                   "a bundled datasheet profile (a100, h100, h200, l4, t4, rtx4090), one 'cnnsize calibrate' "
                   "measured ('cpu', 'cuda', or 'local': this machine's, its cuda one if measured) or a profile file")
    t = p.add_argument_group("table")
    t.add_argument("--columns", metavar="LIST",
                   help="the table's columns, e.g. name,output,params,macs (of: " + ", ".join(COLUMN_KEYS) + ")")
    t.add_argument("--wide", action="store_true", help="every column in full, however wide the terminal")
    t.add_argument("--width", type=int, metavar="N",
                   help="fit the table to N columns (default: the terminal's, or COLUMNS; a pipe gets it in full)")
    t.add_argument("--depth", type=int, metavar="N",
                   help="fold layers nested deeper than N (by their dotted names: blocks, repeats) into one row each")
    g = p.add_argument_group("memory")
    g.add_argument("--optimizer", default="adam", help="for the training estimate: sgd, momentum, adam, adamw, "
                   "adafactor (torch.optim.Adafactor), adam8bit, adamw8bit (bitsandbytes)")
    g.add_argument("--precision", metavar="NAME", help="how training computes: float32 (default), bf16-mixed, "
                   "fp16-mixed (torch.autocast: each op in 16 bits or float32 as autocast's lists say, float32 master "
                   "weights and gradients; fp16 with a GradScaler), bf16, fp16 (everything in that type)")
    g.add_argument("--amp", action="store_true", help="the same as --precision fp16-mixed")
    add_grad_scaler(g)
    g.add_argument("--device", default="cuda", help="device kind the training estimate is for: cuda or cpu")
    g.add_argument("--freeze-until", metavar="LAYER", help="freeze this layer and all before it (fine-tuning)")
    g.add_argument("--accumulate", type=positive_int, metavar="N", help="gradient accumulation: N micro-steps of "
                   "--batch samples a training step (effective batch N × batch); the step's work is N forwards and "
                   "backwards, and its memory peak holds the gradients between micro-steps (implies --train)")
    add_checkpoint(g)
    g.add_argument("--gpus", type=positive_int, default=1, metavar="N", help="training on N GPUs: what each holds "
                   "and sends a step under --sharding (--batch is each GPU's; implies --train)")
    g.add_argument("--sharding", metavar="NAME", help="ddp (default with --gpus), zero1 (ZeroRedundancyOptimizer), "
                   "zero2, zero3 or fsdp (FSDP's SHARD_GRAD_OP, FULL_SHARD), hsdp (sharded within a node)")
    g.add_argument("--gpus-per-node", type=positive_int, metavar="N", help="GPUs a node, for hsdp (default 8)")
    g.add_argument("--offload", metavar="WHAT", help="optimizer (ZeRO-Offload: the optimizer state and its step in "
                   "host memory) or params (ZeRO-3/FSDP: parameters too, fetched per layer): per-GPU peak, host "
                   "memory and host-link bytes a step (implies --train)")
    g.add_argument("--max-batch", action="store_true", help="find the largest batch that fits --device-memory")
    g.add_argument("--device-memory", metavar="SIZE", help="device memory for --max-batch, e.g. 24GiB")
    p.set_defaults(run=run_report)

    s = sub.add_parser("specs", help="list the bundled specs with their totals (--kinds: the layer kinds)",
                       description="List the bundled specs with their totals, or (--kinds) every layer kind a spec "
                                   "can use, with what it is.")
    s.add_argument("--kinds", action="store_true", help="list the layer kinds instead, one a line")
    add_format(s)
    add_width(s)
    s.set_defaults(run=run_specs, output=None)


def run_report(args) -> int:
    resolve_named(args)  # torchvision:NAME, timm:NAME: imported first
    from .. import passes
    from ..api import load_graph
    from ..core.errors import SpecError
    from ..engine.walk import analyze_graph
    from ..render import render

    if args.max_batch and args.device_memory is None:
        raise SpecError("--max-batch needs --device-memory", hint="e.g. --max-batch --device-memory 24GiB")
    from ..core.numeric import no_gc
    from ..spec.sources import is_onnx

    shape = parse_inputs(args.input)
    with no_gc():
        graph = load_graph(args.spec, input_shape=onnx_shape(args.spec, shape))
    if is_onnx(args.spec):  # the model's input sized its dynamic axes: the graph has that input
        shape = None

    def at(batch, amp=args.amp):
        return analyze_graph(graph, input_shape=shape, batch=batch, dtype=args.dtype, fit=args.fit,
                             optimizer=args.optimizer, amp=amp, device=args.device,
                             precision=args.precision if amp == args.amp else None,  # --estimators' other one
                             freeze_until=args.freeze_until, layout=args.layout, accumulate=args.accumulate,
                             checkpoint=args.checkpoint, checkpoint_impl=args.checkpoint_impl,
                             device_memory=args.device_memory, grad_scaler=args.grad_scaler)

    with no_gc():
        analysis = at(args.batch)
    passes.apply(analysis, count=args.count, count_mode="train" if args.train else "eval", traffic=args.traffic,
                 device_profile=local_profile(args.device_profile) if args.device_profile else None,
                 training=args.train, accumulate=args.accumulate, gpus=args.gpus, sharding=args.sharding,
                 gpus_per_node=args.gpus_per_node, offload=args.offload)
    if args.estimators:
        from ..passes import estimators

        estimators.apply(analysis, at(args.batch, False) if args.amp else analysis,
                         analysis if args.amp else at(args.batch, True))
    if args.max_batch:
        from ..engine.memory import max_batch, parse_bytes

        analysis.max_batch = max_batch(lambda b: at(b).totals["memory"], parse_bytes(args.device_memory))
    if args.depth is not None:
        analysis = analysis.collapse(args.depth)
    color = args.output is None and sys.stdout.isatty()
    from ..render.boxes import terminal_width
    from ..render.table import parse_columns

    columns = None if args.columns is None else parse_columns(args.columns)
    if args.width is not None and args.width < 40:
        from ..core.errors import SpecError

        raise SpecError(f"--width {args.width} is too narrow for a table", hint="give 40 or more")
    width = None if args.wide else args.width if args.width is not None else \
        None if args.output is not None else terminal_width()
    write_output(render(analysis, args.format, color=color, width=width, columns=columns), args.output, args.format)
    return 0


def local_profile(name: str) -> str:
    """'local' names the profile 'cnnsize calibrate' saved for this machine: its cuda one if measured, else cpu's."""
    if name != "local":
        return name
    from ..core.errors import SpecError
    from ..passes.latency import profile_path

    found = [device for device in ("cuda", "cpu") if os.path.isfile(profile_path(device))]
    if not found:
        raise SpecError(f"--device-profile local: no profile measured on this machine in "
                        f"{os.path.dirname(profile_path('cpu'))}",
                        hint="run 'cnnsize calibrate' first, or name a datasheet profile (a100, h100, h200, l4, t4, "
                             "rtx4090)")
    return found[0]


def run_kinds() -> int:
    """Every layer kind, one a line, with the first sentence of what it is."""
    from ..layers import REGISTRY

    lines = []
    for name in sorted(REGISTRY):
        doc = " ".join((REGISTRY[name].__doc__ or "").split())
        lines.append(f"{name:<18} {doc.split('. ')[0].rstrip('.')}")
    from ..render.boxes import terminal_width, wrap

    width = terminal_width()
    write_output("".join(part + "\n" for line in lines for part in wrap(line, width, indent=" " * 19)), None)
    return 0


def run_specs(args) -> int:
    if args.kinds:
        return run_kinds()
    from ..core.safe import json_text
    from ..engine.walk import analyze_graph
    from ..render.grid import Column, Grid, render_grid
    from ..render.text import human_count, num, shape_text
    from ..spec.sources import bundled_names, load_graph

    records = []
    for name in bundled_names():
        graph = load_graph(name)
        t = analyze_graph(graph).totals
        rf = t["receptive_field"]
        records.append({"name": name, "input_shape": list(graph.input_shape), "params": t["params"],
                        "macs": t["macs"], "activations": t["activations"], "weight_layers": t["weight_layers"],
                        "receptive_field": rf.size[0] if rf else None})
    if args.format == "json":  # a plain list of records, one per spec
        write_output(json_text(records), None)
        return 0
    columns = [Column("name", "Spec", right=False), Column("input_shape", "Input", right=False, text=shape_text),
               Column("params", "Params", text=num), Column("macs", "MACs", text=human_count),
               Column("activations", "Activations", text=num), Column("weight_layers", "Weight layers"),
               Column("receptive_field", "RF")]
    text = render_grid(Grid("Bundled specs", columns, records), args.format, color=sys.stdout.isatty(),
                       width=table_width(args))
    write_output(text, None)
    return 0
