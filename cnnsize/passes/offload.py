"""Offloading to host memory (``--offload optimizer|params``), as DeepSpeed's ZeRO-Offload and ZeRO-Infinity run it
(``offload_optimizer`` and ``offload_param`` with ``device: cpu``), which FSDP's ``CPUOffload(offload_params=True)``
matches for parameters.

- ``optimizer``: the optimizer state lives in host memory and the optimizer steps there, on the CPU: each GPU
  copies the gradients of the share it steps to the host every micro-step and gets the updated parameters back
  after the step. The GPU no longer holds the state nor the step's temporaries; the host holds, per GPU, its state,
  its gradients (float32 master, as the step reads them) and its parameters' float32 copy.
- ``params`` (ZeRO-3, FSDP or HSDP, or one GPU): the parameters, their gradients and the optimizer state all live
  in host memory; each layer's parameters are copied to the GPU (and gathered) for its forward and again for its
  backward, its gradients copied back as made. The GPU keeps only the layer at work (the largest, whole, with its
  gradient).

``per_gpu_peak_bytes`` is the peak without offload less what moves (``offload_moved_bytes``, by part);
``offload_cpu_bytes`` what each GPU's process holds in host memory (``offload_cpu_node_bytes`` a node's GPUs');
``offload_transfer_bytes`` what crosses the host link (PCIe) per step each way added, which the plan's step time
adds at the profile's ``host_link``. All of it is estimated from these rules, not measured (no GPU here): the
copies' overlap with compute, pinned staging buffers and the CPU's own step time are not counted.
"""

from __future__ import annotations

from math import prod
from typing import Any

from ..core.errors import SpecError, unknown_name
from ..core.numeric import human_bytes

OFFLOADS = ("optimizer", "params")
PARAMS_SHARDINGS = ("zero3", "fsdp", "hsdp", None)  # parameters gathered per layer (or one GPU's)


def check(offload: str | None, sharding: str | None, gpus: int) -> None:
    """One line where the offload cannot go with the sharding: DDP keeps a whole optimizer on each GPU, and only
    ZeRO-3 gathers parameters per layer."""
    if offload is None:
        return
    if offload not in OFFLOADS:
        raise unknown_name("offload", offload, OFFLOADS)
    if sharding == "ddp" and gpus > 1:
        raise SpecError("--offload with ddp: DDP keeps the whole optimizer on every GPU (ZeRO-Offload partitions it)",
                        hint="give --sharding zero1, zero2, zero3, fsdp or hsdp")
    if offload == "params" and sharding not in PARAMS_SHARDINGS:
        raise SpecError(f"--offload params with {sharding}: parameters are fetched from the host per layer only "
                        "where they are gathered per layer", hint="give --sharding zero3, fsdp or hsdp")


def offload(analysis: Any, found: dict, setting: tuple[str, int], stepped: list, master: int, steps: list,
            largest_shard: Any) -> dict:
    """The offload's figures from a sharding's (cnnsize.passes.sharding.shard's ``found``; ``setting``: what is
    offloaded and the micro-steps a step; ``stepped``: the shapes
    of the tensors each GPU steps, None for all; ``steps``: each GPU's step peak and what it falls to without the
    optimizer step's temporaries (the other phases', or the gradients held); ``largest_shard``: bytes of the
    largest unit's own shard, which the GPU holds again while it works on it): per GPU what moves (by part), the new
    per-GPU peak, the host memory and the host link's bytes per step."""
    what, accumulate = setting
    check(what, found["sharding"], found["gpus"])
    gpus = found["gpus"]
    moved, cpu, transfer = [], [], []
    for rank in range(gpus):
        state = found["optimizer_bytes"][rank]
        shapes = stepped[rank]
        share = master * (analysis.totals.trainable_params if shapes is None else sum((prod(s) for s in shapes), 0))
        parts = {"optimizer state": state, "optimizer temporaries": steps[rank][0] - steps[rank][1]}
        if what == "optimizer":  # gradients down every micro-step, parameters up after the step
            cpu.append(state + 2 * share)
            transfer.append(accumulate * share + share)
        else:  # each layer's parameters up for its forward and its backward, its gradients down
            params, grads = found["params_bytes"][rank], found["gradients_bytes"][rank]
            parts["parameters"] = params - largest_shard
            parts["gradients"] = grads - largest_shard if grads else 0
            cpu.append(params + grads + state)
            transfer.append(accumulate * (2 * params + grads))
        moved.append(parts)
    peaks = [peak - sum(parts.values()) for peak, parts in zip(found["per_gpu_peaks_bytes"], moved)]
    node = min(found["gpus_per_node"], gpus)
    return {"offload": what, "offload_moved_bytes": moved, "per_gpu_peaks_bytes": peaks,
            "per_gpu_peak_bytes": max(peaks), "offload_cpu_bytes": cpu, "offload_cpu_node_bytes": sum(cpu[:node]),
            "offload_transfer_bytes": max(transfer)}


def summary(found: dict) -> str:
    """One line: what moves to host memory, the per-GPU peak then, the host memory and the copies per step."""
    moved = max(sum(parts.values()) for parts in found["offload_moved_bytes"])
    return (f"Offloading the {found['offload']} to host memory: per GPU at most "
            f"{human_bytes(found['per_gpu_peak_bytes'])} ({human_bytes(moved)} moved off it); host memory "
            f"{human_bytes(max(found['offload_cpu_bytes']))} a GPU ({human_bytes(found['offload_cpu_node_bytes'])} a "
            f"node); {human_bytes(found['offload_transfer_bytes'])} over the host link a step.")
