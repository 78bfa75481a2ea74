"""`cnnsize report vgg16` as a whole process, against `python -c pass` measured in the same run.

Target (issue 23): at most 4x the wall time of `python -c pass` (issue 6: at most 80 MiB peak memory).
For reference, torchinfo's summary of torchvision's VGG16 took about 3.3 s and 1.26 GB here.

    python benchmarks/report_startup.py [--runs 30] [--bytecode] [SPEC]

With PYTHONDONTWRITEBYTECODE set (as in some sandboxes and containers) every run compiles cnnsize from
source, which an installed cnnsize never does; --bytecode measures with cached bytecode (kept in a
temporary folder, so the source tree is left alone), after one untimed run of each command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def run(cmd: list[str], runs: int, env: dict | None = None) -> tuple[float, float, float]:
    """Median wall seconds, the largest peak RSS (MiB) and median CPU seconds (user + system) over ``runs`` runs of
    ``cmd``. On a shared machine the CPU time is the steadier: the wall time grows with the others' load."""
    times, peak, cpu = [], 0.0, []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - start)
        if status != 0:
            sys.exit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()}")
        peak = max(peak, usage.ru_maxrss / 1024)  # KiB on Linux
        cpu.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(times), peak, statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", nargs="?", default="vgg16")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--bytecode", action="store_true", help="run with cached bytecode, as an installed cnnsize")
    args = parser.parse_args()
    commands = [("python -c pass", [sys.executable, "-c", "pass"])]
    commands += [(f"cnnsize report {args.spec} -f {fmt}",
                  [sys.executable, "-m", "cnnsize", "report", args.spec, "--format", fmt]) for fmt in ("table", "json")]
    with tempfile.TemporaryDirectory() as cache:
        env = None
        if args.bytecode:
            env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            env["PYTHONPYCACHEPREFIX"] = cache
            for _, cmd in commands:
                run(cmd, 1, env)
        elif os.environ.get("PYTHONDONTWRITEBYTECODE"):
            print("note: PYTHONDONTWRITEBYTECODE is set, so every run compiles cnnsize from source; "
                  "--bytecode measures as installed")
        rows = [(name, *run(cmd, args.runs, env)) for name, cmd in commands]
    base_t, base_cpu = rows[0][1], rows[0][3]
    print(f"{'command':40} {'median ms':>10} {'ratio':>7} {'peak MiB':>9} {'CPU ms':>8} {'CPU ratio':>9}")
    for name, t, m, c in rows:
        print(f"{name:40} {t * 1e3:10.1f} {t / base_t:7.2f} {m:9.1f} {c * 1e3:8.1f} {c / base_cpu:9.2f}")
    worst = max(rows[1:], key=lambda r: r[1])
    verdict = "meets" if worst[1] / base_t <= 4 and worst[2] <= 80 else "misses"
    print(f"{verdict} the target: at most 4x `python -c pass` and 80 MiB (load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
