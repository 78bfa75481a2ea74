"""An ONNX file under ONNX Runtime: every imported layer's output shape against the analysis, and its timing.

``validate`` for a torch network compares every figure with torch; for an ONNX file the runtime's truth is the
tensors it computes: each layer's output is added to the graph's outputs, the model runs once on random input,
and every shape is compared with the analysis at the same batch. ``bench`` times ``session.run`` with the torch
bench's loop (warm-up, one run at a time, median with p10/p90). onnxruntime is imported here only; the timing
report is the torch bench's (cnnsize.executor.timing), so timing needs torch installed too.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import CnnsizeError, Location, SpecError
from ..core.optional import require_onnx, require_ort
from ..core.safe import printable
from ..importers import analyze_spec
from ..importers.onnx_import import EXTERNAL, _inline_ifs, from_onnx, read_model, walk
from ..render.boxes import box_table


@dataclass
class ShapeCheck:
    """One layer's output shape: the analysis' (batch included) and ONNX Runtime's."""

    name: str
    type: str
    value: str
    predicted: tuple
    measured: tuple

    @property
    def ok(self) -> bool:
        return tuple(self.predicted) == tuple(self.measured)

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "onnx_value": self.value, "predicted": list(self.predicted),
                "measured": list(self.measured), "ok": self.ok}


@dataclass
class OnnxValidation:
    """Every imported layer's output shape under ONNX Runtime, and the timing of the same session."""

    name: str
    device: str
    batch: int
    input_shape: tuple
    layers: list[ShapeCheck]
    timing: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.layers)

    def mismatches(self) -> list[str]:
        return [f"layer '{r.name}' output_shape: predicted {list(r.predicted)}, ONNX Runtime {list(r.measured)}"
                for r in self.layers if not r.ok]

    def to_dict(self) -> dict:
        return {"ok": self.ok, "name": self.name, "runtime": "onnxruntime", "device": self.device,
                "batch": self.batch, "input_shape": list(self.input_shape),
                "layers": [r.to_dict() for r in self.layers], "mismatches": self.mismatches(),
                "timing": self.timing.to_dict() if self.timing is not None else None, "notes": list(self.notes)}


def _providers(ort, device: str) -> tuple[list[str], str]:
    available = ort.get_available_providers()
    if device in ("auto", "cuda") or device.startswith("cuda:"):
        if "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda"
        if device != "auto":
            raise SpecError(f"--device {device}: this onnxruntime has no CUDA provider (it has "
                            f"{', '.join(available)})", hint="use --device cpu, or install onnxruntime-gpu")
    elif device != "cpu":
        raise SpecError(f"--device {device} is not a device ONNX Runtime runs on here", hint="use cpu or cuda")
    return ["CPUExecutionProvider"], "cpu"


