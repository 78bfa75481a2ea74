"""Latency predicted from the spec alone: a roofline per layer with a device profile.

Each layer takes ``overhead + max(work / peak, bytes / bandwidth) / efficiency``: the larger of its compute
time (FLOPs, or for a layer without multiply-adds its connections: pooling windows, LRN neighbours) at the
device's peak for the dtype and its memory traffic (cnnsize.passes.traffic) at the device's bandwidth,
divided by the efficiency its kind reaches on that device (1 in a datasheet profile), plus the per-layer
overhead (launch or dispatch). The layer is ``compute``- or ``memory``-bound by which term is larger.

Profiles: bundled datasheet figures for common GPUs (peak and bandwidth as the vendor states them; nothing
measured, efficiencies 1), or one measured on this machine by ``cnnsize calibrate`` (cnnsize.executor.calibrate),
saved in the user's config directory where ``--device-profile cpu`` (or ``cuda``) finds it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.errors import Location, SpecError, unknown_name
from ..core.numeric import is_int
from ..core.safe import printable
from ..core.text import seconds_text
from ..engine.result import Column
from ..layers.base import LOWER
from .traffic import apply as apply_traffic

EFFICIENCY_KEYS = ("conv", "stem", "grouped", "depthwise", "fc", "pool", "global_pool", "norm", "lrn", "elementwise",
                   "move")


# Plausible ranges of a profile's figures (far outside any real device both ways, so a typo or a sign is caught):
# a peak from 1 kFLOP/s to 10 EFLOP/s (an H100 is ~1e15), a bandwidth from 1 kB/s to 1 PB/s (~3e12), a per-layer
# overhead below 1 s, an efficiency above 0 and at most 10 (a memory-bound layer that stays in cache can beat
# the DRAM bandwidth; calibrate clamps to 10), at most a million CPU threads.
PEAK_RANGE = (1e3, 1e19)
BANDWIDTH_RANGE = (1e3, 1e15)
OVERHEAD_MAX = 1.0
EFFICIENCY_MAX = 10.0
THREADS_MAX = 1_000_000
DTYPES = ("float32", "float16", "bfloat16", "float64", "int8")
PROFILE_KEYS = ("name", "source", "peak_flops", "bandwidth", "overhead_s", "efficiency", "notes", "threads",
                "memory_bytes", "interconnect", "host_link")
# a device's memory from 1 MiB to 16 EiB (--device-memory's largest); bytes, whole
MEMORY_RANGE = (2**20, 2**64)
MAX_PROFILE_BYTES = 1 << 20  # a profile is a few hundred bytes
MAX_NOTES, MAX_TEXT = 100, 1000


def _number(value, key: str, lo: float, hi: float, unit: str, *, zero: bool = False) -> float:
    """``value`` as a finite float in [lo, hi] (or 0 where ``zero``), else a SpecError naming the key."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"'{key}' must be a number ({unit}), got {_shown(value)}")
    if isinstance(value, int) and abs(value) > 10**30:
        raise SpecError(f"'{key}' is a number of about {int(abs(value).bit_length() * 0.30103):,} digits, far "
                        "outside a device's range",
                        hint=f"give {unit} between {lo:g} and {hi:g}")
    value = float(value)
    if not math.isfinite(value):
        raise SpecError(f"'{key}' must be a finite number ({unit}), got {value}")
    if zero and value == 0:
        return value
    if value <= 0:
        raise SpecError(f"'{key}' must be positive ({unit}), got {value:g}")
    if not lo <= value <= hi:
        raise SpecError(f"'{key}' is {value:g} {unit}, outside the plausible {lo:g} to {hi:g}",
                        hint="check the unit (FLOP/s, bytes/s, seconds) and the exponent")
    return value


