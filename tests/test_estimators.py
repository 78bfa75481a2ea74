"""accelerate's ``estimate-memory`` and DeepSpeed's ZeRO estimators (cnnsize.passes.estimators) against the tools
themselves, run on the same network: cnnsize's executor builds each kind's examples and bundled specs, and
torchvision's models are imported; accelerate's calculate_maximum_sizes and estimate_training_usage and DeepSpeed's
model_to_params and estimate_zero{2,3}_model_states_mem_needs give the truth."""

from __future__ import annotations

import pytest

import cnnsize
from cnnsize.passes import estimators as est

from .conftest import need

pytestmark = pytest.mark.zoo
torch = need("torch")


def _tools():
    modeling = need("accelerate.utils.modeling")
    estimate = need("accelerate.commands.estimate")
    stage3 = need("deepspeed.runtime.zero.stage3")
    stage2 = need("deepspeed.runtime.zero.stage_1_and_2")
    return modeling, estimate, stage2, stage3


def _check(analysis, model) -> None:
    modeling, estimate, stage2, stage3 = _tools()
    total, (largest, names) = modeling.calculate_maximum_sizes(model)
    assert est.accelerate_sizes(analysis) == (total, largest), names
    for dtype in ("float32", "float16", "bfloat16", "int8", "int4"):
        ours = est.accelerate(analysis, dtype)
        usage = estimate.estimate_training_usage(total, dtype)
        theirs = max(usage.values())
        assert ours.bytes == (None if theirs == -1 else theirs), dtype
        assert ours.parts["total_size"] == total / est.ACCELERATE_DTYPES[dtype]
    params, layer = stage3.model_to_params(model)
    assert est.deepspeed_params(analysis) == (params, layer)
    for gpus, nodes in ((1, 1), (4, 1), (8, 2)):
        for offload in (False, True):
            cpu, gpu = stage2.estimate_zero2_model_states_mem_needs(params, gpus, nodes, cpu_offload=offload)
            ours = est.deepspeed_zero2(analysis, gpus, nodes, offload=offload)
            assert (ours.parts["cpu"], ours.bytes) == (cpu, gpu)
            for offload_params in (False, True) if offload else (False,):
                for zero_init in (True, False):
                    cpu, gpu, _ = stage3.estimate_zero3_model_states_mem_needs(
                        params, layer, gpus, nodes, cpu_offload=offload, cpu_offload_params=offload_params,
                        zero_init=zero_init)
                    ours = est.deepspeed_zero3(analysis, gpus, nodes, offload, offload_params, zero_init)
                    assert (ours.parts["cpu"], ours.bytes) == (int(cpu), gpu)


def _kind_rows():
    from .test_layer_kinds import ROWS

    return sorted(ROWS)


@pytest.mark.parametrize("row", _kind_rows())
def test_every_kind_as_the_tools_see_its_module(row):
    """Every kind's examples, built by the executor: module sizes, int64 buffers, the largest module with and without
    children as each tool walks them."""
    from .test_layer_kinds import ROWS

    shape, layers = ROWS[row]
    analysis = cnnsize.analyze({"name": row, "input": shape, "layers": layers}, fit="floor")
    _check(analysis, cnnsize.build(analysis))


SHARED = {"name": "shared", "input": [3, 8, 8], "layers": [
    {"conv": {"name": "a", "filters": 3, "kernel": 3, "pad": 1}}, "bn",
    {"conv": {"name": "b", "filters": 3, "kernel": 3, "pad": 1, "shares": "a"}},
    {"conv": {"name": "c", "filters": 3, "kernel": 3, "pad": 1, "bias": True, "shares": {"weight": "a"}}},
    {"conv": {"name": "a.inner", "filters": 4, "kernel": 1}}, "flatten", {"fc": {"units": 10}}]}


def test_shared_tied_and_nested_layers():
    """A module called twice, a tied weight, and a layer nested under another's name (its module gets a child)."""
    analysis = cnnsize.analyze(SHARED)
    _check(analysis, cnnsize.build(analysis))


@pytest.mark.parametrize("name", ["lenet5", "resnet18", "mobilenet_v2", "vit_b_16", "swin_t"])
def test_bundled_specs(name):
    analysis = cnnsize.analyze(name, input_shape=None if name == "lenet5" else (3, 64, 64) if name != "vit_b_16"
                               else (3, 32, 32))
    _check(analysis, cnnsize.build(analysis))


@pytest.mark.parametrize("name, size", [("resnet50", 64), ("densenet121", 64), ("convnext_tiny", 64),
                                        ("efficientnet_b0", 64), ("swin_t", 64), ("vit_b_16", 224), ("maxvit_t", 224)])