def _free_bytes() -> int | None:
    """Memory the machine has free now (MemAvailable), None where it cannot tell."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _mib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _external_plan(onnx, tensors: list, path: str) -> list[tuple]:
    """Where each external tensor's data sits, checked before anything is read: a plain relative path inside the
    model's folder (no absolute path, no '..', no link leading out), a regular file holding the bytes the tensor's
    type and shape need. (tensor, file, offset, length) each; one located line otherwise."""

    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    plan = []
    for t in tensors:
        if not (t.data_location == EXTERNAL or len(t.external_data)):
            continue
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        what = f"the weight '{printable(t.name)[:100]}' names its data in '{printable(loc)[:200]}'"
        hint = "running the model reads external data only from files beside it, named by relative paths"
        where = Location(path)
        parts = loc.replace("\\", "/").split("/")
        if not loc or "\x00" in loc or os.path.isabs(loc) or ".." in parts or loc.startswith(("/", "\\")):
            raise SpecError(f"{what}, outside the model's folder", hint=hint, location=where)
        full = os.path.realpath(os.path.join(folder, loc))
        if os.path.commonpath([full, folder]) != folder:
            raise SpecError(f"{what}, a link leading outside the model's folder", hint=hint, location=where)
        if not os.path.isfile(full):
            raise SpecError(f"{what}, which is not a file beside the model", hint=hint, location=where)
        try:
            offset = int(info.get("offset", "0"))
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
            length = int(info["length"]) if "length" in info else None
        except (KeyError, ValueError, TypeError):
            raise SpecError(f"{what} with an unreadable offset, length or type", hint=hint, location=where) from None
        n = 1
        for d in t.dims:
            n *= d
        want = n * itemsize
        if length is None:
            length = want
        if offset < 0 or length != want or offset + length > os.path.getsize(full):
            raise SpecError(f"{what} at offset {offset:,}, {length:,} bytes, where its shape needs {want:,} and the "
                            f"file holds {os.path.getsize(full):,}", hint=hint, location=where)
        plan.append((t, full, offset, length))
    return plan


def _read_external(plan: list) -> None:
    for t, full, offset, length in plan:
        with open(full, "rb") as fh:
            fh.seek(offset)
            t.raw_data = fh.read(length)
        del t.external_data[:]
        t.data_location = 0


def _check_memory(analysis, path: str, plan: list, every_layer: bool, force: bool) -> None:
    """Refuse, before reading weights or allocating the input, a run that needs more memory than is free: the
    weights (twice: the model and ONNX Runtime's copy), the input and the outputs kept (every layer's for
    validate, the inference peak for bench)."""
    m = analysis.totals["memory"]
    weights = os.path.getsize(path) + sum(length for *_, length in plan)
    kept = m["activations_bytes"] if every_layer else m["inference_peak_activations_bytes"]
    need = 2 * weights + int(kept) + int(m.get("input_bytes", 0) or 0)
    free = _free_bytes()
    if force or free is None or need <= free:
        return
    per_sample = int(kept) / max(analysis.batch, 1)
    fits = int((free - 2 * weights) // per_sample) if per_sample and free > 2 * weights else 0
    idea = f"--batch {fits} would fit; " if 1 <= fits < analysis.batch else ""
    raise CnnsizeError(f"running the model needs about {_mib(need)} (weights {_mib(weights)} twice, "
                       f"activations {_mib(kept)}) but the machine has {_mib(free)} free",
                       hint=f"{idea}a smaller --input or --batch, or --force to run it anyway", location=Location(path))


@contextlib.contextmanager
def _quiet_stderr():
    """ONNX Runtime's own log (multi-line, coloured) goes to a temporary file, never raw to the terminal; what it
    wrote is yielded as a list holding one string, for a message."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    caught: list[str] = []
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield caught
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            caught.append(tmp.read(4096).decode("utf-8", "replace"))


