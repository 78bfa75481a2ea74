"""The executor against torch: building, validating every bundled spec, timing, memory checks, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import cnnsize  # noqa: E402
from cnnsize.cli import main  # noqa: E402
from cnnsize.core.errors import CnnsizeError, DoesNotFit, MissingDependency, SpecError  # noqa: E402
from cnnsize.executor import timing  # noqa: E402
from cnnsize.spec.sources import bundled_names  # noqa: E402

from .conftest import heavy_detector, representative  # noqa: E402

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA GPU")
MAX_TEST_MACS = 2 * 10**9


def small_input(name: str):
    """The spec's own input, or a small one (32, 64, ...) for the networks too heavy for a 2-core CI run."""
    a = cnnsize.analyze(name)
    if a.totals["macs"] <= MAX_TEST_MACS:
        return None
    channels = a.input_shape[0]
    for side in (32, 64, 96, 128, 160, 192):
        shape = (channels, *(side,) * (len(a.input_shape) - 1))
        try:
            cnnsize.analyze(name, input_shape=shape)
        except (DoesNotFit, SpecError):  # a detector's FPN adds maps of one size only where 128 divides the sides
            continue
        return shape
    return None


# the default run: a plain stack, a 1-D net, residual blocks with batch norm and depthwise convs (concatenation:
# test_properties' generated networks); the whole zoo in the slow set
VALIDATED_BY_DEFAULT = ("lenet5", "m5_speech", "mobilenet_v2")


@pytest.mark.parametrize("name", representative([n for n in bundled_names() if not heavy_detector(n)],
                                                VALIDATED_BY_DEFAULT))
def test_every_bundled_spec_validates_on_cpu(name):
    v = cnnsize.validate(name, input_shape=small_input(name), device="cpu", runs=0)
    assert v.mismatches() == []
    assert v.ok
    checked = {key for row in v.layers for key in row.figures}
    assert {"output_shape", "params", "buffers", "macs", "activations"} <= checked
    assert v.totals["macs"].measured > 0 and v.totals["params"].measured > 0


def test_parameter_names_follow_the_spec():
    model = cnnsize.build("vgg16")
    names = [n for n, _ in model.named_parameters()]
    assert names[:2] == ["conv1_1.weight", "conv1_1.bias"]
    assert names[-1] == "fc8.bias"
    assert sum(p.numel() for p in model.parameters()) == 138_357_544  # torchvision's VGG16
    assert model.layer("conv5_3") is model.conv5_3


DOTTED = """
name: dotted
input: [3, 8, 8]
layers:
  - repeat: 2
    name: block
    layers:
      - conv: {name: conv1, filters: 4, kernel: 3, pad: 1}
      - bn: {name: bn1}
      - relu: {name: train, inplace: true}
  - conv: {name: block, filters: 2, kernel: 1}
  - fc: {name: head, units: 3, trainable: false}
"""


def test_dotted_names_nest_and_odd_names_work():
    model = cnnsize.build(DOTTED)
    names = {n for n, _ in model.named_parameters()}
    assert {"block.0.conv1.weight", "block.1.bn1.bias", "block.weight", "head.weight"} <= names
    assert "block.0.bn1.running_var" in dict(model.named_buffers())
    assert isinstance(model.layer("block.0.train"), torch.nn.ReLU)
    v = cnnsize.validate(DOTTED, device="cpu", runs=0)
    assert v.ok, v.mismatches()
    head = next(r for r in v.layers if r.name == "head")
    assert head.figures["trainable_params"].measured == 0
    assert head.figures["params"].measured == 8 * 8 * 2 * 3 + 3
    outer = next(r for r in v.layers if r.name == "block")
    assert outer.figures["params"].measured == 4 * 2 + 2  # not the nested block.0.* layers


