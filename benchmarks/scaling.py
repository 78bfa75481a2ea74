"""Sizing time grows linearly with the number of layers.

Targets (issue 23): a generated spec of 100,000 layers goes from YAML text to Analysis at 200,000 layers per
second or better, and the time stays linear up to 1,000,000 layers: 1,000,000 layers take at most 12 times the
time of 100,000 (and 100,000 at most 12 times that of 10,000).

Every run sizes new text (a comment makes each one unique), so nothing comes from the cache of parsed specs:
the times are the whole of ``cnnsize.analyze(text)`` (YAML, expansion, topology, the walk and the memory budget),
split into its two parts: parsing (``cnnsize.load``: YAML, expansion, topology) and sizing (``analyze_graph``).
Wall time and CPU time are both shown, with the load average: on a shared machine the CPU time is the steadier.
An Analysis makes its row objects (``analysis.layers``) when they are first read, which a caller of the totals
never does: the last column is the CPU time of reading every row once more, which a report of every layer adds.

    python benchmarks/scaling.py [--runs 3] [--no-million]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time

import cnnsize
from cnnsize.core.numeric import no_gc
from cnnsize.engine.walk import analyze_graph

_unique = itertools.count()


def spec(layers: int) -> str:
    """A valid chain of ``layers`` layers: conv, bn, relu blocks written with one repeat."""
    return ("name: chain\ninput: [8, 16, 16]\nlayers:\n"
            f"  - repeat: {layers // 3}\n    layers:\n"
            "      - conv: {filters: 8, kernel: 3, pad: 1, bias: false}\n      - bn\n      - relu: {inplace: true}\n")


def seconds(layers: int, runs: int = 3) -> dict[str, float]:
    """Median seconds of ``cnnsize.analyze`` on fresh text over ``runs`` runs: wall (whole, parse, size) and CPU."""
    got: dict[str, list[float]] = {"total": [], "parse": [], "size": [], "cpu": [], "rows": []}
    for _ in range(runs):
        text = spec(layers) + f"# run {next(_unique)}\n"
        with no_gc():  # as cnnsize.analyze does
            cpu = time.process_time()
            start = time.perf_counter()
            graph = cnnsize.load(text)
            parsed = time.perf_counter()
            analysis = analyze_graph(graph)
            done = time.perf_counter()
            cpu = time.process_time() - cpu
            rows = time.process_time()
            assert len(analysis.layers) == layers // 3 * 3 + 1
            rows = time.process_time() - rows
        for key, value in (("total", done - start), ("parse", parsed - start), ("size", done - parsed), ("cpu", cpu),
                           ("rows", rows)):
            got[key].append(value)
        del graph, analysis
    return {key: statistics.median(values) for key, values in got.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-million", action="store_true", help="skip the 1,000,000-layer run (about 10 s)")
    args = parser.parse_args()
    sizes = (10_000, 100_000) if args.no_million else (10_000, 100_000, 1_000_000)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    results = {n: seconds(n, args.runs if n < 1_000_000 else 1) for n in sizes}
    print(f"{'layers':>9} {'total ms':>9} {'parse ms':>9} {'size ms':>9} {'CPU ms':>9} {'layers/s':>10} "
          f"{'CPU layers/s':>13} {'rows CPU ms':>12}")
    for n, r in results.items():
        print(f"{n:9,} {r['total'] * 1e3:9.1f} {r['parse'] * 1e3:9.1f} {r['size'] * 1e3:9.1f} {r['cpu'] * 1e3:9.1f} "
              f"{n / r['total']:10,.0f} {n / r['cpu']:13,.0f} {r['rows'] * 1e3:12.1f}")
    rate, cpu_rate = 100_000 / results[100_000]["total"], 100_000 / results[100_000]["cpu"]
    ratios = [(f"{b:,} / {a:,} layers", results[b]["total"] / results[a]["total"])
              for a, b in zip(sizes, sizes[1:])]
    for label, ratio in ratios:
        print(f"{label}: {ratio:.1f}x the time (target at most 12x)")
    print(f"100,000 layers: {rate:,.0f} layers/s wall, {cpu_rate:,.0f} per CPU second (target 200,000)")
    met = rate >= 200_000 and all(ratio <= 12 for _, ratio in ratios)
    print("meets the targets" if met else "misses the targets")


if __name__ == "__main__":
    main()
