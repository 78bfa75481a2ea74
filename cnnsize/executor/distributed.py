"""Training on several GPUs, measured on CPU: ``cnnsize validate SPEC --gpus N --sharding S``.

N CPU processes (``python -m cnnsize.executor.distributed``) join one torch.distributed group over the gloo
backend, rendezvous on localhost at a free port, and train the network cnnsize's executor builds under the sharding
torch offers for each scheme (cnnsize.passes.sharding):

- ``ddp``: DistributedDataParallel (gradient buckets, ``gradient_as_bucket_view=False`` as torch's default);
- ``zero1``: DDP with torch's ZeroRedundancyOptimizer;
- ``zero2``, ``zero3``/``fsdp``, ``hsdp``: FullyShardedDataParallel's SHARD_GRAD_OP, FULL_SHARD and HYBRID_SHARD,
  every layer that holds parameters one unit (the executor's network calls each layer's module itself).

Each rank measures, as ``validate`` measures one process (cnnsize.executor.validation): the bytes of the parameters,
gradients and optimizer state it holds after a step (exact); what stays allocated between steps (the profiler's net
allocations while the network and its wrapper are built and a first step runs: the parameters or their shards,
DDP's buckets, the optimizer state; the profiler records no free of what was allocated before it started); and the
model's tensors' peak over a second, steady-state step (the profiler's allocations, backend workspace apart). Its
peak is the two added; cnnsize's figure is the rank's ``per_gpu_peaks_bytes``. What gloo allocates outside torch's
allocator (its own buffers) is not seen; NCCL's buffers, the CUDA caching allocator and the collectives' overlap
with compute are not measured (no GPU runs here).
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch

from ..core.errors import CnnsizeError, SpecError
from ..engine.memory import MemoryOptions
from ..engine.optimizers import EIGHT_BIT
from ..engine.result import Analysis
from ..engine.walk import analyze_graph
from ..passes import sharding as sharding_pass
from ..passes import training as training_pass
from ..passes.plan import shardings
from .builder import as_analysis, build_module, make_inputs, torch_dtype
from .validation import CPU_SLACK, Figure, _allocations, _optimizer_step, _peak_allocated, _torch_optimizer, _within

SHARDINGS = sharding_pass.SHARDINGS
TIMEOUT = 300.0  # seconds: the rendezvous and every collective, and the whole run; it never hangs
BUILDS, STEPS = 3, 5  # builds and steady-state steps measured per rank (see _one)
EXACT = ("params_bytes", "gradients_bytes", "optimizer_bytes")
FLAT = {"zero2": "SHARD_GRAD_OP", "zero3": "FULL_SHARD", "fsdp": "FULL_SHARD", "hsdp": "HYBRID_SHARD"}


@dataclass
class ShardedValidation:
    """Each rank's predicted and measured figures (``ranks[r][figure]``: a Figure) under one sharding."""

    name: str
    gpus: int
    sharding: str
    batch: int
    optimizer: str
    gpus_per_node: int
    ranks: list[dict[str, Figure]]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for rank in self.ranks for f in rank.values())

    def mismatches(self) -> list[str]:
        return [f"rank {r} {key}: predicted {f.predicted:,}, measured {f.measured:,}"
                for r, rank in enumerate(self.ranks) for key, f in rank.items() if not f.ok]

    def to_dict(self) -> dict:
        return {"ok": self.ok, "name": self.name, "device": "cpu (gloo)", "gpus": self.gpus,
                "sharding": self.sharding, "gpus_per_node": self.gpus_per_node, "batch": self.batch,
                "optimizer": self.optimizer,
                "ranks": [{key: {**f.to_dict(), "difference": f.measured - f.predicted} for key, f in rank.items()}
                          for rank in self.ranks],
                "mismatches": self.mismatches(), "notes": list(self.notes)}


