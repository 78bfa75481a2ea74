"""Measure this machine's device profile with torch (``cnnsize calibrate``): the figures cnnsize.latency needs.

- peak FLOP/s per dtype: an n×n matrix multiply (the executor's measure_peak);
- bandwidth: copying a 64 MiB tensor (read once, written once);
- per-layer overhead and per-kind efficiencies: per-layer timing as ``bench --per-layer`` does it (the
  executor's clock in forward hooks) of a small fixed set of layers, the fastest of several runs (on a shared
  machine the slower runs wait for a time slice), so that calibration and benchmarks/latency.py measure
  alike. An efficiency is the roofline's time over the measured time less the overhead.
"""

from __future__ import annotations

import os
import statistics
import time

from .latency import DeviceProfile, layer_key, predict, profile_path, work

# the layers whose measured times set the efficiencies: one or more per efficiency key
CALIBRATION_SPEC = """
name: calibration
input: [64, 56, 56]
fit: floor
layers:
  - conv: {name: conv, filters: 64, kernel: 3, pad: 1}
  - bn: {name: bn}
  - relu: {name: relu}
  - conv: {name: grouped, filters: 64, kernel: 3, pad: 1, groups: 8}
  - conv: {name: depthwise, filters: 64, kernel: 3, pad: 1, groups: 64}
  - add: {name: add, from: [relu, depthwise]}
  - maxpool: {name: pool, kernel: 3, stride: 2, pad: 1}
  - lrn: {name: lrn, from: add}
  - conv: {name: pointwise, from: pool, filters: 256, kernel: 1}
  - concat: {name: concat, from: [pool, pointwise]}
  - global_avgpool: {name: gap, from: concat}
  - adaptive_avgpool: {name: squeeze, from: concat, output: 8}
  - fc: {name: fc, units: 2048}
"""
# an image stem (few input channels: im2col-bound), as ResNet's
STEM_SPEC = """
name: stem
input: [3, 224, 224]
fit: floor
layers:
  - conv: {name: stem, filters: 64, kernel: 7, stride: 2, pad: 3, bias: false}
"""
# tiny layers: what remains is the per-layer overhead of the timing (dispatch, hooks, synchronization)
OVERHEAD_SPEC = """
name: overhead
input: [4, 4, 4]
layers: [relu, relu, relu, relu, relu, relu, relu, relu]
"""


def best_seconds(fn, runs: int = 7, thread: bool = False) -> float:
    """The fastest of ``runs`` calls (the others wait for a time slice on a shared machine, not for the work);
    ``thread``: the calling thread's CPU time (see cpu_clock)."""
    clock = time.thread_time if thread else time.perf_counter
    fn()
    times = []
    for _ in range(runs):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def cpu_clock() -> bool:
    """Whether to time with the thread's CPU time: on a CPU with one torch thread, every op runs on the calling
    thread, and its CPU time leaves out the time it waits for a core on a shared machine (wall time does not)."""
    import torch

    return torch.get_num_threads() == 1


def per_layer_seconds(model, x, runs: int = 10) -> dict[str, float]:
    """The fastest time of each layer over ``runs`` forward passes, timed as ``bench --per-layer`` times them
    (the executor's clock, synchronized before and after each layer, in forward hooks); on a CPU with one thread,
    the thread's CPU time (see cpu_clock)."""
    from .executor.timing import _Clock, layer_samples

    thread = x.device.type == "cpu" and cpu_clock()
    samples = layer_samples(model, x, _Clock(x.device), runs, thread_time=thread)
    return {name: min(v) / 1e3 for name, v in samples.items() if v}


def _layer_times(spec: str, dev, dtype: str, runs: int) -> dict[str, float]:
    from . import analyze
    from .executor.builder import build_module, torch_dtype
    from .executor.timing import make_input

    a = analyze(spec, dtype=dtype)
    model = build_module(None, analysis=a, device=dev, dtype=dtype)
    return per_layer_seconds(model, make_input(a, dev, torch_dtype(dtype), False), runs)


def measure(device: str = "cpu", dtype: str = "float32", runs: int = 20, threads: int | None = None) -> DeviceProfile:
    """Measure the profile of this machine's CPU or CUDA device; ``threads`` sets torch's CPU threads first
    (on a shared machine 1 thread gives steadier timings: several wait on each other's time slices)."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    from . import analyze
    from .executor.builder import resolve_device, torch_dtype
    from .executor.timing import _device_name, measure_peak

    dev = resolve_device(device)
    tdtype = torch_dtype(dtype)
    if dev.type == "cpu" and cpu_clock():  # the thread's CPU time, as the layers are timed
        n = 1024
        a, b = torch.randn(n, n).to(tdtype), torch.randn(n, n).to(tdtype)
        peak = 2 * n**3 / best_seconds(lambda: torch.mm(a, b), thread=True)
    else:
        peak = measure_peak(dev, tdtype) * 1e9
    x = torch.empty(16 * 2**20, device=dev, dtype=torch.float32)
    y = torch.empty_like(x)

    def copy():
        y.copy_(x)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    bandwidth = 2 * x.numel() * 4 / best_seconds(copy, thread=dev.type == "cpu" and cpu_clock())
    overhead = statistics.median(_layer_times(OVERHEAD_SPEC, dev, dtype, runs).values())
    timing = {}
    for spec in (CALIBRATION_SPEC, STEM_SPEC):
        timing.update(_layer_times(spec, dev, dtype, runs))
    profile = DeviceProfile(f"{dev.type}", f"measured: cnnsize calibrate on {_device_name(dev)}",
                            {dtype: peak}, bandwidth, overhead)
    ratios: dict[str, list[float]] = {}
    for spec in (CALIBRATION_SPEC, STEM_SPEC):
        _efficiencies(analyze(spec, dtype=dtype, traffic=True), profile, timing, overhead, ratios)
    profile.efficiency = {k: round(min(max(statistics.median(v), 0.01), 10.0), 4) for k, v in ratios.items()}

    profile.notes.append(f"torch {torch.__version__}")
    profile.threads = torch.get_num_threads() if dev.type == "cpu" else None
    return profile


def _efficiencies(a, profile: DeviceProfile, timing: dict, overhead: float, ratios: dict) -> None:
    """Each layer's roofline time over its measured time less the overhead, collected per efficiency key."""
    shapes = {r.name: r.output_shape for r in a.layers}
    for r in a.layers[1:]:
        key = layer_key(r, shapes)
        ideal, _ = predict(work(r, a.batch), r.bytes_read + r.bytes_written, profile, a.dtype, key)
        spent = timing[r.name] - overhead
        if spent > 0:
            ratios.setdefault(key, []).append((ideal - overhead) / spent)


def save(profile: DeviceProfile, path: str | None = None) -> str:
    """Write the profile as JSON (atomically) to ``path`` or where later runs look for it; returns the path."""
    path = path or profile_path(profile.name)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    from .render.safe import json_text

    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json_text(profile.to_dict()))
    os.replace(tmp, path)
    return path
