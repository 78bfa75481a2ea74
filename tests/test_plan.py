"""`cnnsize plan` (issue 26): every configuration's figures are what ``cnnsize.analyze`` gives for its settings (whose
memory and backward work are checked against torch in test_training, test_precision and test_sharding), the step time
is the roofline of the training pass' work, the order, fits and reasons follow the device's memory, and the
estimators block is ``cnnsize.estimators``."""

from __future__ import annotations

import json

import pytest

import cnnsize
from cnnsize.api import load_graph
from cnnsize.cli import main
from cnnsize.core.errors import SpecError
from cnnsize.core.numeric import human_bytes
from cnnsize.engine.memory import PRECISIONS
from cnnsize.engine.optimizers import OPTIMIZERS
from cnnsize.passes import latency
from cnnsize.passes.latency import DATASHEETS, DeviceProfile, step_seconds
from cnnsize.passes.plan import CHECKPOINTS, plan

GIB = 2**30


def one_line_error(code, out, err) -> str:
    assert code == 2 and out == "", (code, out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "internal error" not in err, err
    return err.strip()


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["plan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def direct(spec, c, device="h100", **extra):
    """The analysis ``cnnsize.analyze`` gives for a configuration's settings."""
    several = {} if c["sharding"] is None else {"gpus": c["gpus"], "sharding": c["sharding"]}
    return cnnsize.analyze(spec, batch=c["micro_batch"], precision=c["precision"], accumulate=c["accumulate"],
                           checkpoint=c["checkpoint"], training=True, device_profile=device, **several, **extra)


def test_one_gpu_configurations_are_what_analyze_gives():
    found = plan(load_graph("resnet18"), "h100", batch=8, every=True)
    configurations = found["configurations"]
    assert sorted((c["precision"], c["accumulate"], str(c["checkpoint"])) for c in configurations) == \
        sorted((p, a, str(k)) for p in PRECISIONS for a in (1, 2, 4, 8) for k in CHECKPOINTS)
    for c in configurations:
        a = direct("resnet18", c)
        assert c["micro_batch"] * c["accumulate"] == c["batch"] == 8
        assert c["per_gpu_peak_bytes"] == a.totals.memory.training_bytes
        assert c["step_macs"] == a.totals["training"]["step_macs"]
        assert c["predicted_step_seconds"] == pytest.approx(step_seconds(a, "h100")["step_seconds"], rel=1e-12)
        assert c["fits"] and c["reason"] is None and c["sharding"] is None and c["gpus"] == 1
        assert c["samples_per_second"] == pytest.approx(8 / c["predicted_step_seconds"])


def test_the_optimizer_freezing_and_input_reach_every_configuration():
    found = plan(load_graph("resnet18"), "l4", batch=4, precision="bf16-mixed", optimizer="sgd",
                 freeze_until="layer2.1.add", input_shape=(3, 64, 64), every=True, checkpoint="none")
    assert len(found["configurations"]) == 3
    for c in found["configurations"]:
        a = direct("resnet18", c, "l4", optimizer="sgd", freeze_until="layer2.1.add", input_shape=(3, 64, 64))
        assert c["per_gpu_peak_bytes"] == a.totals.memory.training_bytes
        assert c["step_macs"] == a.totals["training"]["step_macs"]
        assert c["predicted_step_seconds"] == pytest.approx(step_seconds(a, "l4")["step_seconds"], rel=1e-12)
    whole = plan(load_graph("resnet18"), "l4", batch=4, precision="bf16-mixed", input_shape=(3, 64, 64), every=True,
                 checkpoint="none")
    frozen = {c["accumulate"]: c for c in found["configurations"]}
    for c in whole["configurations"]:  # a frozen prefix saves backward work and memory
        assert frozen[c["accumulate"]]["step_macs"] < c["step_macs"]
        assert frozen[c["accumulate"]]["per_gpu_peak_bytes"] < c["per_gpu_peak_bytes"]


@pytest.mark.parametrize("gpus,node", [(4, None), (4, 2)])
def test_sharded_configurations_are_what_analyze_gives(gpus, node):
    found = plan(load_graph("resnet18"), "a100", batch=4, gpus=gpus, gpus_per_node=node, precision="bf16-mixed")
    expected = {"ddp", "zero1", "zero2", "zero3", "fsdp"} | ({"hsdp"} if node else set())
    assert {c["sharding"] for c in found["configurations"]} == expected
    for c in found["configurations"]:
        a = direct("resnet18", c, "a100", gpus_per_node=node)
        t = a.totals["training"]
        assert c["per_gpu_peak_bytes"] == t["per_gpu_peak_bytes"]
        assert c["communication_bytes"] == t["communication_bytes"] > 0
        assert c["step_macs"] == t["step_macs"]
        assert c["predicted_step_seconds"] == pytest.approx(step_seconds(a, "a100")["step_seconds"], rel=1e-12)
        assert c["samples_per_second"] == pytest.approx(gpus * 4 / c["predicted_step_seconds"])


def test_the_step_time_is_the_roofline_of_the_training_pass_work():
    """A profile with no overhead and a bandwidth no layer reaches: every term is its work at the peak, so the step's
    time is the analysis' forward and backward FLOPs (2 × the MACs torch's FlopCounterMode counts, test_training)
    over the peak, accumulate times, plus the optimizer's bytes over the bandwidth."""
    fast = DeviceProfile("fast", "test", {"float32": 1e12, "bfloat16": 4e12}, 1e15, 0.0)
    a = cnnsize.analyze("vgg11", batch=2, accumulate=3, device_profile=fast)
    found = step_seconds(a, fast)
    t, memory = a.totals["training"], a.totals.memory
    assert found["forward_seconds"] == pytest.approx(3 * a.totals["predicted_seconds"])
    assert found["forward_seconds"] == pytest.approx(3 * a.totals["flops"] / 1e12, rel=1e-3)  # moves are ~free
    assert found["backward_seconds"] == pytest.approx(3 * 2 * t["backward_macs"] / 1e12, rel=1e-3)
    assert found["optimizer_seconds"] == pytest.approx((3 * memory.gradients_bytes + 2 * memory.optimizer_bytes) / 1e15)
    assert found["recompute_seconds"] == 0 and found["communication_seconds"] == 0
    assert found["step_seconds"] == pytest.approx(sum(v for k, v in found.items() if k != "step_seconds"))
    pure = step_seconds(cnnsize.analyze("vgg11", batch=2, precision="bf16", training=True, device_profile=fast), fast)
    assert pure["forward_seconds"] == pytest.approx(a.totals["flops"] / 4e12, rel=1e-3)
    mixed = step_seconds(cnnsize.analyze("vgg11", batch=2, precision="bf16-mixed", training=True,
                                           device_profile=fast), fast)
    assert pure["forward_seconds"] < mixed["forward_seconds"] < found["forward_seconds"] / 3  # convs and fc lowered


def test_communication_needs_an_interconnect():
    bare = DeviceProfile("bare", "test", {"float32": 1e12}, 1e12, 0.0, memory_bytes=8 * GIB)
    a = cnnsize.analyze("lenet5", batch=4, gpus=2, sharding="ddp", device_profile=bare)
    assert step_seconds(a, bare)["communication_seconds"] is None
    linked = DeviceProfile("linked", "test", {"float32": 1e12}, 1e12, 0.0, memory_bytes=8 * GIB, interconnect=1e9)
    found = step_seconds(a, linked)
    assert found["communication_seconds"] == pytest.approx(a.totals["training"]["communication_bytes"] / 1e9)
    alone = step_seconds(a, bare)["step_seconds"]
    assert found["step_seconds"] == pytest.approx(alone + found["communication_seconds"])
    assert any("exclude communication" in n for n in plan(load_graph("lenet5"), bare, batch=4, gpus=2)["notes"])


def test_order_fits_and_reasons_follow_the_device_memory():
    peaks = sorted(c["per_gpu_peak_bytes"] for c in plan(load_graph("resnet18"), "h100", batch=32)["configurations"])
    memory = peaks[len(peaks) // 2]  # half fit
    found = plan(load_graph("resnet18"), "h100", batch=32, device_memory_size=str(memory))
    assert found["device_memory_bytes"] == memory
    cs = found["configurations"]
    for c in cs:
        assert c["fits"] == (c["per_gpu_peak_bytes"] <= memory)
        assert c["reason"] == (None if c["fits"] else
                               f"needs {human_bytes(c['per_gpu_peak_bytes'])} per GPU, the device has "
                               f"{human_bytes(memory)}")
    fits = [c["fits"] for c in cs]
    assert fits == sorted(fits, reverse=True) and 0 < sum(fits) < len(fits)
    for group in (cs[:sum(fits)], cs[sum(fits):]):
        rates = [c["samples_per_second"] for c in group]
        assert rates == sorted(rates, reverse=True)
    assert found["needed"] is None


def test_accumulation_stops_at_the_fewest_micro_steps_that_fit():
    """By default each precision's accumulation rises only until it fits: the roofline never makes more micro-steps
    faster (checked here on the full list), so the configurations left out are slower than one listed."""
    peaks = [c["per_gpu_peak_bytes"] for c in plan(load_graph("resnet18"), "h100", batch=16, precision="float32",
                                                    every=True, checkpoint="none")["configurations"]]
    memory = sorted(peaks)[len(peaks) // 2]  # float32 fits from some accumulation on
    every = plan(load_graph("resnet18"), "h100", batch=16, device_memory_size=str(memory), every=True,
                 checkpoint="none")
    some = plan(load_graph("resnet18"), "h100", batch=16, device_memory_size=str(memory), checkpoint="none")
    assert all(c in every["configurations"] for c in some["configurations"])
    for p in PRECISIONS:
        listed = sorted((c["accumulate"], c["fits"]) for c in some["configurations"] if c["precision"] == p)
        assert [fits for _, fits in listed] == [False] * (len(listed) - 1) + [True]
        assert [a for a, _ in listed] == [1, 2, 4, 8, 16][:len(listed)]
        first = min((c for c in every["configurations"] if c["precision"] == p and c["fits"]),
                    key=lambda c: c["accumulate"])
        for c in every["configurations"]:
            if c["precision"] == p and c["accumulate"] > first["accumulate"]:
                assert c["predicted_step_seconds"] > first["predicted_step_seconds"]
    assert any(len([c for c in some["configurations"] if c["precision"] == p]) > 1 for p in PRECISIONS)


def test_checkpointing_is_tried_where_it_lets_fewer_micro_steps_fit():
    """VGG-16 in float32 at batch 32 needs 2 micro-steps in 4 GiB without checkpointing; with it, one: each
    checkpointed configuration is analyze's with that checkpoint, recomputes work (more MACs, more time) and is listed
    only below the accumulation that fits without it."""
    found = plan(load_graph("vgg16"), "h100", batch=32, device_memory_size="4GiB", precision="float32")
    plain = [c for c in found["configurations"] if c["checkpoint"] is None]
    fewest = min(c["accumulate"] for c in plain if c["fits"])
    checkpointed = [c for c in found["configurations"] if c["checkpoint"] is not None]
    assert fewest == 2 and {c["checkpoint"] for c in checkpointed} == set(CHECKPOINTS[1:])
    for c in checkpointed:
        assert c["accumulate"] < fewest and c["fits"]
        a = direct("vgg16", c)
        assert c["per_gpu_peak_bytes"] == a.totals.memory.training_bytes
        assert c["step_macs"] == a.totals["training"]["step_macs"] > plain[0]["step_macs"]
        assert a.totals["training"]["recompute_macs"] > 0
        seconds = step_seconds(a, "h100")
        assert c["predicted_step_seconds"] == pytest.approx(seconds["step_seconds"], rel=1e-12)
        assert seconds["recompute_seconds"] > 0


def test_a_network_without_blocks_to_cut_is_planned_without_checkpointing(capsys):
    spec = {"name": "one", "input": [3, 8, 8], "layers": [{"conv": {"name": "only", "filters": 4, "kernel": 3}}]}
    found = plan(load_graph(spec), "h100", batch=2, precision="float32", every=True)
    assert {c["checkpoint"] for c in found["configurations"]} == {None}
    assert any(n.startswith("Not tried: --checkpoint every:1") for n in found["notes"])
    code, out, _ = run(capsys, "lenet5", "--device", "h100", "-b", "4", "--checkpoint", "every:2", "-f", "json")
    assert code == 0 and {c["checkpoint"] for c in json.loads(out)["configurations"]} == {"every:2"}


def test_nothing_fits_names_the_smallest_bundled_device_it_fits():
    found = plan(load_graph("resnet18"), "h100", batch=8, device_memory_size="64MiB")
    assert not any(c["fits"] for c in found["configurations"])
    lean = min(c["per_gpu_peak_bytes"] for c in found["configurations"])
    size, name = min((p.memory_bytes, n) for n, p in DATASHEETS.items() if p.memory_bytes >= lean)
    assert f"needs {human_bytes(lean)} per GPU: it fits the {name} ({human_bytes(size)})" in found["needed"]


def test_nothing_fits_on_any_device_names_the_gpus_zero3_needs():
    """Twenty 40,000 × 40,000 layers: 3.2e10 parameters, 8 bytes each in pure bf16 with Adam (the leanest) and
    Adam's temporaries, more than any bundled device holds; the line names the fewest GPUs (a power of two) over
    which ``analyze``'s zero3 figure fits the device."""
    spec = {"name": "wide", "input": [40000], "layers": [{"fc": {"units": 40000, "bias": False}}] * 20}
    found = plan(load_graph(spec), "h100", batch=1)
    params = 20 * 40000 * 40000
    lean = min(found["configurations"], key=lambda c: c["per_gpu_peak_bytes"])
    assert lean["per_gpu_peak_bytes"] >= 8 * params > max(p.memory_bytes for p in DATASHEETS.values())
    gpus = int(found["needed"].split("with zero3 over ")[1].split(" GPUs it fits")[0])

    def per_gpu(n: int) -> int:
        return cnnsize.analyze(spec, batch=1, precision=lean["precision"], gpus=n,
                               sharding="zero3").totals["training"]["per_gpu_peak_bytes"]

    assert per_gpu(gpus) <= 80 * GIB < per_gpu(gpus // 2)


def test_max_batch_is_the_largest_that_fits_under_every_configuration():
    memory = 2 * GIB
    found = plan(load_graph("resnet18"), "h100", find_max_batch=True, device_memory_size="2GiB")
    assert found["batch"] is None and {c["precision"] for c in found["configurations"]} == set(PRECISIONS)
    for c in found["configurations"]:
        b = c["max_batch"]
        assert b > 0 and c["fits"] and c["micro_batch"] == b
        settings = {"precision": c["precision"], "checkpoint": c["checkpoint"]}
        at = cnnsize.analyze("resnet18", batch=b, **settings).totals.memory.training_bytes
        above = cnnsize.analyze("resnet18", batch=b + 1, **settings).totals.memory.training_bytes
        assert at == c["per_gpu_peak_bytes"] <= memory < above


def test_the_estimators_block_is_cnnsize_estimators():
    found = cnnsize.plan("resnet18", "h100", batch=8)
    expected = [e.to_dict() for e in cnnsize.estimators("resnet18", batch=8)]
    assert found["estimators"] == expected
    assert [e["name"] for e in found["estimators"]] == ["accelerate", "accelerate", "deepspeed-zero2",
                                                        "deepspeed-zero3"]


def test_json_has_the_issue_names(capsys):
    code, out, err = run(capsys, "lenet5", "--device", "h100", "-b", "4", "--gpus", "2", "-f", "json", "--all")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert {"configurations", "estimators"} <= set(doc)
    for c in doc["configurations"]:
        assert {"precision", "checkpoint", "accumulate", "gpus", "sharding", "per_gpu_peak_bytes", "fits",
                "predicted_step_seconds", "reason"} <= set(c)
    for e in doc["estimators"]:
        assert {"name", "bytes", "differences"} <= set(e)
    assert {e["name"] for e in doc["estimators"]} == {"accelerate", "deepspeed-zero2", "deepspeed-zero3"}
    # precisions × accumulate 1, 2, 4 × shardings × checkpointing
    assert len(doc["configurations"]) == 5 * 3 * 5 * len(CHECKPOINTS)


def test_the_table_lists_every_configuration_and_the_estimators(capsys):
    code, out, _ = run(capsys, "lenet5", "--device", "t4", "-b", "2", "--wide", "--all", "--checkpoint", "none")
    assert code == 0
    assert out.count("│ float32") == 2 and out.count("bf16-mixed") == 2  # accumulate 1 and 2
    assert "Estimator deepspeed-zero3" in out and "t4 (16.0 GiB)" in out
    code, md, _ = run(capsys, "lenet5", "--device", "t4", "-b", "2", "-f", "markdown", "--all", "--checkpoint",
                      "none")
    assert code == 0 and md.startswith("# Training plan: lenet5") and md.count("\n| ") == 11


def test_nothing_fitting_is_an_answer_not_an_error(capsys):
    code, out, err = run(capsys, "resnet18", "--device", "h100", "-b", "8", "--device-memory", "64MiB", "--wide")
    assert code == 0 and err == ""
    assert "Nothing fits in 64.0 MiB" in out and "needs" in out and "Over by" in out


@pytest.mark.parametrize("args,words", [
    (["--device", "h10"], "did you mean 'h100'"),
    (["--device", "h100", "--gpus", "0"], "not a positive integer"),
    (["--device", "h100", "--sharding", "zero3"], "--sharding zero3 with 1 GPU shards nothing"),
    (["--device", "h100", "--gpus", "4", "--sharding", "zer"], "did you mean 'zero3'"),
    (["--device", "h100", "--gpus", "4", "--sharding", "hsdp"], "hsdp needs several nodes"),
    (["--device", "h100", "--precision", "bf17"], "did you mean 'bf16'"),
    (["--device", "h100", "-b", "8", "--accumulate", "3"], "does not divide the batch 8"),
    (["--device", "h100", "--max-batch", "-b", "4"], "give one of --max-batch and --batch"),
    (["--device", "h100", "--device-memory", "12XB"], "'12XB' is not a memory size"),
    (["--device", "h100", "--optimizer", "adamm"], "did you mean 'adam'"),
    (["--device", "h100", "--checkpoint", "layer9"], "no layer or group 'layer9'"),
    ([], "--device"),
])
def test_bad_input_is_one_line(capsys, args, words):
    line = one_line_error(*run(capsys, "lenet5", *args))
    assert words in line, line


def test_a_profile_without_memory_asks_for_it(capsys, tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps({"name": "mine", "peak_flops": {"float32": 1e12}, "bandwidth": 1e11}))
    line = one_line_error(*run(capsys, "lenet5", "--device", str(path)))
    assert "gives no memory size" in line and "--device-memory" in line
    path.write_text(json.dumps({"name": "mine", "peak_flops": {"float32": 1e12}, "bandwidth": 1e11,
                                "memory_bytes": 3 * GIB}))
    code, out, _ = run(capsys, "lenet5", "--device", str(path), "-b", "1", "-f", "json")
    assert code == 0 and json.loads(out)["device_memory_bytes"] == 3 * GIB
    code, out, _ = run(capsys, "lenet5", "--device", str(path), "-b", "1", "-f", "json", "--device-memory", "1GiB")
    assert code == 0 and json.loads(out)["device_memory_bytes"] == GIB


def test_bundled_profiles_carry_their_datasheet_memory():
    """The vendors' figures: A100 80GB, H100 SXM 80GB, H200 SXM 141GB, L4 24GB, T4 16GB, RTX 4090 24GB (GiB, as
    memory chips are sized); each round-trips through a profile file."""
    expected = {"a100": 80, "h100": 80, "h200": 141, "l4": 24, "t4": 16, "rtx4090": 24}
    assert {name: p.memory_bytes / GIB for name, p in DATASHEETS.items()} == expected
    for p in DATASHEETS.values():
        assert DeviceProfile.from_dict(p.to_dict()) == p
    with pytest.raises(SpecError, match="memory_bytes"):
        DeviceProfile("x", "", {"float32": 1e12}, 1e12, memory_bytes=-5)
    assert latency.load_profile("H100").memory_bytes == 80 * GIB


# --- searching optimizers and offload too (plan's optimizer=/offload= lists, "any") ---------------------------------

SEARCHED = [  # (gpus, sharding, the offloads each sharding can take: cnnsize.passes.offload.check)
    (1, None, (None, "optimizer", "params")),
    (2, "zero1", (None, "optimizer")),
    (2, "zero3", (None, "optimizer", "params")),
]


@pytest.mark.parametrize("gpus, sharding, offloads", SEARCHED)
def test_searched_optimizers_and_offload_are_what_analyze_gives(gpus, sharding, offloads):
    """Every row of a search over every optimizer and offload is analyze's figure for its settings (an independent
    path: one analysis per row, no memoized walk), its step time the roofline's with the offload's copies."""
    found = plan(load_graph("lenet5"), "t4", batch=4, gpus=gpus, sharding=sharding, precision="bf16-mixed",
                 checkpoint="none", optimizer="any", offload="any", every=True)
    rows = found["configurations"]
    assert found["optimizers"] == list(OPTIMIZERS) and found["offload"] == [None, "optimizer", "params"]
    assert sorted((c["optimizer"], str(c["offload"]), c["accumulate"]) for c in rows) == \
        sorted((o, str(off), a) for o in OPTIMIZERS for off in offloads for a in (1, 2, 4))
    for c in rows:
        extra = {"optimizer": c["optimizer"], "offload": c["offload"]}
        if gpus > 1:
            extra.update(gpus=gpus, sharding=sharding)
        a = cnnsize.analyze("lenet5", batch=c["micro_batch"], precision=c["precision"], accumulate=c["accumulate"],
                            training=True, device_profile="t4", **extra)
        t = a.totals["training"]
        one = gpus == 1 and c["offload"] is None
        assert c["per_gpu_peak_bytes"] == (a.totals.memory.training_bytes if one else t["per_gpu_peak_bytes"]), c
        assert c["offload_transfer_bytes"] == t.get("offload_transfer_bytes", 0)
        timed = step_seconds(a, "t4")
        assert c["predicted_step_seconds"] == pytest.approx(timed["step_seconds"], rel=1e-12)
        assert (timed["offload_seconds"] or 0) > 0 if c["offload"] else not timed["offload_seconds"]


def test_searched_rows_say_why_they_do_not_fit_and_are_ordered_by_throughput():
    memory = 2**20  # 1 MiB: LeNet-5 with SGD, Adafactor or Adam's state offloaded fits, with Adam on the GPU not
    found = plan(load_graph("lenet5"), "t4", batch=2, device_memory_size="1MiB", precision="float32",
                 checkpoint="none", optimizer="sgd,adam,adafactor", offload="none,optimizer", every=True)
    rows = found["configurations"]
    assert {c["optimizer"] for c in rows} == {"sgd", "adam", "adafactor"}
    assert {c["fits"] for c in rows} == {True, False}
    for c in rows:
        assert c["fits"] == (c["per_gpu_peak_bytes"] <= memory)
        assert c["reason"] == (None if c["fits"] else f"needs {human_bytes(c['per_gpu_peak_bytes'])} per GPU, "
                                                      f"the device has {human_bytes(memory)}")
    fits = [c["fits"] for c in rows]
    assert fits == sorted(fits, reverse=True)  # fitting first
    for group in (True, False):
        rates = [c["samples_per_second"] for c in rows if c["fits"] == group]
        assert rates == sorted(rates, reverse=True)  # then fastest first


def test_searched_json_and_table_name_the_optimizer_and_offload(capsys):
    code, out, err = run(capsys, "lenet5", "--device", "t4", "-b", "2", "--precision", "float32", "--checkpoint",
                         "none", "--optimizer", "adam,adamw8bit", "--offload", "any", "-f", "json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["optimizers"] == ["adam", "adamw8bit"] and doc["offload"] == [None, "optimizer", "params"]
    assert {(c["optimizer"], c["offload"]) for c in doc["configurations"]} == \
        {(o, off) for o in ("adam", "adamw8bit") for off in (None, "optimizer", "params")}
    for c in doc["configurations"]:
        assert {"optimizer", "offload", "per_gpu_peak_bytes", "fits", "predicted_step_seconds",
                "offload_transfer_bytes", "reason"} <= set(c)
    code, out, err = run(capsys, "lenet5", "--device", "t4", "-b", "2", "--precision", "float32", "--checkpoint",
                         "none", "--optimizer", "adam,adamw8bit", "--offload", "any", "--wide")
    assert code == 0 and "Optimizer" in out and "Offload" in out and "adamw8bit" in out and "params" in out
    code, out, err = run(capsys, "lenet5", "--device", "t4", "-b", "2", "-f", "json")  # without: as before
    doc = json.loads(out)
    assert "optimizers" not in doc and doc["offload"] is None
    assert all("optimizer" not in c for c in doc["configurations"])


@pytest.mark.parametrize("args, words", [
    (["--optimizer", "adam,adm"], "unknown optimizer 'adm'; did you mean 'adam'"),
    (["--offload", "none,param"], "unknown offload 'param'; did you mean 'params'"),
])
def test_searched_bad_names_are_one_line(capsys, args, words):
    assert words in one_line_error(*run(capsys, "lenet5", "--device", "t4", *args))


def test_a_searched_offload_no_sharding_takes_is_a_note(capsys):
    found = plan(load_graph("lenet5"), "t4", batch=2, gpus=2, sharding="ddp", offload="any", checkpoint="none",
                 precision="float32")
    assert {c["offload"] for c in found["configurations"]} == {None}
    assert any(n.startswith("Not tried: optimizer offload: --offload with ddp") for n in found["notes"])