def check(gpus: int, sharding: str | None, gpus_per_node: int | None) -> str:
    """The sharding to run on ``gpus`` processes, or one line as ``cnnsize plan`` refuses it (passes.plan)."""
    if gpus < 2:
        shardings(gpus, gpus_per_node, sharding)  # --sharding with one GPU: refused as the plan refuses it
        raise SpecError("--gpus 1 trains on one process: nothing distributed to measure",
                        hint="give --gpus 2 or more, or leave --gpus out")
    return shardings(gpus, gpus_per_node, sharding or "ddp")[0] or "ddp"


def predicted(analysis: Analysis, gpus: int, sharding: str, gpus_per_node: int | None) -> dict:
    """cnnsize's per-GPU figures for the step the ranks run (the training pass, then the sharding pass)."""
    training_pass.apply(analysis)
    sharding_pass.apply(analysis, gpus, sharding, gpus_per_node)
    return analysis.totals["training"]["per_gpu"]


def validate_sharded(spec: Any, *, gpus: int, sharding: str | None = None, gpus_per_node: int | None = None,
                     input_shape: tuple | None = None, fit: str | None = None, batch: int = 1,
                     optimizer: str = "adam", init: bool = False, timeout: float = TIMEOUT) -> ShardedValidation:
    """One training step of ``spec`` on ``gpus`` gloo processes under ``sharding`` (default ddp), each rank's
    figures against cnnsize's per-GPU ones (see the module's docstring)."""
    sharding = check(gpus, sharding, gpus_per_node)
    optimizer = MemoryOptions(optimizer=optimizer).check().optimizer
    if optimizer in EIGHT_BIT:
        raise SpecError(f"--optimizer {optimizer} is measured on CUDA only; several processes run on the CPU here",
                        hint="another optimizer")
    node = gpus_per_node if sharding == "hsdp" else None
    base = as_analysis(spec, input_shape=input_shape, fit=fit, batch=batch)
    train_batch = max([base.batch, *(row.kind.min_training_batch for row in base.layers[1:])])
    analysis = analyze_graph(base.graph, input_shape=base.input_shape, batch=train_batch, fit=base.fit,
                             device="cpu", optimizer=optimizer)
    per_gpu = predicted(analysis, gpus, sharding, node)
    measured = measure(analysis, gpus, [sharding], node, optimizer, init, timeout)[sharding]
    ranks = []
    for r, rank in enumerate(measured):
        figures = {key: Figure(per_gpu[key][r], rank[key], per_gpu[key][r] == rank[key]) for key in EXACT}
        figures["per_gpu_peak_bytes"] = _within(per_gpu["per_gpu_peaks_bytes"][r], rank["peak"], train_batch,
                                                torch.device("cpu"))
        figures["per_gpu_peak_bytes"].workspace = rank["workspace"]
        figures["per_gpu_peak_bytes"].workspace_op = rank["workspace_op"]
        ranks.append(figures)
    notes = [f"{gpus} CPU processes over gloo stand for the GPUs; each rank's peak is what stays allocated between "
             "steps plus the model's tensors' peak over a steady-state step (torch's profiler), backend workspace "
             "apart; NCCL's buffers and the CUDA allocator are not measured here"]
    if train_batch != batch:
        notes.append(f"the step ran at batch {train_batch} per rank (batch norm needs two samples to train), "
                     "predicted at that batch too")
    notes += [f"rank {r}: backend workspace {rank['workspace']:,} bytes in {rank['workspace_op']} at the peak, "
              "not part of the model's memory" for r, rank in enumerate(measured) if rank["workspace"] > CPU_SLACK]
    return ShardedValidation(analysis.name, gpus, sharding, train_batch, optimizer, node or gpus, ranks, notes)


