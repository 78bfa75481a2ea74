"""Analysis time grows linearly with the number of layers.

Targets (issue 6): a generated spec of 100,000 layers analyzes in at most 12 times the time of a
10,000-layer one, at 100,000 layers per second or better; the expansion limit admits 1,000,000 layers.

    python benchmarks/scaling.py
"""

from __future__ import annotations

import time

import cnnsize


def spec(layers: int) -> str:
    """A valid chain of ``layers`` layers: conv, bn, relu blocks written with one repeat."""
    return ("name: chain\ninput: [8, 16, 16]\nlayers:\n"
            f"  - repeat: {layers // 3}\n    layers:\n"
            "      - conv: {filters: 8, kernel: 3, pad: 1, bias: false}\n      - bn\n      - relu: {inplace: true}\n")


def seconds(layers: int, runs: int = 3) -> float:
    text = spec(layers)
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        analysis = cnnsize.analyze(text)
        best = min(best, time.perf_counter() - start)
    assert len(analysis.layers) == layers // 3 * 3 + 1
    return best


def main() -> None:
    small, large = seconds(10_000), seconds(100_000, runs=1)
    print(f"10,000 layers:  {small * 1e3:8.1f} ms  ({10_000 / small:,.0f} layers/s)")
    print(f"100,000 layers: {large * 1e3:8.1f} ms  ({100_000 / large:,.0f} layers/s)")
    ratio = large / small
    print(f"ratio {ratio:.1f} (target at most 12); rate target 100,000 layers/s: "
          f"{'met' if ratio <= 12 and 100_000 / large >= 100_000 else 'missed'}")
    start = time.perf_counter()
    graph = cnnsize.load(spec(1_000_000))
    took = time.perf_counter() - start
    print(f"1,000,000 layers expand within the limit: {len(graph.nodes):,} nodes in {took:.1f} s")


if __name__ == "__main__":
    main()
