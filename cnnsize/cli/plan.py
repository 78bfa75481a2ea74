"""`cnnsize plan SPEC --device h100`: how to train a network on a device (cnnsize.passes.plan)."""

from __future__ import annotations

import sys

from .common import (
    add_format,
    add_grad_scaler,
    add_output,
    add_width,
    parse_inputs,
    positive_int,
    table_width,
    write_output,
)
from .importer import resolve_named

PLAN_FORMATS = ("table", "text", "markdown", "json")  # text: the table


def register(sub) -> None:
    p = sub.add_parser("plan", help="which ways to train a network fit a device, fastest first",
                       description="Every configuration of precision x gradient accumulation x sharding (x "
                                   "activation checkpointing) for training the network on a device: each one's "
                                   "per-GPU peak, whether it fits, its step's work and predicted time, fitting ones "
                                   "first by predicted samples per second; and what the estimators people use say.")
    p.add_argument("spec", help="a spec file, a bundled spec name (resnet50), an ONNX file, or - for standard input")
    p.add_argument("--device", required=True, metavar="NAME|FILE",
                   help="the device: a bundled datasheet profile (a100, h100, h200, l4, t4, rtx4090), a calibrated "
                        "one (cpu, cuda) or a profile file")
    p.add_argument("--device-memory", metavar="SIZE", help="the device's memory, e.g. 40GiB (default: the profile's)")
    p.add_argument("-b", "--batch", type=positive_int, default=None,
                   help="samples each GPU takes a step, split into micro-batches by accumulation (default 32)")
    p.add_argument("--gpus", type=positive_int, default=1, metavar="N", help="GPUs that train together (default 1)")
    p.add_argument("--gpus-per-node", type=positive_int, metavar="N", help="GPUs a node: adds hsdp where --gpus "
                   "makes several nodes")
    p.add_argument("--precision", metavar="NAME", help="only this precision: float32, bf16-mixed, fp16-mixed, bf16, "
                   "fp16 (default: all)")
    p.add_argument("--accumulate", type=positive_int, metavar="N", help="only N micro-steps a step (default: 1, 2, "
                   "4, ... that divide --batch)")
    p.add_argument("--sharding", metavar="NAME", help="only this sharding: ddp, zero1, zero2, zero3, fsdp, hsdp "
                   "(default: all, with --gpus 2 or more)")
    p.add_argument("--checkpoint", metavar="SETTING", help="only this activation checkpointing: every:N (N blocks a "
                   "segment), layer or block names joined by commas, auto (the every:N that fits the device with "
                   "the least recomputed) or 'none'; default: each of none, every:1, every:2, every:4")
    p.add_argument("--max-batch", action="store_true", help="each configuration at the largest per-GPU batch that "
                   "fits instead of --batch")
    p.add_argument("--all", action="store_true", dest="every", help="every accumulation, also more micro-steps "
                   "than the fewest that fit (slower by the roofline, so left out by default)")
    p.add_argument("--optimizer", default="adam", help="sgd, momentum, adam (default), adamw, adafactor, adam8bit, "
                   "adamw8bit; several joined by commas, or any (every one), to search them too: each configuration "
                   "then shows its optimizer")
    add_grad_scaler(p)
    p.add_argument("--offload", metavar="WHAT", help="every configuration offloads to host memory: optimizer "
                   "(ZeRO-Offload) or params (ZeRO-3/FSDP, parameters too); its copies timed at the profile's host "
                   "link. Several joined by commas (none: no offload), or any (none, optimizer, params), to search "
                   "them too: each configuration then shows its offload")
    p.add_argument("--freeze-until", metavar="LAYER", help="freeze this layer and all before it (fine-tuning)")
    p.add_argument("-i", "--input", action="append", help="input shape C x H x W, e.g. 3x224x224")
    p.add_argument("--fit", help="exact (default) or floor")
    add_format(p, PLAN_FORMATS)
    add_output(p)
    add_width(p)
    p.set_defaults(run=run)


def run(args) -> int:
    resolve_named(args)  # torchvision:NAME, timm:NAME, ultralytics:CONFIG: imported first
    from ..api import load_graph
    from ..core.errors import SpecError
    from ..core.numeric import no_gc
    from ..passes.plan import plan

    if args.max_batch and args.batch is not None:
        raise SpecError("--max-batch finds each configuration's batch; --batch gives one",
                        hint="give one of --max-batch and --batch")
    with no_gc():
        graph = load_graph(args.spec)
        found = plan(graph, args.device, batch=args.batch or 32, gpus=args.gpus, gpus_per_node=args.gpus_per_node,
                     precision=args.precision, accumulate=args.accumulate, sharding=args.sharding,
                     device_memory_size=args.device_memory, find_max_batch=args.max_batch, optimizer=args.optimizer,
                     freeze_until=args.freeze_until, input_shape=parse_inputs(args.input), fit=args.fit,
                     every=args.every, checkpoint=args.checkpoint, grad_scaler=args.grad_scaler,
                     offload=args.offload)
    if args.format == "json":
        from ..core.safe import json_text

        write_output(json_text(found), args.output, "json")
        return 0
    from ..render.grid import render_grid
    from ..render.views import plan_grid

    fmt = "table" if args.format == "text" else args.format
    color = args.output is None and sys.stdout.isatty()
    write_output(render_grid(plan_grid(found), fmt, color=color, width=table_width(args)), args.output, fmt)
    return 0
