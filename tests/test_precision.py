"""Training precision (--precision float32|bf16-mixed|fp16-mixed|bf16|fp16) against torch on the CPU: what autocast
makes of every kind's output (the dtype torch's own autocast gives each layer), and the training step's peak under
bf16 autocast and in pure bf16 against every allocation torch makes (the profiler's record, as tests/test_memory.py
measures float32), within the same 3%. fp16-mixed (with its GradScaler) runs on CUDA only: tools/gpu_check.py.
"""

from __future__ import annotations

import json

import pytest

import cnnsize
from cnnsize.engine.memory import MemoryOptions, activation_widths

torch = pytest.importorskip("torch")
from .test_layer_kinds import ROWS  # noqa: E402  (every kind's examples)
from .torch_graph import GraphModule  # noqa: E402

slow = pytest.mark.slow


def _widths(a) -> dict[str, int]:
    """cnnsize's bytes per element of each layer's output under CPU bf16 autocast."""
    from cnnsize.engine.walk import Ctx, _walk

    topology = a.graph.topology
    sized = _walk(a.graph, topology, tuple(a.input_shape), Ctx(fit=a.fit), False, a.batch, 4, set())[0]
    widths = activation_widths(topology, sized, 4, MemoryOptions(precision="bf16-mixed", device="cpu"))
    return dict(zip(topology.names[1:], widths[1:]))


def _torch_widths(a) -> dict[str, int]:
    """The element size of each layer's output when torch runs the network in training mode under CPU autocast."""
    torch.manual_seed(0)
    model = GraphModule(a)
    got: dict[str, int] = {}
    for name in a.graph.topology.names[1:]:
        def hook(module, args, out, name=name):
            got[name] = (out[0] if isinstance(out, tuple) else out).element_size()
        model.mods[name.replace(".", "__")].register_forward_hook(hook)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(torch.randn(a.batch, *a.input_shape))
    return got


@pytest.mark.parametrize("row", sorted(ROWS))
def test_every_kinds_autocast_type_is_torchs(row):
    """Each kind's autocast rule (LayerKind.autocast: torch's 16-bit and float32 lists, else type promotion) gives
    the type torch's autocast gives its output, for every kind's examples."""
    shape, layers = ROWS[row]
    a = cnnsize.analyze({"name": row, "input": shape, "layers": layers, "fit": "floor"}, batch=2)
    assert _widths(a) == _torch_widths(a)


C3 = {"conv": {"filters": 2, "kernel": 1}}
AFTER_16_BITS = {  # ops the CPU's autocast runs in float32 only in some ranks: seen on a 16-bit input
    "maxpool3d": ([2, 4, 6, 6], [C3, {"maxpool": {"kernel": 2}}]),
    "avgpool3d": ([2, 4, 6, 6], [C3, {"avgpool": {"kernel": 2}}, {"conv": {"filters": 2, "kernel": 1}}]),
    "adaptive_avgpool3d": ([2, 4, 6, 6], [C3, {"adaptive_avgpool": {"output": [1, 2, 2]}}]),
    "maxpool2d": ([2, 6, 6], [C3, {"maxpool": {"kernel": 2}}, "relu"]),
    "reflectpad2d": ([2, 6, 6], [C3, {"reflectpad": {"pad": 1}}, "relu"]),
    "reflectpad1d": ([2, 6], [C3, {"reflectpad": {"pad": 1}}]),
    "replicatepad3d": ([2, 4, 6, 6], [C3, {"replicatepad": {"pad": 1}}, "relu"])}


@pytest.mark.parametrize("row", sorted(AFTER_16_BITS))
def test_rank_dependent_autocast_types_are_torchs(row):
    shape, layers = AFTER_16_BITS[row]
    a = cnnsize.analyze({"name": row, "input": shape, "layers": layers}, batch=2)
    assert _widths(a) == _torch_widths(a)


@pytest.mark.parametrize("spec, shape", [("resnet18", (3, 32, 32)), ("vit_b_16", (3, 32, 32)),
                                         pytest.param("convnext_tiny", (3, 32, 32), marks=slow)])
def test_networks_autocast_types_are_torchs(spec, shape):
    """Whole networks: ViT's residual stream stays float32 (the position embedding is a float32 parameter), its
    projections run in bfloat16."""
    a = cnnsize.analyze(spec, input_shape=shape, batch=2)
    widths = _widths(a)
    assert widths == _torch_widths(a)
    assert 2 in widths.values()