def _shown(value) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _text(value, key: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise SpecError(f"'{key}' must be text of at most {MAX_TEXT:,} characters, got {_shown(value)}")
    return value


@dataclass
class DeviceProfile:
    """What the roofline needs of a device. ``peak_flops`` is FLOP/s per dtype, ``bandwidth`` bytes/s.

    Every figure is checked when the profile is made (finite, positive, in a plausible range): a negative or NaN
    bandwidth would otherwise predict negative or NaN seconds without a word."""

    name: str
    source: str  # "datasheet: <document>" or "measured: <how>"
    peak_flops: dict[str, float]
    bandwidth: float
    overhead_s: float = 0.0
    efficiency: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    threads: int | None = None  # CPU threads torch used when measuring (a CPU profile holds for that many)
    memory_bytes: int | None = None  # the device's memory, for ``cnnsize plan`` (None: not known; --device-memory)
    interconnect: float | None = None  # bytes/s one GPU sends to another (None: the plan's step leaves it out)
    host_link: float | None = None  # bytes/s between the GPU and host memory each way (PCIe), for --offload

    def __post_init__(self) -> None:
        if not self.peak_flops:
            raise SpecError("'peak_flops' names no dtype", hint=f"give FLOP/s for one of {', '.join(DTYPES)}")
        for dtype, value in self.peak_flops.items():
            if dtype not in DTYPES:
                raise unknown_name("dtype in 'peak_flops'", str(dtype), DTYPES)
            self.peak_flops[dtype] = _number(value, f"peak_flops.{dtype}", *PEAK_RANGE, "FLOP/s")
        self.bandwidth = _number(self.bandwidth, "bandwidth", *BANDWIDTH_RANGE, "bytes/s")
        self.overhead_s = _number(self.overhead_s, "overhead_s", 1e-12, OVERHEAD_MAX, "seconds", zero=True)
        for key, value in self.efficiency.items():
            if key not in EFFICIENCY_KEYS:
                raise unknown_name("efficiency key", str(key), EFFICIENCY_KEYS)
            self.efficiency[key] = _number(value, f"efficiency.{key}", 1e-6, EFFICIENCY_MAX, "a fraction")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or not 1 <= self.threads <= THREADS_MAX):
            raise SpecError(f"'threads' must be a whole number from 1 to {THREADS_MAX:,}, got {_shown(self.threads)}")
        if self.memory_bytes is not None:
            self.memory_bytes = int(_number(self.memory_bytes, "memory_bytes", *MEMORY_RANGE, "bytes"))
        if self.interconnect is not None:
            self.interconnect = _number(self.interconnect, "interconnect", *BANDWIDTH_RANGE, "bytes/s")
        if self.host_link is not None:
            self.host_link = _number(self.host_link, "host_link", *BANDWIDTH_RANGE, "bytes/s")

    def peak(self, dtype: str) -> float:
        if dtype in self.peak_flops:
            return self.peak_flops[dtype]
        if dtype == "int8" or "float32" not in self.peak_flops:
            raise SpecError(f"device profile '{self.name}' has no peak for {dtype}",
                            hint=f"use --dtype {' or '.join(self.peak_flops)}")
        return self.peak_flops["float32"]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data, where: str = "profile") -> DeviceProfile:
        """A profile from parsed JSON; anything wrong is one line naming ``where`` and the key."""
        try:
            return cls(**_fields(data))
        except SpecError as exc:
            raise exc.at(Location(where)) from None


def _fields(data) -> dict:
    """The constructor's arguments from a profile's JSON object, each of the type it must have."""
    if not isinstance(data, dict):
        raise SpecError(f"not a device profile: a JSON {type(data).__name__}, not an object",
                        hint="make one with 'cnnsize calibrate -o FILE'")
    for key in data:
        if key not in PROFILE_KEYS:
            raise unknown_name("device profile key", str(key), PROFILE_KEYS)
    for key in ("name", "peak_flops", "bandwidth"):
        if key not in data:
            raise SpecError(f"not a device profile: '{key}' is missing",
                            hint="make one with 'cnnsize calibrate -o FILE'")
    for key in ("peak_flops", "efficiency"):
        if not isinstance(data.get(key, {}), dict):
            raise SpecError(f"'{key}' must be an object (dtype or kind: number), got {_shown(data[key])}")
    notes = data.get("notes", [])
    if not isinstance(notes, list) or len(notes) > MAX_NOTES:
        raise SpecError(f"'notes' must be a list of at most {MAX_NOTES} texts")
    return {"name": _text(data["name"], "name"), "source": _text(data.get("source", ""), "source"),
            "peak_flops": dict(data["peak_flops"]), "bandwidth": data["bandwidth"],
            "overhead_s": data.get("overhead_s", 0.0), "efficiency": dict(data.get("efficiency", {})),
            "notes": [_text(n, f"notes[{i}]") for i, n in enumerate(notes)], "threads": data.get("threads"),
            "memory_bytes": data.get("memory_bytes"), "interconnect": data.get("interconnect"),
            "host_link": data.get("host_link")}


