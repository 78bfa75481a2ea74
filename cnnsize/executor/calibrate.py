"""Measure this machine's device profile with torch (``cnnsize calibrate``): the figures cnnsize.passes.latency needs.

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

from ..core.errors import SpecError
from ..core.safe import json_text
from ..passes import analyze
from ..passes.latency import EFFICIENCY_MAX, DeviceProfile, layer_key, predict, profile_path, work
from ..spec.sources import load_graph

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
  - conv: {name: pointwise, from: pool, filters: 256, kernel: 1}
  - concat: {name: concat, from: [pool, pointwise]}
  - global_avgpool: {name: gap, from: concat}
  - adaptive_avgpool: {name: squeeze, from: concat, output: 8}
  - fc: {name: fc, units: 2048}
"""
# local response normalization on its own: torch has no half-precision kernel for it on a CPU (avg_pool3d), so
# at float16 or bfloat16 there it is left out with a note rather than failing the whole calibration
LRN_SPEC = """
name: lrn
input: [64, 56, 56]
layers:
  - lrn: {name: lrn}
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
    from .timing import _Clock, layer_samples

    thread = x.device.type == "cpu" and cpu_clock()
    samples = layer_samples(model, x, _Clock(x.device), runs, thread_time=thread)
    return {name: min(v) / 1e3 for name, v in samples.items() if v}


NOISY_SPREAD = 0.5  # a layer is noisy when its median run is more than 50% slower than its fastest
NOISY_SHARE = 0.25  # the measurement is noisy when more than a quarter of its layers are
REMEASURE = 2  # at most this many more rounds of layer timings when the first is noisy
COMPUTE_TOLERANCE = 1.1  # a compute-bound layer faster than 1.1× the measured peak cannot be right


def _layer_samples(spec: str, dev, dtype: str, runs: int) -> dict[str, list[float]]:
    """Each layer's times in seconds over ``runs`` passes, timed as ``bench --per-layer`` times them."""
    from .builder import build_module, torch_dtype
    from .timing import _Clock, layer_samples, make_input

    a = analyze(load_graph(spec), dtype=dtype, layout=None)
    model = build_module(None, analysis=a, device=dev, dtype=dtype)
    x = make_input(a, dev, torch_dtype(dtype), False)
    thread = x.device.type == "cpu" and cpu_clock()
    samples = layer_samples(model, x, _Clock(x.device), runs, thread_time=thread)
    return {name: [t / 1e3 for t in v] for name, v in samples.items() if v}


def _noisy(samples: dict[str, list[float]]) -> float:
    """The share of layers whose median run is more than NOISY_SPREAD slower than their fastest."""
    spread = [statistics.median(v) / min(v) - 1 for v in samples.values() if min(v) > 0]
    return sum(s > NOISY_SPREAD for s in spread) / len(spread) if spread else 0.0


def _timings(dev, dtype: str, runs: int, notes: list[str]) -> dict[str, list[float]]:
    """Every calibration layer's samples; more rounds (at most REMEASURE) while the timings are noisy; a spec
    torch cannot run at this dtype on this device is left out, with a note."""
    samples: dict[str, list[float]] = {}
    specs = [CALIBRATION_SPEC, LRN_SPEC, STEM_SPEC, OVERHEAD_SPEC]
    rounds = 0
    while rounds <= REMEASURE:
        rounds += 1
        for spec in list(specs):
            try:
                for name, v in _layer_samples(spec, dev, dtype, runs).items():
                    samples.setdefault(f"{spec}:{name}", []).extend(v)
            except RuntimeError as exc:  # NotImplementedError too: no kernel for this dtype here
                specs.remove(spec)
                notes.append(f"{spec.split()[1]} not measured: torch cannot run it at {dtype} on {dev.type} "
                             f"({str(exc).splitlines()[0][:80]}); its efficiency is left at 1")
        share = _noisy(samples)
        if share <= NOISY_SHARE:
            break
    if share > NOISY_SHARE:
        notes.append(f"noisy: {share:.0%} of the layers ran their median more than {NOISY_SPREAD:.0%} slower than "
                     f"their fastest after {rounds} rounds; the fastest runs are used, but the machine was busy")
    return samples