def test_torchvision_models(name, size):
    """torchvision's own modules, imported: the tools walk torchvision's module tree, cnnsize its kinds'."""
    models = need("torchvision.models")
    model = getattr(models, name)(weights=None)
    analysis = cnnsize.from_torch(model, (3, size, size)).analyze()
    _check(analysis, model)


def test_differences_say_what_the_estimators_leave_out():
    """cnnsize's budget minus each estimator's, per part: accelerate's float32 figure is model + gradients + Adam,
    so what remains is the step's activations; its float16 figure is Adam's states alone; DeepSpeed's leave out
    buffers and activations (one GPU, fp16-mixed)."""
    analysis = cnnsize.analyze("resnet18", batch=8)
    mixed = cnnsize.analyze("resnet18", batch=8, amp=True)
    found = {(e.name, e.settings.get("dtype")): e for e in est.estimators(analysis, mixed)}
    memory = analysis.totals.memory
    f32 = found["accelerate", "float32"]
    assert sum(v for k, v in f32.differences.items() if k != "total") == f32.differences["total"]
    assert f32.differences["total"] == memory.training_bytes - f32.bytes
    steps = memory.training_step_peak_bytes - memory.gradients_bytes
    assert f32.differences["activations and temporaries"] == steps > 0
    f16 = found["accelerate", "float16"]
    assert f16.bytes == f16.parts["optimizer"]  # the largest part, not the sum
    assert f16.differences["total"] == mixed.totals.memory.training_bytes - f16.bytes > 0
    assert f16.differences["activations and temporaries"] > 0
    zero2 = found["deepspeed-zero2", None]
    assert zero2.differences["activations and temporaries"] > 0
    assert zero2.differences["total"] == mixed.totals.memory.training_bytes - zero2.bytes


def test_report_estimators_json_against_the_tools():
    """``cnnsize report resnet18 --estimators --format json``: accelerate's and DeepSpeed's figures as the tools
    give them for the network cnnsize's executor builds from the same spec."""
    import json
    import subprocess
    import sys

    _, estimate, stage2, stage3 = _tools()
    modeling = need("accelerate.utils.modeling")
    out = subprocess.run([sys.executable, "-m", "cnnsize", "report", "resnet18", "--input", "3x64x64", "--estimators",
                          "--format", "json"], capture_output=True, text=True, check=True).stdout
    found = {(e["name"], e["settings"].get("dtype")): e for e in json.loads(out)["totals"]["estimators"]}
    model = cnnsize.build(cnnsize.analyze("resnet18", input_shape=(3, 64, 64)))
    total, (largest, _) = modeling.calculate_maximum_sizes(model)
    for dtype in ("float32", "float16"):
        assert found["accelerate", dtype]["bytes"] == max(estimate.estimate_training_usage(total, dtype).values())
    params, layer = stage3.model_to_params(model)
    assert found["deepspeed-zero2", None]["bytes"] == stage2.estimate_zero2_model_states_mem_needs(
        params, 1, 1, cpu_offload=False)[1]
    assert found["deepspeed-zero3", None]["bytes"] == stage3.estimate_zero3_model_states_mem_needs(
        params, layer, 1, 1, cpu_offload=False, cpu_offload_params=False)[1]


@pytest.mark.parametrize("offload", ["optimizer", "params"])
def test_estimators_with_offload_are_deepspeeds(offload):
    """cnnsize.estimators(offload=...) and the plan's estimators: DeepSpeed's offload figures (cpu_offload, and
    cpu_offload_params for params), on the same built network, on 4 GPUs of one node."""
    _, _, stage2, stage3 = _tools()
    model = cnnsize.build(cnnsize.analyze("resnet18", input_shape=(3, 64, 64)))
    params, layer = stage3.model_to_params(model)
    found = {e.name: e for e in cnnsize.estimators("resnet18", input_shape=(3, 64, 64), gpus_per_node=4,
                                                   offload=offload)}
    cpu, gpu = stage2.estimate_zero2_model_states_mem_needs(params, 4, 1, cpu_offload=True)
    assert (found["deepspeed-zero2"].parts["cpu"], found["deepspeed-zero2"].bytes) == (cpu, gpu)
    cpu, gpu, _ = stage3.estimate_zero3_model_states_mem_needs(params, layer, 4, 1, cpu_offload=True,
                                                               cpu_offload_params=offload == "params")
    assert (found["deepspeed-zero3"].parts["cpu"], found["deepspeed-zero3"].bytes) == (int(cpu), gpu)
    plan = cnnsize.plan("resnet18", "h100", gpus=4, input_shape=(3, 64, 64), batch=4, offload=offload,
                        precision="bf16-mixed")
    assert {e["name"]: e["bytes"] for e in plan["estimators"] if e["name"].startswith("deepspeed")} == \
        {name: e.bytes for name, e in found.items() if name.startswith("deepspeed")}
