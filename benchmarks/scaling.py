"""Sizing time grows linearly with the number of layers.

Targets (issue 6): a generated spec of 100,000 layers analyzes in at most 12 times the time of a 10,000-layer one,
at 100,000 layers per second or better; the expansion limit admits 1,000,000 layers.

Every run sizes new text (a comment makes each one unique), so nothing comes from the cache of parsed specs:
the times are the whole of ``cnnsize.analyze(text)``, parsing and expanding included, split into its two parts.

    python benchmarks/scaling.py
"""

from __future__ import annotations

import itertools
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


def seconds(layers: int, runs: int = 3) -> tuple[float, float, float]:
    """Best (whole, parse and expand, analysis) seconds of ``cnnsize.analyze`` over ``runs`` runs on fresh text."""
    best = (float("inf"), 0.0, 0.0)
    for _ in range(runs):
        text = spec(layers) + f"# run {next(_unique)}\n"
        with no_gc():  # as cnnsize.analyze does
            start = time.perf_counter()
            graph = cnnsize.load(text)
            parsed = time.perf_counter()
            analysis = analyze_graph(graph)
            done = time.perf_counter()
        assert len(analysis.layers) == layers // 3 * 3 + 1
        best = min(best, (done - start, parsed - start, done - parsed))
    return best


def main() -> None:
    results = {n: seconds(n) for n in (10_000, 100_000)}
    print(f"{'layers':>8} {'total ms':>9} {'parse ms':>9} {'size ms':>9} {'layers/s':>10}")
    for n, (total, parse, size) in results.items():
        print(f"{n:8,} {total * 1e3:9.1f} {parse * 1e3:9.1f} {size * 1e3:9.1f} {n / total:10,.0f}")
    ratio = results[100_000][0] / results[10_000][0]
    rate = 100_000 / results[100_000][0]
    print(f"100,000 / 10,000 layers: {ratio:.1f}x the time (target at most 12x); "
          f"{rate:,.0f} layers/s (target 100,000)")
    print("meets the targets" if ratio <= 12 and rate >= 100_000 else "misses the targets")
    start = time.perf_counter()
    graph = cnnsize.load(spec(1_000_000))
    took = time.perf_counter() - start
    print(f"1,000,000 layers expand within the limit: {len(graph.nodes):,} nodes in {took:.1f} s")


if __name__ == "__main__":
    main()
