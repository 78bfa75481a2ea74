"""`cnnsize calibrate`: measure this machine's device profile for `report --device-profile` (needs torch)."""

from __future__ import annotations

import sys

from .common import write_output


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="measure this machine's device profile (peak, bandwidth, overhead)",
                       description="Measure this machine's peak FLOP/s, memory bandwidth, per-layer overhead and "
                                   "per-kind efficiencies with torch, and save them where 'report --device-profile "
                                   "cpu' (or cuda) finds them.")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="the device to measure (default cpu)")
    p.add_argument("--dtype", default="float32", help="float32, float16 or bfloat16")
    p.add_argument("--runs", type=int, default=20, help="timed runs per layer")
    p.add_argument("--threads", type=int, help="torch CPU threads to measure with (default: torch's own)")
    p.add_argument("-o", "--output", help="write the profile to this file instead of the user config directory")
    p.set_defaults(run=run)


def run(args) -> int:
    import os

    from ..errors import SpecError
    from ..executor import require_torch
    from ..latency import profile_path
    from ..render.safe import json_text

    require_torch()
    from ..calibrate import measure

    if args.runs < 1:
        raise SpecError(f"--runs must be at least 1, got {args.runs}")
    if args.threads is not None and args.threads < 1:
        raise SpecError(f"--threads must be at least 1, got {args.threads}")
    profile = measure(args.device, args.dtype, runs=args.runs, threads=args.threads)
    path = args.output or profile_path(profile.name)
    if args.output is None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    write_output(json_text(profile.to_dict()), path)
    peak = ", ".join(f"{k} {v / 1e9:,.1f} GFLOP/s" for k, v in profile.peak_flops.items())
    eff = ", ".join(f"{k} {v:.2f}" for k, v in profile.efficiency.items())
    print(f"{profile.source}: peak {peak}; bandwidth {profile.bandwidth / 1e9:,.1f} GB/s; "
          f"overhead {profile.overhead_s * 1e6:,.1f} µs per layer; efficiencies {eff}", file=sys.stderr)
    print(f"saved to {path}", file=sys.stderr)
    return 0