class _Session:
    """An ONNX Runtime session of the file with the imported layers' values as extra outputs."""

    def __init__(self, path: str, input_shape: tuple | None, batch: int, device: str, every_layer: bool,
                 force: bool = False):

        onnx = require_onnx()
        ort = require_ort()
        self.path = os.fspath(path)
        self.imported = from_onnx(path, input_shape=input_shape)
        self.analysis = analyze_spec(self.imported.spec, batch=batch)
        model = read_model(path)
        tensors, _ = walk(model)
        plan = _external_plan(onnx, tensors, os.fspath(path))
        _check_memory(self.analysis, os.fspath(path), plan, every_layer, force)
        _read_external(plan)
        _inline_ifs(onnx, model)  # as the import did: the branch taken, its layers' values in the graph
        graph = model.graph
        inits = {t.name for t in graph.initializer}
        given = next(i for i in graph.input if i.name not in inits)
        self.input_name = given.name
        dims = given.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value != batch:
            raise SpecError(f"the model's input '{given.name}' has the fixed batch {dims[0].dim_value}, not {batch}",
                            hint=f"give --batch {dims[0].dim_value}, or export with a dynamic batch axis")
        self.elem_type = given.type.tensor_type.elem_type
        outputs = {o.name for o in graph.output}
        self.layer_values = dict(self.imported.values) if every_layer else {}
        for value in self.layer_values.values():
            if value not in outputs:
                graph.output.append(onnx.ValueInfoProto(name=value))
                outputs.add(value)
        providers, self.device = _providers(ort, device)
        options = ort.SessionOptions()
        options.log_severity_level = 4  # fatal only: its errors come back as exceptions, said in one line
        ort.set_default_logger_severity(4)
        try:
            with _quiet_stderr():
                self.session = ort.InferenceSession(model.SerializeToString(), options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own Fail, InvalidGraph, ...
            raise CnnsizeError(f"ONNX Runtime cannot load '{path}': {' '.join(str(exc).split())[:300]}") from None
        self.names = [o.name for o in self.session.get_outputs()]
        import numpy as np
        from onnx import helper

        shape = (batch, *self.imported.spec["input"])
        try:
            dtype = helper.tensor_dtype_to_np_dtype(self.elem_type)
            self.feed = {self.input_name: np.random.default_rng(0).standard_normal(shape).astype(dtype)}
        except (ValueError, TypeError, KeyError) as exc:
            raise CnnsizeError(f"cannot make an input of type {self.elem_type} for '{given.name}': {exc}") from None

    def run(self, names=None, quiet: bool = True):
        try:
            if not quiet:  # timed: no file descriptors moved around each run
                return self.session.run(names, self.feed)
            with _quiet_stderr():
                return self.session.run(names, self.feed)
        except Exception as exc:  # noqa: BLE001 - the runtime's own failure, in one line
            raise CnnsizeError(f"ONNX Runtime failed running the model: {' '.join(str(exc).split())[:300]}",
                               location=Location(self.path)) from None


def _timing(session: _Session, analysis, runs: int, warmup: int):
    from ..executor.timing import Timing, timed_loop  # torch, for the bench only: validate needs none

    class Clock:  # wall time: ONNX Runtime's run returns once its outputs are on the host
        def sync(self) -> None:
            pass

        def start(self):
            import time

            return time.perf_counter()

        def stop(self, start) -> float:
            import time

            return (time.perf_counter() - start) * 1e3

    outputs = [o.name for o in session.session.get_outputs()][:1]  # the model's own output, as deployed
    session.run(outputs)  # once with the runtime's log caught: a failure is said in one line
    times, interrupted = timed_loop(lambda: session.run(outputs, quiet=False), Clock(), warmup, runs,
                                    label=f"timing {analysis.name}")
    import platform

    ort = require_ort()
    machine = platform.processor() or platform.machine()
    return Timing(device=session.device, device_name=f"ONNX Runtime {ort.__version__}, {machine}", dtype="float32",
                  batch=analysis.batch, mode="forward", warmup=warmup,
                  times_ms=times, flops_per_run=int(analysis.totals["flops"]), interrupted=interrupted,
                  settings={"runtime": "onnxruntime", "providers": session.session.get_providers()})


def validate_onnx(path: str, *, input_shape: tuple | None = None, batch: int = 1, device: str = "auto",
                  runs: int = 10, warmup: int = 2, force: bool = False) -> OnnxValidation:
    """Run the file once under ONNX Runtime and compare every imported layer's output shape with the analysis."""
    session = _Session(path, input_shape, batch, device, every_layer=True, force=force)
    analysis = session.analysis
    results = dict(zip(session.names, session.run()))
    rows = []
    for row in analysis.layers[1:]:
        value = session.layer_values.get(row.name)
        if value is None or value not in results:
            continue
        rows.append(ShapeCheck(row.name, row.type, value, (batch, *row.output_shape), tuple(results[value].shape)))
    notes = [f"{len(rows)} layer outputs compared; ONNX Runtime computes no parameter or MAC counts"]
    if hasattr(analysis, "notes"):
        notes += list(analysis.notes)
    timing = _timing(session, analysis, runs, warmup) if runs > 0 else None
    return OnnxValidation(name=analysis.name, device=session.device, batch=batch,
                          input_shape=tuple(session.imported.spec["input"]), layers=rows, timing=timing, notes=notes)


def bench_onnx(path: str, *, input_shape: tuple | None = None, batch: int = 1, device: str = "auto",
               runs: int = 50, warmup: int = 10, force: bool = False):
    """Time the file's forward pass under ONNX Runtime (a Timing, as the torch bench returns)."""
    session = _Session(path, input_shape, batch, device, every_layer=False, force=force)
    return _timing(session, session.analysis, runs, warmup)


def validation_text(v: OnnxValidation) -> str:

    cells = [[r.name, r.type, "×".join(map(str, r.predicted)), "×".join(map(str, r.measured)),
              "✓" if r.ok else "✗"] for r in v.layers]
    title = f"{v.name}: the analysis' output shapes against ONNX Runtime's, {v.device}, batch {v.batch}"
    out = box_table(["Layer", "Type", "Shape", "ONNX Runtime", ""], cells, set(), title=title,
                    highlight={i for i, r in enumerate(v.layers) if not r.ok})
    lines = ["✓ every layer's output shape matches ONNX Runtime"] if v.ok else [f"✗ {m}" for m in v.mismatches()]
    lines += [f"note: {n}" for n in v.notes]
    if v.timing is not None:
        lines += v.timing.lines()
    return out + "\n".join(lines) + "\n"
