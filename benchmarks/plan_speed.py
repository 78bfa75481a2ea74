"""`cnnsize plan SPEC --device h100` for every bundled spec, as a whole process, against `python -c pass` measured in
the same run.

Target (issue 26): every bundled spec answers in under a second. Each spec's median wall time and CPU time over
``--runs`` runs, and the ratio of its wall time to Python's own start-up; on a shared machine the CPU time is the
steadier figure (the wall time grows with the others' load).

    python benchmarks/plan_speed.py [--runs 3] [--bytecode] [--device h100] [--gpus 1] [--batch 32] [SPEC ...]

With PYTHONDONTWRITEBYTECODE set (as in some sandboxes) every run compiles cnnsize from source, which an installed
cnnsize never does; --bytecode measures with cached bytecode (in a temporary folder), after one untimed run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_startup import bytecode_env, once  # noqa: E402 - the same timing of one process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="*", help="bundled spec names (default: all)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bytecode", action="store_true", help="run with cached bytecode, as an installed cnnsize")
    parser.add_argument("--device", default="h100")
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    from cnnsize.spec.sources import bundled_names

    names = args.specs or bundled_names()
    with tempfile.TemporaryDirectory() as cache:
        measure(names, args, bytecode_env(args.bytecode, cache))


def measure(names: list[str], args, env: dict | None) -> None:
    python = [sys.executable, "-c", "pass"]
    runs = max(args.runs, 5)
    start = statistics.median(once(python, env)[0] for _ in range(runs))
    print(f"python -c pass: {start * 1000:.0f} ms (median of {runs}); load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    print(f"{'spec':<22} {'wall ms':>8} {'cpu ms':>8} {'x start-up':>10}")
    worst = 0.0
    for name in names:
        cmd = [sys.executable, "-m", "cnnsize", "plan", name, "--device", args.device, "--gpus", str(args.gpus),
               "--batch", str(args.batch), "--format", "json"]
        if env is not None:
            once(cmd, env)  # writes the bytecode
        timed = [once(cmd, env) for _ in range(args.runs)]
        wall, cpu = statistics.median(r[0] for r in timed), statistics.median(r[2] for r in timed)
        worst = max(worst, wall)
        print(f"{name:<22} {wall * 1000:8.0f} {cpu * 1000:8.0f} {wall / start:10.1f}")
    print(f"slowest: {worst * 1000:.0f} ms wall ({'under' if worst < 1 else 'NOT under'} a second)")

if __name__ == "__main__":
    main()
