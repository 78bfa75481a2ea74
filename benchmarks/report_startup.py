"""`cnnsize report vgg16` as a whole process, against `python -c pass` measured in the same run.

Target (issue 23): at most 4x the wall time of `python -c pass` (issue 6: at most 80 MiB peak memory).
For reference, torchinfo's summary of torchvision's VGG16 took about 3.3 s and 1.26 GB here.

    python benchmarks/report_startup.py [--runs 30] [--bytecode] [--baseline DIR] [SPEC]

--baseline DIR also times the cnnsize found in DIR (another checkout, e.g. ``git archive main | tar -x -C DIR``),
its runs taking turns with this one's, so that a before and after come from the same minutes of a shared machine.

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


def bytecode_env(bytecode: bool, cache: str) -> dict | None:
    """The environment of the timed runs: with ``bytecode``, bytecode cached in ``cache`` (as an installed cnnsize
    runs); else the caller's (said when it compiles every run from source)."""
    if bytecode:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        return env
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set, so every run compiles cnnsize from source; "
              "--bytecode measures as installed")
    return None


def once(cmd: list[str], env: dict | None = None) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MiB) and CPU seconds (user + system) of one run of ``cmd`` (in the folder
    ``env["CNNSIZE_BENCH_CWD"]`` names, if any: ``python -m`` imports from the current folder first)."""
    start = time.perf_counter()
    cwd = (env or {}).get("CNNSIZE_BENCH_CWD")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime  # ru_maxrss: KiB on Linux


def run(commands: list[tuple[list[str], dict | None]], runs: int) -> list[tuple[float, float, float]]:
    """Per command: median wall seconds, the largest peak RSS (MiB) and median CPU seconds over ``runs`` runs, the
    commands taking turns. On a shared machine the CPU time is the steadier: the wall time grows with the others'
    load."""
    got: list[list[tuple[float, float, float]]] = [[] for _ in commands]
    for _ in range(runs):
        for (cmd, env), out in zip(commands, got):
            out.append(once(cmd, env))
    return [(statistics.median(w for w, _, _ in out), max(m for _, m, _ in out),
             statistics.median(c for _, _, c in out)) for out in got]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", nargs="?", default="vgg16")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--bytecode", action="store_true", help="run with cached bytecode, as an installed cnnsize")
    parser.add_argument("--baseline", metavar="DIR", help="also time the cnnsize in DIR (its source root)")
    args = parser.parse_args()
    report = [[sys.executable, "-m", "cnnsize", "report", args.spec, "--format", fmt] for fmt in ("table", "json")]
    with tempfile.TemporaryDirectory() as cache:
        env = bytecode_env(args.bytecode, cache)
        commands = [("python -c pass", [sys.executable, "-c", "pass"], env)]
        commands += [(f"cnnsize report {args.spec} -f {cmd[-1]}", cmd, env) for cmd in report]
        if args.baseline:
            root = os.path.abspath(args.baseline)
            other = {**(env or os.environ), "PYTHONPATH": root, "CNNSIZE_BENCH_CWD": root}
            if args.bytecode:
                other["PYTHONPYCACHEPREFIX"] = os.path.join(cache, "baseline")
            commands += [(f"baseline: report {args.spec} -f {cmd[-1]}", cmd, other) for cmd in report]
        if args.bytecode:
            run([(cmd, e) for _, cmd, e in commands], 1)  # writes the bytecode
        measured = run([(cmd, e) for _, cmd, e in commands], args.runs)
    rows = [(name, *m) for (name, _, _), m in zip(commands, measured)]
    base_t, base_cpu = rows[0][1], rows[0][3]
    print(f"{'command':40} {'median ms':>10} {'ratio':>7} {'peak MiB':>9} {'CPU ms':>8} {'CPU ratio':>9}")
    for name, t, m, c in rows:
        print(f"{name:40} {t * 1e3:10.1f} {t / base_t:7.2f} {m:9.1f} {c * 1e3:8.1f} {c / base_cpu:9.2f}")
    worst = max(rows[1:3], key=lambda r: r[1])
    verdict = "meets" if worst[1] / base_t <= 4 and worst[2] <= 80 else "misses"
    print(f"{verdict} the target: at most 4x `python -c pass` and 80 MiB (load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