def free_port() -> int:
    """A TCP port free on localhost now (the rendezvous')."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(analysis: Analysis, gpus: int, modes: list[str], gpus_per_node: int | None = None,
            optimizer: str = "adam", init: bool = False, timeout: float = TIMEOUT) -> dict[str, list[dict]]:
    """Per sharding in ``modes``, per rank: ``params_bytes``, ``gradients_bytes``, ``optimizer_bytes`` (held after a
    step), ``resident`` (allocated between steps), ``peak`` (that plus the steady-state step's peak), ``workspace``
    and ``workspace_op``; one group of ``gpus`` processes (``python -m cnnsize.executor.distributed``, so that no
    caller's main module is imported again) runs them all in turn. The analysis is the one built (its graph, input
    shape, batch, dtype). A rank's failure, or ``timeout`` seconds, is one line."""
    import pickle
    import subprocess
    import sys

    setting = {"graph": analysis.graph, "input_shape": analysis.input_shape, "batch": analysis.batch,
               "fit": analysis.fit, "dtype": analysis.dtype, "optimizer": optimizer, "init": init, "modes": modes,
               "node": gpus_per_node, "timeout": timeout, "world": gpus,
               "init_method": f"tcp://127.0.0.1:{free_port()}"}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rank")
        with open(os.path.join(tmp, "setting"), "wb") as f:
            pickle.dump(setting, f)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (_root(), os.environ.get("PYTHONPATH")) if p)}
        logs = [open(f"{out}.{rank}.log", "w") for rank in range(gpus)]
        procs = [subprocess.Popen([sys.executable, "-m", "cnnsize.executor.distributed", tmp, str(rank)],
                                  stdout=subprocess.DEVNULL, stderr=logs[rank], env=env) for rank in range(gpus)]
        deadline = time.monotonic() + timeout
        try:
            for proc in procs:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise SpecError(f"the {gpus} processes did not finish in {timeout:g} s",
                            hint="a smaller network or batch") from None
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            for log in logs:
                log.close()
        return _collect(out, procs, modes)


def _root() -> str:
    """The folder cnnsize is imported from (the processes import the same one)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collect(out: str, procs: list, modes: list[str]) -> dict[str, list[dict]]:
    """Each rank's figures from its file; a rank's error (its own one line, else its log's last line) is raised."""
    ranks = []
    for rank, proc in enumerate(procs):
        if not os.path.exists(f"{out}.{rank}"):
            with open(f"{out}.{rank}.log") as f:
                raise SpecError(f"rank {rank} exited ({proc.returncode}) without its figures: {_last_line(f.read())}")
        with open(f"{out}.{rank}") as f:
            found = json.load(f)
        if "error" in found:
            raise SpecError(f"rank {rank}: {found['error']}")
        ranks.append(found)
    return {mode: [r[mode] for r in ranks] for mode in modes}


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip() and not line.startswith("STAGE:")]
    return lines[-1] if lines else "no message"


def _rank(folder: str, rank: int) -> None:
    """One process: join the group, measure each mode, write its figures (or its one-line error) to a file."""
    import pickle

    import torch.distributed as dist

    with open(os.path.join(folder, "setting"), "rb") as f:
        setting = pickle.load(f)  # written by measure, in its own temporary folder
    world = setting["world"]
    torch.set_num_threads(1)  # N processes on a few cores
    dist.init_process_group("gloo", init_method=setting["init_method"], rank=rank, world_size=world,
                            timeout=timedelta(seconds=setting["timeout"]))
    try:
        analysis = analyze_graph(setting["graph"], input_shape=setting["input_shape"], batch=setting["batch"],
                                 dtype=setting["dtype"], fit=setting["fit"], device="cpu")
        found: dict[str, Any] = {}
        for mode in setting["modes"]:
            torch.manual_seed(0)
            found[mode] = _one(analysis, mode, world, setting)
            dist.barrier()
    except CnnsizeError as exc:
        found = {"error": exc.one_line()}
    finally:
        dist.destroy_process_group()
    with open(os.path.join(folder, f"rank.{rank}"), "w") as f:
        json.dump(found, f, allow_nan=False)  # every figure a byte count


def _bytes(t: torch.Tensor) -> int:
    t = t.to_local() if hasattr(t, "to_local") else t
    return t.numel() * t.element_size()


def _state(opt: torch.optim.Optimizer) -> int:
    inner = getattr(opt, "optim", opt)  # ZeroRedundancyOptimizer's local optimizer
    return sum(_bytes(v) for s in inner.state.values() for k, v in s.items() if torch.is_tensor(v) and k != "step")