def _measured_step_peak(a, precision: str, optimizer: str) -> int:
    """Bytes a steady-state training step allocates on the CPU beyond the model and its state: the forward under
    bf16 autocast (bf16-mixed) or the model in bfloat16 (bf16)."""
    from cnnsize.executor.validation import _peak_allocated

    model = cnnsize.build(a, device="cpu", init=True)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = model.to(dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = {"sgd": lambda: torch.optim.SGD(params, lr=0.1), "adam": lambda: torch.optim.Adam(params)}[optimizer]()
    x = torch.randn((a.batch, *a.input_shape), dtype=dtype)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            y = model(x)
        y.float().sum().backward()
        opt.step()
        model.zero_grad(set_to_none=True)

    model.train()
    step()  # the first step makes the optimizer state, which stays resident
    return _peak_allocated(torch.device("cpu"), step).model


NETWORKS = [("lenet5", None, 2, "sgd"), ("lenet5", None, 2, "adam"), ("resnet18", (3, 64, 64), 2, "sgd"),
            pytest.param("resnet18", (3, 64, 64), 16, "sgd", marks=slow),
            pytest.param("mobilenet_v2", (3, 64, 64), 16, "sgd", marks=slow),
            pytest.param("densenet121", (3, 64, 64), 2, "sgd", marks=slow),
            pytest.param("convnext_tiny", (3, 64, 64), 2, "sgd", marks=slow),
            pytest.param("vit_b_16", (3, 64, 64), 2, "sgd", marks=slow),
            pytest.param("vit_b_16", (3, 32, 32), 8, "adam", marks=slow)]


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16"])
@pytest.mark.parametrize("spec, shape, batch, optimizer", NETWORKS)
def test_step_peak_equals_the_cpu_allocations(spec, shape, batch, optimizer, precision):
    """The step's peak under bf16 autocast (16-bit activations where autocast's lists say, its cast copies and cached
    16-bit weights, float32 gradients) and in pure bf16, against every allocation of a real step."""
    a = cnnsize.analyze(spec, input_shape=shape, batch=batch, device="cpu", optimizer=optimizer, precision=precision)
    predicted = a.totals["memory"]["training_step_peak_bytes"]
    measured = _measured_step_peak(a, precision, optimizer)
    assert abs(measured - predicted) <= 0.03 * predicted, (a.totals["memory"]["training_peak_phase"], measured)


def test_mixed_precision_is_not_float32():
    """The mixed figures are their own: less than float32's where activations dominate, and the gradients stay
    float32 (pure bf16 halves them)."""
    f32, mixed, pure = (cnnsize.analyze("resnet18", input_shape=(3, 64, 64), batch=32, device="cpu", precision=p)
                        .totals["memory"] for p in ("float32", "bf16-mixed", "bf16"))
    assert pure["training_step_peak_bytes"] < mixed["training_step_peak_bytes"] < f32["training_step_peak_bytes"]
    assert mixed["gradients_bytes"] == f32["gradients_bytes"] == 2 * pure["gradients_bytes"]


def test_amp_is_fp16_mixed():
    a = cnnsize.analyze("resnet18", amp=True).totals
    b = cnnsize.analyze("resnet18", precision="fp16-mixed").totals
    assert a["memory"] == b["memory"] and a["memory"]["precision"] == "fp16-mixed"
    # the GradScaler's state (its scale and growth tracker) is fp16-mixed's alone
    bf = cnnsize.analyze("resnet18", precision="bf16-mixed", device="cuda").totals["memory"]
    assert b["memory"]["training_bytes"] - b["memory"]["training_step_peak_bytes"] == \
        bf["training_bytes"] - bf["training_step_peak_bytes"] + 8


def test_precision_in_json(cli):
    doc = json.loads(cli("report", "lenet5", "--precision", "bf16-mixed", "--train", "-f", "json").stdout)
    assert doc["totals"]["training"]["precision"] == "bf16-mixed"
    assert doc["totals"]["memory"]["precision"] == "bf16-mixed" and doc["totals"]["memory"]["amp"] is True
    pure = json.loads(cli("report", "lenet5", "--precision", "bf16", "-f", "json").stdout)
    assert pure["dtype"] == "bfloat16" and pure["totals"]["memory"]["params_bytes"] == 2 * 61706


@pytest.mark.parametrize("args, words", [
    (["--precision", "bf16-mix"], "did you mean 'bf16-mixed'"),
    (["--precision", "bf16", "--amp"], "--amp is fp16-mixed"),
    (["--precision", "fp16", "--dtype", "bfloat16"], "computes in float16"),
    (["--precision", "bf16-mixed", "--dtype", "float16"], "float32 master weights")])
def test_bad_precision_is_one_line(cli, args, words):
    r = cli("report", "lenet5", *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert words in r.stderr


def test_validate_measures_the_bf16_autocast_step(cli):
    """validate --precision bf16-mixed runs the training step under autocast and compares its peak; fp16-mixed is
    CUDA's (a GradScaler), refused on the CPU in one line."""
    doc = json.loads(cli("validate", "lenet5", "-b", "2", "--device", "cpu", "--runs", "0",
                         "--precision", "bf16-mixed", "-f", "json").stdout)
    figure = doc["totals"]["training_step_peak_bytes"]
    assert figure["ok"], figure
    expected = cnnsize.analyze("lenet5", batch=2, device="cpu", precision="bf16-mixed")
    assert figure["predicted"] == expected.totals["memory"]["training_step_peak_bytes"]
    r = cli("validate", "lenet5", "--device", "cpu", "--runs", "0", "--precision", "fp16-mixed")
    assert r.returncode == 2 and "CUDA only" in r.stderr and len(r.stderr.strip().splitlines()) == 1
