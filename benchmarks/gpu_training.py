"""The training step's peak per precision on a GPU: cnnsize's prediction against torch.cuda.max_memory_allocated.

For each network and precision, ``cnnsize validate``'s own measurement runs (cnnsize.executor.validation._step_peak):
a steady-state Adam step (the second), its forward under torch.autocast for bf16-mixed and fp16-mixed, fp16-mixed
with a torch.amp.GradScaler (scale, backward, step, update), bf16 and fp16 with the model in that dtype; the peak is
the caching allocator's max_memory_allocated beyond what was allocated before the step, compared within validate's
CUDA tolerance (10% + 64 MiB: the allocator's rounding, cuDNN's workspaces). The CUDA autocast lists (layer norm,
group norm and softmax in float32) are torch's, taken from its source: this is where they are checked.

    python benchmarks/gpu_training.py                 # CUDA: every network at every precision, exit 1 on a miss
    python benchmarks/gpu_training.py --device cpu    # the CPU's share (float32, bf16-mixed, bf16), as the tests
    python benchmarks/gpu_training.py --json out.json # the figures, one record per network and precision

On CUDA it also checks, per network, what the CPU cannot: bitsandbytes' 8-bit Adam and AdamW (``validate
--optimizer adam8bit``: the kernel's state and step, no float32 copies), and the GPU's peak with the optimizer
offloaded to host memory (ZeRO-Offload's step, done by hand: the gradients copied to a float32 copy of the
parameters in host memory, torch's Adam stepped there, the parameters copied back) against ``analyze(...,
offload="optimizer")``'s ``per_gpu_peak_bytes``, within the same tolerance. Parameter offload (FSDP's CPUOffload,
DeepSpeed's ZeRO-Infinity) needs a process group and is not run here.
"""

from __future__ import annotations

import argparse
import json
import sys

NETWORKS = [("lenet5", None, 8), ("resnet18", (3, 64, 64), 16), ("mobilenet_v2", (3, 64, 64), 16),
            ("densenet121", (3, 64, 64), 8), ("convnext_tiny", (3, 64, 64), 8), ("vit_b_16", (3, 64, 64), 8)]
PRECISIONS = {"cuda": ("float32", "bf16-mixed", "fp16-mixed", "bf16", "fp16"),
              "cpu": ("float32", "bf16-mixed", "bf16")}


def check(spec: str, shape, batch: int, precision: str, device: str, optimizer: str = "adam") -> dict:
    """validate's training step at a precision, or in float32 with another optimizer (an 8-bit one: its state sizes,
    bitsandbytes' blockwise layout), its peak against cnnsize's; the record names the optimizer in the precision's
    place when it is not Adam."""
    import cnnsize

    result = cnnsize.validate(spec, input_shape=shape, batch=batch, device=device, runs=0, precision=precision,
                              optimizer=optimizer)
    figure = result.totals.get("training_step_peak_bytes")
    label = precision if optimizer == "adam" else optimizer
    if figure is None:
        return {"spec": spec, "precision": label, "batch": batch, "ok": False, "why": "not measured"}
    return {"spec": spec, "precision": label, "batch": figure.batch, "predicted": figure.predicted,
            "measured": figure.measured, "error": figure.measured / figure.predicted - 1, "ok": figure.ok,
            "tolerance": figure.tolerance}


EIGHT_BIT = ("adam8bit", "adamw8bit")  # bitsandbytes' (pip install bitsandbytes), CUDA only


def check_offload(spec: str, shape, batch: int) -> dict:
    """The GPU's peak over a steady-state step with Adam's state and step in host memory (by hand, as ZeRO-Offload
    does it) from before the model is built, against cnnsize's per-GPU peak with offload="optimizer"."""
    import torch

    import cnnsize
    from cnnsize.executor.validation import MEMORY_SLACK, MEMORY_TOLERANCE, _training_batch

    first = cnnsize.analyze(spec, input_shape=shape, batch=batch, device="cuda")
    batch = _training_batch(first)
    analysis = cnnsize.analyze(spec, input_shape=shape, batch=batch, device="cuda", offload="optimizer",
                               training=True)
    predicted = analysis.totals["training"]["per_gpu_peak_bytes"]
    dev = torch.device("cuda")
    torch.cuda.synchronize(dev)
    base = torch.cuda.memory_allocated(dev)
    model = cnnsize.build(analysis, device="cuda", init=True)
    params = [p for p in model.parameters() if p.requires_grad]
    host = [p.detach().to("cpu", copy=True).requires_grad_(True) for p in params]
    optimizer = torch.optim.Adam(host)

    def step() -> None:
        x = torch.randn(batch, *analysis.input_shape, device=dev)
        model.train()
        loss = sum(y.float().sum() for y in model.with_heads(x))
        loss.backward()
        del loss
        for p, h in zip(params, host, strict=True):
            h.grad = p.grad.to("cpu")
            p.grad = None
        optimizer.step()
        with torch.no_grad():
            for p, h in zip(params, host, strict=True):
                p.copy_(h, non_blocking=False)
        optimizer.zero_grad(set_to_none=True)

    step()
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    step()
    torch.cuda.synchronize(dev)
    measured = torch.cuda.max_memory_allocated(dev) - base
    ok = abs(measured - predicted) <= predicted * MEMORY_TOLERANCE + MEMORY_SLACK
    return {"spec": spec, "precision": "offload optimizer", "batch": batch, "predicted": predicted,
            "measured": measured, "error": measured / predicted - 1, "ok": ok}


def _print(record: dict) -> None:
    if "error" in record:
        print(f"{record['spec']:14} {record['precision']:17} predicted {record['predicted']:>13,} measured "
              f"{record['measured']:>13,} {record['error']:+.2%} {'ok' if record['ok'] else 'MISS'}", flush=True)
    else:
        print(f"{record['spec']:14} {record['precision']:17} {record['why']}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--json", metavar="FILE", help="write the records here too")
    parser.add_argument("--only", metavar="SPEC", help="one network of the list")
    args = parser.parse_args(argv)
    records = []
    for spec, shape, batch in NETWORKS:
        if args.only and spec != args.only:
            continue
        for precision in PRECISIONS[args.device]:
            records.append(check(spec, shape, batch, precision, args.device))
            _print(records[-1])
        if args.device != "cuda":
            continue  # 8-bit optimizers and offload: CUDA only
        for optimizer in EIGHT_BIT:
            records.append(check(spec, shape, batch, "float32", "cuda", optimizer))
            _print(records[-1])
        records.append(check_offload(spec, shape, batch))
        _print(records[-1])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
