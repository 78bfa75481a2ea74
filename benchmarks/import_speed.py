"""Import speed: cnnsize.from_torch against torchinfo.summary on the same built model.

Issue 23's target: on the same built resnet152 and convnext_tiny, from_torch is at least 2.5 times faster than
torchinfo.summary. Both measured here, in this run, on the same module (built by cnnsize from its bundled
spec, weights on CPU): from_torch traces on fake tensors (no values computed), torchinfo runs a real forward.
The ratio printed is torchinfo's time over from_torch's (2.5 or more meets the target), each the median of five
runs taken in turns, torch on one thread. from_torch's spec text (``.yaml``) is written when first asked for, as
torchinfo's table is.

    python benchmarks/import_speed.py [SPEC ...]      # needs torch and torchinfo (pip install torchinfo)
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import cnnsize


def medians_s(fns, runs: int = 5) -> list[float]:
    """The median time of each function, run in turns (ours, theirs, ours, ...) so that a busy machine's load falls
    on both alike."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, got in zip(fns, times):
            start = time.perf_counter()
            fn()
            got.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main(names: list[str]) -> None:
    import torch
    import torchinfo

    from cnnsize.executor.builder import build_module

    torch.set_num_threads(1)  # a fair, quiet comparison on a shared machine
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'model':16s} {'from_torch s':>13s} {'torchinfo s':>12s} {'ratio':>6s}  params (cnnsize / torchinfo)")
    worst = float("inf")
    for name in names:
        a = cnnsize.analyze(name, fit="floor")
        model = build_module(name, fit="floor").eval()
        shape = (1, *a.input_shape)
        ours, theirs = medians_s([lambda m=model, s=a.input_shape, n=name: cnnsize.from_torch(m, s, name=n),
                                  lambda m=model, s=shape: torchinfo.summary(m, input_size=s, verbose=0)])
        params = cnnsize.from_torch(model, a.input_shape).analyze().totals["params"]
        info = torchinfo.summary(model, input_size=shape, verbose=0).total_params
        print(f"{name:16s} {ours:13.2f} {theirs:12.2f} {theirs / ours:6.2f}  {params:,} / {info:,}")
        worst = min(worst, theirs / ours)
    print(f"target: from_torch at least 2.5x faster than torchinfo on each model: {worst:.2f}x at worst, "
          f"{'met' if worst >= 2.5 else 'missed'}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["resnet152", "convnext_tiny"])
