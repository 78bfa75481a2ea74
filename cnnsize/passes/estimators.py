"""The memory estimators people use, reproduced from the spec and set beside cnnsize's own training budget.

- accelerate's ``accelerate estimate-memory`` (accelerate.commands.estimate): the model's size (every parameter and
  buffer at float32, int64 buffers at 8 bytes), its largest layer (the largest module without children, as
  accelerate.utils.calculate_maximum_sizes walks them) and "Training using Adam" at batch 1: for float32 model +
  gradients + two Adam states, 4× the size; for float16/bfloat16 the *largest* of its parts (the Adam states, 2×
  the size), not their sum; nothing for int8/int4.
- DeepSpeed's ZeRO estimators (``estimate_zero2_model_states_mem_needs_all_live`` and the ZeRO-3 one): parameters,
  gradients and optimizer state under mixed precision (2 bytes of 16-bit parameters, 16 of float32 master weights,
  gradients and Adam state, and 2 of 16-bit gradients, per parameter), sharded over the GPUs; ZeRO-3 adds 4 bytes a
  parameter of the largest module (its direct parameters, ``recurse=False``). Parameters only: no buffers, no
  activations.

Each gives an Estimate: its figure, the parts it adds up (or takes the largest of), and ``differences``: per part of
cnnsize's training budget for the same network (one GPU, the analysis' batch, optimizer and precision), what cnnsize
counts beyond the estimator's figure for that part (negative: the estimator counts more).
"""

from __future__ import annotations

from typing import Any

from ..core.errors import SpecError
from ..core.numeric import human_bytes
from ..core.plain import Plain
from ..engine.result import Analysis
from ..layers.base import TorchModule

ACCELERATE_DTYPES = {"float32": 1, "float16": 2, "bfloat16": 2, "int8": 4, "int4": 8}  # size divided by


class Estimate(Plain):
    """One estimator's figure for a network: ``bytes`` (None where the tool gives none), the parts it reads it from,
    its settings, and ``differences``: cnnsize's part minus the estimator's, per part of a training step."""

    __slots__ = FIELDS = ("name", "settings", "bytes", "parts", "differences", "note")

    def __init__(self, name: str, settings: dict, bytes: Any, parts: dict, differences: dict | None, note: str = ""):
        self.name, self.settings, self.bytes, self.parts = name, settings, bytes, parts
        self.differences, self.note = differences, note

    def to_dict(self) -> dict:
        return {key: getattr(self, key) for key in self.FIELDS}


def _modules(analysis: Analysis, held: bool) -> list[Any]:
    """Every module of the built network that holds tensors or is a layer's (TorchModule), from each layer's kind;
    a layer's own module has children where other layers nest under its dotted name (the executor places ``a.b``
    inside ``a``). ``held``: only the tensors each holds, as a tool that dedups tensors sees them (a layer that
    shares another's parameters, or ties its weight, holds the rest: one module without children); otherwise the
    kind's whole (a module's ``parameters(recurse=False)`` lists shared tensors again)."""
    rows = analysis.layers
    shapes = {row.name: row.output_shape for row in rows}
    names = [row.name for row in rows[1:]]
    nested = {".".join(name.split(".")[:i]) for name in names for i in range(1, name.count(".") + 1)}
    out: list[Any] = []
    for row in rows[1:]:
        ins = [shapes[src] for src in row.inputs]
        tree = row.kind.module_tree(ins, row.output_shape)
        if held and (sum(m.params for m in tree), sum(m.buffers + m.int_buffers for m in tree)) != \
                (row.params, row.buffers):
            ints = min(row.buffers, sum(m.int_buffers for m in tree))
            tree = [TorchModule(row.params, row.buffers - ints, ints)]
        if row.name in nested:
            tree = [tree[0]._replace(leaf=False), *tree[1:]]
        out.extend(tree)
    return out


def accelerate_sizes(analysis: Analysis) -> tuple[int, int]:
    """(total size, largest layer) in bytes at float32, as accelerate.utils.calculate_maximum_sizes finds them on
    the built network: int64 buffers at 8 bytes; the largest module that has no children (a module with children
    counts only through them: tensors it holds itself are in no layer)."""
    total, largest = 0, 0
    for module in _modules(analysis, held=True):
        size = 4 * module.params + 4 * module.buffers + 8 * module.int_buffers
        total += size
        if module.leaf:
            largest = max(largest, size)
    return total, largest


