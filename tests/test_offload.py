"""--offload optimizer|params (cnnsize.passes.offload) and the optimizer step's temporaries per GPU under sharding:
what moves is what the analysis itself counts (the optimizer state, its step's temporaries, the parameters and
gradients), and the GPU left holds what training without those parts holds: a step with the optimizer on the host
leaves on the GPU what an optimizer without state or temporaries (SGD) does. Estimated, not measured: no GPU."""

from __future__ import annotations

import pytest

import cnnsize
from cnnsize.passes import estimators as est


def _training(spec="lenet5", **options):
    return cnnsize.analyze(spec, **options).totals["training"]


@pytest.mark.parametrize("spec, options", [("lenet5", {}), ("resnet18", {"input_shape": (3, 64, 64), "batch": 4}),
                                           ("resnet18", {"input_shape": (3, 64, 64), "batch": 4, "accumulate": 2})])
def test_optimizer_offload_on_one_gpu_leaves_what_sgd_holds(spec, options):
    a = cnnsize.analyze(spec, offload="optimizer", **options)
    m, t = a.totals["memory"], a.totals["training"]
    sgd = cnnsize.analyze(spec, optimizer="sgd", **options).totals["memory"]
    moved = t["offload_moved_bytes"][0]
    assert moved["optimizer state"] == m["optimizer_bytes"]  # the bytes moved are the state's
    assert t["per_gpu_peak_bytes"] == m["training_bytes"] - sum(moved.values()) == sgd["training_bytes"]
    grads = m["gradients_bytes"]
    assert t["offload_cpu_bytes"] == [m["optimizer_bytes"] + 2 * grads]  # state, gradients, parameters' copy
    assert t["offload_transfer_bytes"] == (options.get("accumulate", 1) + 1) * grads


def test_params_offload_keeps_the_largest_layer_on_the_gpu():
    """One GPU: parameters and gradients on the host but the layer at work, whole (DeepSpeed's largest module)."""
    options = {"input_shape": (3, 64, 64), "batch": 4}
    a = cnnsize.analyze("resnet18", offload="params", **options)
    m, t = a.totals["memory"], a.totals["training"]
    sgd = cnnsize.analyze("resnet18", optimizer="sgd", **options).totals["memory"]
    largest = 4 * est.deepspeed_params(a)[1]
    assert t["per_gpu_peak_bytes"] == sgd["training_bytes"] - (m["params_bytes"] - largest) - \
        (m["gradients_bytes"] - largest)
    assert t["offload_cpu_bytes"] == [m["params_bytes"] + m["gradients_bytes"] + m["optimizer_bytes"]]
    assert t["offload_transfer_bytes"] == 2 * m["params_bytes"] + m["gradients_bytes"]


@pytest.mark.parametrize("sharding", ["zero1", "zero2", "zero3", "fsdp"])
def test_sharded_optimizer_offload_leaves_what_sgd_holds(sharding):
    options = {"input_shape": (3, 64, 64), "batch": 4, "gpus": 4, "sharding": sharding}
    t = _training("resnet18", offload="optimizer", **options)
    plain = _training("resnet18", **options)
    sgd = _training("resnet18", optimizer="sgd", **options)
    assert [m["optimizer state"] for m in t["offload_moved_bytes"]] == plain["per_gpu"]["optimizer_bytes"]
    assert t["per_gpu"]["per_gpu_peaks_bytes"] == sgd["per_gpu"]["per_gpu_peaks_bytes"]
    assert t["per_gpu_peak_bytes"] == plain["per_gpu_peak_bytes"] - max(
        sum(m.values()) for m in t["offload_moved_bytes"])


MLP = "name: mlp\ninput: [1024]\nlayers:\n  - fc: {units: 2048}\n  - relu: {}\n  - fc: {units: 2048}\n"


DEEP = "name: deep\ninput: [512]\nlayers:\n  - repeat: 24\n    layers:\n      - fc: {units: 512}\n"


def test_each_gpu_steps_its_share_under_zero3():
    """Adam on CUDA (foreach) makes temporaries the size of what it steps: under ZeRO-3 each GPU steps its shard.
    Where the step is the peak (24 equal fully connected units, a quarter of each stepped per GPU, batch 1) each GPU
    holds its parameter shard, its state, and at the step its gradient shard and temporaries of that size: not the
    whole network's temporaries. Under DDP (MLP) the step adds the whole network's state and temporaries."""
    adam = _training(DEEP, gpus=4, sharding="zero3", optimizer="adam")
    part = {key: values[0] for key, values in adam["per_gpu"].items()}
    whole = cnnsize.analyze(DEEP).totals["memory"]
    assert part["gradients_bytes"] == whole["gradients_bytes"] // 4
    assert adam["per_gpu_peak_bytes"] == part["params_bytes"] + part["optimizer_bytes"] + 2 * part["gradients_bytes"]
    activations = cnnsize.analyze(MLP).totals["memory"]["activations_bytes"]
    ddp, ddp_sgd = (_training(MLP, gpus=4, sharding="ddp", optimizer=o) for o in ("adam", "sgd"))
    whole = cnnsize.analyze(MLP).totals["memory"]
    assert abs(ddp["per_gpu_peak_bytes"] - ddp_sgd["per_gpu_peak_bytes"]
               - whole["optimizer_bytes"] - whole["optimizer_temporaries_bytes"]) <= activations


@pytest.mark.parametrize("args, words", [
    (["--offload", "optimizer", "--gpus", "2"], "DDP keeps the whole optimizer"),
    (["--offload", "params", "--gpus", "2", "--sharding", "zero2"], "give --sharding zero3, fsdp or hsdp"),
    (["--offload", "optimiser"], "did you mean 'optimizer'")])
def test_bad_offload_is_one_line(cli, args, words):
    r = cli("report", "lenet5", *args)
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_plan_offloads_and_times_the_copies():
    plain = cnnsize.plan("resnet18", "t4", input_shape=(3, 64, 64), batch=8, precision="float32", checkpoint="none",
                         accumulate=1)
    off = cnnsize.plan("resnet18", "t4", input_shape=(3, 64, 64), batch=8, precision="float32", checkpoint="none",
                       accumulate=1, offload="optimizer")
    (c,), (o,) = plain["configurations"], off["configurations"]
    assert o["offload"] == "optimizer" and c["offload"] is None
    assert o["per_gpu_peak_bytes"] < c["per_gpu_peak_bytes"]
    from cnnsize.passes.latency import DATASHEETS

    assert o["predicted_step_seconds"] - c["predicted_step_seconds"] == pytest.approx(
        o["offload_transfer_bytes"] / DATASHEETS["t4"].host_link)
    assert any("host link" in note for note in off["notes"])