def _seconds(samples: dict[str, list[float]], spec: str) -> dict[str, float]:
    """The fastest time of each layer of one spec (the slower runs wait for a time slice on a shared machine)."""
    prefix = f"{spec}:"
    return {k[len(prefix):]: min(v) for k, v in samples.items() if k.startswith(prefix)}


def _peak(dev, tdtype, longer: bool = False) -> float:
    """Peak FLOP/s of a matmul at this dtype, timed as the layers are (the thread's CPU time on one thread); on a GPU
    in float32 with TF32 allowed for matmuls, as cuDNN allows it for convolutions by default (else a convolution
    would run above the peak, and the profile would be refused as impossible)."""
    import torch

    from .timing import measure_peak

    if dev.type == "cpu" and cpu_clock():
        n = 1024
        a, b = torch.randn(n, n).to(tdtype), torch.randn(n, n).to(tdtype)
        seconds = best_seconds(lambda: torch.mm(a, b), runs=21 if longer else 7, thread=True)
        return 2 * n**3 / seconds if seconds > 0 else float("inf")
    tf32 = tdtype == torch.float32 and torch.backends.cudnn.allow_tf32  # cuDNN's float32 convs may run on TF32
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = before or tf32  # so the peak is the fastest the layers may reach
    try:
        return measure_peak(dev, tdtype, budget_s=3.0 if longer else 1.0, max_runs=30 if longer else 10) * 1e9
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def _bandwidth(dev) -> float:
    import torch

    x = torch.empty(16 * 2**20, device=dev, dtype=torch.float32)
    y = torch.empty_like(x)

    def copy():
        y.copy_(x)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    seconds = best_seconds(copy, thread=dev.type == "cpu" and cpu_clock())
    return 2 * x.numel() * 4 / seconds if seconds > 0 else float("inf")


def measure(device: str = "cpu", dtype: str = "float32", runs: int = 20, threads: int | None = None) -> DeviceProfile:
    """Measure the profile of this machine's CPU or CUDA device; ``threads`` sets torch's CPU threads while it
    measures (on a shared machine 1 thread gives steadier timings: several wait on each other's time slices), and
    puts the caller's number back after."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _measure(device, dtype, runs)
    finally:
        torch.set_num_threads(before)


def _measure(device: str, dtype: str, runs: int) -> DeviceProfile:
    """The measurement itself, at torch's current threads.

    A profile that cannot be right is refused (a SpecError), never returned: a compute-bound kind faster than
    the measured peak (after measuring the peak again, longer), a memory-bound one more than EFFICIENCY_MAX
    times the bandwidth, a figure that is not finite or outside a device's range."""
    import torch

    from .builder import resolve_device, torch_dtype
    from .timing import _device_name

    dev = resolve_device(device)
    tdtype = torch_dtype(dtype)
    notes: list[str] = [f"torch {torch.__version__}"]
    _check_fast_dtype(dev, tdtype, dtype)
    if dev.type == "cuda" and dtype == "float32" and torch.backends.cudnn.allow_tf32:
        notes.append("the float32 peak is of TF32 matmuls: cuDNN runs float32 convolutions on TF32 by default")
    peak, bandwidth = _peak(dev, tdtype), _bandwidth(dev)
    samples = _timings(dev, dtype, runs, notes)
    overhead = statistics.median(_seconds(samples, OVERHEAD_SPEC).values())
    source = f"measured: cnnsize calibrate on {_device_name(dev)}"
    try:
        profile = DeviceProfile(dev.type, source, {dtype: peak}, bandwidth, overhead)
        ratios = _all_ratios(profile, samples, overhead, dtype)
        if any(bound == "compute" and _median(v) > COMPUTE_TOLERANCE for v, bound in ratios.values()):
            profile.peak_flops[dtype] = max(peak, _peak(dev, tdtype, longer=True))  # the peak may have been unlucky
            notes.append("a layer measured above the matmul peak, so the peak was measured again, longer")
            ratios = _all_ratios(profile, samples, overhead, dtype)
        _refuse_impossible(ratios, profile, dtype)
        profile.efficiency = {k: float(f"{_median(v):.4g}") for k, (v, _) in ratios.items()}
        profile.notes, profile.threads = notes, torch.get_num_threads() if dev.type == "cpu" else None
        return DeviceProfile(**profile.to_dict())  # checked again, efficiencies included
    except SpecError as exc:
        raise SpecError(f"the measured profile cannot be right, so it was not saved: {exc.message}",
                        hint="run again on a quieter machine (or with --threads 1)") from None


