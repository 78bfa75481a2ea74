"""The training plan (``cnnsize plan``): every way to train a network on a device that people use, each with what one
GPU holds at its peak, whether that fits the device's memory, the step's work and its predicted time.

The configurations are precision × gradient accumulation × sharding × activation checkpointing: the five
precisions of cnnsize.engine.memory.PRECISIONS; the per-GPU batch split into 1, 2, 4, ... micro-batches (the powers
of two that divide it); on one GPU no sharding, on several ddp, zero1, zero2, zero3, fsdp (and hsdp where the GPUs
make several nodes of ``gpus_per_node``); the checkpointing candidates of CHECKPOINTS. Each configuration's figures
are those ``cnnsize.analyze`` gives for its settings (``per_gpu_peak_bytes``: ``totals["training"]``'s on several
GPUs, ``totals.memory.training_bytes`` on one; ``step_macs``; the step's seconds by
cnnsize.passes.latency.step_seconds), computed from one walk per precision and micro-batch: the shardings of a walk
and the precisions that share its dtype reuse it.
"""

from __future__ import annotations

from typing import Any

from ..core.dtypes import DTYPE_BYTES
from ..core.errors import SpecError, unknown_name
from ..core.numeric import human_bytes
from ..engine import optimizers
from ..engine.memory import PRECISIONS, max_batch, parse_bytes
from ..engine.walk import analyze_graph
from . import estimators, latency
from . import offload as offload_pass
from . import sharding as sharding_pass
from . import training as training_pass

SHARDINGS = ("ddp", "zero1", "zero2", "zero3", "fsdp")  # and hsdp where the GPUs make several nodes
# activation checkpointing (analyze's checkpoint=): none, each block its own segment, and two coarser cuts
CHECKPOINTS: tuple = (None, "every:1", "every:2", "every:4")
MAX_GPUS = 4096  # how far "what would be needed" looks for a number of GPUs


def accumulations(batch: int, given: int | None = None) -> list[int]:
    """The micro-steps to try: ``given``, else every power of two that divides ``batch``, and ``batch`` itself."""
    if given is not None:
        if batch % given:
            raise SpecError(f"--accumulate {given} does not divide the batch {batch} into equal micro-batches",
                            hint="give a divisor of --batch")
        return [given]
    out, a = [], 1
    while a <= batch and batch % a == 0:
        out.append(a)
        a *= 2
    return out if out[-1] == batch else [*out, batch]  # and micro-batches of one sample, the leanest


def shardings(gpus: int, gpus_per_node: int | None, given: str | None) -> list[str | None]:
    """The sharding schemes to try on ``gpus`` GPUs (None: one GPU, nothing shared), or one line on a contradiction."""
    if given is not None and given not in (*SHARDINGS, "hsdp"):
        raise unknown_name("sharding", given, (*SHARDINGS, "hsdp"))
    if gpus == 1:
        if given is not None:
            raise SpecError(f"--sharding {given} with 1 GPU shards nothing", hint="give --gpus 2 or more, or leave "
                            "--sharding out")
        return [None]
    several_nodes = gpus_per_node is not None and gpus_per_node < gpus and gpus % gpus_per_node == 0
    if given == "hsdp" and not several_nodes:
        raise SpecError(f"--sharding hsdp needs several nodes: --gpus {gpus} as a multiple of --gpus-per-node "
                        f"{gpus_per_node or '(not given)'}", hint="give --gpus-per-node N with N < --gpus, dividing it")
    if given is not None:
        return [given]
    return [*SHARDINGS, *(("hsdp",) if several_nodes else ())]


def offloading(schemes: list, offload: str | None, gpus: int) -> list:
    """The shardings that can take ``offload`` (cnnsize.passes.offload.check): one line where none asked for can."""
    if offload is None:
        return schemes
    able = []
    for scheme in schemes:
        try:
            offload_pass.check(offload, scheme, gpus)
        except SpecError:
            if len(schemes) == 1:
                raise
            continue
        able.append(scheme)
    return able


def device_memory(profile: latency.DeviceProfile, size: str | None) -> int:
    """The bytes a GPU has: ``size`` (--device-memory) if given, else the profile's."""
    if size is not None:
        return parse_bytes(size)
    if profile.memory_bytes is None:
        raise SpecError(f"the device profile '{profile.name}' gives no memory size",
                        hint="give --device-memory SIZE (e.g. 80GiB), or 'memory_bytes' in the profile")
    return profile.memory_bytes