def test_building_skips_random_initialization(monkeypatch):
    devices = []
    original = torch.nn.Conv2d.reset_parameters

    def spy(self):
        devices.append(self.weight.device.type)
        original(self)

    monkeypatch.setattr(torch.nn.Conv2d, "reset_parameters", spy)
    model = cnnsize.build("vgg11", input_shape=(3, 32, 32))
    assert devices and set(devices) == {"meta"}  # initialized only where it costs nothing
    assert all(not p.is_meta for p in model.parameters())
    assert all(float(p.detach().abs().sum()) == 0 for p in model.parameters())
    devices.clear()
    model = cnnsize.build("vgg11", input_shape=(3, 32, 32), init=True)
    assert "cpu" in devices
    assert float(model.conv1_1.weight.detach().abs().sum()) > 0


def test_build_from_an_analysis_uses_its_shapes():
    a = cnnsize.analyze("vgg11", input_shape=(3, 32, 32))
    model = cnnsize.build(a)
    out = model(torch.zeros(1, 3, 32, 32))
    assert out.shape == (1, 1000)
    assert model.fc6.in_features == 512 * 7 * 7  # after torchvision's adaptive pool to 7x7


def test_symbolic_input_cannot_be_built():
    import sympy

    h = sympy.Symbol("H", positive=True, integer=True)
    with pytest.raises(SpecError, match="symbolic"):
        cnnsize.build("lenet5", input_shape=(1, h, h))


def test_locally_connected_computes_a_convolution_without_weight_sharing():
    spec = {"input": [2, 5, 7], "layers": [{"locally_connected": {"filters": 3, "kernel": [2, 3], "stride": [1, 2],
                                                                   "pad": 1}}]}
    v = cnnsize.validate(spec, device="cpu", runs=0, batch=2)
    assert v.ok, v.mismatches()
    torch.manual_seed(0)
    model = cnnsize.build(spec, init=True)
    lc = model.layer("locally_connected1")
    x = torch.randn(2, 2, 5, 7)
    y = model(x)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    oh, ow = y.shape[2:]
    assert (oh, ow) == (6, 4)
    for i in range(oh):
        for j in range(ow):
            patch = padded[:, :, i:i + 2, 2 * j:2 * j + 3].reshape(2, -1)  # (N, C·kh·kw), unfold's order
            expected = patch @ lc.weight[i * ow + j] + lc.bias[:, i, j]
            assert torch.allclose(y[:, :, i, j], expected, atol=1e-5)


def test_a_wrong_figure_is_reported_with_its_layer(monkeypatch):
    from cnnsize.layers import conv

    original = conv.Conv.counts

    def off_by_one(self, ins, out):
        c = original(self, ins, out)
        return type(c)(weights=c.weights, biases=c.biases, buffers=c.buffers, connections=c.connections,
                       macs=c.macs + 1)

    monkeypatch.setattr(conv.Conv, "counts", off_by_one)
    v = cnnsize.validate("lenet5", device="cpu", runs=0)
    assert not v.ok
    assert "layer 'C1' macs: predicted 117,601, measured 117,600" in v.mismatches()
    assert v.to_frame().loc["C1", "ok"] == False  # noqa: E712 (a numpy bool)
    assert main(["validate", "lenet5", "--device", "cpu", "--runs", "0"]) == 1