def accelerate(analysis: Analysis, dtype: str = "float32") -> Estimate:
    """accelerate's ``estimate-memory`` row for ``dtype``: "Total Size", "Largest Layer" and "Training using Adam"
    (the largest of the parts it lists; None for int8 and int4, which it does not train)."""
    if dtype not in ACCELERATE_DTYPES:
        raise SpecError(f"accelerate has no dtype '{dtype}'", hint="one of: " + ", ".join(ACCELERATE_DTYPES))
    total, largest = accelerate_sizes(analysis)
    parts: dict[str, Any]
    if dtype == "float32":
        parts = {"model": total, "gradients": total, "optimizer": 2 * total, "step": 4 * total}
    elif dtype in ("float16", "bfloat16"):
        parts = {"model": total, "gradients": total + total // 2, "optimizer": 2 * total, "step": 2 * total}
    else:
        parts = {}
    figure = max(parts.values()) if parts else None
    factor = ACCELERATE_DTYPES[dtype]  # accelerate divides the float32 sizes (a float where it does)
    shown = {"total_size": total / factor if factor > 1 else total,
             "largest_layer": largest / factor if factor > 1 else largest}
    # what its figure holds: float32 the sum of model, gradients and Adam's states; mixed precision the largest part
    # alone, Adam's states
    theirs = {"parameters and buffers": total, "gradients": total, "optimizer state": 2 * total} \
        if dtype == "float32" else {"optimizer state": 2 * total}
    differences = _differences(analysis, theirs, figure) if parts else None
    return Estimate("accelerate", {"dtype": dtype}, figure, {**shown, **parts}, differences,
                    "Training using Adam: the largest part, at batch 1, activations not counted")


def deepspeed_params(analysis: Analysis) -> tuple[Any, Any]:
    """(total parameters, the largest module's own parameters) as deepspeed's model_to_params finds them: shared
    tensors once in the total; per module the parameters it holds itself, a sharing module's counted again."""
    total = analysis.totals.params
    largest = max((module.params for module in _modules(analysis, held=False)), default=0)
    return total, largest


def deepspeed_zero2(analysis: Analysis, gpus_per_node: int = 1, nodes: int = 1, offload: bool = False,
                    buffer_factor: float = 1.5) -> Estimate:
    """estimate_zero2_model_states_mem_needs: per GPU 2 bytes a parameter (16-bit) + 18 a parameter sharded over the
    GPUs (16-bit and float32 gradients, float32 master weights, Adam's two states); with the optimizer offloaded,
    2 bytes a parameter on the GPU and the rest on the CPU."""
    total, _ = deepspeed_params(analysis)
    gpus = gpus_per_node * nodes
    if offload:
        gpu, cpu = 2 * total, total * max(4 * gpus, 16) * buffer_factor
    else:
        gpu, cpu = 2 * total + int(18 * total / gpus), total * 4 * gpus_per_node * buffer_factor
    parts = {"params_16bit": 2 * total, "sharded_states": gpu - 2 * total, "cpu": int(cpu)}
    differences = _mixed_differences(analysis, {"parameters and buffers": 6 * total, "gradients": 6 * total,
                                                "optimizer state": 8 * total}, gpu, gpus, offload)
    return Estimate("deepspeed-zero2", {"gpus_per_node": gpus_per_node, "nodes": nodes, "offload": offload,
                                        "additional_buffer_factor": buffer_factor}, gpu, parts, differences,
                    "per GPU: parameters, gradients and optimizer state only")


def deepspeed_zero3(analysis: Analysis, gpus_per_node: int = 1, nodes: int = 1, offload: bool = False,
                    offload_params: bool = False, zero_init: bool = True, buffer_factor: float = 1.5) -> Estimate:
    """estimate_zero3_model_states_mem_needs: per GPU 4 bytes a parameter of the largest module (gathered whole)
    plus 18 a parameter sharded (2 with only the parameters kept, none with both offloaded)."""
    total, largest = deepspeed_params(analysis)
    gpus = gpus_per_node * nodes
    gpus_factor = 1 / nodes
    layer = 4 * largest
    if offload and offload_params:
        gpu = layer
        cpu = total * (18 * gpus_factor if zero_init else max(4 * gpus_per_node, 18 * gpus_factor)) * buffer_factor
    elif offload:
        gpu = layer + int(2 * total / gpus)
        cpu = total * (16 * gpus_factor if zero_init else max(4 * gpus_per_node, 16 * gpus_factor)) * buffer_factor
    else:
        gpu = layer + int(18 * total / gpus)
        cpu = (largest if zero_init else total) * 4 * gpus_per_node * buffer_factor
    parts = {"largest_layer": layer, "sharded_states": gpu - layer, "cpu": int(cpu)}
    differences = _mixed_differences(analysis, {"parameters and buffers": 4 * total + layer, "gradients": 6 * total,
                                                "optimizer state": 8 * total}, gpu, gpus, offload)
    return Estimate("deepspeed-zero3", {"gpus_per_node": gpus_per_node, "nodes": nodes, "offload": offload,
                                        "offload_params": offload_params, "zero_init": zero_init,
                                        "additional_buffer_factor": buffer_factor}, gpu, parts, differences,
                    "per GPU: parameters, gradients and optimizer state only")


def _parts(memory: Any) -> dict[str, Any]:
    """cnnsize's training budget in the parts the estimators name; the rest of the step's peak (activations saved
    and their gradients, the optimizer's temporaries) as one part."""
    resident = memory.training_bytes - memory.optimizer_bytes - memory.training_step_peak_bytes
    step = memory.training_step_peak_bytes
    gradients = memory.gradients_bytes
    return {"parameters and buffers": resident, "gradients": gradients, "optimizer state": memory.optimizer_bytes,
            "activations and temporaries": step - gradients}


def _differences(analysis: Analysis, theirs: dict[str, Any], figure: Any) -> dict[str, Any]:
    """cnnsize's part minus the estimator's, per part (its figure as the whole where it lists no part)."""
    ours = _parts(analysis.totals.memory)
    out = {key: ours[key] - (theirs.get(key) or 0) for key in ours}
    out["total"] = analysis.totals.memory.training_bytes - figure
    return out


def _mixed_differences(analysis: Analysis, theirs: dict[str, Any], gpu: Any, gpus: int,
                       offload: bool) -> dict[str, Any] | None:
    """DeepSpeed's parts (ZeRO-2: 16-bit and float32 parameters 6 bytes each, gradients 2 + 4, Adam's states 8;
    ZeRO-3: the 16-bit parameters only for the largest module, gathered) against cnnsize's mixed-precision budget on
    one GPU; none for several GPUs or offload (cnnsize's plan does not shard or offload yet)."""
    if gpus != 1 or offload or not analysis.totals.memory.amp:
        return None
    return _differences(analysis, theirs, gpu)


def estimators(analysis: Analysis, mixed: Analysis | None = None, gpus_per_node: int = 1,
               nodes: int = 1, offload: str | None = None) -> list[Estimate]:
    """The three the training plan names: accelerate (float32 against ``analysis``, float16 against ``mixed``, the
    same network under mixed precision) and DeepSpeed's ZeRO-2 and ZeRO-3 (against ``mixed``), with ``offload``
    ("optimizer": both with ``cpu_offload``; "params": ZeRO-3 with its parameters offloaded too, ZeRO-2, which
    cannot, with its optimizer) or without."""
    out = [accelerate(analysis, "float32")]
    if mixed is not None:
        out.append(accelerate(mixed, "float16"))
    base = mixed if mixed is not None else analysis
    off = offload is not None
    out += [deepspeed_zero2(base, gpus_per_node, nodes, off),
            deepspeed_zero3(base, gpus_per_node, nodes, off, offload == "params")]
    return out


def apply(analysis: Analysis, float32: Analysis, mixed: Analysis) -> Analysis:
    """``totals["estimators"]`` (each Estimate as a dict) and a line in words, for ``report --estimators``:
    ``float32`` and ``mixed`` are the same network analysed without and with mixed precision."""
    found = estimators(float32, mixed)
    analysis.totals["estimators"] = [e.to_dict() for e in found]
    analysis.summaries["estimators"] = summary(found)
    return analysis


def summary(found: list[Estimate]) -> str:
    """One line: each estimator's figure and what cnnsize's budget for the same step holds beyond it."""
    parts = []
    for e in found:
        label = e.name + (f" ({e.settings['dtype']})" if "dtype" in e.settings else "")
        missed = e.differences or {}
        beyond = missed.get("activations and temporaries")
        detail = "" if beyond is None else f", leaving out {human_bytes(beyond)} of activations and temporaries"
        parts.append(f"{label} {human_bytes(e.bytes)}{detail}")
    return "Estimators, one GPU (cnnsize's budget above counts what they leave out): " + "; ".join(parts) + "."
