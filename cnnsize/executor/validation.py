"""Prove the analysis: run the built network once and compare every figure with what torch measures.

The truths are torch's own: tensor shapes from forward hooks, parameter and buffer
counts from the modules, multiply-adds from ``torch.utils.flop_counter.FlopCounterMode``
(which counts 2 FLOPs per MAC for conv, mm, addmm and bmm), activations as the
distinct tensor storages the forward pass creates, and on CUDA the allocator's peak.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch._C._profiler import _EventType
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from ..core.errors import CnnsizeError, SpecError
from ..engine.memory import MemoryOptions
from ..engine.optimizers import EIGHT_BIT
from ..engine.result import Analysis
from ..engine.walk import analyze_graph, resolve_precision
from ..layers.base import LayerKind
from ..passes import training as training_pass
from ..passes.conventions import counted
from .builder import (
    GraphModule,
    as_analysis,
    build_module,
    first_input,
    input_bytes,
    make_inputs,
    resolve_device,
    torch_dtype,
)
from .timing import Timing, check_dtype, check_fits, required_bytes, run_timing

LAYER_FIGURES = ("output_shape", "weights", "biases", "params", "trainable_params", "buffers", "macs", "activations",
                 "backward_macs")
TOTAL_FIGURES = ("params", "trainable_params", "buffers", "buffers_bytes", "macs", "flops", "activations")
MEMORY_TOLERANCE = 0.10  # relative: the CUDA peak also holds allocator rounding and kernel workspaces
MEMORY_SLACK = 64 * 2**20  # CUDA: the allocator rounds blocks up and cuDNN takes workspaces
# CPU: no caching allocator; a few fixed allocations of a training step (the loss, Adam's step counters, small
# kernel buffers, up to about 100 KiB in the property tests' tiny networks) that a tiny network's prediction
# leaves out. Small, so that the check stays relative: a step 14.5% off fails once it needs more than 5.7 MiB.
CPU_SLACK = 256 * 2**10
_ALLOCATION = _EventType.Allocation


@dataclass(frozen=True)
class MeasuredPeak:
    """A step's measured peak, split into the model's tensors and the backend's workspace.

    ``model``: the most bytes the model's tensors held at once (what cnnsize predicts). ``workspace``: the bytes of
    backend workspace live at the step's overall peak (``total``), held by the aten operator ``op``: storage an
    operator allocates and frees again before it returns, so no tensor of the model ever sees it (oneDNN's
    im2col + GEMM scratchpad, weight reorders, a contiguous copy of a strided gradient). On CUDA the allocator's
    counters cannot tell the two apart: everything is ``model`` there.
    """

    model: int
    workspace: int = 0
    op: str = ""
    total: int = 0


@dataclass
class Figure:
    """One predicted figure next to the measured one; ``exact`` is False for the approximate memory check."""

    predicted: Any
    measured: Any
    ok: bool
    exact: bool = True
    batch: int | None = None  # the batch the check ran at, where it differs by check (the training checks)
    tolerance: str | None = None  # how far an approximate figure may be off, in words: "±10% + 64 KiB"
    # a CPU training peak: the backend workspace live at torch's overall peak and the operator holding it, left out
    # of ``measured`` (the model's tensors; see MeasuredPeak), and that overall peak
    workspace: int | None = None
    workspace_op: str | None = None
    measured_total: int | None = None

    def to_dict(self) -> dict:
        out = {"predicted": _plain(self.predicted), "measured": _plain(self.measured), "ok": self.ok,
               "exact": self.exact}
        if self.batch is not None:
            out["batch"] = self.batch
        if self.tolerance is not None:
            out["tolerance"] = self.tolerance
        if self.workspace is not None:
            out.update(workspace_bytes=self.workspace, workspace_op=self.workspace_op or None,
                       measured_total_bytes=self.measured_total)
        return out


@dataclass
class LayerCheck:
    """The figures of one layer (the input row first)."""

    name: str
    type: str
    figures: dict[str, Figure]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.figures.values())

    def mismatches(self) -> list[str]:
        return [key for key, f in self.figures.items() if not f.ok]

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "ok": self.ok,
                "figures": {k: f.to_dict() for k, f in self.figures.items()}}


@dataclass
class Validation:
    """The whole comparison, plus the timing of the same network on the same device."""

    name: str
    device: str
    dtype: str
    batch: int
    input_shape: tuple
    layers: list[LayerCheck]
    totals: dict[str, Figure]
    timing: Timing | None = None
    notes: list[str] = field(default_factory=list)
    inputs: dict = field(default_factory=dict)  # every input's shape by name, where the spec has several

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.layers) and all(f.ok for f in self.totals.values())

    def mismatches(self) -> list[str]:
        """One line per differing figure, naming the layer: "layer 'conv1' macs: predicted 10, measured 12"."""
        out = []
        for row in self.layers:
            for key in row.mismatches():
                f = row.figures[key]
                out.append(f"layer '{row.name}' {key}: predicted {_text(f.predicted)}, measured {_text(f.measured)}")
        for key, f in self.totals.items():
            if not f.ok:
                out.append(f"total {key}: predicted {_text(f.predicted)}, measured {_text(f.measured)}")
        return out

    def to_dict(self) -> dict:
        several = {"inputs": {k: list(v) for k, v in self.inputs.items()}} if len(self.inputs) > 1 else {}
        return {"ok": self.ok, "name": self.name, "device": self.device, "dtype": self.dtype, "batch": self.batch,
                "input_shape": list(self.input_shape), **several, "layers": [row.to_dict() for row in self.layers],
                "totals": {k: f.to_dict() for k, f in self.totals.items()}, "mismatches": self.mismatches(),
                "timing": self.timing.to_dict() if self.timing else None, "notes": list(self.notes)}

    def to_frame(self):
        """One row per layer: ``<figure>_predicted``, ``<figure>_measured`` and ``ok`` columns; ``attrs`` holds the
        notes and, for a CPU training peak, the backend workspace measured apart (see Validation.notes)."""
        import pandas as pd

        records = []
        for row in self.layers:
            rec: dict[str, Any] = {"name": row.name, "type": row.type, "ok": row.ok}
            for key in LAYER_FIGURES:
                f = row.figures.get(key)
                rec[f"{key}_predicted"] = _cell(f.predicted) if f else None
                rec[f"{key}_measured"] = _cell(f.measured) if f else None
            records.append(rec)
        frame = pd.DataFrame(records).set_index("name")
        step = self.totals.get("training_step_peak_bytes")
        frame.attrs["notes"] = list(self.notes)  # the backend workspace's line among them, where there is one
        if step is not None and step.workspace is not None:
            frame.attrs["backend_workspace"] = {"bytes": step.workspace, "op": step.workspace_op or None,
                                                "training_peak_bytes": step.measured, "batch": step.batch,
                                                "torch_peak_bytes": step.measured_total}
        return frame


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


def _cell(value: Any) -> Any:
    return "x".join(map(str, value)) if isinstance(value, tuple) else value


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _same(a: Any, b: Any) -> Figure:
    return Figure(a, b, a == b)


def run_validation(spec: Any, *, input_shape: tuple | None = None, fit: str | None = None, batch: int = 1,
                   device: str = "auto", dtype: str = "float32", runs: int = 10, warmup: int = 2,
                   force: bool = False, init: bool = False, progress: bool | None = None,
                   accumulate: int = 1, precision: str | None = None, checkpoint: str | None = None,
                   checkpoint_impl: str = "non-reentrant", device_memory: Any = None,
                   optimizer: str = "adam") -> Validation:
    """Build, run once under hooks and FlopCounterMode, compare; then time ``runs`` forward passes.

    ``accumulate``: the training step measured is that many forwards and backwards (gradients accumulated), then
    the optimizer's step. ``precision``: the training step measured runs as it says (bf16-mixed and fp16-mixed: the
    forward under torch.autocast, fp16 with a GradScaler; bf16 and fp16: the model in that dtype). ``checkpoint``:
    the training step measured runs its segments under torch.utils.checkpoint in the variant ``checkpoint_impl``
    (see cnnsize.engine.checkpoint; ``auto``: those that fit ``device_memory``), and its recomputed work is
    FlopCounterMode's count of that step less a plain one. ``optimizer``: the one the measured step runs (torch's
    SGD, SGD with momentum, Adam, AdamW or Adafactor at their defaults; bitsandbytes' 8-bit Adam on CUDA).

    On CPU the training step's peak compares the model's tensors alone: the backend workspace torch's kernels take
    and free inside one operator call (oneDNN's GEMM-fallback scratchpad) is measured and reported apart, in the
    figure (``workspace``) and a note (see _split_workspace). Runs without importing TorchDynamo (_without_dynamo).
    """
    with _without_dynamo():
        return _run_validation(spec, input_shape=input_shape, fit=fit, batch=batch, device=device, dtype=dtype,
                               runs=runs, warmup=warmup, force=force, init=init, progress=progress,
                               accumulate=accumulate, precision=precision,
                               checkpoint=(checkpoint, checkpoint_impl, device_memory) if checkpoint is not None
                               else None, optimizer=optimizer)


def _run_validation(spec: Any, *, input_shape: tuple | None, fit: str | None, batch: int, device: str, dtype: str,
                    runs: int, warmup: int, force: bool, init: bool, progress: bool | None,
                    accumulate: int = 1, precision: str | None = None,
                    checkpoint: tuple | None = None, optimizer: str = "adam") -> Validation:
    dev = resolve_device(device)
    optimizer = _measurable_optimizer(optimizer, dev)
    accumulate = MemoryOptions(accumulate=accumulate).check().accumulate
    precision, dtype = resolve_precision(precision, False, dtype)
    if precision == "fp16-mixed" and dev.type != "cuda":
        raise SpecError("fp16-mixed is measured on CUDA only (the CPU's autocast runs bfloat16)",
                        hint="--precision bf16-mixed on the CPU, or --device cuda")
    tdtype = torch_dtype(dtype)
    analysis = as_analysis(spec, input_shape=input_shape, fit=fit, batch=batch, dtype=dtype)
    notes: list[str] = []
    if checkpoint is not None:  # the segments resolve (or are refused in one line) before anything runs
        checkpoint = _resolve_checkpoint(analysis, dev, dtype, accumulate, precision, checkpoint,
                                         notes, optimizer)
    check_dtype(dev, tdtype, dtype)
    need = sum(required_bytes(analysis, keeps_all=True).values())  # every output is kept
    check_fits(analysis, dev, need, "validation (which keeps every layer's output)", force, keeps_all=True)
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    model = build_module(None, analysis=analysis, device=dev, dtype=dtype, init=init)
    x = make_inputs(analysis, batch, dev, tdtype)  # with several inputs, a tuple of them
    outputs = _observe(model, x)
    measured_peak = torch.cuda.max_memory_allocated(dev) - base if cuda else None
    layers, totals = compare(analysis, model, x, outputs, _count_flops(model, x), _scratch(analysis, model, x))
    del outputs
    totals["saved_for_backward_bytes"] = _saved_for_backward(analysis, model, dev, dtype, exact=not cuda)
    if cuda:
        assert measured_peak is not None
        totals["memory_bytes"] = _approx(need, measured_peak)
        totals["inference_peak_bytes"] = _approx(*_inference_peak(analysis, model, x))
        notes.append(f"memory: a CUDA peak may exceed the prediction by {_slack_text(dev)} "
                     "(allocator rounding, kernel workspaces)")
    _check_backward(analysis, model, dev, dtype, layers, totals)
    train_batch = _training_batch(analysis)
    if train_batch != batch:
        notes.append(f"the training checks ran at batch {train_batch} (batch norm needs two samples to train), "
                     f"predicted at that batch too")
    if precision.endswith("-mixed"):
        notes.append(f"the training step measured under torch.autocast ({precision}"
                     + (", with a GradScaler)" if precision == "fp16-mixed" else ")"))
    if optimizer != "adam":
        notes.append(f"the training step measured with {optimizer}")
    if accumulate > 1:
        notes.append(f"the training step measured: {accumulate} micro-steps (forward and backward, the gradients "
                     f"accumulated), then the optimizer's step")
    if checkpoint is not None:
        notes.append(f"the training step measured: its segments under torch.utils.checkpoint ({checkpoint[0]}, "
                     f"use_reentrant={checkpoint[1] == 'reentrant'})")
        _check_recompute(analysis, model, dev, dtype, checkpoint, totals)
    try:
        step = _step_peak(analysis, model, dev, dtype, accumulate, precision, checkpoint, optimizer)
    except _Untrainable as exc:
        step = None
        notes.append(f"training step not measured: torch cannot run its backward ({exc})")
    if step is not None:
        predicted, peak, at = step
        figure = totals["training_step_peak_bytes"] = _within(predicted, peak.model, at, dev)
        if not cuda:
            figure.workspace, figure.workspace_op, figure.measured_total = peak.workspace, peak.op, peak.total
            if peak.workspace > CPU_SLACK:
                notes.append(workspace_note(peak))
    timing = run_timing(model, x, analysis, runs=runs, warmup=warmup, progress=progress) if runs > 0 else None
    return Validation(name=analysis.name, device=str(dev), dtype=dtype, batch=batch,
                      input_shape=tuple(analysis.input_shape), layers=layers, totals=totals, timing=timing,
                      notes=notes, inputs=analysis.inputs)


def _check_backward(analysis: Analysis, model: GraphModule, dev: torch.device, dtype: str, layers: list,
                    totals: dict) -> None:
    """Each layer's backward MACs (cnnsize.passes.training) against FlopCounterMode's count of a real backward,
    credited to the layer whose autograd nodes run it, at the training batch; and their total. Nothing where the
    network cannot run a backward, or a layer's backward is unknown (opaque)."""
    train = training_pass.apply(_training_analysis(analysis, dev, dtype))
    try:
        measured = _backward_counts(train, model, dev, dtype)
    except RuntimeError:  # torch refuses this network's backward: the training step's check says so
        return
    for check, row in zip(layers, train.layers):
        predicted = row.get("backward_macs") if row.kind is not None else None
        if predicted is not None:
            check.figures["backward_macs"] = Figure(predicted, measured.get(row.name, 0),
                                                    predicted == measured.get(row.name, 0), batch=train.batch)
    total = train.totals["backward_macs"]
    if total is not None:
        totals["backward_macs"] = Figure(total, sum(measured.values()), total == sum(measured.values()),
                                         batch=train.batch)


def _backward_counts(train: Analysis, model: GraphModule, dev: torch.device, dtype: str) -> dict[str, int]:
    """Per layer, the MACs (FLOPs / 2) FlopCounterMode's formulas count for the operations torch dispatches while
    the autograd nodes each layer's forward made run their backward (FlopCounterMode's own attribution to modules
    is no layer's in backward: a residual add's module collects the branch's gradients)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    owner: dict = {}
    current: list = [None]
    counts: dict = {}
    handles = [model.layer(name).register_forward_hook(_claim(name, owner, current)) for name in
               (node.name for node in train.graph.nodes)]
    counter = FlopCounterMode(display=False)

    def count(packet, out, args, kwargs):  # FlopCounterMode's own formula, credited to the layer running backward
        if packet in counter.flop_registry:
            counts[current[0]] = counts.get(current[0], 0) + counter.flop_registry[packet](*args, **kwargs,
                                                                                           out_val=out)
        return out

    counter._count_flops = count  # type: ignore[method-assign]
    x = make_inputs(train, train.batch, dev, torch_dtype(dtype))
    model.train()
    try:
        # the math kernel: CPU's fused attention has no formula in FlopCounterMode (it would count nothing)
        with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), counter:
            outputs = [y for y in model.with_heads(x) if y.requires_grad]  # every head's loss, as the step's
            counts.clear()  # the forward's
            if outputs:
                sum(y.float().sum() for y in outputs).backward()
    finally:
        model.eval()
        model.zero_grad(set_to_none=True)
        for handle in handles:
            handle.remove()
    return {name: flops // 2 for name, flops in counts.items() if name is not None}


def _claim(name: str, owner: dict, current: list):
    """A forward hook giving layer ``name`` the autograd nodes its forward made (from its output back to its inputs'),
    each of which marks, while its backward runs, that the operations torch dispatches are this layer's."""
    def start(grad_outputs):
        current[0] = name

    def stop(grad_inputs, grad_outputs):
        current[0] = None

    def hook(module, inputs, output):
        inputs_nodes = {t.grad_fn for t in inputs if isinstance(t, torch.Tensor)}
        todo = [t.grad_fn for t in (output if isinstance(output, tuple) else (output,)) if isinstance(t, torch.Tensor)]
        while todo:
            node = todo.pop()
            if node is None or node in inputs_nodes or node in owner:
                continue
            owner[node] = name
            node.register_prehook(start)
            node.register_hook(stop)
            todo.extend(n for n, _ in node.next_functions)
    return hook


def workspace_note(peak: MeasuredPeak) -> str:
    """The line that reports a CPU training peak's backend workspace (validation's notes, the DataFrame's attrs)."""
    return (f"backend workspace at the training peak: {_mb(peak.workspace)} in {peak.op}, not part of the model's "
            f"memory (torch's whole peak {_mb(peak.total)}; training_step_peak_bytes compares the model's tensors "
            f"alone, {_mb(peak.model)} at their peak)")


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:,.0f} MB" if nbytes >= 10**7 else f"{nbytes / 1e6:,.1f} MB"


def _slack_text(dev: torch.device) -> str:
    slack = MEMORY_SLACK if dev.type == "cuda" else CPU_SLACK
    return f"{MEMORY_TOLERANCE:.0%} + {slack // 2**20} MiB" if slack >= 2**20 else \
        f"{MEMORY_TOLERANCE:.0%} + {slack // 2**10} KiB"


def _approx(predicted: int, measured: int, batch: int | None = None) -> Figure:
    ok = predicted <= measured <= predicted * (1 + MEMORY_TOLERANCE) + MEMORY_SLACK
    return Figure(predicted, measured, ok, exact=False, batch=batch,
                  tolerance=f"+{MEMORY_TOLERANCE:.0%} + {MEMORY_SLACK // 2**20} MiB")


def _training_batch(analysis: Analysis) -> int:
    """The batch the training checks run at: the analysis' own, but at least 2 where batch norm trains."""
    return max([analysis.batch, *(row.kind.min_training_batch for row in analysis.layers[1:])])


def _training_analysis(analysis: Analysis, dev: torch.device, dtype: str, accumulate: int = 1,
                       precision: str | None = None, checkpoint: tuple[str, str] | None = None,
                       optimizer: str = "adam") -> Analysis:
    """The analysis at the batch a training step is measured with (see _training_batch)."""
    setting, impl = checkpoint or (None, "non-reentrant")
    return analyze_graph(analysis.graph, input_shape=analysis.input_shape, batch=_training_batch(analysis),
                         dtype=dtype, fit=analysis.fit, device=dev.type, optimizer=optimizer, accumulate=accumulate,
                         precision=precision, checkpoint=setting, checkpoint_impl=impl)


def _resolve_checkpoint(analysis: Analysis, dev: torch.device, dtype: str, accumulate: int, precision: str,
                        checkpoint: tuple, notes: list[str], optimizer: str = "adam") -> tuple[str, str] | None:
    """(segments, variant) the measured step checkpoints: as asked, or what ``auto`` chooses for the device memory
    at the training batch (None: the step fits without)."""
    setting, impl, device_memory = checkpoint
    train = analyze_graph(analysis.graph, input_shape=analysis.input_shape, batch=_training_batch(analysis),
                          dtype=dtype, fit=analysis.fit, device=dev.type, optimizer=optimizer, accumulate=accumulate,
                          precision=precision, checkpoint=setting, checkpoint_impl=impl, device_memory=device_memory)
    if setting != "auto":
        return setting, impl
    chosen = train.checkpoint["chosen"] if train.checkpoint else None
    notes.append(f"--checkpoint auto chose {chosen or 'no checkpointing'} at batch {train.batch} ({optimizer})")
    return (chosen, impl) if chosen else None


def _step_runner(train: Analysis, model: GraphModule):
    """How a training step runs the model: ``model.with_heads``, or with checkpointing (``train.checkpoint``) each
    segment under torch.utils.checkpoint (checkpointed_run)."""
    if train.checkpoint is None:
        return model.with_heads
    return checkpointed_run(model, train.checkpoint["spans"], train.checkpoint["impl"] == "reentrant")


def _check_recompute(analysis: Analysis, model: GraphModule, dev: torch.device, dtype: str,
                     checkpoint: tuple[str, str], totals: dict) -> None:
    """The work of a checkpointed step (forward, backward and the forward checkpointing recomputes:
    totals.training's) against FlopCounterMode's count of a real one; where checkpointing leaves every layer
    trained, the recomputed work alone too (that count less a plain step's)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    train = training_pass.apply(_training_analysis(analysis, dev, dtype, checkpoint=checkpoint))
    t = train.totals["training"]
    if t["backward_macs"] is None:
        return
    x = make_inputs(train, train.batch, dev, torch_dtype(dtype))
    counts = []
    model.train()
    try:
        for run in (_step_runner(train, model), model.with_heads):
            with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
                outputs = [y for y in run(x) if y.requires_grad]
                if outputs:
                    sum(y.float().sum() for y in outputs).backward()
            counts.append(counter.get_total_flops())
    except RuntimeError:  # torch refuses this network's backward: the training step's check says so
        return
    finally:
        model.eval()
        model.zero_grad(set_to_none=True)
    step = t["forward_macs"] + t["backward_macs"] + t["recompute_macs"]
    totals["checkpointed_step_macs"] = Figure(step, _half(counts[0]), step == _half(counts[0]), batch=train.batch)
    if not train.checkpoint["untrained"]:
        measured = _half(counts[0] - counts[1])
        totals["recompute_macs"] = Figure(t["recompute_macs"], measured, t["recompute_macs"] == measured,
                                          batch=train.batch)


def _saved_for_backward(analysis: Analysis, model: GraphModule, dev: torch.device, dtype: str,
                        exact: bool) -> Figure:
    """Bytes autograd saves in one training forward pass, measured with saved_tensors_hooks.

    Each distinct storage counts once; parameters and buffers do not count (they stay resident).
    """
    train = _training_analysis(analysis, dev, dtype)
    x = make_inputs(train, train.batch, dev, torch_dtype(dtype))
    resident = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    saved: dict[int, int] = {}
    held: list[torch.Tensor] = []  # a dead-end branch frees its graph; holding its tensors keeps addresses unique

    def pack(t: torch.Tensor) -> torch.Tensor:
        held.append(t)
        storage = t.untyped_storage()
        if storage.data_ptr() not in resident:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    model.train()
    try:
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = model(x)
        del y
    finally:
        model.eval()
    held.clear()
    predicted = train.totals["memory"]["saved_for_backward_bytes"]
    measured = sum(saved.values())
    if exact:
        return Figure(predicted, measured, predicted == measured, batch=train.batch)
    return _approx(predicted, measured, batch=train.batch)


def _step_peak(analysis: Analysis, model: GraphModule, dev: torch.device, dtype: str, accumulate: int = 1,
               precision: str | None = None, checkpoint: tuple[str, str] | None = None,
               optimizer_name: str = "adam") -> tuple[int, MeasuredPeak, int] | None:
    """(predicted, measured, batch) bytes a steady-state training step (Adam unless ``optimizer_name`` says)
    allocates beyond the model and its state.

    The first step makes the optimizer state; the second (forward, backward, step, gradients set to None)
    is measured, as cnnsize.engine.memory models it. None when the network has no parameters to train. The input is made
    inside the step, as a data loader's batch: it counts while the forward pass runs, and after it only where
    autograd saved it, as the memory model has it.
    """
    train = _training_analysis(analysis, dev, dtype, accumulate, precision, checkpoint, optimizer_name)
    tdtype = torch_dtype(dtype)
    run = _step_runner(train, model)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return None  # nothing to train
    optimizer = _torch_optimizer(optimizer_name, params)
    mixed = {"bf16-mixed": torch.bfloat16, "fp16-mixed": torch.float16}.get(precision or "")
    scaler = torch.amp.GradScaler(dev.type) if precision == "fp16-mixed" else None

    def step() -> None:
        for _ in range(accumulate):  # micro-steps: the gradients accumulate
            with torch.enable_grad():
                with torch.autocast(dev.type, dtype=mixed or torch.bfloat16, enabled=bool(mixed)):
                    outputs = run(make_inputs(train, train.batch, dev, tdtype))  # aux heads add their
                    # losses, as in training
                loss = sum(y.float().sum() for y in outputs)
                del outputs  # only what autograd saved stays
                (loss if scaler is None else scaler.scale(loss)).backward()
        if scaler is None:
            _optimizer_step(optimizer)
        else:
            scaler.step(optimizer)
            scaler.update()
        model.zero_grad(set_to_none=True)

    model.train()
    try:
        step()
        measured = _peak_allocated(dev, step)
    except RuntimeError as exc:  # e.g. an in-place layer overwrote what another layer's backward needs
        raise _Untrainable(str(exc).split(". ")[0]) from None
    finally:
        model.eval()
        model.zero_grad(set_to_none=True)
    return train.totals["memory"]["training_step_peak_bytes"], measured, train.batch


def _measurable_optimizer(name: str, dev: torch.device) -> str:
    """The optimizer a measured step can run: one cnnsize sizes, the 8-bit ones on CUDA only (bitsandbytes' CPU
    step copies each tensor's states to float32, which its CUDA kernel does not: cnnsize sizes the kernel's)."""
    name = MemoryOptions(optimizer=name).check().optimizer  # an unknown name: the closest valid one
    if name in EIGHT_BIT and dev.type != "cuda":
        raise SpecError(f"--optimizer {name} is measured on CUDA only (bitsandbytes' CPU step keeps float32 copies "
                        "of its 8-bit states that its CUDA kernel does not)",
                        hint="--device cuda, or another optimizer")
    return name


def _torch_optimizer(name: str, params: list) -> Any:
    """torch's optimizer for a name cnnsize sizes, at its defaults (SGD's learning rate given: it has none)."""
    if name in EIGHT_BIT:
        try:
            import bitsandbytes as bnb  # type: ignore[import-not-found]
        except ImportError:
            raise SpecError(f"--optimizer {name} runs bitsandbytes' optimizer, which is not installed",
                            hint="pip install bitsandbytes") from None
        return (bnb.optim.Adam8bit if name == "adam8bit" else bnb.optim.AdamW8bit)(params)
    makers = {"sgd": lambda: torch.optim.SGD(params, lr=0.01),
              "momentum": lambda: torch.optim.SGD(params, lr=0.01, momentum=0.9),
              "adam": lambda: torch.optim.Adam(params), "adamw": lambda: torch.optim.AdamW(params),
              "adafactor": lambda: torch.optim.Adafactor(params)}
    return makers[name]()


def _optimizer_step(optimizer) -> None:
    """optimizer.step(): the same update, without the wrappers torch puts around it for torch.compile (a graph
    break, for which they import TorchDynamo: seconds) and profiling; under no_grad, as those wrappers run it.
    Where TorchDynamo is imported already, or the step has no such wrappers, optimizer.step() itself."""
    import inspect
    import sys

    step = type(optimizer).step
    raw = inspect.unwrap(step)
    if raw is step or "torch._dynamo" in sys.modules:
        optimizer.step()
        return
    with torch.no_grad():
        raw(optimizer)


class _Untrainable(Exception):
    """torch refuses the backward pass of this network as written."""


def _peak_allocated(dev: torch.device, fn) -> MeasuredPeak:
    """Bytes allocated at the worst moment of ``fn()`` beyond those allocated before it.

    CUDA: the caching allocator's own counters. CPU: the profiler's record of every allocation and free, each
    attributed to the aten operator it happens in (its start and stop lines on stderr are silenced); see
    _split_workspace.
    """
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        fn()
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) - before
        return MeasuredPeak(peak, total=peak)
    # the autograd profiler that torch.profiler.profile drives, used directly: torch.profiler's own start asks
    # hasattr(torch, "_inductor"), which imports the compiler (5 s of a small network's validation)
    from torch.autograd.profiler import profile

    stderr = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            with profile(use_cpu=True, profile_memory=True) as prof:
                fn()
    finally:
        os.dup2(stderr, 2)
        os.close(stderr)
    return _split_workspace(prof.kineto_results.experimental_event_tree())


def _allocations(roots: list) -> list[tuple[int, int, int, tuple]]:
    """Every allocation (bytes > 0) and free (< 0) under the profiler's event tree, in order, as (time, pointer,
    bytes, the aten operator calls around it, outermost first, each as (start time, name))."""
    out = []
    stack: list[tuple[Any, tuple]] = [(root, ()) for root in reversed(roots)]
    while stack:
        event, ops = stack.pop()
        if event.typed[0] == _ALLOCATION:
            fields = event.typed[1]
            out.append((event.start_time_ns, fields.ptr, fields.alloc_size, ops))
            continue
        if event.name.startswith("aten::"):
            ops = (*ops, (event.start_time_ns, event.name))
        stack.extend((child, ops) for child in reversed(event.children))
    out.sort(key=lambda a: a[0])  # stable: the tree's order where times tie
    return out


def _split_workspace(roots: list) -> MeasuredPeak:
    """The peak of the model's tensors, and the backend workspace live at the overall peak.

    An allocation is workspace when it is freed inside the outermost aten operator call it was made in: it never
    left that call, so it is no tensor of the model (torch.profiler's memory profiler calls these TEMPORARY). Every
    other allocation is the model's (activations, saved tensors, gradients, the optimizer's temporaries)."""
    events = _allocations(roots)
    owner: dict[int, tuple | None] = {}  # pointer -> the outermost op call of its live allocation (None: not in one)
    workspace = [False] * len(events)
    for i, (_, ptr, nbytes, ops) in enumerate(events):
        if nbytes > 0:
            owner[ptr] = (ops[0], i) if ops else None
        elif (made := owner.pop(ptr, None)) is not None and made[0] in ops:
            workspace[i] = workspace[made[1]] = True
    model = scratch = model_peak = total = 0
    at_total = (0, "")  # workspace bytes and its op at the overall peak
    live: dict[int, tuple[int, str]] = {}  # workspace pointer -> (bytes, op)
    for i, (_, ptr, nbytes, ops) in enumerate(events):
        if workspace[i]:
            scratch += nbytes
            if nbytes > 0:
                live[ptr] = (nbytes, ops[0][1])
            else:
                live.pop(ptr, None)
        else:
            model += nbytes
        model_peak = max(model_peak, model)
        if model + scratch > total:
            total = model + scratch
            at_total = (scratch, max(live.values())[1] if live else "")
    return MeasuredPeak(model_peak, *at_total, total)


def _within(predicted: int, measured: int, batch: int, dev: torch.device) -> Figure:
    """Within MEMORY_TOLERANCE of the prediction either way, plus a small fixed slack (CPU_SLACK, or MEMORY_SLACK
    on CUDA for the allocator's rounding)."""
    slack = MEMORY_SLACK if dev.type == "cuda" else CPU_SLACK
    ok = abs(measured - predicted) <= predicted * MEMORY_TOLERANCE + slack
    return Figure(predicted, measured, ok, exact=False, batch=batch, tolerance=f"±{_slack_text(dev)}")


def _inference_peak(analysis: Analysis, model: GraphModule, x: Any) -> tuple[int, int]:
    """(predicted, measured) bytes a plain forward pass allocates beyond the model and its input."""
    dev = first_input(x).device
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    before = torch.cuda.memory_allocated(dev)
    with torch.inference_mode():
        y = model(x)
    torch.cuda.synchronize(dev)
    measured = torch.cuda.max_memory_allocated(dev) - before
    del y
    m = analysis.totals["memory"]
    return m["inference_peak_activations_bytes"] - input_bytes(x), measured


def _observe(model: GraphModule, x: Any) -> dict[str, Any]:
    """Every layer's output from one inference pass (FLOPs come from a second, see _count_flops).

    The first pass keeps each layer's output through forward hooks, so storages cannot be
    reused and aliasing is what a plain run does. FLOPs come from a second pass: under
    FlopCounterMode (a dispatch mode) torch runs eval-mode dropout as a copy, which would
    misstate the aliasing.
    """
    outputs: dict[str, Any] = {}
    running: list[str] = []
    handles = []
    for name, module in model.layer_modules.items():
        def pre(mod, args, name=name):
            running.append(name)

        def hook(mod, args, out, name=name):
            outputs[name] = out

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            model(x)
    except RuntimeError as exc:
        raise CnnsizeError(f"torch failed running this layer: {str(exc).splitlines()[0]}",
                           hint=f"try --dtype float32 if {first_input(x).dtype} is the cause",
                           layer=running[-1] if running else None) from None
    finally:
        for h in handles:
            h.remove()
    if first_input(x).device.type == "cuda":
        torch.cuda.synchronize(first_input(x).device)
    return outputs


def _count_flops(model: GraphModule, x: Any) -> dict[str, dict]:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_flop_counts()


class _without_dynamo:
    """While validating, FlopCounterMode's dispatch and Adam run without first importing TorchDynamo.

    torch wraps a dispatch mode's ``__torch_dispatch__`` and the optimizers' methods so that torch.compile skips
    them (torch._disable_dynamo), and that wrapper imports torch._dynamo on its first call: 5 s of a small
    network's 10 s validation on a shared 2-core machine, for compiling that never happens here. The wrapper
    keeps what it made on the wrapped function (``__dynamo_disable``); given the function itself there, it
    calls it directly. Put back on exit, so that a later torch.compile in the same process finds torch's
    classes as they were. Nothing is done when TorchDynamo is already imported (it is cheap then), and a
    torch whose wrappers differ is left as it is (it then costs the import, as before).
    """

    def __enter__(self):
        import sys

        from torch.utils.flop_counter import _FlopCounterMode  # type: ignore[attr-defined]

        self.raws: list = []
        if "torch._dynamo" in sys.modules:
            return self
        inner = getattr(torch._disable_dynamo(_noop), "__code__", None)
        for cls in (_FlopCounterMode, torch.optim.Optimizer, torch.optim.Adam):
            for wrapper in list(vars(cls).values()):
                raw = getattr(wrapper, "__wrapped__", None)
                if getattr(wrapper, "__code__", None) is inner and raw is not None and \
                        not hasattr(raw, "__dynamo_disable"):
                    setattr(raw, "__dynamo_disable", raw)
                    self.raws.append(raw)
        return self

    def __exit__(self, *exc):
        for raw in self.raws:
            if getattr(raw, "__dynamo_disable", None) is raw:
                delattr(raw, "__dynamo_disable")


def _noop() -> None:
    return None


def _scratch(analysis: Analysis, model: GraphModule, x: Any) -> dict[str, int]:
    """Per composite layer (a kind with ``scratch``, LayerKind.scratch): the values of the floating-point storages its
    module creates that something reads, besides its output's (and the part of the output's storage the output, a
    view, leaves out), from one more pass under no_grad and a dispatch mode (every result kept, so no storage is
    reused), as tests/zoo_truth.py measures a whole model. Not inference_mode, as the pass that measures the
    outputs: there torch's einsum and matmul skip copies that a no_grad forward, as models run, makes; and not
    inside that pass either, as an in-place update of an inference tensor (mvit_pos_embed's) fails outside it.

    One thing the mode changes that is put back: F.linear on an input it cannot fold into one matrix product
    (a strided view, as Swin's windows at batch 1) adds its bias in place in a plain run (``output.add_(bias)``), but
    out of place under any Python mode (at::linear's composite-compliance path); that sum is counted as the
    product's storage, as torch makes it."""

    composites = {row.name for row in analysis.layers
                  if row.kind is not None and type(row.kind).scratch is not LayerKind.scratch}
    if not composites:
        return {}
    given = list(x) if isinstance(x, tuple) else [x]
    seen = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers(), *given]}
    created: dict[int, tuple[str, int]] = {}
    read: set[int] = set()
    keep: list = []
    running: list[str] = []
    linear: list[bool] = []  # inside F.linear calls
    same: dict[int, int] = {}  # storage -> the storage a plain run would have made it in (linear's bias, in place)

    class Linear(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            linear.append(func is torch.nn.functional.linear)
            try:
                return func(*args, **(kwargs or {}))
            finally:
                linear.pop()

    class Storages(TorchDispatchMode):
        @classmethod
        def _should_skip_dynamo(cls) -> bool:  # nothing is compiled here: not worth importing TorchDynamo (seconds)
            return False

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            read.update(t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs or {}))[0]
                        if isinstance(t, torch.Tensor))
            out = func(*args, **(kwargs or {}))
            keep.append(out)
            if func is torch.ops.aten.add.Tensor and linear and linear[-1] and \
                    args[0].untyped_storage().data_ptr() in created:  # linear's bias: add_ in a plain run
                key = out.untyped_storage().data_ptr()
                same[key] = args[0].untyped_storage().data_ptr()
                seen.add(key)
                return out
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor) and t.untyped_storage().nbytes():
                    key = t.untyped_storage().data_ptr()
                    if key not in seen and running and t.is_floating_point():
                        created[key] = (running[-1], t.untyped_storage().nbytes() // t.element_size())
                    seen.add(key)
            return out

    outs: dict[str, torch.Tensor] = {}
    handles = []
    for name in composites:
        def pre(mod, args, name=name):
            running.append(name)

        def hook(mod, args, out, name=name):
            running.pop()
            if isinstance(out, torch.Tensor):
                outs[name] = out

        module = model.layer_modules[name]
        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(hook)]
    try:
        with torch.no_grad(), Linear(), Storages():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return _tally(composites, created, read, outs, same)


