"""Training on several GPUs (cnnsize.passes.sharding) against torch.distributed itself: one step of the network
cnnsize's executor builds, on N CPU processes over gloo (cnnsize.executor.distributed, what ``validate --gpus N``
runs), under DDP, ZeRO-1 (torch's ZeroRedundancyOptimizer), FSDP's SHARD_GRAD_OP (zero2), FULL_SHARD (zero3) and
HYBRID_SHARD (hsdp, two nodes), each layer with parameters one FSDP unit; every rank's parameter, gradient and Adam
state bytes after the step equal cnnsize's per-GPU figures."""

from __future__ import annotations

import json

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


# --- `cnnsize validate SPEC --gpus N --sharding S`: each rank's peak too ----------------------------------------------

TINY = """name: tinyconv
input: [3, 16, 16]
layers:
  - conv: {name: conv1, filters: 8, kernel: 3, pad: 1}
  - bn
  - relu
  - maxpool: {kernel: 2}
  - conv: {name: conv2, filters: 16, kernel: 3, pad: 1}
  - relu
  - global_avgpool
  - fc: {name: head, units: 10}
"""
MODES = ("ddp", "zero1", "zero2", "zero3")
BAR = 0.03  # the bar for a training step's peak (validate's own tolerance adds 256 KiB: too loose here)


def _spec(name: str, tmp_path_factory) -> str:
    if name != "tinyconv":
        return name
    path = tmp_path_factory.mktemp("tiny") / "tinyconv.yaml"
    path.write_text(TINY)
    return str(path)


_FOUND: dict = {}


def _validated(name: str, tmp_path_factory) -> dict:
    """validate's figures for every mode, one group of 2 processes per spec (measured once, then shared)."""
    if name not in _FOUND:
        from cnnsize.engine.walk import analyze_graph
        from cnnsize.executor.distributed import measure, predicted
        from cnnsize.executor.validation import _training_batch

        base = cnnsize.analyze(_spec(name, tmp_path_factory), batch=2)
        walk = {"input_shape": base.input_shape, "batch": _training_batch(base), "device": "cpu"}
        analysis = analyze_graph(base.graph, **walk)
        found = measure(analysis, 2, list(MODES))
        _FOUND[name] = {mode: (predicted(analyze_graph(base.graph, **walk), 2, mode, None), found[mode])
                        for mode in MODES}
    return _FOUND[name]


@pytest.mark.slow  # two processes of torch: seconds
@pytest.mark.parametrize("name", ["lenet5", "tinyconv"])
@pytest.mark.parametrize("mode", MODES)
def test_validate_gpus_each_rank_holds_the_predicted_parts(name, mode, tmp_path_factory):
    per_gpu, ranks = _validated(name, tmp_path_factory)[mode]
    for key in ("params_bytes", "gradients_bytes", "optimizer_bytes"):
        assert per_gpu[key] == [rank[key] for rank in ranks], key


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lenet5", "tinyconv"])
@pytest.mark.parametrize("mode", MODES)
def test_validate_gpus_each_rank_peak_is_within_three_percent(name, mode, tmp_path_factory):
    """Each rank's peak (what stays allocated between steps, plus the model's tensors' peak over a steady-state step,
    torch's profiler) against the rank's ``per_gpu_peaks_bytes``."""
    per_gpu, ranks = _validated(name, tmp_path_factory)[mode]
    for predicted_peak, rank in zip(per_gpu["per_gpu_peaks_bytes"], ranks, strict=True):
        assert abs(rank["peak"] - predicted_peak) <= BAR * predicted_peak, (predicted_peak, rank["peak"])


@pytest.mark.slow
def test_validate_gpus_json_and_table(capsys):
    """The command itself: ZeRO-1's uneven optimizer shares per rank, in JSON, and the table's rows."""
    from cnnsize.cli import main

    code = main(["validate", "lenet5", "--gpus", "2", "--sharding", "zero1", "-b", "2", "-f", "json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert code == (0 if doc["ok"] else 1) and doc["gpus"] == 2 and doc["sharding"] == "zero1"
    per_gpu = cnnsize.analyze("lenet5", batch=2, gpus=2, sharding="zero1", device="cpu").totals["training"]["per_gpu"]
    assert [rank["optimizer_bytes"]["predicted"] for rank in doc["ranks"]] == per_gpu["optimizer_bytes"]
    for rank, peak in zip(doc["ranks"], per_gpu["per_gpu_peaks_bytes"], strict=True):
        figure = rank["per_gpu_peak_bytes"]
        assert figure["predicted"] == peak and figure["difference"] == figure["measured"] - peak
        assert rank["optimizer_bytes"]["ok"] and rank["optimizer_bytes"]["difference"] == 0
    code = main(["validate", "lenet5", "--gpus", "2", "--sharding", "ddp", "-b", "2", "--width", "200"])
    out, err = capsys.readouterr()
    assert code == 0 and out.count("per_gpu_peak_bytes") == 2 and "ddp over 2 CPU processes (gloo)" in out


@pytest.mark.parametrize("args, words", [
    (["--gpus", "1", "--sharding", "zero3"], "--sharding zero3 with 1 GPU shards nothing"),  # as plan refuses it
    (["--gpus", "2", "--sharding", "zero9"], "did you mean 'zero3'"),
    (["--gpus", "2", "--sharding", "hsdp"], "hsdp needs several nodes"),
    (["--gpus", "2", "--precision", "bf16-mixed"], "--precision with --gpus"),
    (["--gpus", "2", "--device", "cuda"], "gloo"),
    (["--gpus", "2", "--optimizer", "adam8bit"], "measured on CUDA only"),
])
def test_validate_gpus_bad_combinations_are_one_line(capsys, args, words):
    from cnnsize.cli import main

    code = main(["validate", "lenet5", *args])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and words in err, err


@pytest.mark.slow  # starts two interpreters
def test_validate_gpus_never_hangs():
    """Past its timeout the group is killed and the run is one line, whatever the ranks were doing (here: still
    importing torch)."""
    import time

    from cnnsize.executor.distributed import measure

    start = time.monotonic()
    with pytest.raises(cnnsize.SpecError, match=r"did not finish in 0\.5 s"):
        measure(cnnsize.analyze("lenet5", batch=2), 2, ["ddp"], timeout=0.5)
    assert time.monotonic() - start < 10
