"""`cnnsize calibrate`: measure this machine's device profile for `report --device-profile` (needs torch)."""

from __future__ import annotations

import os
import sys

from .common import bounded_int, output_extensions, write_output

MAX_RUNS = 1000  # timed runs per layer: 20 take a few seconds; 1,000 about a few minutes on a CPU
DTYPES = ("float32", "float16", "bfloat16", "float64")


def usable_cpus() -> int:
    """The CPUs this process may run on: more torch threads than that measure waiting, not the machine (and
    torch crashes with 100,000 of them)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="measure this machine's device profile (peak, bandwidth, overhead)",
                       description="Measure this machine's peak FLOP/s, memory bandwidth, per-layer overhead and "
                                   "per-kind efficiencies with torch, and save them where 'report --device-profile "
                                   "cpu' (or cuda) finds them. Noisy timings are measured again (at most twice more) "
                                   "and said to be noisy; a profile that cannot be right (a layer faster than the "
                                   "measured peak) is not saved.")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="the device to measure (default cpu)")
    p.add_argument("--dtype", default="float32", choices=DTYPES, metavar="DTYPE",
                   help=f"{', '.join(DTYPES)} (default float32)")
    p.add_argument("--runs", type=bounded_int(MAX_RUNS), default=20,
                   help=f"timed runs per layer, 1 to {MAX_RUNS:,} (default 20)")
    p.add_argument("--threads", type=bounded_int(usable_cpus()),
                   help=f"torch CPU threads to measure with, 1 to the {usable_cpus()} CPUs this process may use "
                        "(default: torch's own)")
    p.add_argument("-o", "--output", help="write the profile to this file (.json) instead of the user config directory")
    output_extensions(p, ".json")
    p.set_defaults(run=run)


def _profile_folder(path: str) -> None:
    """Create the folder of the default profile path first, so that a bad config folder fails before measuring."""
    from ..core.errors import SpecError
    from ..core.safe import printable

    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise SpecError(f"cannot create the profile folder {printable(folder)}: {exc.strerror}",
                        hint="set CNNSIZE_CONFIG_DIR to a writable folder, or give -o FILE") from None


def run(args) -> int:
    from ..core.optional import require_torch
    from ..core.safe import json_text, printable
    from ..passes.latency import profile_path

    require_torch()
    from ..executor.calibrate import measure

    path = args.output or profile_path(args.device)
    if args.output is None:
        _profile_folder(path)
    profile = measure(args.device, args.dtype, runs=args.runs, threads=args.threads)
    write_output(json_text(profile.to_dict()), path, say=False)
    peak = ", ".join(f"{k} {v / 1e9:,.1f} GFLOP/s" for k, v in profile.peak_flops.items())
    eff = ", ".join(f"{k} {v:.2f}" for k, v in profile.efficiency.items())
    print(f"{profile.source}: peak {peak}; bandwidth {profile.bandwidth / 1e9:,.1f} GB/s; "
          f"overhead {profile.overhead_s * 1e6:,.1f} µs per layer; efficiencies {eff}", file=sys.stderr)
    for note in profile.notes[1:]:
        print(f"note: {note}", file=sys.stderr)
    print(f"saved to {printable(path)}", file=sys.stderr)
    return 0