class Planner:
    """One network on one device: walks memoized by (precision, micro-batch, accumulate, checkpoint), each
    micro-step's seconds by (micro-batch, precision, checkpoint)."""

    def __init__(self, graph: Any, profile: latency.DeviceProfile, memory: int, gpus: int,
                 gpus_per_node: int | None, walk: dict, offload: str | None = None):
        self.graph, self.profile, self.memory, self.gpus = graph, profile, memory, gpus
        self.offload = offload
        self.node, self.walk = gpus_per_node, walk
        self.walks: dict = {}
        self.skipped: dict = {}  # checkpointing -> why the network cannot take it
        self.timed: dict = {}
        self.micros: dict = {}

    def analysis(self, precision: str, micro: int, accumulate: int, checkpoint: Any) -> Any:
        """The walk at these settings (memory figures); the training pass is applied when its timing is asked."""
        key = (precision, micro, accumulate, checkpoint)
        if key not in self.walks:
            extra = {} if checkpoint is None else {"checkpoint": checkpoint}
            if checkpoint == "auto":  # the every:N that fits the device with the least recomputed
                extra["device_memory"] = self.memory
            self.walks[key] = analyze_graph(self.graph, batch=micro, precision=precision, accumulate=accumulate,
                                            **self.walk, **extra)
        return self.walks[key]

    def micro_step(self, analysis: Any, precision: str, checkpoint: Any) -> tuple:
        """(forward, backward, recompute) seconds and the MACs of a micro-step. The layers' work, backward MACs and
        traffic do not depend on the precision beyond the bytes per element (the traffic is elements × itemsize):
        one training pass per micro-batch serves every precision."""
        timed_key = (analysis.batch, checkpoint)
        if timed_key not in self.timed:
            training_pass.apply(analysis, accumulate=1)  # per micro-step; a step is ``accumulate`` of them
            t = analysis.totals["training"]
            macs = None if t["backward_macs"] is None else t["forward_macs"] + t["backward_macs"] + t["recompute_macs"]
            self.timed[timed_key] = (latency.layer_terms(analysis), DTYPE_BYTES[analysis.dtype], macs)
        terms, size, macs = self.timed[timed_key]
        key = (analysis.batch, precision, checkpoint)
        if key not in self.micros:
            scale = (DTYPE_BYTES[analysis.dtype], size)
            self.micros[key] = latency.sum_terms(terms, self.profile, precision, analysis.dtype, scale)
        return self.micros[key], macs

    def per_gpu(self, analysis: Any, sharding: str | None, accumulate: int = 1) -> tuple[Any, Any, Any, Any, Any]:
        """(peak, gradient bytes, optimizer state bytes, bytes sent, bytes over the host link) of the GPU that holds
        the most."""
        memory = analysis.totals.memory
        if sharding is None and self.offload is None:
            return memory.training_bytes, memory.gradients_bytes, memory.optimizer_bytes, 0, 0
        found = sharding_pass.shard(analysis, self.gpus, sharding, self.node, self.offload, accumulate)
        return (found["per_gpu_peak_bytes"], max(found["gradients_bytes"]), max(found["optimizer_bytes"]),
                found["communication_bytes"], found.get("offload_transfer_bytes", 0))

    def configuration(self, precision: str, micro: int, accumulate: int, sharding: str | None,
                      checkpoint: Any) -> dict:
        """One configuration's settings and figures."""
        analysis = self.analysis(precision, micro, accumulate, checkpoint)
        peak, grads, state, sent, host = self.per_gpu(analysis, sharding, accumulate)
        seconds, macs = self.micro_step(analysis, precision, checkpoint)
        step = latency.combine_step(seconds, self.profile, accumulate, self.gpus, grads, state, sent,
                                    host)["step_seconds"]
        batch = micro * accumulate
        fits = peak <= self.memory
        return {"precision": precision, "checkpoint": checkpoint, "accumulate": accumulate, "micro_batch": micro,
                "batch": batch, "gpus": self.gpus, "sharding": sharding, "offload": self.offload,
                "per_gpu_peak_bytes": peak, "fits": fits,
                "predicted_step_seconds": step,
                "samples_per_second": None if not step else self.gpus * batch / step,
                "step_macs": None if macs is None else accumulate * macs, "communication_bytes": sent,
                "offload_transfer_bytes": host,
                "reason": None if fits else f"needs {human_bytes(peak)} per GPU, the device has "
                                            f"{human_bytes(self.memory)}"}

    def largest(self, precision: str, accumulate: int, sharding: str | None, checkpoint: Any) -> dict:
        """The configuration at the largest micro-batch that fits (cnnsize.engine.memory.max_batch's search)."""
        def at(batch: int) -> dict:
            peak = self.per_gpu(self.analysis(precision, batch, accumulate, checkpoint), sharding)[0]
            return {"inference_peak_bytes": peak, "training_bytes": peak}

        micro = max_batch(at, self.memory)["training"]
        found = self.configuration(precision, max(micro, 1), accumulate, sharding, checkpoint)
        found["max_batch"] = micro * accumulate
        if not micro:
            found["reason"] = "not even a batch of 1: " + found["reason"]
        return found


