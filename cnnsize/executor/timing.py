"""Time the built network the careful way, next to the device's measured peak.

Warm-up runs first (allocator, cuDNN autotuning, caches), ``torch.inference_mode``
for forward passes, one timed run at a time with the device synchronized (CUDA
events on a GPU, ``perf_counter`` on the CPU), the median with p10/p90, and the
attainable peak measured in the same process as a large matrix multiply at the same
dtype, so a report says what fraction of the machine the network reaches.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ..core.errors import CnnsizeError, SpecError
from ..engine.result import Analysis
from .builder import GraphModule, as_analysis, build_module, first_input, resolve_device, torch_dtype

PEAK_SIZE = {"cpu": 1024, "cuda": 8192}
PER_LAYER_RUNS = 20
BACKWARD_FACTOR = 3  # forward + backward ≈ 3× the forward FLOPs (grad of input and of weights)
# Too noisy to trust: the runs' spread (p90 − p10) / median above 0.5, over at least NOISY_MIN_RUNS runs (fewer
# cannot tell). A quiet machine gives a few percent; p10 3 ms and p90 179 ms (a busy one) gives 59.
NOISY_SPREAD = 0.5
NOISY_MIN_RUNS = 5
REMEASURE_ROUNDS = 2  # at most this many more rounds of runs while noisy ...
REMEASURE_BUDGET_S = 10.0  # ... and only while the rounds so far took less than this


@dataclass
class Timing:
    """Per-run times of one network on one device, with the statistics a report shows."""

    device: str
    device_name: str
    dtype: str
    batch: int
    mode: str
    warmup: int
    times_ms: list[float]
    flops_per_run: int
    channels_last: bool = False
    peak_gflops: float | None = None
    per_layer_ms: dict[str, float] | None = None
    interrupted: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    peak_matmul: int | None = None  # n of the n×n matmul (at this dtype) the peak was measured with

    @property
    def runs(self) -> int:
        return len(self.times_ms)

    def percentile(self, q: float) -> float:
        """Linear-interpolated percentile of the run times (as numpy's default)."""
        import numpy as np

        return float(np.percentile(self.times_ms, q)) if self.times_ms else float("nan")

    @property
    def median_ms(self) -> float:
        return self.percentile(50)

    @property
    def p10_ms(self) -> float:
        return self.percentile(10)

    @property
    def p90_ms(self) -> float:
        return self.percentile(90)

    @property
    def images_per_s(self) -> float:
        return self.batch / (self.median_ms / 1e3)

    @property
    def gflops(self) -> float:
        """Achieved GFLOP/s: the analysis' FLOPs per run over the median time."""
        return self.flops_per_run / (self.median_ms / 1e3) / 1e9

    @property
    def fraction_of_peak(self) -> float | None:
        return self.gflops / self.peak_gflops if self.peak_gflops else None

    @property
    def spread(self) -> float | None:
        """(p90 − p10) / median of the runs: the noise criterion (None with fewer than NOISY_MIN_RUNS runs)."""
        if self.runs < NOISY_MIN_RUNS or not self.median_ms > 0:
            return None
        return (self.p90_ms - self.p10_ms) / self.median_ms

    @property
    def noisy(self) -> bool:
        """The runs spread too widely for the median to be trusted (see NOISY_SPREAD)."""
        spread = self.spread
        return spread is not None and spread > NOISY_SPREAD

    @property
    def unreliable(self) -> bool:
        """The network ran faster than the measured peak: the peak (or the timing) is not to be trusted."""
        fraction = self.fraction_of_peak
        return fraction is not None and fraction > 1

    def to_dict(self) -> dict:
        return {"device": self.device, "device_name": self.device_name, "dtype": self.dtype, "batch": self.batch,
                "mode": self.mode, "channels_last": self.channels_last, "warmup": self.warmup, "runs": self.runs,
                "interrupted": self.interrupted, "median_ms": self.median_ms, "p10_ms": self.p10_ms,
                "p90_ms": self.p90_ms, "images_per_s": self.images_per_s, "flops_per_run": self.flops_per_run,
                "gflops": self.gflops, "peak_gflops": self.peak_gflops, "fraction_of_peak": self.fraction_of_peak,
                "peak_dtype": self.dtype if self.peak_gflops else None, "peak_matmul": self.peak_matmul,
                "unreliable": self.unreliable, "spread": self.spread, "noisy": self.noisy,
                "per_layer_ms": self.per_layer_ms, "settings": dict(self.settings), "notes": list(self.notes),
                "times_ms": list(self.times_ms)}

    def lines(self) -> list[str]:
        """The timing as a few lines of text for the terminal."""
        head = f"{self.mode} on {self.device} ({self.device_name}), {self.dtype}, batch {self.batch}"
        if self.channels_last:
            head += ", channels-last"
        out = [head,
               f"  {self.runs} runs after {self.warmup} warm-up: median {self.median_ms:.3f} ms "
               f"(p10 {self.p10_ms:.3f}, p90 {self.p90_ms:.3f}), {self.images_per_s:,.1f} images/s",
               f"  achieved {_rate(self.gflops)} GFLOP/s"]
        if self.peak_gflops:
            n = self.peak_matmul
            which = f"{n}×{n} {self.dtype} matmul" if n else f"{self.dtype} matmul"
            out[-1] += (f" of a measured {_rate(self.peak_gflops)} GFLOP/s peak ({which}): "
                        f"{self.fraction_of_peak:.1%} of the machine")
            if self.unreliable:
                out[-1] += " — UNRELIABLE"
                out.append(f"  unreliable: above the measured peak even after measuring the peak again; the "
                           f"machine was busy, or a {self.dtype} matmul is not this device's fastest kernel at "
                           f"this dtype (CPUs often lack fast half-precision matmuls)")
        if self.noisy:
            ratio = f"{self.p90_ms / self.p10_ms:,.1f}×" if self.p10_ms > 0 else "far above"
            out.append(f"  NOISY: p90 is {ratio} p10 (spread (p90 − p10) / median "
                       f"{self.spread:.2f}, above the {NOISY_SPREAD} these figures are trusted at): the machine was "
                       "busy; the median is not to be trusted, run again when it is quiet")
        if self.interrupted:
            out.append(f"  interrupted: statistics over the {self.runs} runs finished before Ctrl-C")
        out.extend(f"  note: {n}" for n in self.notes)
        return out


# -- memory ---------------------------------------------------------------------------
def required_bytes(analysis: Analysis, *, backward: bool = False, keeps_all: bool = False) -> dict[str, int]:
    """What a run allocates, by part, from the analysis' memory model (cnnsize.engine.memory) at its dtype.

    Forward: the inference peak (each tensor freed after its last reader). Validation keeps every
    output. Backward: gradients and what autograd saves, without optimizer state (none is stepped).
    """
    m = analysis.totals["memory"]
    parts = {"params": m["params_bytes"], "buffers": m["buffers_bytes"]}
    if backward:
        parts["gradients"] = m["gradients_bytes"]
        parts["activations"] = m["training_activations_peak_bytes"]
    elif keeps_all:
        parts["activations"] = m["activations_bytes"]
    else:
        parts["activations"] = m["inference_peak_activations_bytes"]
    return parts


def free_bytes(dev: torch.device) -> int | None:
    """Memory the device has free now (CUDA: the driver's count; CPU: MemAvailable), None if unknown."""
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _rate(x: float) -> str:
    return f"{x:,.1f}" if x >= 10 else f"{x:.3g}"


def _mb(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def check_fits(analysis: Analysis, dev: torch.device, need: int, what: str, force: bool, *,
               backward: bool = False, keeps_all: bool = False, free: int | None = None) -> None:
    """Refuse, before allocating anything, a run whose predicted memory exceeds what the device has free."""
    free = free_bytes(dev) if free is None else free
    if force or free is None or need <= free:
        return
    parts = required_bytes(analysis, backward=backward, keeps_all=keeps_all)
    fixed = sum(v for k, v in parts.items() if k != "activations")
    per_sample = parts["activations"] / analysis.batch
    ideas = []
    if free > fixed and per_sample > 0:
        fits = int((free - fixed) // per_sample)
        if 1 <= fits < analysis.batch:
            ideas.append(f"--batch {fits} would fit")
    if analysis.dtype in ("float32", "float64"):
        ideas.append("--dtype bfloat16 or float16 halves it" if dev.type == "cuda" else "--dtype bfloat16 halves it")
    ideas.append("--force runs it anyway")
    detail = ", ".join(f"{k} {_mb(v)}" for k, v in parts.items())
    raise CnnsizeError(f"the {what} needs about {_mb(need)} ({detail}) but {dev} has {_mb(free)} free",
                       hint="; ".join(ideas))


# -- timing ---------------------------------------------------------------------------
class Clock(Protocol):
    """What timed_loop needs of a clock: waiting for the device, a start mark, and the milliseconds since it."""

    def sync(self) -> None: ...

    def start(self) -> Any: ...

    def stop(self, start: Any) -> float: ...


class _Clock:
    """Wall time on the CPU; CUDA events (device time, synchronized per run) on a GPU."""

    def __init__(self, dev: torch.device):
        self.dev = dev
        self.cuda = dev.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.dev)

    def start(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(self.dev))
            return event
        return time.perf_counter()

    def stop(self, start: Any) -> float:
        """Milliseconds since ``start``, after the device has finished."""
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record(torch.cuda.current_stream(self.dev))
            end.synchronize()
            return start.elapsed_time(end)
        return (time.perf_counter() - start) * 1e3


def _progress(enabled: bool | None, total: int, label: str):
    """A rich progress bar on stderr when it is a terminal (or when asked), else nothing."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or total <= 0:
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    bar.add_task(label, total=total)
    return bar


def timed_loop(step: Callable[[], Any], clock: Clock, warmup: int, runs: int, *, progress: bool | None = None,
               label: str = "timing") -> tuple[list[float], bool]:
    """(times in ms, interrupted). Ctrl-C stops the loop cleanly and keeps the finished runs."""
    times: list[float] = []
    interrupted = False
    with _progress(progress, warmup + runs, label) as bar:
        def tick() -> None:
            if bar is not None:
                bar.advance(bar.task_ids[0])

        try:
            for _ in range(warmup):
                step()
                clock.sync()
                tick()
            for _ in range(runs):
                start = clock.start()
                step()
                times.append(clock.stop(start))
                tick()
        except KeyboardInterrupt:
            interrupted = True
            clock.sync()
    if interrupted and not times:
        raise KeyboardInterrupt
    return times, interrupted


def spread_of(times: list[float]) -> float:
    """(p90 − p10) / median of run times (infinite for fewer than NOISY_MIN_RUNS: a round that cannot tell)."""
    import numpy as np

    if len(times) < NOISY_MIN_RUNS:
        return float("inf")
    p10, p50, p90 = np.percentile(times, [10, 50, 90])
    return float((p90 - p10) / p50) if p50 > 0 else float("inf")


def _quietest_runs(step, clock: Clock, warmup: int, runs: int, progress, name: str,
                   notes: list[str]) -> tuple[list[float], bool]:
    """The runs, measured again (at most REMEASURE_ROUNDS more rounds, while the rounds so far took less than
    REMEASURE_BUDGET_S) while they spread more than NOISY_SPREAD; the round with the smallest spread is kept, since
    a busy spell of the machine inflates one round, not the network's time."""
    times, interrupted = timed_loop(step, clock, warmup, runs, progress=progress, label=f"timing {name}")
    spent, rounds = sum(times) / 1e3, 1
    while (not interrupted and runs >= NOISY_MIN_RUNS and spread_of(times) > NOISY_SPREAD
           and rounds <= REMEASURE_ROUNDS and spent < REMEASURE_BUDGET_S):
        try:
            again, interrupted = timed_loop(step, clock, 0, runs, progress=progress, label=f"timing {name} again")
        except KeyboardInterrupt:  # before a run of this round finished: the earlier round stands
            again, interrupted = [], True
        spent, rounds = spent + sum(again) / 1e3, rounds + 1
        if not interrupted and spread_of(again) < spread_of(times):
            times = again
    if rounds > 1:
        notes.append(f"the runs were noisy, so they were measured {rounds} times; the quietest round is shown")
    return times, interrupted


def peak_matrix_size(dev: torch.device) -> int:
    """n of the n×n matrix multiply the peak is measured with on this device."""
    return PEAK_SIZE["cuda" if dev.type == "cuda" else "cpu"]


def measure_peak(dev: torch.device, tdtype: torch.dtype, *, budget_s: float = 1.0, max_runs: int = 10) -> float:
    """Median GFLOP/s of an n×n matrix multiply at this dtype: the attainable peak of the device."""
    n = peak_matrix_size(dev)
    a = torch.randn(n, n, device=dev).to(tdtype)
    b = torch.randn(n, n, device=dev).to(tdtype)
    clock = _Clock(dev)
    with torch.inference_mode():
        for _ in range(2):
            torch.mm(a, b)
        clock.sync()
        times: list[float] = []
        spent = 0.0
        while len(times) < max_runs and (len(times) < 3 or spent < budget_s * 1e3):
            start = clock.start()
            torch.mm(a, b)
            times.append(clock.stop(start))
            spent += times[-1]
    times.sort()
    median = times[len(times) // 2]
    return 2 * n**3 / (median / 1e3) / 1e9


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return platform.processor() or platform.machine() or "cpu"


def _settings(dev: torch.device) -> dict[str, Any]:
    out: dict[str, Any] = {"torch": torch.__version__}
    if dev.type == "cuda":
        out.update({"cudnn_benchmark": torch.backends.cudnn.benchmark,
                    "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                    "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32})
    else:
        out.update({"threads": torch.get_num_threads(), "cpus": os.cpu_count()})
    return out


def run_timing(model: GraphModule, x: Any, analysis: Analysis, *, runs: int = 50, warmup: int = 10,
               backward: bool = False, per_layer: bool = False, peak: bool = True, channels_last: bool = False,
               progress: bool | None = None) -> Timing:
    """Time an already built model on an input of the analysed shape (a tuple of them: several inputs)."""
    first = first_input(x)
    dev = first.device
    clock = _Clock(dev)
    notes: list[str] = []
    cudnn_before = torch.backends.cudnn.benchmark
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let the warm-up pick the fastest kernels
    try:
        if backward:
            if not any(p.requires_grad for p in model.parameters()):
                raise SpecError("nothing to time backwards: no layer has trainable parameters",
                                hint="drop --backward, or make a layer trainable")
            model.train()
            grad = torch.ones((analysis.batch, *analysis.layers[-1].output_shape), device=dev, dtype=first.dtype)

            def step() -> None:
                model.zero_grad(set_to_none=True)
                model(x).backward(grad)

            notes.append("forward + backward in train mode; FLOPs are the forward's ×3, the usual estimate")
        else:
            model.eval()

            def step() -> None:
                with torch.inference_mode():
                    model(x)

        try:
            times, interrupted = _quietest_runs(step, clock, warmup, runs, progress, analysis.name, notes)
        except RuntimeError as exc:
            raise CnnsizeError(f"torch failed running the network: {str(exc).splitlines()[0]}",
                               hint="try --dtype float32, or drop --backward or --channels-last") from None
        settings = _settings(dev)
        per_layer_ms = None
        if per_layer and not interrupted:
            per_layer_ms = _per_layer(model, x, clock)
            notes.append("per-layer times synchronize the device around every layer, which perturbs the total; "
                         "the total above was measured without them")
        peak_gflops = None
        if peak and not interrupted:
            peak_gflops = measure_peak(dev, first.dtype)
            achieved = int(analysis.totals["flops"]) * (BACKWARD_FACTOR if backward else 1) / \
                (sorted(times)[len(times) // 2] / 1e3) / 1e9 if times else 0.0
            if achieved > peak_gflops:  # faster than the peak: measure the peak again, longer, keep the best
                peak_gflops = max(peak_gflops, measure_peak(dev, first.dtype, budget_s=3.0, max_runs=30))
                notes.append("the network measured above the matmul peak, so the peak was measured again "
                             "(the larger of the two is shown)")
    finally:
        torch.backends.cudnn.benchmark = cudnn_before
        model.eval()
    factor = BACKWARD_FACTOR if backward else 1
    return Timing(device=str(dev), device_name=_device_name(dev), dtype=str(first.dtype).replace("torch.", ""),
                  batch=analysis.batch, mode="forward+backward" if backward else "forward", warmup=warmup,
                  times_ms=times, flops_per_run=int(analysis.totals["flops"]) * factor, channels_last=channels_last,
                  peak_gflops=peak_gflops, per_layer_ms=per_layer_ms, interrupted=interrupted, settings=settings,
                  notes=notes, peak_matmul=peak_matrix_size(dev) if peak_gflops else None)


def _per_layer(model: GraphModule, x: torch.Tensor, clock: _Clock, runs: int = PER_LAYER_RUNS) -> dict[str, float]:
    """Median forward time per layer, with the device synchronized before and after each layer."""
    import numpy as np

    return {name: float(np.median(v)) for name, v in layer_samples(model, x, clock, runs).items() if v}


def layer_samples(model: GraphModule, x: torch.Tensor, clock: _Clock, runs: int,
                  thread_time: bool = False) -> dict[str, list[float]]:
    """Each layer's times in ms over ``runs`` forward passes (after one untimed pass with the hooks in place), the
    device synchronized before each layer; ``thread_time`` times with the calling thread's CPU time instead of
    the clock (on a one-thread CPU it leaves out waiting for a core on a shared machine)."""
    import time

    starts: dict[str, Any] = {}
    samples: dict[str, list[float]] = {name: [] for name in model.layer_modules}
    handles = []
    for name, module in model.layer_modules.items():
        def pre(mod, args, name=name):
            clock.sync()
            starts[name] = time.thread_time() if thread_time else clock.start()

        def post(mod, args, out, name=name):
            samples[name].append((time.thread_time() - starts[name]) * 1e3 if thread_time
                                 else clock.stop(starts[name]))

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    try:
        with torch.inference_mode():
            model(x)  # one untimed pass with the hooks in place (first-touch allocations)
            for values in samples.values():
                values.clear()
            for _ in range(runs):
                model(x)
    finally:
        for h in handles:
            h.remove()
    return samples


def make_input(analysis: Analysis, dev: torch.device, tdtype: torch.dtype, channels_last: bool) -> Any:
    """Random input (a tuple of them where the spec has several inputs), channels-last where asked."""
    xs = tuple(torch.randn((analysis.batch, *shape), device=dev).to(tdtype) for shape in analysis.inputs.values())
    if channels_last:
        xs = tuple(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for x in xs)
    return xs[0] if len(xs) == 1 else xs


def run_bench(spec: Any, *, input_shape: tuple | None = None, fit: str | None = None, batch: int = 1,
              device: str = "auto", dtype: str = "float32", runs: int = 50, warmup: int = 10, backward: bool = False,
              channels_last: bool = False, per_layer: bool = False, peak: bool = True, force: bool = False,
              init: bool = False, progress: bool | None = None) -> Timing:
    """Build the spec on the device (after checking it fits) and time it."""
    if runs < 1 or warmup < 0:
        raise SpecError(f"runs must be at least 1 and warmup at least 0, got runs={runs}, warmup={warmup}")
    dev = resolve_device(device)
    tdtype = torch_dtype(dtype)
    analysis = as_analysis(spec, input_shape=input_shape, fit=fit, batch=batch, dtype=dtype)
    if channels_last and len(analysis.input_shape) != 3:
        raise SpecError("channels-last needs images (C, H, W)", hint="drop --channels-last")
    check_dtype(dev, tdtype, dtype)
    need = sum(required_bytes(analysis, backward=backward).values())
    check_fits(analysis, dev, need, "training step" if backward else "forward pass", force, backward=backward)
    model = build_module(None, analysis=analysis, device=dev, dtype=dtype, init=init)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # a real overload torch's stubs omit
    x = make_input(analysis, dev, tdtype, channels_last)
    return run_timing(model, x, analysis, runs=runs, warmup=warmup, backward=backward, per_layer=per_layer,
                      peak=peak, channels_last=channels_last, progress=progress)


def check_dtype(dev: torch.device, tdtype: torch.dtype, name: str) -> None:
    """Refuse a precision the device cannot compute convolutions and matmuls in."""
    try:
        a = torch.ones((1, 2, 4, 4), device=dev, dtype=tdtype)
        torch.nn.functional.conv2d(a, torch.ones((2, 2, 3, 3), device=dev, dtype=tdtype))
        torch.mm(a.flatten(1), a.flatten(1).t())
    except RuntimeError as exc:
        raise SpecError(f"{name} is not supported on {dev}: {str(exc).splitlines()[0]}",
                        hint="use --dtype float32 (or bfloat16)") from None
