"""Symbolic reports: every bundled image spec reported with a symbolic input (``--input CxHxW``), in table and JSON.

Issue 15's bound: each reports in at most 5 s. Each report runs as its own ``cnnsize`` process, as a user runs it,
and is timed by its CPU time (user + system, which a busy machine inflates far less than wall time). The
baseline, measured in the same run, is the same spec reported at its numeric input: the ratio says what the
symbols cost. Specs over the bound are listed at the end.

    python benchmarks/symbolic_reports.py [SPEC ...]
"""

from __future__ import annotations

import resource
import subprocess
import sys

from cnnsize import load
from cnnsize.spec.sources import bundled_names

BOUND_S = 5.0


def cpu_seconds(args: list[str]) -> float:
    """The CPU time of one ``cnnsize`` run (its output discarded)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "cnnsize", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(names: list[str]) -> int:
    over = []
    print(f"{'spec':24} {'format':6} {'numeric s':>10} {'symbolic s':>11} {'ratio':>6}")
    for name in names:
        shape = load(name).input_shape
        if len(shape) != 3:
            continue  # the symbolic input is C x H x W
        for fmt in ("table", "json"):
            numeric = cpu_seconds(["report", name, "-f", fmt])
            symbolic = cpu_seconds(["report", name, "--input", f"{shape[0]}xHxW", "-f", fmt])
            print(f"{name:24} {fmt:6} {numeric:10.2f} {symbolic:11.2f} {symbolic / numeric:6.1f}")
            if symbolic > BOUND_S:
                over.append(f"{name} ({fmt}): {symbolic:.2f} s")
    print(f"over {BOUND_S:g} s: " + (", ".join(over) if over else "none"))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or bundled_names()))