T = 1e12
GIB = 2**30
# Vendor datasheet figures (dense, without sparsity), marked as datasheet, not measured. float32 is the
# FP32 (non-tensor-core) figure; float16/bfloat16 the dense tensor-core figure. Memory: the datasheet's "80GB" is
# 80 GiB (memory chips come in binary sizes; nvidia-smi shows an H100's as 81,559 MiB, a little of it reserved).
# Interconnect: the bytes a GPU sends each way, half the datasheet's figure for both directions. Host link: the PCIe
# link to host memory each way (x16: Gen3 16 GB/s, Gen4 32 GB/s, Gen5 64 GB/s), what --offload's copies cross.
DATASHEETS = {
    # NVIDIA A100 Tensor Core GPU datasheet (A100 80GB SXM): FP64 9.7 TFLOPS, FP32 19.5 TFLOPS,
    # BF16/FP16 Tensor Core 312 TFLOPS (624 with sparsity); GPU memory bandwidth 2,039 GB/s; GPU memory 80GB
    # HBM2e; interconnect NVLink 600GB/s (both directions: 300 GB/s each way).
    "a100": DeviceProfile("a100", "datasheet: NVIDIA A100 Tensor Core GPU datasheet, A100 80GB SXM",
                          {"float64": 9.7 * T, "float32": 19.5 * T, "float16": 312 * T, "bfloat16": 312 * T},
                          2039e9, 5e-6, memory_bytes=80 * GIB, interconnect=300e9, host_link=32e9),
    # NVIDIA H100 Tensor Core GPU datasheet (H100 SXM): FP64 34 TFLOPS, FP32 67 TFLOPS, BF16/FP16 Tensor
    # Core 1,979 TFLOPS with sparsity (989 dense); GPU memory bandwidth 3.35 TB/s; GPU memory 80GB; interconnect
    # NVLink 900GB/s (both directions: 450 GB/s each way).
    "h100": DeviceProfile("h100", "datasheet: NVIDIA H100 Tensor Core GPU datasheet, H100 SXM",
                          {"float64": 34 * T, "float32": 67 * T, "float16": 989 * T, "bfloat16": 989 * T},
                          3.35e12, 5e-6, memory_bytes=80 * GIB, interconnect=450e9, host_link=64e9),
    # NVIDIA H200 Tensor Core GPU datasheet (H200 SXM): FP64 34 TFLOPS, FP32 67 TFLOPS, BF16/FP16 Tensor
    # Core 1,979 TFLOPS with sparsity (989 dense); GPU memory bandwidth 4.8 TB/s; GPU memory 141GB; interconnect
    # NVLink 900GB/s (both directions: 450 GB/s each way).
    "h200": DeviceProfile("h200", "datasheet: NVIDIA H200 Tensor Core GPU datasheet, H200 SXM",
                          {"float64": 34 * T, "float32": 67 * T, "float16": 989 * T, "bfloat16": 989 * T},
                          4.8e12, 5e-6, memory_bytes=141 * GIB, interconnect=450e9, host_link=64e9),
    # NVIDIA L4 Tensor Core GPU datasheet: FP32 30.3 TFLOPS, BF16/FP16 Tensor Core 242 TFLOPS with
    # sparsity (121 dense); GPU memory bandwidth 300 GB/s; GPU memory 24GB; interconnect PCIe Gen4 x16 64GB/s
    # (both directions: 32 GB/s each way).
    "l4": DeviceProfile("l4", "datasheet: NVIDIA L4 Tensor Core GPU datasheet",
                        {"float32": 30.3 * T, "float16": 121 * T, "bfloat16": 121 * T}, 300e9, 5e-6,
                        memory_bytes=24 * GIB, interconnect=32e9, host_link=32e9),
    # NVIDIA T4 Tensor Core GPU datasheet: single precision (FP32) 8.1 TFLOPS, mixed precision (FP16/FP32)
    # 65 TFLOPS; GPU memory bandwidth 320 GB/s (no bfloat16 on Turing); GPU memory 16 GB GDDR6; system interface
    # x16 PCIe Gen3 (PCIe 3.0's 16 GB/s each way over 16 lanes).
    "t4": DeviceProfile("t4", "datasheet: NVIDIA T4 Tensor Core GPU datasheet",
                        {"float32": 8.1 * T, "float16": 65 * T}, 320e9, 5e-6, memory_bytes=16 * GIB,
                        interconnect=16e9, host_link=16e9),
    # NVIDIA Ada Lovelace GPU architecture whitepaper, GeForce RTX 4090: peak FP32 82.6 TFLOPS, peak FP16
    # Tensor TFLOPS with FP32 accumulate 165.2 (330.4 with sparsity); memory bandwidth 1,008 GB/s; frame buffer
    # 24 GB GDDR6X; no NVLink: PCIe Gen 4 (x16: 32 GB/s each way).
    "rtx4090": DeviceProfile("rtx4090", "datasheet: NVIDIA Ada Lovelace architecture whitepaper, RTX 4090",
                             {"float32": 82.6 * T, "float16": 165.2 * T, "bfloat16": 165.2 * T}, 1008e9, 5e-6,
                             memory_bytes=24 * GIB, interconnect=32e9, host_link=32e9),
}
for _p in DATASHEETS.values():
    _p.notes.append("datasheet figures, not measured; the 5 µs per-layer overhead is an assumption (kernel launch)")


