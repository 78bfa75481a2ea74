"""Latency predicted from the spec alone: a roofline per layer with a device profile.

Each layer takes ``overhead + max(work / peak, bytes / bandwidth) / efficiency``: the larger of its compute
time (FLOPs, or for a layer without multiply-adds its connections: pooling windows, LRN neighbours) at the
device's peak for the dtype and its memory traffic (cnnsize.traffic) at the device's bandwidth,
divided by the efficiency its kind reaches on that device (1 in a datasheet profile), plus the per-layer
overhead (launch or dispatch). The layer is ``compute``- or ``memory``-bound by which term is larger.

Profiles: bundled datasheet figures for common GPUs (peak and bandwidth as the vendor states them; nothing
measured, efficiencies 1), or one measured on this machine by ``cnnsize calibrate`` (cnnsize.calibrate),
saved in the user's config directory where ``--device-profile cpu`` (or ``cuda``) finds it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from .errors import SpecError, unknown_name
from .numeric import is_int

EFFICIENCY_KEYS = ("conv", "stem", "grouped", "depthwise", "fc", "pool", "global_pool", "norm", "lrn", "elementwise",
                   "move")


@dataclass
class DeviceProfile:
    """What the roofline needs of a device. ``peak_flops`` is FLOP/s per dtype, ``bandwidth`` bytes/s."""

    name: str
    source: str  # "datasheet: <document>" or "measured: <how>"
    peak_flops: dict[str, float]
    bandwidth: float
    overhead_s: float = 0.0
    efficiency: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    threads: int | None = None  # CPU threads torch used when measuring (a CPU profile holds for that many)

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
    def from_dict(cls, data: dict, where: str = "profile") -> DeviceProfile:
        try:
            return cls(name=str(data["name"]), source=str(data.get("source", "")),
                       peak_flops={str(k): float(v) for k, v in data["peak_flops"].items()},
                       bandwidth=float(data["bandwidth"]), overhead_s=float(data.get("overhead_s", 0.0)),
                       efficiency={str(k): float(v) for k, v in data.get("efficiency", {}).items()},
                       notes=[str(n) for n in data.get("notes", [])],
                       threads=None if data.get("threads") is None else int(data["threads"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SpecError(f"{where} is not a device profile ({type(exc).__name__}: {exc})",
                            hint="make one with 'cnnsize calibrate -o FILE'") from None


T = 1e12
# Vendor datasheet figures (dense, without sparsity), marked as datasheet, not measured. float32 is the
# FP32 (non-tensor-core) figure; float16/bfloat16 the dense tensor-core figure.
DATASHEETS = {
    # NVIDIA A100 Tensor Core GPU datasheet (A100 80GB SXM): FP64 9.7 TFLOPS, FP32 19.5 TFLOPS,
    # BF16/FP16 Tensor Core 312 TFLOPS (624 with sparsity); GPU memory bandwidth 2,039 GB/s.
    "a100": DeviceProfile("a100", "datasheet: NVIDIA A100 Tensor Core GPU datasheet, A100 80GB SXM",
                          {"float64": 9.7 * T, "float32": 19.5 * T, "float16": 312 * T, "bfloat16": 312 * T},
                          2039e9, 5e-6),
    # NVIDIA H100 Tensor Core GPU datasheet (H100 SXM): FP64 34 TFLOPS, FP32 67 TFLOPS, BF16/FP16 Tensor
    # Core 1,979 TFLOPS with sparsity (989 dense); GPU memory bandwidth 3.35 TB/s.
    "h100": DeviceProfile("h100", "datasheet: NVIDIA H100 Tensor Core GPU datasheet, H100 SXM",
                          {"float64": 34 * T, "float32": 67 * T, "float16": 989 * T, "bfloat16": 989 * T},
                          3.35e12, 5e-6),
    # NVIDIA H200 Tensor Core GPU datasheet (H200 SXM): FP64 34 TFLOPS, FP32 67 TFLOPS, BF16/FP16 Tensor
    # Core 1,979 TFLOPS with sparsity (989 dense); GPU memory bandwidth 4.8 TB/s.
    "h200": DeviceProfile("h200", "datasheet: NVIDIA H200 Tensor Core GPU datasheet, H200 SXM",
                          {"float64": 34 * T, "float32": 67 * T, "float16": 989 * T, "bfloat16": 989 * T},
                          4.8e12, 5e-6),
    # NVIDIA L4 Tensor Core GPU datasheet: FP32 30.3 TFLOPS, BF16/FP16 Tensor Core 242 TFLOPS with
    # sparsity (121 dense); GPU memory bandwidth 300 GB/s.
    "l4": DeviceProfile("l4", "datasheet: NVIDIA L4 Tensor Core GPU datasheet",
                        {"float32": 30.3 * T, "float16": 121 * T, "bfloat16": 121 * T}, 300e9, 5e-6),
    # NVIDIA T4 Tensor Core GPU datasheet: single precision (FP32) 8.1 TFLOPS, mixed precision (FP16/FP32)
    # 65 TFLOPS; GPU memory bandwidth 320 GB/s (no bfloat16 on Turing).
    "t4": DeviceProfile("t4", "datasheet: NVIDIA T4 Tensor Core GPU datasheet",
                        {"float32": 8.1 * T, "float16": 65 * T}, 320e9, 5e-6),
    # NVIDIA Ada Lovelace GPU architecture whitepaper, GeForce RTX 4090: peak FP32 82.6 TFLOPS, peak FP16
    # Tensor TFLOPS with FP32 accumulate 165.2 (330.4 with sparsity); memory bandwidth 1,008 GB/s.
    "rtx4090": DeviceProfile("rtx4090", "datasheet: NVIDIA Ada Lovelace architecture whitepaper, RTX 4090",
                             {"float32": 82.6 * T, "float16": 165.2 * T, "bfloat16": 165.2 * T}, 1008e9, 5e-6),
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
    for path in (profile_path(name), name):
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as fh:
                    data = json.load(fh)
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise SpecError(f"cannot read the device profile {path}: {exc}") from None
            return DeviceProfile.from_dict(data, where=path)
    if name in ("cpu", "cuda"):
        raise SpecError(f"no calibrated '{name}' profile in {os.path.dirname(profile_path(name))}",
                        hint=f"run 'cnnsize calibrate --device {name}' first")
    raise unknown_name("device profile", name, [*DATASHEETS, "cpu", "cuda"])


def efficiency_key(kind) -> str:
    """Which efficiency of a profile applies to a layer kind."""
    name, cause = kind.kind, getattr(kind, "cause", "other")
    if name in ("conv", "deconv"):
        groups = getattr(kind, "groups", 1)
        return "conv" if groups == 1 else "grouped"  # layer_key tells depthwise (groups = input channels) apart
    if cause == "macs":
        return "fc"
    if cause == "pooling":
        return "pool" if name in ("maxpool", "avgpool") else "global_pool"
    if name == "lrn":
        return "lrn"
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
    """Fill predicted_seconds and bound per row and in the totals (the traffic must be filled: cnnsize.traffic)."""
    profile = load_profile(profile)
    if not analysis.traffic:
        from .traffic import apply as apply_traffic

        apply_traffic(analysis)
    shapes = {r.name: r.output_shape for r in analysis.layers}
    total, by_bound = 0.0, {"compute": 0.0, "memory": 0.0}
    for r in analysis.layers[1:]:
        if not (is_int(r.flops) and is_int(r.bytes_read)):
            raise SpecError("a latency prediction needs numeric sizes", hint="give a numeric input shape")
        seconds, bound = predict(work(r, analysis.batch), r.bytes_read + r.bytes_written, profile, analysis.dtype,
                                 layer_key(r, shapes))
        r.predicted_seconds, r.bound = seconds, bound
        total += seconds
        by_bound[bound] += seconds
    t = analysis.totals
    t["predicted_seconds"] = total
    t["bound"] = max(by_bound, key=lambda b: by_bound[b])
    t["bound_share"] = by_bound[t["bound"]] / total if total else 0.0
    analysis.device_profile = profile.name
    return analysis
