"""The memory model against torch: saved tensors, live tensors, gradients and optimizer state (CPU)."""

from __future__ import annotations

import weakref

import pytest

import cnnsize
from cnnsize.engine.memory import max_batch, parse_bytes

torch = pytest.importorskip("torch")
slow = pytest.mark.slow


def vgg16_features_spec() -> str:
    """VGG16 without torchvision's adaptive pool: the same memory pattern at small inputs, with fc6 sized for the
    maps rather than for 7x7 (13M parameters at 32x32 instead of 138M, so the default run stays within 2 GB)."""
    from cnnsize.spec.sources import bundled_path

    text = bundled_path("vgg16").read_text(encoding="utf-8")
    return "".join(line for line in text.splitlines(keepends=True) if "adaptive_avgpool" not in line)


VGG16 = vgg16_features_spec()

FINE_TUNE = """
name: finetune
input: [3, 32, 32]
layers:
  - conv: {name: conv1, filters: 8, kernel: 3, pad: 1, trainable: false}
  - bn: {name: bn1, trainable: false}
  - relu: {inplace: true}
  - maxpool: {kernel: 2}
  - conv: {name: conv2, filters: 16, kernel: 3, pad: 1}
  - relu
  - dropout: {p: 0.5}
  - fc: {name: head, units: 10}
"""


@pytest.mark.parametrize("spec, shape", [
    ("lenet5", None), pytest.param("alexnet_cs231n", None, marks=slow),
    pytest.param(VGG16, (3, 32, 32), id="vgg16-features", marks=slow), (FINE_TUNE, None)])
def test_saved_for_backward_equals_saved_tensors_hooks(spec, shape):
    v = cnnsize.validate(spec, input_shape=shape, runs=0)
    figure = v.totals["saved_for_backward_bytes"]
    assert figure.ok and figure.predicted == figure.measured > 0


def test_frozen_prefix_saves_nothing_before_the_first_trainable_layer():
    frozen = cnnsize.analyze(FINE_TUNE, device="cpu").totals["memory"]
    everything = cnnsize.analyze(FINE_TUNE.replace(", trainable: false", ""), device="cpu").totals["memory"]
    # conv2 saves its input (the pool output); conv1, bn1 and the pool, all frozen, save nothing
    assert frozen["saved_for_backward_bytes"] < everything["saved_for_backward_bytes"]
    assert frozen["training_bytes_all_trainable"] == everything["training_bytes"]
    assert frozen["gradients_bytes"] < everything["gradients_bytes"]


def _live_peak(model, x) -> int:
    """The most activation bytes alive at once in a real forward pass, tracked with weak references."""
    live: dict[int, int] = {}

    def track(t):
        key = t.untyped_storage().data_ptr()
        if key not in live:
            live[key] = t.untyped_storage().nbytes()
            weakref.finalize(t.untyped_storage(), live.pop, key, None)

    peak = 0
    track(x)

    def hook(mod, args, out):
        nonlocal peak
        track(out)
        peak = max(peak, sum(live.values()))

    for name in [n.name for n in model.analysis.graph.nodes]:
        model.layer(name).register_forward_hook(hook)
    with torch.inference_mode():
        model(x)
    return peak


@pytest.mark.parametrize("spec, shape", [("lenet5", None), ("alexnet_cs231n", None),
                                         pytest.param(VGG16, (3, 64, 64), id="vgg16-features")])
def test_inference_peak_equals_the_live_tensors_of_a_real_forward_pass(spec, shape):
    a = cnnsize.analyze(spec, input_shape=shape)
    model = cnnsize.build(a)
    x = torch.zeros((1, *a.input_shape))
    assert _live_peak(model, x) == a.totals["memory"]["inference_peak_activations_bytes"]


@pytest.mark.parametrize("optimizer, state_tensors", [("sgd", ()), ("momentum", ("momentum_buffer",)),
                                                      ("adam", ("exp_avg", "exp_avg_sq")),
                                                      ("adamw", ("exp_avg", "exp_avg_sq"))])