def _wrapped(model: Any, mode: str, world: int, optimizer: str, node: int | None) -> tuple[Any, Any]:
    """The network under ``mode`` and its optimizer (torch's, as validate's step makes it)."""
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel as DDP

    if mode in ("ddp", "zero1"):
        model = DDP(model)
        if mode == "ddp":
            return model, _torch_optimizer(optimizer, list(model.parameters()))
        inner = _torch_optimizer(optimizer, list(model.parameters()))
        defaults = {k: v for k, v in inner.defaults.items() if k in ("lr", "momentum")} \
            if optimizer in ("sgd", "momentum") else {}
        return model, ZeroRedundancyOptimizer(model.parameters(), optimizer_class=type(inner), **defaults)
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import ShardingStrategy

    graph = model  # each layer with parameters one unit
    units = {m for m in graph.layer_modules.values() if any(True for _ in m.parameters(recurse=False))}
    extra: dict = {}
    if mode == "hsdp":  # nodes of ``node`` ranks: shard within a node, replicate across
        from torch.distributed.device_mesh import init_device_mesh

        extra["device_mesh"] = init_device_mesh("cpu", (world // (node or world), node or world))
    model = FSDP(model, auto_wrap_policy=lambda module, recurse, nonwrapped_numel: recurse or module in units,
                 sharding_strategy=getattr(ShardingStrategy, FLAT[mode]), device_id=torch.device("cpu"),
                 use_orig_params=False, **extra)
    graph.layer_modules = {name: graph.get_submodule(name) for name in graph.layer_modules}  # the wrapped units
    return model, _torch_optimizer(optimizer, list(model.parameters()))


def _one(analysis: Analysis, mode: str, world: int, setting: dict) -> dict:
    """One mode on this rank: the network and its wrapper built and a first step run under the profiler (what stays
    allocated), the parts held after that step, then a second step's peak."""
    import torch.distributed as dist
    from torch.autograd.profiler import profile

    cpu = torch.device("cpu")
    tdtype = torch_dtype(analysis.dtype)
    held: dict[str, Any] = {}

    def step(keep_grads: bool = False) -> None:
        x = make_inputs(analysis, analysis.batch, cpu, tdtype)
        with torch.enable_grad():
            y = held["model"](x)
            loss = sum(t.float().sum() for t in (y if isinstance(y, (tuple, list)) else (y,)))
            del y
            loss.backward()
        _optimizer_step(held["optimizer"])
        if keep_grads:
            params = list(held["model"].parameters())
            held["parts"] = {"params_bytes": sum(_bytes(p) for p in params),
                             "gradients_bytes": sum(_bytes(p.grad) for p in params if p.grad is not None),
                             "optimizer_bytes": _state(held["optimizer"])}
        held["model"].zero_grad(set_to_none=True)

    def setup() -> None:  # built under the profiler too: it records no free of what was allocated before it
        model = build_module(None, analysis=analysis, device=cpu, dtype=analysis.dtype, init=setting["init"])
        held["model"], held["optimizer"] = _wrapped(model, mode, world, setting["optimizer"], setting["node"])
        held["model"].train()
        step(keep_grads=True)
        dist.barrier()  # every collective done, its buffers freed while the profiler still records

    # The profiler records the allocations of this thread only: a buffer that a collective's completion frees on one
    # of gloo's threads (FSDP's gathered units, DDP's buckets' copies) looks held, now and then. What stays between
    # steps is the fewest bytes of BUILDS builds, and the step's peak the least of STEPS steady steps.
    builds = []
    for _ in range(BUILDS):
        held.clear()
        with profile(use_cpu=True, profile_memory=True) as prof:
            setup()
        builds.append(sum(nbytes for _, _, nbytes, _ in _allocations(prof.kineto_results.experimental_event_tree())))
    resident = min(builds)
    peak = min((_peak_allocated(cpu, step) for _ in range(STEPS)), key=lambda p: p.model)
    return {**held["parts"], "resident": resident, "peak": resident + peak.model, "workspace": peak.workspace,
            "workspace_op": peak.op}


if __name__ == "__main__":  # one rank of measure's group: python -m cnnsize.executor.distributed FOLDER RANK
    import sys

    _rank(sys.argv[1], int(sys.argv[2]))
