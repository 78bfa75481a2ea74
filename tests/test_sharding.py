"""Training on several GPUs (cnnsize.passes.sharding) against torch.distributed itself: one step of the network
cnnsize's executor builds, on N CPU processes over gloo (cnnsize.executor.distributed, what ``validate --gpus N``
runs), under DDP, ZeRO-1 (torch's ZeroRedundancyOptimizer), FSDP's SHARD_GRAD_OP (zero2), FULL_SHARD (zero3) and
HYBRID_SHARD (hsdp, two nodes), each layer with parameters one FSDP unit; every rank's parameter, gradient and Adam
state bytes after the step equal cnnsize's per-GPU figures."""

from __future__ import annotations

import pytest

import cnnsize

from .conftest import need

torch = need("torch")


def _measured(spec: str, gpus: int, shape: tuple | None) -> dict:
    """What ``cnnsize validate --gpus N`` measures (cnnsize.executor.distributed), every scheme in one group."""
    from cnnsize.executor.distributed import measure

    modes = ["ddp", "zero1", "zero2", "zero3", *(["hsdp"] if gpus >= 4 else [])]
    analysis = cnnsize.analyze(spec, input_shape=shape, batch=2)
    found = measure(analysis, gpus, modes, gpus_per_node=gpus // 2)
    return {mode: [{key: rank[f"{key}_bytes"] for key in ("params", "gradients", "optimizer")} for rank in ranks]
            for mode, ranks in found.items()}


def _check(spec: str, gpus: int, shape: tuple | None = None) -> None:
    measured = _measured(spec, gpus, shape)
    assert set(measured) == {"ddp", "zero1", "zero2", "zero3"} | ({"hsdp"} if gpus >= 4 else set())
    for mode, ranks in measured.items():
        a = cnnsize.analyze(spec, input_shape=shape, batch=2, gpus=gpus, sharding=mode,
                            gpus_per_node=gpus // 2 if mode == "hsdp" else None)
        per_gpu = a.totals["training"]["per_gpu"]
        for key in ("params", "gradients", "optimizer"):
            assert per_gpu[f"{key}_bytes"] == [rank[key] for rank in ranks], (mode, key)


@pytest.mark.slow  # processes of torch each: the slow set (the default run stays under 5 minutes)
@pytest.mark.parametrize("spec, gpus, shape", [("lenet5", 2, None), ("lenet5", 4, None), ("resnet18", 2, (3, 32, 32)),
                                               ("resnet18", 4, (3, 32, 32)), ("mobilenet_v2", 4, (3, 32, 32))])
def test_specs(spec, gpus, shape):
    _check(spec, gpus, shape)


def test_bad_settings_are_one_line():
    with pytest.raises(cnnsize.SpecError, match="did you mean 'zero3'"):
        cnnsize.analyze("lenet5", gpus=2, sharding="zero9")
    with pytest.raises(cnnsize.SpecError, match="shards nothing"):
        cnnsize.analyze("lenet5", sharding="zero2")
    with pytest.raises(cnnsize.SpecError, match="hsdp needs several nodes"):
        cnnsize.analyze("lenet5", gpus=6, sharding="hsdp", gpus_per_node=4)
    with pytest.raises(cnnsize.SpecError, match="positive integer"):
        cnnsize.analyze("lenet5", gpus=0)


def test_communication_follows_the_ring_collectives():
    """Bytes each GPU sends a step: DDP all-reduces the gradients (2(N-1)/N of them), FSDP's FULL_SHARD gathers the
    parameters twice and reduce-scatters the gradients, 3(N-1)/N: the ZeRO paper's 1.5x of data parallelism."""
    ddp = cnnsize.analyze("resnet18", gpus=8, sharding="ddp").totals["training"]
    zero3 = cnnsize.analyze("resnet18", gpus=8, sharding="zero3").totals["training"]
    params = cnnsize.analyze("resnet18").totals.params * 4
    assert ddp["communication_bytes"] == 2 * 7 * params // 8
    assert zero3["communication_bytes"] == 3 * 7 * params // 8