def _tally(composites: set, created: dict, read: set, outs: dict, same: dict) -> dict[str, int]:
    """_scratch's sum per layer: the storages something read, and the part of its output's the output leaves out
    (``same``: a storage that is another one in a plain run)."""
    scratch = dict.fromkeys(composites, 0)
    for key, (name, numel) in created.items():
        out = outs.get(name)
        out_key = None if out is None else out.untyped_storage().data_ptr()
        if out is not None and key == same.get(out_key, out_key):  # compare counts the output itself
            scratch[name] += numel - out.numel()
        elif key in read:
            scratch[name] += numel
    return scratch


def _half(flops: Any) -> Any:
    return flops / 2 if flops % 2 else flops // 2


def compare(analysis: Analysis, model: GraphModule, x: Any, outputs: dict[str, Any],
            flops: dict[str, dict],
            scratch: dict[str, int] | None = None) -> tuple[list[LayerCheck], dict[str, Figure]]:
    """Per-layer and total figures, predicted against measured (``scratch``: composite layers' intermediates)."""
    scratch = scratch or {}
    root = type(model).__name__
    batch = analysis.batch
    seen: dict[int, int] = {}  # storage address -> largest tensor seen on it (elements)

    def new_values(t: torch.Tensor) -> int:
        key = t.untyped_storage().data_ptr()
        if key in seen:  # an expanded view (stride 0) holds no more than its storage
            seen[key] = max(seen[key], min(t.numel(), t.untyped_storage().nbytes() // t.element_size()))
            return 0
        seen[key] = t.numel()
        return t.numel()

    # FlopCounterMode's count as cnnsize predicts it (the torch convention): 2 × cnnsize's MACs, less the multiplies
    # torch runs elementwise where a kind's matrix product degenerates (MViT v2's einsums with a head size of 1)
    counter = counted(analysis, "torch")
    layers = []
    for row, predicted in zip(analysis.layers, counter):
        shape = (batch, *row.output_shape)
        if row.type == "input":  # an input, as given
            given = model.given(x)[row.name]
            figures = {"output_shape": _same(shape, tuple(given.shape)),
                       "activations": _same(row.activations, new_values(given))}
            layers.append(LayerCheck(row.name, row.type, figures))
            continue
        out: Any = outputs.get(row.name)
        is_tensor = isinstance(out, torch.Tensor)
        params, buffers = model.own_tensors(row.name)
        biases = sum(p.numel() for n, p in params if n.rsplit(".", 1)[-1].endswith("bias"))  # in_proj_bias too
        all_params = sum(p.numel() for _, p in params)
        layer_flops = sum(flops.get(f"{root}.{row.name}", {}).values())
        figures = {
            "output_shape": _same(shape, tuple(out.shape) if is_tensor else repr(type(out).__name__)),
            "weights": _same(row.weights, all_params - biases),
            "biases": _same(row.biases, biases),
            "params": _same(row.params, all_params),
            "trainable_params": _same(row.trainable_params, sum(p.numel() for _, p in params if p.requires_grad)),
            "buffers": _same(row.buffers, sum(b.numel() for b in buffers)),
            "macs": Figure(_half(predicted), _half(layer_flops), predicted == layer_flops),
            "activations": _same(row.activations, new_values(out) + scratch.get(row.name, 0) if is_tensor
                                 else None),
        }
        layers.append(LayerCheck(row.name, row.type, figures))
    t = analysis.totals
    total_flops = sum(flops.get("Global", {}).values())
    totals = {
        "params": _same(t["params"], sum(p.numel() for p in model.parameters())),
        "trainable_params": _same(t["trainable_params"],
                                  sum(p.numel() for p in model.parameters() if p.requires_grad)),
        "buffers": _same(t["buffers"], sum(b.numel() for b in model.buffers())),
        # int64 buffers (batch norm's num_batches_tracked) are 8 bytes at any dtype
        "buffers_bytes": _same(t["memory"]["buffers_bytes"], sum(b.nbytes for b in model.buffers())),
        "macs": Figure(_half(sum(counter)), total_flops // 2, sum(counter) == total_flops),
        "flops": _same(sum(counter), total_flops),
        "activations": _same(t["activations"], sum(seen.values()) + sum(scratch.values())),
    }
    return layers, totals



def checkpointed_run(model: GraphModule, segments: tuple, reentrant: bool, heads: bool = True):
    """A function running ``model`` as ``model.with_heads`` (``heads``) or ``model`` does, each segment
    (cnnsize.engine.checkpoint.Segment, by position) under torch.utils.checkpoint in the variant asked for: its
    inputs are the tensors it reads from before it, its outputs those read after it (and dead ends, the heads)."""
    pieces = _pieces(model, segments)

    def run(x: Any, *others: torch.Tensor):
        return _CheckpointedRun(model, model.given(x, others), heads).run(pieces, reentrant)
    return run


def _pieces(model: GraphModule, segments: tuple) -> list[tuple]:
    """The model's nodes in order, a segment's as one piece: (nodes, inputs from before, outputs read after,
    reads of each name within it)."""
    order, readers = model.order, model.readers
    starts = {segment.start: segment for segment in segments}
    out, position = [], 1
    while position <= len(order):
        segment = starts.get(position)
        end = position if segment is None else segment.end
        nodes = order[position - 1:end]
        reads: dict[str, int] = {}
        for _, srcs in nodes:
            for src in srcs:
                reads[src] = reads.get(src, 0) + 1
        inside = {name for name, _ in nodes}
        inputs = list(dict.fromkeys(src for _, srcs in nodes for src in srcs if src not in inside))
        outputs = [name for name, _ in nodes if readers[name] > reads.get(name, 0) or name == model.output_name
                   or readers[name] == 0]
        out.append((segment is not None, nodes, inputs, outputs, reads))
        position = end + 1
    return out


class _CheckpointedRun:
    """One run of checkpointed_run's: the values alive, each let go after its last reader, as GraphModule.run."""

    def __init__(self, model: GraphModule, given: dict, heads: bool):
        self.model, self.given, self.heads = model, given, heads
        first = next(iter(given))
        self.values: dict[str, Any] = {first: given[first]}
        self.left = dict(model.readers)
        self.kept: list = []

    def run(self, pieces: list[tuple], reentrant: bool):
        from torch.utils.checkpoint import checkpoint

        for checkpointed, nodes, inputs, outputs, reads in pieces:
            fn = self._function(nodes, inputs, outputs, reads)
            args = [self.values[src] for src in inputs]
            results = checkpoint(fn, *args, use_reentrant=reentrant) if checkpointed else fn(*args)
            for src in inputs:
                self._read(src, reads[src])
            for name, out in zip(outputs, results):
                self._made(name, out, reads.get(name, 0))
        output = self.model.output_name
        return (self.values[output], *self.kept) if self.heads else self.values[output]

    def _function(self, nodes: list, inputs: list[str], outputs: list[str], reads: dict[str, int]):
        layers = self.model.layer_modules
        given = {name: self.given[name] for name, srcs in nodes if not srcs and name in self.given}  # (only these:
        # torch's checkpoint holds the function until the segment's backward)

        def fn(*tensors):
            values = dict(zip(inputs, tensors))
            left = dict(reads)
            for name, srcs in nodes:
                values[name] = layers[name](*(values[src] for src in srcs)) if srcs or name not in given \
                    else given[name]
                for src in srcs:
                    left[src] -= 1
                    if left[src] == 0 and src not in outputs and src not in inputs:
                        del values[src]
            return tuple(values[name] for name in outputs)
        return fn

    def _read(self, name: str, times: int) -> None:
        self.left[name] -= times
        if self.left[name] == 0 and name != self.model.output_name:
            del self.values[name]

    def _made(self, name: str, out: Any, reads: int) -> None:
        self.values[name] = out
        self.left[name] -= reads
        if self.left[name] == 0 and name != self.model.output_name:
            if self.heads:
                self.kept.append(out)
            del self.values[name]
