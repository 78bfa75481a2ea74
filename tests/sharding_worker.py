"""One training step of a cnnsize spec on N CPU processes (torch.distributed, gloo) under each sharding torch offers,
each rank reporting the bytes of the parameters, gradients and optimizer state it holds afterwards (tests/
test_sharding.py compares them with cnnsize.passes.sharding).

    python -m tests.sharding_worker SPEC N [C H W]   # prints one JSON object: {mode: [per rank {...}]}
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import cnnsize

MODES = ("ddp", "zero1", "zero2", "zero3", "hsdp")


def _bytes(t: torch.Tensor) -> int:
    t = t.to_local() if hasattr(t, "to_local") else t
    return t.numel() * t.element_size()


def _wrapped(model: torch.nn.Module, mode: str, world: int):
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import ShardingStrategy
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel as DDP

    if mode in ("ddp", "zero1"):
        model = DDP(model)
        opt: torch.optim.Optimizer = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.Adam) \
            if mode == "zero1" else torch.optim.Adam(model.parameters())
        return model, opt
    graph = model  # the executor's network: it calls each layer's module itself, so each layer is a unit
    units = {m for m in graph.layer_modules.values() if any(True for _ in m.parameters(recurse=False))}
    strategy = {"zero2": ShardingStrategy.SHARD_GRAD_OP, "zero3": ShardingStrategy.FULL_SHARD,
                "hsdp": ShardingStrategy.HYBRID_SHARD}[mode]
    extra: dict = {}
    if mode == "hsdp":  # two nodes of world/2: shard within a node, replicate across
        from torch.distributed.device_mesh import init_device_mesh

        extra["device_mesh"] = init_device_mesh("cpu", (2, world // 2))
    model = FSDP(model, auto_wrap_policy=lambda module, recurse, nonwrapped_numel: recurse or module in units,
                 sharding_strategy=strategy, device_id=torch.device("cpu"), use_orig_params=False, **extra)
    graph.layer_modules = {name: graph.get_submodule(name) for name in graph.layer_modules}  # the wrapped units
    return model, torch.optim.Adam(model.parameters())


def _state(opt: torch.optim.Optimizer) -> int:
    inner = getattr(opt, "optim", opt)  # ZeroRedundancyOptimizer's local optimizer
    return sum(_bytes(v) for s in inner.state.values() for k, v in s.items() if torch.is_tensor(v) and k != "step")


def _run(rank: int, world: int, spec: str, shape: tuple | None, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    found = {}
    for mode in os.environ.get("MODES", ",".join(MODES)).split(","):
        if mode == "hsdp" and world < 4:
            continue
        torch.manual_seed(0)
        analysis = cnnsize.analyze(spec, input_shape=shape, batch=2)
        model, opt = _wrapped(cnnsize.build(analysis, init=True), mode, world)
        model(torch.randn(2, *analysis.input_shape)).float().sum().backward()
        opt.step()
        found[mode] = {"params": sum(_bytes(p) for p in model.parameters()),
                       "gradients": sum(_bytes(p.grad) for p in model.parameters() if p.grad is not None),
                       "optimizer": _state(opt)}
        dist.barrier()
    with open(f"{out}.{rank}", "w") as f:
        json.dump(found, f)
    dist.destroy_process_group()


def main(argv: list[str]) -> None:
    spec, world = argv[0], int(argv[1])
    shape = tuple(int(v) for v in argv[2:5]) if len(argv) > 2 else None
    with tempfile.TemporaryDirectory() as tmp:
        init, out = "file://" + os.path.join(tmp, "rendezvous"), os.path.join(tmp, "rank")
        mp.spawn(_run, args=(world, spec, shape, init, out), nprocs=world)
        ranks = []
        for rank in range(world):
            with open(f"{out}.{rank}") as f:
                ranks.append(json.load(f))
    print(json.dumps({mode: [r[mode] for r in ranks] for mode in ranks[0]}))


if __name__ == "__main__":
    main(sys.argv[1:])
