"""Measure this machine's device profile with torch (``cnnsize calibrate``): the figures cnnsize.latency needs.

- peak FLOP/s per dtype: an n×n matrix multiply (the executor's measure_peak);
- bandwidth: copying a 64 MiB tensor (read once, written once);
- per-layer overhead and per-kind efficiencies: the executor's own per-layer timing (``bench --per-layer``)
  of a small fixed set of layers, so that calibration and the latency benchmark measure the same way.
  An efficiency is the roofline's time over the measured time less the overhead.
"""

from __future__ import annotations

import json
import os
import statistics
import time

from .latency import DeviceProfile, layer_key, predict, profile_path

# the layers whose measured times set the efficiencies: one or more per efficiency key
CALIBRATION_SPEC = """
name: calibration
input: [64, 56, 56]
layers:
  - conv: {name: conv, filters: 64, kernel: 3, pad: 1}
  - bn: {name: bn}
  - relu: {name: relu}
  - conv: {name: grouped, filters: 64, kernel: 3, pad: 1, groups: 8}
  - conv: {name: depthwise, filters: 64, kernel: 3, pad: 1, groups: 64}
  - add: {name: add, from: [relu, depthwise]}
  - maxpool: {name: pool, kernel: 2}
  - conv: {name: pointwise, filters: 256, kernel: 1}
  - concat: {name: concat, from: [pool, pointwise]}
  - adaptive_avgpool: {name: squeeze, output: 8}
  - fc: {name: fc, units: 2048}
"""
# tiny layers: what remains is the per-layer overhead of the timing (dispatch, hooks, synchronization)
OVERHEAD_SPEC = """
name: overhead
input: [4, 4, 4]
layers: [relu, relu, relu, relu, relu, relu, relu, relu]
"""


def _median_seconds(fn, runs: int = 7) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(device: str = "cpu", dtype: str = "float32", runs: int = 20, threads: int | None = None) -> DeviceProfile:
    """Measure the profile of this machine's CPU or CUDA device; ``threads`` sets torch's CPU threads first
    (on a shared machine 1 thread gives steadier timings: several wait on each other's time slices)."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    from . import analyze, bench
    from .executor.builder import resolve_device, torch_dtype
    from .executor.timing import _device_name, measure_peak

    dev = resolve_device(device)
    tdtype = torch_dtype(dtype)
    peak = measure_peak(dev, tdtype) * 1e9
    x = torch.empty(16 * 2**20, device=dev, dtype=torch.float32)
    y = torch.empty_like(x)

    def copy():
        y.copy_(x)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    bandwidth = 2 * x.numel() * 4 / _median_seconds(copy)
    tiny = bench(OVERHEAD_SPEC, device=str(dev), dtype=dtype, per_layer=True, peak=False, runs=runs, warmup=3,
                 progress=False).per_layer_ms
    overhead = statistics.median(tiny.values()) / 1e3
    timing = bench(CALIBRATION_SPEC, device=str(dev), dtype=dtype, per_layer=True, peak=False, runs=runs, warmup=3,
                   progress=False).per_layer_ms
    profile = DeviceProfile(f"{dev.type}", f"measured: cnnsize calibrate on {_device_name(dev)}",
                            {dtype: peak}, bandwidth, overhead)
    a = analyze(CALIBRATION_SPEC, dtype=dtype, traffic=True)
    shapes = {r.name: r.output_shape for r in a.layers}
    ratios: dict[str, list[float]] = {}
    for r in a.layers[1:]:
        key = layer_key(r, shapes)
        ideal, _ = predict(r.flops, r.bytes_read + r.bytes_written, profile, dtype, key)
        spent = timing[r.name] / 1e3 - overhead
        if spent > 0:
            ratios.setdefault(key, []).append((ideal - overhead) / spent)
    profile.efficiency = {k: round(min(max(statistics.median(v), 0.01), 10.0), 4) for k, v in ratios.items()}
    profile.notes.append(f"torch {torch.__version__}")
    profile.threads = torch.get_num_threads() if dev.type == "cpu" else None
    return profile


def save(profile: DeviceProfile, path: str | None = None) -> str:
    """Write the profile as JSON (atomically) to ``path`` or where later runs look for it; returns the path."""
    path = path or profile_path(profile.name)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(profile.to_dict(), fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
    return path
