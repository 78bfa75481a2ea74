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
"""

from __future__ import annotations

import argparse
import json
import sys

NETWORKS = [("lenet5", None, 8), ("resnet18", (3, 64, 64), 16), ("mobilenet_v2", (3, 64, 64), 16),
            ("densenet121", (3, 64, 64), 8), ("convnext_tiny", (3, 64, 64), 8), ("vit_b_16", (3, 64, 64), 8)]
PRECISIONS = {"cuda": ("float32", "bf16-mixed", "fp16-mixed", "bf16", "fp16"),
              "cpu": ("float32", "bf16-mixed", "bf16")}


def check(spec: str, shape, batch: int, precision: str, device: str) -> dict:
    import cnnsize

    result = cnnsize.validate(spec, input_shape=shape, batch=batch, device=device, runs=0, precision=precision)
    figure = result.totals.get("training_step_peak_bytes")
    if figure is None:
        return {"spec": spec, "precision": precision, "batch": batch, "ok": False, "why": "not measured"}
    return {"spec": spec, "precision": precision, "batch": figure.batch, "predicted": figure.predicted,
            "measured": figure.measured, "error": figure.measured / figure.predicted - 1, "ok": figure.ok,
            "tolerance": figure.tolerance}


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
            record = check(spec, shape, batch, precision, args.device)
            records.append(record)
            if "error" in record:
                print(f"{spec:14} {precision:10} predicted {record['predicted']:>13,} measured "
                      f"{record['measured']:>13,} {record['error']:+.2%} {'ok' if record['ok'] else 'MISS'}",
                      flush=True)
            else:
                print(f"{spec:14} {precision:10} {record['why']}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
