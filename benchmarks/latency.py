"""Predicted against measured latency: every bundled spec, on this machine, with its calibrated profile.

For each spec the executor builds the network and times it with the machinery of ``cnnsize bench
--per-layer`` (each layer between device synchronizations); cnnsize predicts the same layers from the spec
alone with the device profile (cnnsize.passes.latency). Times are the fastest of --runs; on a CPU with one thread
(the default) they are the thread's CPU time, which leaves out the time spent waiting for a core on a
shared machine (wall time does not). Printed per model: predicted/measured for the forward
pass and for the sum of per-layer times, and the Spearman rank correlation of per-layer times; then the
misses (outside ×1.5) with the layers that cause them, and the verdict against the targets (total within
×1.5 for at least 80% of the specs; Spearman >= 0.8 for most).

    python benchmarks/latency.py                     # CPU, 1 thread, calibrates first unless --profile
    python benchmarks/latency.py --device cuda       # where a GPU is lent, unchanged
    python benchmarks/latency.py --profile cpu       # a profile saved by `cnnsize calibrate`
"""

from __future__ import annotations

import argparse
import statistics
import sys


def ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2  # ties share their mean rank
        i = j + 1
    return out


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var if var else 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1: steadier on a shared machine)")
    p.add_argument("--profile", help="a calibrated profile name or file (default: calibrate now)")
    p.add_argument("--runs", type=int, default=5, help="timed runs per model and per layer")
    p.add_argument("specs", nargs="*", help="bundled spec names (default: all)")
    args = p.parse_args(argv)

    import torch

    import cnnsize
    from cnnsize.executor.builder import build_module, resolve_device
    from cnnsize.executor.calibrate import best_seconds, cpu_clock, measure, per_layer_seconds
    from cnnsize.executor.timing import _Clock, make_input, timed_loop
    from cnnsize.passes.latency import load_profile
    from cnnsize.spec.sources import bundled_names

    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    profile = load_profile(args.profile) if args.profile else measure(args.device, runs=2 * args.runs)
    if profile.threads and args.device == "cpu" and profile.threads != torch.get_num_threads():
        print(f"note: the profile was measured with {profile.threads} threads, this run uses "
              f"{torch.get_num_threads()}")
    eff = ", ".join(f"{k} {v:.2f}" for k, v in sorted(profile.efficiency.items()))
    print(f"profile {profile.name} ({profile.source}): peak {profile.peak('float32') / 1e9:,.1f} GFLOP/s, "
          f"bandwidth {profile.bandwidth / 1e9:,.1f} GB/s, overhead {profile.overhead_s * 1e6:.1f} µs; {eff}")
    dev = resolve_device(args.device)
    clock = _Clock(dev)
    rows, misses = [], []
    print(f"{'spec':22} {'measured':>10} {'predicted':>10} {'pred/meas':>9} {'pred/sum':>9} {'spearman':>8}")
    for name in args.specs or bundled_names():
        a = cnnsize.analyze(name, device_profile=profile)
        model = build_module(None, analysis=a, device=dev)
        x = make_input(a, dev, torch.float32, False)
        with torch.inference_mode():
            if dev.type == "cpu" and cpu_clock():
                forward = best_seconds(lambda m=model, inp=x: m(inp), runs=args.runs, thread=True)
            else:
                times, _ = timed_loop(lambda m=model, inp=x: m(inp), clock, warmup=1, runs=args.runs, progress=False)
                forward = min(times) / 1e3
        layers = per_layer_seconds(model, x, runs=args.runs)
        names = [r.name for r in a.layers[1:]]
        measured = [layers[n] for n in names]
        predicted = [r.predicted_seconds for r in a.layers[1:]]
        total = a.totals["predicted_seconds"]
        rho = spearman(predicted, measured)
        ratio, ratio_sum = total / forward, total / sum(measured)
        rows.append((name, ratio, rho))
        print(f"{name:22} {forward * 1e3:9.2f}ms {total * 1e3:9.2f}ms {ratio:9.2f} {ratio_sum:9.2f} {rho:8.2f}",
              flush=True)
        if not 1 / 1.5 <= ratio <= 1.5:
            worst = sorted(zip(names, predicted, measured, (r.type for r in a.layers[1:])),
                           key=lambda t: -abs(t[1] - t[2]))[:3]
            misses.append((name, ratio, worst))
    within = sum(1 for _, r, _ in rows if 1 / 1.5 <= r <= 1.5)
    good = sum(1 for *_, rho in rows if rho >= 0.8)
    if misses:
        print("\nmisses (predicted/measured outside ×1.5) and the layers that cause them (predicted vs measured):")
        for name, ratio, worst in misses:
            cause = "; ".join(f"{n} ({t}) {p * 1e3:.2f} vs {m * 1e3:.2f} ms" for n, p, m, t in worst)
            print(f"  {name}: ×{ratio:.2f}: {cause}")
    print(f"\ntotal within ×1.5: {within}/{len(rows)} ({within / len(rows):.0%}; target >= 80%); "
          f"Spearman >= 0.8: {good}/{len(rows)} (target: most); median Spearman "
          f"{statistics.median(r for *_, r in rows):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
