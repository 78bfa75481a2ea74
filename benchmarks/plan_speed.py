"""`cnnsize plan SPEC --device h100` for every bundled spec, as a whole process, against `python -c pass` measured in
the same run.

Target (issue 26): every bundled spec answers in under a second. Each spec's median wall time and CPU time over
``--runs`` runs, and the ratio of its wall time to Python's own start-up; on a shared machine the CPU time is the
steadier figure (the wall time grows with the others' load).

    python benchmarks/plan_speed.py [--runs 3] [--device h100] [--gpus 1] [--batch 32] [SPEC ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_startup import once  # noqa: E402 - the same timing of one process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="*", help="bundled spec names (default: all)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="h100")
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    from cnnsize.spec.sources import bundled_names

    names = args.specs or bundled_names()
    python = [sys.executable, "-c", "pass"]
    start = statistics.median(once(python)[0] for _ in range(max(args.runs, 5)))
    print(f"python -c pass: {start * 1000:.0f} ms (median of {max(args.runs, 5)})")
    print(f"{'spec':<22} {'wall ms':>8} {'cpu ms':>8} {'x start-up':>10}")
    worst = 0.0
    for name in names:
        cmd = [sys.executable, "-m", "cnnsize", "plan", name, "--device", args.device, "--gpus", str(args.gpus),
               "--batch", str(args.batch), "--format", "json"]
        runs = [once(cmd) for _ in range(args.runs)]
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[2] for r in runs)
        worst = max(worst, wall)
        print(f"{name:<22} {wall * 1000:8.0f} {cpu * 1000:8.0f} {wall / start:10.1f}")
    print(f"slowest: {worst * 1000:.0f} ms wall ({'under' if worst < 1 else 'NOT under'} a second)")


if __name__ == "__main__":
    main()