def search(planner: Planner, precision: str, batch: int, steps: list[int], schemes: list,
           every: bool, checkpoints: tuple = CHECKPOINTS) -> list[dict]:
    """The configurations of one precision, accumulation rising for each sharding until it fits: more micro-steps
    only add time (a step of ``a`` micro-batches takes at least as long as one of the whole batch in the roofline).
    Checkpointing (CHECKPOINTS after None) only adds recomputation, so it is tried only at accumulations below the
    fewest at which the sharding fits without it. ``every``: all of them. A checkpointing the network cannot take
    (no blocks to cut) is left out, with a note, unless it is the one asked for (``checkpoints`` of one)."""
    found: list[dict] = []
    fit_at: dict = {}  # sharding -> the fewest micro-steps that fit without checkpointing
    for checkpoint in checkpoints:
        left = list(schemes)
        for a in steps:
            if checkpoint is not None and None in checkpoints and not every:
                left = [s for s in left if a < fit_at.get(s, a + 1)]
            if not left:
                break
            try:
                tried = [planner.configuration(precision, batch // a, a, s, checkpoint) for s in left]
            except SpecError as exc:
                if checkpoint is None or len(checkpoints) == 1:
                    raise
                planner.skipped.setdefault(checkpoint, exc.one_line())
                break
            found += tried
            for c in tried if checkpoint is None else ():
                if c["fits"]:
                    fit_at.setdefault(c["sharding"], a)
            left = left if every else [c["sharding"] for c in tried if not c["fits"]]
    return found


def largest_all(planner: Planner, precision: str, checkpoint: Any, steps: list[int], schemes: list,
                strict: bool = False) -> list[dict]:
    """Each configuration of one precision and checkpointing at its largest batch (none where the network cannot
    take that checkpointing)."""
    try:
        return [planner.largest(precision, a, s, checkpoint) for a in steps for s in schemes]
    except SpecError as exc:
        if checkpoint is None or strict:
            raise
        planner.skipped.setdefault(checkpoint, exc.one_line())
        return []


def order(configurations: list[dict]) -> list[dict]:
    """Fitting first, then by predicted samples per second (fastest first; unknown last), then by peak."""
    return sorted(configurations, key=lambda c: (not c["fits"], c["samples_per_second"] is None,
                                                 -(c["samples_per_second"] or 0.0), c["per_gpu_peak_bytes"]))


def needed(planners: Any, configurations: list[dict]) -> str | None:
    """Where nothing fits, one line: the smallest bundled device the leanest configuration fits, else how many
    GPUs fully sharded (zero3) would hold it, else that none would."""
    if not configurations or any(c["fits"] for c in configurations):
        return None
    lean = min(configurations, key=lambda c: c["per_gpu_peak_bytes"])
    peak = lean["per_gpu_peak_bytes"]
    planners = planners if isinstance(planners, list) else [planners]
    planner = next((p for p in planners if p.walk["optimizer"] == lean.get("optimizer", p.walk["optimizer"])
                    and p.offload == lean["offload"]), planners[0])
    what = f"the leanest configuration ({_settings(lean)}) needs {human_bytes(peak)} per GPU"
    devices = sorted((p.memory_bytes, name) for name, p in latency.DATASHEETS.items() if p.memory_bytes)
    room = next((name for size, name in devices if size >= peak), None)
    if room is not None:
        return f"Nothing fits in {human_bytes(planner.memory)}; {what}: it fits the {room} " \
               f"({human_bytes(latency.DATASHEETS[room].memory_bytes)})."
    analysis = planner.analysis(lean["precision"], lean["micro_batch"], lean["accumulate"], lean["checkpoint"])
    gpus = max(2, planner.gpus * 2)
    while gpus <= MAX_GPUS:
        if sharding_pass.shard(analysis, gpus, "zero3")["per_gpu_peak_bytes"] <= planner.memory:
            return f"Nothing fits in {human_bytes(planner.memory)}; {what}: with zero3 over {gpus} GPUs it fits."
        gpus *= 2
    return f"Nothing fits in {human_bytes(planner.memory)}; {what}, and sharding over up to {MAX_GPUS:,} GPUs " \
           "does not bring it within the device's memory (the activations of a micro-batch are not sharded)."


def _settings(c: dict) -> str:
    parts = [c["precision"]]
    if c.get("optimizer"):
        parts.append(c["optimizer"])
    if c["accumulate"] > 1:
        parts.append(f"accumulate {c['accumulate']} (micro-batch {c['micro_batch']})")
    if c["sharding"]:
        parts.append(f"{c['sharding']} over {c['gpus']} GPUs")
    if c.get("offload"):
        parts.append(f"{c['offload']} offloaded")
    if c["checkpoint"]:
        parts.append(f"checkpoint {c['checkpoint']}")
    return ", ".join(parts)


def choices(given: Any, valid: tuple, what: str, none: bool = False) -> list:
    """The values a plan tries of one setting: ``given`` as a name, a comma-separated list or ``any`` (every one
    of ``valid``; with ``none``, None first: "none" in a list); unknown names are refused with the closest."""
    if given is None or (not isinstance(given, str | list | tuple)):
        return [given]
    names = list(given) if isinstance(given, list | tuple) else [part.strip() for part in given.split(",")]
    if names == ["any"]:
        return [*([None] if none else []), *valid]
    out: list = []
    for name in names:
        value = None if none and name in ("none", None) else name
        if value is not None and value not in valid:
            raise unknown_name(what, value, (*valid, *(("none", "any") if none else ("any",))))
        if value not in out:
            out.append(value)
    return out


def plan(graph: Any, device: Any, *, batch: int = 32, gpus: int = 1, gpus_per_node: int | None = None,
         precision: str | None = None, accumulate: int | None = None, sharding: str | None = None,
         device_memory_size: str | None = None, find_max_batch: bool = False, optimizer: Any = "adam",
         freeze_until: str | None = None, input_shape: Any = None, fit: str | None = None,
         layout: str | None = None, every: bool = False, checkpoint: str | None = None,
         grad_scaler: bool = True, offload: Any = None) -> dict:
    """The plan for a Graph on a device (a profile name, file or DeviceProfile): ``configurations`` (each a dict of
    its settings and figures, in ``order``), ``estimators`` (cnnsize.passes.estimators at the per-GPU ``batch``),
    ``needed`` (a line where nothing fits) and ``notes``. ``batch``: the samples each GPU takes a step (split into
    micro-batches by accumulation); ``find_max_batch``: each configuration at the largest batch that fits instead;
    ``every``: each accumulation, also beyond the fewest micro-steps that fit (see ``search``); ``checkpoint``: only
    that activation checkpointing ("none": none; default: CHECKPOINTS); ``grad_scaler`` False: fp16-mixed is not
    tried (refused where it is the precision asked for); ``offload`` ("optimizer", "params"; cnnsize.passes.offload):
    every configuration offloads it, with the shardings that can (not ddp; for params zero3, fsdp, hsdp).

    ``optimizer`` and ``offload`` may also be lists (or comma-separated names, "none" for no offload) or "any" (every
    optimizer cnnsize sizes; none, optimizer and params): the plan then searches them too, each configuration with
    its ``optimizer`` and ``offload`` (an offload no sharding asked for can take is left out, with a note)."""
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise SpecError(f"gpus must be a positive integer, got {gpus!r}", hint="e.g. --gpus 8")
    if precision is not None and precision not in PRECISIONS:
        raise unknown_name("precision", precision, PRECISIONS)
    names = choices(optimizer, optimizers.OPTIMIZERS, "optimizer")
    offloads = choices(offload, offload_pass.OFFLOADS, "offload", none=True)
    searched = len(names) > 1 or len(offloads) > 1 or not isinstance(optimizer, str) or "," in optimizer \
        or optimizer == "any" or (offload is not None and (not isinstance(offload, str) or "," in offload
                                                          or offload in ("any", "none")))
    profile = latency.load_profile(device)
    memory = device_memory(profile, device_memory_size)
    steps = [1 if accumulate is None else accumulate] if find_max_batch else accumulations(batch, accumulate)
    checkpoints = CHECKPOINTS if checkpoint is None else (None,) if checkpoint == "none" else (checkpoint,)
    walks: dict = {}  # per optimizer: the walks its planners share (offload does not change them)
    timed: tuple = ({}, {})  # micro-steps' seconds: no optimizer or offload changes them
    planners, configurations, skipped = [], [], []
    for name in names:
        walk = {"input_shape": input_shape, "optimizer": name, "freeze_until": freeze_until, "fit": fit,
                "layout": layout, "grad_scaler": grad_scaler}
        for off in offloads:
            try:
                schemes = offloading(shardings(gpus, gpus_per_node, sharding), off, gpus)
            except SpecError as exc:
                if not searched:
                    raise
                skipped.append(f"{off} offload: {exc.one_line()}")
                continue
            planner = Planner(graph, profile, memory, gpus, gpus_per_node, walk, off)
            planner.walks, (planner.timed, planner.micros) = walks.setdefault(name, {}), timed
            planners.append(planner)
            found = _configurations(planner, precision, grad_scaler, find_max_batch, checkpoints, steps, schemes,
                                    checkpoint is not None, batch, every)
            configurations += [{**c, "optimizer": name} for c in found] if searched else found
    configurations = order(configurations)
    planner = planners[0]
    notes = _notes(profile, gpus, {k: v for p in planners for k, v in p.skipped.items()},
                   next((o for o in offloads if o), None))
    notes += [f"Not tried: {line}" for line in dict.fromkeys(skipped)]
    found_plan = {"spec": next(iter(planner.walks.values())).name, "device": profile.name,
                  "device_memory_bytes": memory, "batch": None if find_max_batch else batch, "gpus": gpus,
                  "offload": offloads if searched else offload}
    if searched:
        found_plan["optimizers"] = names
    return {**found_plan, "configurations": configurations,
            "estimators": _estimators(planner, batch, gpus_per_node), "estimators_batch": batch,
            "needed": needed(planners, configurations),
            "notes": notes + ([] if grad_scaler or precision else [
                "Not tried: fp16-mixed: fp16 without a scaler underflows (--no-grad-scaler)."])}


def _configurations(planner: Planner, precision: str | None, grad_scaler: bool, find_max_batch: bool,
                    checkpoints: tuple, steps: list[int], schemes: list, strict: bool, batch: int,
                    every: bool) -> list[dict]:
    """One planner's configurations (one optimizer, one offload): each precision searched (see ``search``), or each
    at its largest batch."""
    found = []
    for p in [precision] if precision else [p for p in PRECISIONS if grad_scaler or p != "fp16-mixed"]:
        if find_max_batch:
            found += [c for ck in checkpoints for c in largest_all(planner, p, ck, steps, schemes, strict)]
        else:
            found += search(planner, p, batch, steps, schemes, every, checkpoints)
    return found


def _estimators(planner: Planner, batch: int, gpus_per_node: int | None) -> list[dict]:
    """cnnsize.estimators at the per-GPU batch: the float32 and fp16-mixed walks the search made (or makes)."""
    node = min(planner.gpus, gpus_per_node or planner.gpus)
    float32 = planner.analysis("float32", batch, 1, None)
    mixed = planner.analysis("fp16-mixed", batch, 1, None) if planner.walk["grad_scaler"] else \
        analyze_graph(planner.graph, batch=batch, precision="fp16-mixed", **{**planner.walk, "grad_scaler": True})
    return [e.to_dict() for e in estimators.estimators(float32, mixed, node, planner.gpus // node, planner.offload)]


def _notes(profile: latency.DeviceProfile, gpus: int, skipped: dict, offload: str | None = None) -> list[str]:
    notes = ["Predicted step times are the roofline's (cnnsize.passes.latency.step_seconds) from "
             f"{profile.source or profile.name}: forward, backward and recomputed work at the device's peak for "
             "each precision, the optimizer's step at its memory bandwidth"
             + (", and each GPU's communication at its interconnect, not overlapped." if gpus > 1 and
                profile.interconnect else ".")]
    if gpus > 1 and not profile.interconnect:
        notes.append(f"The step times exclude communication: the profile '{profile.name}' gives no interconnect.")
    if offload:
        notes.append("Offloading: the copies to and from host memory at the profile's host link "
                     + (f"({profile.host_link / 1e9:g} GB/s each way), not overlapped; the optimizer's step is timed "
                        "at the GPU's bandwidth (on the CPU it is slower; not modelled)." if profile.host_link else
                        f"are left out: the profile '{profile.name}' gives no host_link."))
    notes += [f"Not tried: {line}" for line in skipped.values()]
    return notes