def _check_fast_dtype(dev, tdtype, dtype: str) -> None:
    """Refuse, in a fraction of a second, a half precision this CPU has no fast kernels for: its matmul would be
    the peak, the convolutions (converted by oneDNN) would beat it, and the profile could not be right, after
    minutes of slow timings."""
    import torch

    if dev.type != "cpu" or dtype not in ("float16", "bfloat16"):
        return
    n = 256
    rates = {}
    for dt in (torch.float32, tdtype):
        a, b = torch.randn(n, n).to(dt), torch.randn(n, n).to(dt)
        seconds = best_seconds(lambda: torch.mm(a, b), runs=3)  # noqa: B023 - called before the loop moves on
        rates[dt] = 2 * n**3 / max(seconds, 1e-9)
    if rates[tdtype] < rates[torch.float32] / 4:
        raise SpecError(f"torch's {dtype} matmul on this CPU runs at {rates[tdtype] / 1e9:.2g} GFLOP/s, "
                        f"{rates[torch.float32] / rates[tdtype]:.0f}× slower than float32: this CPU has no fast "
                        f"{dtype} kernels to calibrate a peak with", hint="use --dtype float32 (or calibrate on a GPU)")


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _all_ratios(profile: DeviceProfile, samples: dict, overhead: float, dtype: str) -> dict[str, tuple[list, str]]:
    """Per efficiency key: the layers' ratios of roofline time to measured time, and the bound most of them have."""

    ratios: dict[str, list[float]] = {}
    bounds: dict[str, list[str]] = {}
    for spec in (CALIBRATION_SPEC, LRN_SPEC, STEM_SPEC):
        timing = _seconds(samples, spec)
        if timing:
            analysis = analyze(load_graph(spec), dtype=dtype, traffic=True, layout=None)
            _efficiencies(analysis, profile, timing, overhead, ratios, bounds)
    return {k: (v, statistics.mode(bounds[k])) for k, v in ratios.items()}


def _refuse_impossible(ratios: dict[str, tuple[list, str]], profile: DeviceProfile, dtype: str) -> None:
    """A compute-bound kind above the peak, or a memory-bound one above EFFICIENCY_MAX × the bandwidth, is wrong."""
    for key, (values, bound) in ratios.items():
        eff = _median(values)
        if bound == "compute" and eff > COMPUTE_TOLERANCE:
            raise SpecError(f"'{key}' layers ran at {eff:.1f}× the measured {dtype} peak "
                            f"({profile.peak(dtype) / 1e9:,.1f} GFLOP/s)")
        if eff > EFFICIENCY_MAX:
            raise SpecError(f"'{key}' layers moved data at {eff:.1f}× the measured bandwidth "
                            f"({profile.bandwidth / 1e9:,.1f} GB/s), more than the {EFFICIENCY_MAX:g}× caches allow")


def _efficiencies(a, profile: DeviceProfile, timing: dict, overhead: float, ratios: dict, bounds: dict) -> None:
    """Each layer's roofline time over its measured time less the overhead, collected per efficiency key."""
    shapes = {r.name: r.output_shape for r in a.layers}
    for r in a.layers[1:]:
        key = layer_key(r, shapes)
        ideal, bound = predict(work(r, a.batch), r.bytes_read + r.bytes_written, profile, a.dtype, key)
        spent = timing[r.name] - overhead
        if spent > 0:
            ratios.setdefault(key, []).append((ideal - overhead) / spent)
            bounds.setdefault(key, []).append(bound)


def save(profile: DeviceProfile, path: str | None = None) -> str:
    """Write the profile as JSON (atomically) to ``path`` or where later runs look for it; returns the path."""
    path = path or profile_path(profile.name)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"

    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json_text(profile.to_dict()))
    os.replace(tmp, path)
    return path