def test_validation_frame_and_json(capsys):
    assert main(["validate", "lenet5", "--device", "cpu", "--runs", "2", "--warmup", "0", "-f", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True
    c1 = next(r for r in doc["layers"] if r["name"] == "C1")
    assert c1["figures"]["macs"] == {"predicted": 117600, "measured": 117600, "ok": True, "exact": True}
    assert c1["figures"]["output_shape"]["measured"] == [1, 6, 28, 28]
    assert doc["timing"]["runs"] == 2 and doc["timing"]["median_ms"] > 0
    frame = cnnsize.validate("lenet5", device="cpu", runs=0).to_frame()
    assert frame.loc["F5", "params_measured"] == 120 * 400 + 120


def test_validate_table_shows_both_sides(capsys):
    assert main(["validate", "lenet5", "--device", "cpu", "--runs", "0"]) == 0
    out = capsys.readouterr().out
    assert "the analysis (left) against torch (right)" in out and "✓ every figure matches torch" in out
    assert "117,600 │ 117,600" in out


def test_user_errors_exit_2(capsys):
    assert main(["validate", "lenet5", "--dtype", "int8", "--device", "cpu"]) == 2
    assert "int8 can be sized but not run" in capsys.readouterr().err
    assert main(["validate", "lenet5", "--device", "tpu"]) == 2
    assert main(["bench", "lenet5", "--device", "cpu", "--channels-last", "--input", "1x32"]) == 2
    if not CUDA:
        assert main(["validate", "lenet5", "--device", "cuda"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err


def test_missing_torch_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(MissingDependency) as info:
        cnnsize.build("lenet5")
    assert "pip install 'cnnsize[torch]'" in str(info.value)
    assert main(["validate", "lenet5"]) == 2


def test_report_path_never_imports_torch():
    code = ("import sys, cnnsize, cnnsize.executor; from cnnsize.render import render; "
            "a = cnnsize.analyze('vgg16'); render(a, 'table'); render(a, 'json'); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- memory ----------------------------------------------------------------------------
def test_a_run_that_does_not_fit_is_refused_before_allocating(monkeypatch):
    a = cnnsize.analyze("vgg16", batch=8)
    need = sum(timing.required_bytes(a).values())
    parts = timing.required_bytes(a)
    free = parts["params"] + parts["buffers"] + 3 * parts["activations"] // 8 + 1  # room for 3 of the 8 images
    with pytest.raises(CnnsizeError) as info:
        timing.check_fits(a, torch.device("cpu"), need, "forward pass", False, free=free)
    text = str(info.value)
    assert "needs about 728.4 MiB (params 527.8 MiB" in text and "free" in text
    assert "--batch 3 would fit" in text and "--force" in text
    with pytest.raises(CnnsizeError) as info:
        timing.check_fits(a, torch.device("cpu"), need, "forward pass", False, free=parts["params"] // 2)
    assert "--batch" not in str(info.value)  # not even one image fits next to the weights
    timing.check_fits(a, torch.device("cpu"), need, "forward pass", True, free=need // 2)  # --force

    monkeypatch.setattr(timing, "free_bytes", lambda dev: 10 * 2**20)
    monkeypatch.setattr(timing, "build_module", lambda *a, **k: pytest.fail("allocated before checking"))
    with pytest.raises(CnnsizeError, match="needs about"):
        cnnsize.bench("vgg16", device="cpu", runs=1)
    assert main(["bench", "vgg16", "--device", "cpu", "--runs", "1"]) == 2


# -- timing ----------------------------------------------------------------------------
def test_bench_statistics_are_consistent():
    t = cnnsize.bench("lenet5", device="cpu", runs=7, warmup=1, peak=False, batch=2)
    assert t.runs == 7 and not t.interrupted
    assert min(t.times_ms) <= t.p10_ms <= t.median_ms <= t.p90_ms <= max(t.times_ms)
    assert t.images_per_s == pytest.approx(2 / (t.median_ms / 1e3))
    assert t.flops_per_run == cnnsize.analyze("lenet5", batch=2).totals["flops"]
    assert t.gflops == pytest.approx(t.flops_per_run / (t.median_ms / 1e3) / 1e9)


def test_bench_options_run(capsys):
    t = cnnsize.bench("lenet5", device="cpu", runs=2, warmup=1, backward=True, channels_last=True,
                      per_layer=True, peak=True)
    assert t.mode == "forward+backward" and t.channels_last
    assert set(t.per_layer_ms) == {r.name for r in cnnsize.analyze("lenet5").layers[1:]}
    assert t.peak_gflops > 0 and t.fraction_of_peak == pytest.approx(t.gflops / t.peak_gflops)
    assert main(["bench", "lenet5", "--device", "cpu", "--runs", "2", "--warmup", "0", "--no-peak"]) == 0
    assert "median" in capsys.readouterr().out


def test_ctrl_c_keeps_the_finished_runs():
    calls = []

    def step():
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt

    times, interrupted = timing.timed_loop(step, timing._Clock(torch.device("cpu")), 1, 10, progress=False)
    assert interrupted and len(times) == 3
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        timing.timed_loop(step, timing._Clock(torch.device("cpu")), 10, 10, progress=False)


def test_unsupported_precision_is_a_user_error(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError('"slow_conv2d_cpu" not implemented for \'Half\'')

    monkeypatch.setattr(torch.nn.functional, "conv2d", refuse)
    with pytest.raises(SpecError, match="float16 is not supported on cpu"):
        timing.check_dtype(torch.device("cpu"), torch.float16, "float16")


# -- CUDA ------------------------------------------------------------------------------
@needs_cuda
def test_cuda_validation_includes_memory():
    v = cnnsize.validate("alexnet_cs231n", device="cuda", runs=3, warmup=1)
    assert v.ok, v.mismatches()
    mem = v.totals["memory_bytes"]
    assert not mem.exact and mem.measured >= mem.predicted
    assert v.timing.device.startswith("cuda") and v.timing.peak_gflops > 0


@needs_cuda
def test_cuda_bench_half_precision_and_backward():
    t = cnnsize.bench("vgg11", input_shape=(3, 64, 64), device="cuda", dtype="float16", runs=5, warmup=2,
                      backward=True, channels_last=True)
    assert t.runs == 5 and t.dtype == "float16" and t.settings["cudnn_benchmark"] is True


def test_a_layer_torch_cannot_run_is_named(monkeypatch):
    def refuse(self, x):
        raise RuntimeError('"tanh_cpu" not implemented for \'Half\'\nmore detail')

    monkeypatch.setattr(torch.nn.Tanh, "forward", refuse)
    with pytest.raises(CnnsizeError) as info:
        cnnsize.validate("lenet5", device="cpu", runs=0)
    assert info.value.layer == "tanh1" and "not implemented for 'Half'" in info.value.message


def test_multi_input_nodes_run_with_every_input(monkeypatch):
    """A residual block through a test-only merge kind: GraphModule passes several tensors to one node."""
    from cnnsize.layers import REGISTRY, LayerKind

    class Sum(torch.nn.Module):
        def forward(self, *xs):
            return sum(xs[1:], xs[0])

    class TestAdd(LayerKind):
        kind = "test_add"
        params = {}
        min_inputs, max_inputs = 2, 4

        def build(self, ins, out):
            return Sum()

    monkeypatch.setitem(REGISTRY, "test_add", TestAdd)
    spec = {"input": [3, 8, 8], "layers": [
        {"conv": {"name": "stem", "filters": 4, "kernel": 3, "pad": 1}},
        {"relu": {"name": "r", "inplace": True}},
        {"conv": {"name": "a", "filters": 4, "kernel": 3, "pad": 1}},
        {"conv": {"name": "b", "filters": 4, "kernel": 1, "from": "r"}},
        {"test_add": {"name": "join", "from": ["r", "a", "b"]}},
        {"global_avgpool": None},
        {"fc": {"units": 2}},
    ]}
    v = cnnsize.validate(spec, device="cpu", runs=0, batch=2)
    assert v.ok, v.mismatches()
    torch.manual_seed(0)
    model = cnnsize.build(spec, init=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        r = torch.relu(model.stem(x))
        expected = model.fc1(torch.nn.functional.adaptive_avg_pool2d(r + model.a(r) + model.b(r), 1))
        assert torch.allclose(model(x), expected, atol=1e-6)