def config_dir() -> str:
    """Where calibrated profiles live: $CNNSIZE_CONFIG_DIR, else $XDG_CONFIG_HOME/cnnsize, else ~/.config/cnnsize."""
    if os.environ.get("CNNSIZE_CONFIG_DIR"):
        return os.environ["CNNSIZE_CONFIG_DIR"]
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "cnnsize")


def profile_path(name: str) -> str:
    return os.path.join(config_dir(), "profiles", f"{name}.json")


def load_profile(spec) -> DeviceProfile:
    """A profile from a DeviceProfile, a bundled name (a100 ...), a calibrated name (cpu, cuda) or a JSON file."""
    if isinstance(spec, DeviceProfile):
        return spec
    name = str(spec)
    if name.lower() in DATASHEETS:
        return DATASHEETS[name.lower()]
    if _is_plain_name(name) and os.path.lexists(profile_path(name)):
        return read_profile(profile_path(name))
    if os.path.lexists(name) or not _is_plain_name(name):
        return read_profile(name)
    if name in ("cpu", "cuda"):
        raise SpecError(f"no calibrated '{name}' profile in {os.path.dirname(profile_path(name))}",
                        hint=f"run 'cnnsize calibrate --device {name}' first")
    raise unknown_name("device profile", name, [*DATASHEETS, "cpu", "cuda"])


def _is_plain_name(name: str) -> bool:
    """A name such as ``cpu`` (looked up among the calibrated profiles), not a path (``dev.json``, ``./cpu``)."""
    return bool(name) and os.sep not in name and "/" not in name and not name.lower().endswith(".json")