def test_gradients_and_optimizer_state_match_torch(optimizer, state_tensors):
    a = cnnsize.analyze(FINE_TUNE, optimizer=optimizer, device="cpu", batch=2)
    model = cnnsize.build(a, init=True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = {"sgd": lambda: torch.optim.SGD(params, lr=0.1), "momentum": lambda: torch.optim.SGD(params, 0.1, 0.9),
           "adam": lambda: torch.optim.Adam(params), "adamw": lambda: torch.optim.AdamW(params)}[optimizer]()
    model.train()
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    opt.step()
    grads = sum(p.grad.nbytes for p in params)
    state = sum(s[k].nbytes for s in opt.state.values() for k in state_tensors)
    m = a.totals["memory"]
    assert m["gradients_bytes"] == grads and m["optimizer_bytes"] == state


def test_max_batch_is_the_largest_that_fits():
    device = parse_bytes("8GiB")
    found = max_batch(lambda b: cnnsize.analyze("vgg16", batch=b).totals["memory"], device)
    for key, figure in (("inference", "inference_peak_bytes"), ("training", "training_bytes")):
        b = found[key]
        assert cnnsize.analyze("vgg16", batch=b).totals["memory"][figure] <= device
        assert cnnsize.analyze("vgg16", batch=b + 1).totals["memory"][figure] > device


@pytest.mark.parametrize("text, value", [("24GiB", 24 * 2**30), ("16GB", 16 * 10**9), ("512MiB", 512 * 2**20),
                                         ("1.5GiB", 3 * 2**29), ("1000", 1000)])
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


def test_report_memory_options(cli):
    import json

    doc = json.loads(cli("report", "vgg16", "-f", "json", "--freeze-until", "pool5", "--optimizer", "sgd",
                         "--max-batch", "--device-memory", "24GiB").stdout)
    m = doc["totals"]["memory"]
    for key in ("inference_peak_bytes", "training_bytes", "saved_for_backward_bytes", "gradients_bytes",
                "optimizer_bytes", "training_bytes_all_trainable"):
        assert isinstance(m[key], int)
    assert m["optimizer_bytes"] == 0 and m["gradients_bytes"] == 4 * (4096 * 25088 + 4096 + 4096 * 4096 + 4096
                                                                         + 4096 * 1000 + 1000)
    assert doc["max_batch"]["training"] > doc["max_batch"]["inference"] // 10
    table = cli("report", "vgg16", "--freeze-until", "pool5").stdout
    assert "Fine-tuning (trainable from fc6 on)" in table and "rule of thumb" in table
    bad = cli("report", "vgg16", "--max-batch")
    assert bad.returncode == 2 and "--max-batch needs --device-memory" in bad.stderr


def _measured_step_peak(a, optimizer: str) -> int:
    """Bytes a steady-state training step allocates on the CPU (the profiler's record of every allocation)."""
    from cnnsize.executor.validation import _peak_allocated

    model = cnnsize.build(a, device="cpu", init=True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = {"sgd": lambda: torch.optim.SGD(params, lr=0.1), "momentum": lambda: torch.optim.SGD(params, 0.1, 0.9),
           "adam": lambda: torch.optim.Adam(params), "adamw": lambda: torch.optim.AdamW(params)}[optimizer]()
    x = torch.randn((a.batch, *a.input_shape))

    def step():
        model(x).float().sum().backward()
        opt.step()
        model.zero_grad(set_to_none=True)

    model.train()
    step()  # the first step makes the optimizer state, which stays resident
    return _peak_allocated(torch.device("cpu"), step).model


# Where the peak falls differs: the optimizer step (fc-heavy nets), or backward at some layer (conv nets).
@pytest.mark.parametrize("spec, shape, optimizer", [
    ("lenet5", None, "adam"), pytest.param("alexnet_cs231n", None, "adamw", marks=slow),
    pytest.param(VGG16, (3, 64, 64), "momentum", marks=slow, id="vgg16-features"),
    pytest.param("resnet18", (3, 64, 64), "adam", marks=slow),
    pytest.param("resnet18", (3, 112, 112), "adam", marks=slow),
    pytest.param("mobilenet_v2", (3, 96, 96), "adam", marks=slow),
    pytest.param("densenet121", (3, 64, 64), "sgd", marks=slow), (FINE_TUNE, None, "adam")])
def test_training_step_peak_equals_the_cpu_allocations_of_a_real_step(spec, shape, optimizer):
    """Forward, backward layer by layer, and the optimizer step with its temporaries, against every allocation."""
    a = cnnsize.analyze(spec, input_shape=shape, batch=2, device="cpu", optimizer=optimizer)
    predicted = a.totals["memory"]["training_step_peak_bytes"]
    measured = _measured_step_peak(a, optimizer)
    assert abs(measured - predicted) <= 0.03 * predicted, (a.totals["memory"]["training_peak_phase"], measured)