def read_profile(path: str) -> DeviceProfile:
    """A profile from a JSON file: a missing path, a folder, a FIFO or device (never opened: it could block), a
    file too large, bad JSON (NaN, 5,000-digit numbers and 100k-deep nesting included) each get their own line."""
    import stat


    shown = printable(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SpecError(f"no device profile file '{shown}'",
                        hint=f"give a bundled name ({', '.join(DATASHEETS)}), cpu or cuda after "
                             "'cnnsize calibrate', or the path of a profile JSON file") from None
    except OSError as exc:
        raise SpecError(f"cannot read the device profile '{shown}': {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise SpecError(f"the device profile '{shown}' is a folder", hint="give the JSON file inside it")
    if not stat.S_ISREG(st.st_mode):
        raise SpecError(f"the device profile '{shown}' is not a regular file (a FIFO, socket or device)",
                        hint="give a profile JSON file")
    if st.st_size > MAX_PROFILE_BYTES:
        raise SpecError(f"the device profile '{shown}' is {st.st_size:,} bytes, more than the "
                        f"{MAX_PROFILE_BYTES:,} a profile may have")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # never blocks, if swapped for a FIFO
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(MAX_PROFILE_BYTES + 1)
        data = _parse_json(raw.decode("utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read the device profile '{shown}': {exc.strerror}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else " ".join(str(exc).split())[:200]
        raise SpecError(f"the device profile '{shown}' is not valid JSON: {detail}") from None
    return DeviceProfile.from_dict(data, where=path)


def _parse_json(text: str):
    """JSON without NaN or Infinity (not JSON) and with integers of at most 40 digits."""
    def constant(word: str):
        raise ValueError(f"{word} is not a JSON number")

    def integer(digits: str) -> int:
        if len(digits) > 40:
            raise ValueError(f"a {len(digits):,}-digit integer")
        return int(digits)

    if text.count("[") + text.count("{") > 10_000:
        raise ValueError("too many arrays and objects for a device profile")
    return json.loads(text, parse_constant=constant, parse_int=integer)


def efficiency_key(kind) -> str:
    """Which efficiency of a profile applies to a layer kind."""
    own = kind.latency_key()  # convolutions (conv or grouped), windowed pooling, LRN
    if own is not None:
        return own
    cause = getattr(kind, "cause", "other")
    if cause == "macs":
        return "fc"
    if cause == "pooling":
        return "global_pool"
    if cause == "normalization":
        return "norm"
    if cause in ("views", "upsampling"):
        return "move"
    return "elementwise"


def layer_key(row, shapes: dict) -> str:
    key = efficiency_key(row.kind)
    channels = shapes[row.inputs[0]][0] if row.inputs else 0
    if key == "grouped" and channels == row.kind.groups:
        return "depthwise"
    if key == "conv" and channels <= 4:  # an image stem: too few channels to fill the vector units
        return "stem"
    return key


def work(row, batch) -> object:
    """The operations the compute term counts: FLOPs, or for layers without multiply-adds their connections
    (pooling windows, LRN's neighbours), one operation each."""
    return row.flops or row.connections * batch


def predict(flops, moved, profile: DeviceProfile, dtype: str, key: str) -> tuple[float, str]:
    """(seconds, bound) of one layer."""
    compute = float(flops) / profile.peak(dtype)
    memory = float(moved) / profile.bandwidth
    eff = profile.efficiency.get(key, 1.0) or 1.0
    return profile.overhead_s + max(compute, memory) / eff, "compute" if compute >= memory else "memory"


def apply(analysis, profile) -> object:
    """Fill predicted_seconds and bound per row and in the totals (the traffic filled first: cnnsize.passes.traffic)."""
    profile = load_profile(profile)
    if not analysis.traffic:
        apply_traffic(analysis)
    shapes = {r.name: r.output_shape for r in analysis.layers}
    total, by_bound = 0.0, {"compute": 0.0, "memory": 0.0}
    for r in analysis.layers[1:]:
        if not (is_int(r.flops) and is_int(r.bytes_read)):
            raise SpecError("a latency prediction needs numeric sizes", hint="give a numeric input shape")
        seconds, bound = predict(work(r, analysis.batch), r.bytes_read + r.bytes_written, profile, analysis.dtype,
                                 layer_key(r, shapes))
        r.add("predicted_seconds", seconds)
        r.add("bound", bound)
        total += seconds
        by_bound[bound] += seconds
    t = analysis.totals
    t["predicted_seconds"] = total
    t["bound"] = max(by_bound, key=lambda b: by_bound[b])
    t["bound_share"] = by_bound[t["bound"]] / total if total else 0.0
    analysis.device_profile = profile.name
    analysis.add_columns(COLUMNS, f"Predicted on {profile.name}: {seconds_text(total)} "
                                  f"({t['bound']}-bound layers take {t['bound_share']:.0%} of it).")
    return analysis


MIXED_DTYPES = {"bf16-mixed": "bfloat16", "fp16-mixed": "float16"}  # the type autocast lowers ops to


def micro_step_seconds(analysis, profile, precision: str | None = None) -> tuple[float, float | None, float]:
    """(forward, backward, recompute) seconds of one micro-step of a training step, by the roofline of each layer.

    Forward: each layer as ``apply`` predicts it, at the dtype it computes in (under mixed precision, the 16-bit
    type for the kinds autocast lowers, float32 for the others; the traffic as the analysis' dtype counts it).
    Backward: a layer whose backward runs (some input or parameter needs a gradient) does 2 × its backward MACs in
    FLOPs and moves twice its forward's bytes (it reads the output's gradient and what it saved, and writes its
    inputs' and weights' gradients); None when a layer's backward work is unknown. Recompute: the forward again of
    each layer activation checkpointing recomputes (``recomputed``). The training pass has run."""
    precision = precision or analysis.totals["training"]["precision"]
    return sum_terms(layer_terms(analysis), load_profile(profile), precision, analysis.dtype)


def layer_terms(analysis) -> list[tuple]:
    """Per layer what micro_step_seconds reads: (work, bytes moved, efficiency key, whether autocast lowers it,
    backward MACs (None: unknown; False: no backward runs), recomputed)."""
    if not analysis.traffic:
        apply_traffic(analysis)
    shapes = {r.name: r.output_shape for r in analysis.layers}
    out = []
    for r in analysis.layers[1:]:
        if not (is_int(r.flops) and is_int(r.bytes_read)):
            raise SpecError("a latency prediction needs numeric sizes", hint="give a numeric input shape")
        lowered = r.kind.autocast_mode([shapes[s] for s in r.inputs], "cuda") == LOWER
        runs = not (r.get("input_grad_macs") is None and r.get("weight_grad_macs") == 0)
        out.append((work(r, analysis.batch), r.bytes_read + r.bytes_written, layer_key(r, shapes), lowered,
                    r.get("backward_macs") if runs else False, bool(r.get("recomputed"))))
    return out


def sum_terms(terms: list[tuple], profile: DeviceProfile, precision: str, dtype: str,
              scale: tuple[int, int] = (1, 1)) -> tuple[float, float | None, float]:
    """micro_step_seconds from layer_terms; ``scale`` (to, from) converts the bytes counted at one itemsize to
    another (exact: the traffic is elements × itemsize)."""
    lower = MIXED_DTYPES.get(precision)
    forward, recompute = 0.0, 0.0
    backward: float | None = 0.0
    to, of = scale
    for flops, moved, key, lowered, macs, recomputed in terms:
        moved = moved // of * to
        at = lower if lower and lowered else dtype
        seconds = predict(flops, moved, profile, at, key)[0]
        forward += seconds
        recompute += seconds if recomputed else 0.0
        if backward is None or macs is False:
            continue  # unknown already, or a layer no gradient flows through
        backward = None if macs is None else backward + predict(2 * macs, 2 * moved, profile, at, key)[0]
    return forward, backward, recompute


def step_seconds(analysis, profile) -> dict:
    """A training step's predicted seconds on a device, per part and in all (``step_seconds``; None when a layer's
    backward work is unknown): ``accumulate`` micro-steps (micro_step_seconds), the optimizer's step (a memory-bound
    pass reading each trained parameter, its gradient and state, writing the parameter and state, for the share
    each GPU updates) and, on several GPUs, the bytes each sends (``communication_bytes``) at the profile's
    ``interconnect``, not overlapped with the backward (an upper bound); ``communication_seconds`` is None, and
    left out of the step, where the profile gives no interconnect. The training pass (and sharding) has run."""
    profile = load_profile(profile)
    training = analysis.totals.get("training")
    if training is None:
        raise SpecError("a training step's time needs the training pass", hint="analyze with training=True")
    memory, per_gpu = analysis.totals.memory, training.get("per_gpu")
    grads = max(per_gpu["gradients_bytes"]) if per_gpu else memory.gradients_bytes
    state = max(per_gpu["optimizer_bytes"]) if per_gpu else memory.optimizer_bytes
    gpus = training.get("gpus", 1)
    return combine_step(micro_step_seconds(analysis, profile, training["precision"]), profile,
                        training["accumulate"], gpus, grads, state, training["communication_bytes"] if gpus > 1 else 0,
                        training.get("offload_transfer_bytes") or 0)


def combine_step(micro: tuple, profile: DeviceProfile, accumulate: int, gpus: int, grads: Any, state: Any,
                 sent: Any, host: Any = 0) -> dict:
    """step_seconds from a micro-step's (forward, backward, recompute) seconds, the bytes of gradients and
    optimizer state a GPU updates, the bytes it sends (``cnnsize plan`` times many settings of one walk) and the
    bytes it copies to and from host memory (``host``: --offload's, at the profile's ``host_link``, not overlapped;
    None where the profile gives none)."""
    forward, backward, recompute = micro
    optimizer = float(3 * grads + 2 * state) / profile.bandwidth
    communication = 0.0 if gpus == 1 else None if profile.interconnect is None else float(sent) / profile.interconnect
    transfer = 0.0 if not host else None if profile.host_link is None else float(host) / profile.host_link
    step = None if backward is None else \
        accumulate * (forward + backward + recompute) + optimizer + (communication or 0.0) + (transfer or 0.0)
    return {"forward_seconds": accumulate * forward, "backward_seconds": None if backward is None else
            accumulate * backward, "recompute_seconds": accumulate * recompute, "optimizer_seconds": optimizer,
            "communication_seconds": communication, "offload_seconds": transfer, "step_seconds": step}


def _fold_bound(key: str, members: list, row) -> str | None:
    """A block's bound: the one that takes the larger share of its layers' predicted time."""
    share: dict[str, float] = {}
    for m in members:
        bound, seconds = m.get("bound"), m.get("predicted_seconds")
        if bound is not None and seconds is not None:
            share[bound] = share.get(bound, 0.0) + seconds
    return max(share, key=share.__getitem__) if share else None


COLUMNS = [Column("predicted_seconds", "Predicted s", cell=seconds_text), Column("bound", "Bound", fold=_fold_bound)]
