"""The training step's work (cnnsize.passes.training) against torch: every layer's backward MACs as
torch.utils.flop_counter.FlopCounterMode counts a real forward and backward of the built network, layer by layer
(its count for the module of each layer in forward and backward, less its count in a forward alone), for every
kind's examples and for bundled specs, with and without a frozen prefix; and gradient accumulation's step.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import cnnsize

torch = pytest.importorskip("torch")
from .test_layer_kinds import ROWS  # noqa: E402  (every kind's examples, and the table's rows)
from .torch_graph import GraphModule  # noqa: E402


def _claim(name: str, owner: dict, current: list):
    """A forward hook giving layer ``name`` the autograd nodes its forward made (from its output back to its inputs'),
    each of which marks, while its backward runs, that the operations torch dispatches are this layer's."""
    def start(grad_outputs):
        current[0] = name

    def stop(grad_inputs, grad_outputs):
        current[0] = None

    def hook(module, inputs, output):
        inputs_nodes = {t.grad_fn for t in inputs if isinstance(t, torch.Tensor)}
        todo = [t.grad_fn for t in (output if isinstance(output, tuple) else (output,)) if isinstance(t, torch.Tensor)]
        while todo:
            node = todo.pop()
            if node is None or node in inputs_nodes or node in owner:
                continue
            owner[node] = name
            node.register_prehook(start)
            node.register_hook(stop)
            todo.extend(n for n, _ in node.next_functions)
    return hook


def torch_backward(a, freeze_until: str | None = None, executor: bool = False) -> dict[str, int]:
    """Per layer, the MACs FlopCounterMode counts in a training step's backward (its FLOPs / 2): its formulas for the
    operations torch dispatches while the autograd nodes of each layer's forward run their backward. (Its own
    attribution to modules is not per layer in backward: a residual add's module collects the branch's gradients.)"""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    if executor:  # cnnsize's executor: shared and tied parameters are the very same tensors, trainable parts set
        built = cnnsize.build(a, init=True)

        def layer(name):
            return built.layer(name)
        model: Any = built
    else:  # each kind's build, initialized as torch does (index tables included)
        model = GraphModule(a)

        def layer(name):
            return model.mods[name.replace(".", "__")]

    names = [node.name for node in a.graph.nodes if not node.kind.is_input]  # (an input beside the first: no work)
    if freeze_until is not None:
        for name in names[: names.index(freeze_until) + 1]:
            for p in layer(name).parameters():
                p.requires_grad_(False)
    owner: dict = {}
    current: list = [None]
    for name in names:
        layer(name).register_forward_hook(_claim(name, owner, current))
    counter = FlopCounterMode(display=False)
    counts: dict = {}

    def count(packet, out, args, kwargs):  # FlopCounterMode's own formula, credited to the layer running backward
        if packet in counter.flop_registry:
            flops = counter.flop_registry[packet](*args, **kwargs, out_val=out)
            counts[current[0]] = counts.get(current[0], 0) + flops
        return out

    counter._count_flops = count  # type: ignore[method-assign]
    model.train()
    xs = tuple(torch.randn(a.batch, *shape) for shape in a.inputs.values())  # several inputs: the executor's, a tuple
    x = xs[0] if len(xs) == 1 else xs
    # the math kernel: CPU's fused attention has no formula in FlopCounterMode (it would count nothing)
    with sdpa_kernel(SDPBackend.MATH), counter:
        out = model(x)
        counts.clear()  # the forward's
        if out.requires_grad:
            out.float().sum().backward()
    assert not counts.get(None), "backward work no layer's nodes did"
    # and FlopCounterMode itself, unchanged, counts the same backward in all (its whole step less its forward)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as forward:
        model(x)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as whole:
        out = model(x)
        if out.requires_grad:
            out.float().sum().backward()
    assert sum(counts.values()) == whole.get_total_flops() - forward.get_total_flops()
    return {n: counts.get(n, 0) // 2 for n in names}


def _cnnsize(a) -> dict[str, int]:
    return {r.name: r.backward_macs for r in a.layers if r.kind is not None and not r.kind.is_input}


@pytest.mark.parametrize("row", sorted(ROWS))
def test_every_kinds_backward_is_flop_counter_modes(row):
    shape, layers = ROWS[row]
    spec = {"name": row, "input": shape, "layers": layers, "fit": "floor"}
    a = cnnsize.analyze(spec, batch=2, training=True)
    assert _cnnsize(a) == torch_backward(a)
    first = a.graph.nodes[0].name
    if len(a.graph.nodes) > 1:  # the first layer frozen: no gradient for its weights nor for what feeds it
        frozen = cnnsize.analyze(spec, batch=2, training=True, freeze_until=first)
        assert _cnnsize(frozen) == torch_backward(frozen, first)


VIT = {"name": "vit_tiny", "input": [3, 16, 16], "layers": [
    {"patch_embed": {"filters": 16, "patch": 4}}, "class_token", "pos_embed",
    {"layernorm": {"axis": "last", "name": "ln1"}}, {"mha": {"heads": 2}}, {"add": {"from": ["mha1", "pos_embed1"]}},
    {"layernorm": {"axis": "last", "name": "ln2"}}, {"linear": {"units": 32}}, "gelu", {"linear": {"units": 16}},
    {"add": {"from": ["linear2", "add1"]}}, {"select": {"axis": 0, "index": 0}}, {"linear": {"units": 10}}]}


@pytest.mark.parametrize("spec, shape, frozen", [
    ("lenet5", None, "S2"), pytest.param("resnet18", (3, 32, 32), "layer1", marks=pytest.mark.slow),
    pytest.param("mobilenet_v2", (3, 32, 32), "features.3.conv.1", marks=pytest.mark.slow),
    (VIT, None, "ln1")])
def test_specs_backward_is_flop_counter_modes(spec, shape, frozen):
    """Whole networks at small sizes: every layer's backward, and the totals, as torch counts them; then with the
    layers up to ``frozen`` frozen (their weights' gradients and the input gradients before the first trained
    layer vanish)."""
    a = cnnsize.analyze(spec, input_shape=shape, batch=2, training=True)
    assert _cnnsize(a) == torch_backward(a)
    names = [n.name for n in a.graph.nodes]
    until = [n for n in names if n == frozen or n.startswith(frozen + ".")][-1]  # the block's last layer
    f = cnnsize.analyze(spec, input_shape=shape, batch=2, training=True, freeze_until=until)
    measured = torch_backward(f, until)
    assert _cnnsize(f) == measured
    assert f.totals["backward_macs"] < a.totals["backward_macs"]
    assert f.totals["training"]["backward_macs"] == sum(measured.values())
    assert all(f.layer(n).input_grad_macs is None for n in names[: names.index(until) + 1]
               if f.layer(n).macs)  # nothing before them trains


def test_training_totals_in_json(cli):
    doc = json.loads(cli("report", "lenet5", "--train", "-b", "2", "-f", "json").stdout)
    t = doc["totals"]["training"]
    assert t["precision"] == "float32" and t["accumulate"] == 1 and t["recompute_macs"] == 0
    assert t["forward_macs"] == doc["totals"]["macs"]
    assert t["backward_macs"] == t["input_grad_macs"] + t["weight_grad_macs"]
    assert t["step_macs"] == t["forward_macs"] + t["backward_macs"]
    assert doc["layers"][1]["weight_grad_macs"] == doc["layers"][1]["macs"] and "input_grad_macs" not in \
        doc["layers"][1]  # the first layer: no input gradient (null values are left out of a row)


def _measured_accumulated_peak(a, optimizer: str, micro_steps: int) -> int:
    """Bytes a steady-state step of ``micro_steps`` forwards and backwards, then the optimizer's step, allocates on
    the CPU (the profiler's record of every allocation, as tests/test_memory.py measures one step)."""
    from cnnsize.executor.validation import _peak_allocated

    model = cnnsize.build(a, device="cpu", init=True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = {"sgd": lambda: torch.optim.SGD(params, lr=0.1), "adam": lambda: torch.optim.Adam(params)}[optimizer]()
    x = torch.randn((a.batch, *a.input_shape))

    def step():
        for _ in range(micro_steps):
            model(x).float().sum().backward()
        opt.step()
        model.zero_grad(set_to_none=True)

    model.train()
    step()  # the first step makes the optimizer state, which stays resident
    return _peak_allocated(torch.device("cpu"), step).model


@pytest.mark.parametrize("spec, shape, optimizer", [
    ("lenet5", None, "sgd"), pytest.param("resnet18", (3, 64, 64), "sgd", marks=pytest.mark.slow)])
@pytest.mark.parametrize("micro_steps", [2, 3])
def test_accumulated_step_peak_equals_the_cpu_allocations(spec, shape, optimizer, micro_steps):
    """Gradient accumulation: the micro-steps after the first run with every gradient allocated. The step's peak
    against torch's real allocations, within test_memory's 3%; and the step's work is the micro-steps'."""
    a = cnnsize.analyze(spec, input_shape=shape, batch=2, device="cpu", optimizer=optimizer, accumulate=micro_steps)
    predicted = a.totals["memory"]["training_step_peak_bytes"]
    measured = _measured_accumulated_peak(a, optimizer, micro_steps)
    assert abs(measured - predicted) <= 0.03 * predicted, (a.totals["memory"]["training_peak_phase"], measured)
    one = cnnsize.analyze(spec, input_shape=shape, batch=2, device="cpu", optimizer=optimizer, training=True)
    t = a.totals["training"]
    assert t["accumulate"] == micro_steps and t["step_macs"] == micro_steps * one.totals["training"]["step_macs"]
    # with SGD (no optimizer temporaries) the peak is a backward's: holding the gradients raises it
    assert "gradients held" in a.totals["memory"]["training_peak_phase"]
    assert predicted > one.totals["memory"]["training_step_peak_bytes"]


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_bad_accumulate_is_one_line(cli, value):
    for command in ("report", "validate"):
        r = cli(command, "lenet5", "--accumulate", value)
        assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert "--accumulate" in r.stderr


def test_bad_accumulate_in_python():
    from cnnsize.core.errors import CnnsizeError

    for value in (0, -2, 1.5, True, "2"):
        with pytest.raises(CnnsizeError, match="accumulate must be a positive integer"):
            cnnsize.analyze("lenet5", accumulate=value)


def test_training_line_and_columns_in_the_report(cli):
    """--train adds the three columns and one totals line; --depth folds them as sums (null input gradients left
    out); the summed rows equal the totals."""
    a = cnnsize.analyze("resnet18", input_shape=(3, 32, 32), training=True)
    text = cli("report", "resnet18", "-i", "3x32x32", "--train", "--wide").stdout
    assert "Backward MACs" in text and "Training step (float32, batch 1)" in text
    folded = a.collapse(1)
    assert sum(r.backward_macs or 0 for r in folded.layers) == a.totals["backward_macs"]
    assert sum(r.input_grad_macs or 0 for r in a.layers) == a.totals["input_grad_macs"]
    records = a.to_records()
    assert records[0]["backward_macs"] is None and records[1]["input_grad_macs"] is None


def test_symbolic_sizes_give_the_numeric_figures():
    """With a symbolic input the step's work is a formula: at H = W = 32 it is lenet5's numbers."""
    import sympy

    h, w = sympy.symbols("H W", positive=True, integer=True)
    formula = cnnsize.analyze("lenet5", input_shape=(1, h, w), batch=2, training=True).totals["training"]
    numbers = cnnsize.analyze("lenet5", batch=2, training=True).totals["training"]
    for key, value in numbers.items():
        got = formula[key]
        assert (got.subs({h: 32, w: 32}) if hasattr(got, "subs") else got) == value, key


SMALL = {"r3d_18": (3, 8, 64, 64), "m5_speech": (1, 8000), "inception_v3": (3, 139, 139), "mobilenet_v1": None,
         "alexnet_2012": None, "alexnet_cs231n": None, "siamese_omniglot": None,
         "ssdlite320_mobilenet_v3_large": None}  # the others at 3×64×64


def _bundled() -> list[str]:
    from cnnsize.spec.sources import bundled_names

    from .conftest import heavy_detector

    return [name for name in bundled_names() if not heavy_detector(name)]


@pytest.mark.slow
@pytest.mark.parametrize("spec", _bundled())
def test_every_bundled_specs_backward_is_flop_counter_modes(spec):
    """Every bundled spec at a small size (its own where it takes no other), batch 2: each layer's backward MACs as
    FlopCounterMode counts them (about 4 minutes on 2 cores in all)."""
    a = cnnsize.analyze(spec, input_shape=SMALL.get(spec, (3, 64, 64)), batch=2, training=True)
    assert _cnnsize(a) == torch_backward(a, executor=len(a.inputs) > 1)  # several inputs: the executor's module


def test_grouped_weight_gradients_are_said():
    """MobileNetV2's depthwise weight gradients count C × their products in torch's count (checked per layer above):
    the report says how much that adds; ResNet-18 has no grouped convolution and no such note."""
    a = cnnsize.analyze("mobilenet_v2", input_shape=(3, 32, 32), training=True)
    beyond = sum(r.weight_grad_macs - r.macs for r in a.layers if r.kind is not None and r.weight_grad_macs > r.macs)
    assert beyond > 0 and any("groups × its forward products" in n for n in a.notes)
    assert not any("groups ×" in n for n in cnnsize.analyze("resnet18", input_shape=(3, 32, 32), training=True).notes)


def test_an_opaque_layers_backward_is_unknown_not_guessed(cli, tmp_path):
    """An opaque layer holds only the forward torch measured at import: its backward, and so the step's, is null
    (the others' stay known), and the report says so in one note."""
    spec = {"name": "o", "input": [3, 4, 4], "layers": [
        {"conv": {"filters": 2, "kernel": 1}},
        {"opaque": {"name": "odd", "op": "torch.special.thing", "shape": [2, 4, 4], "macs": 12, "weights": 3}},
        {"conv": {"filters": 2, "kernel": 1}}]}
    a = cnnsize.analyze(spec, training=True)
    assert a.layer("odd").backward_macs is None and a.layer("conv2").backward_macs == 2 * a.layer("conv2").macs
    assert a.totals["training"]["backward_macs"] is None and a.totals["training"]["step_macs"] is None
    assert any("Backward MACs unknown" in note and "odd" in note for note in a.notes)
    path = tmp_path / "o.yaml"
    path.write_text(json.dumps(spec))
    assert json.loads(cli("report", str(path), "--train", "-f", "json").stdout)["totals"]["training"][
        "backward_macs"] is None


SHARING = {"name": "sharing", "input": [3, 6, 6], "layers": [
    {"conv": {"name": "a", "filters": 3, "kernel": 3, "pad": 1}}, {"relu": {"name": "r"}},
    {"conv": {"name": "b", "filters": 3, "kernel": 3, "pad": 1, "shares": "a"}},
    {"conv": {"name": "c", "filters": 3, "kernel": 1, "trainable": ["bias"]}},
    {"conv": {"name": "d", "filters": 3, "kernel": 1, "shares": {"weight": "c"}}},
    {"flatten": {"name": "f"}}, {"fc": {"name": "e", "units": 4}}]}


@pytest.mark.parametrize("frozen", [None, "a", "c"])
def test_shared_tied_and_partly_trained_layers(frozen):
    """A layer calling another's module (``shares``) trains its weight as that one does; a weight tied to a layer
    training only its bias (``trainable: [bias]``) makes no weight gradient, but the bias makes the output require
    grad: against torch with cnnsize's executor, which shares and ties the very tensors."""
    a = cnnsize.analyze(SHARING, batch=2, training=True, freeze_until=frozen)
    assert _cnnsize(a) == torch_backward(a, frozen, executor=True)


def test_validate_checks_backward_macs_per_layer(monkeypatch):
    """cnnsize validate compares every layer's backward MACs with FlopCounterMode's count of a real backward (the
    counts this file's tests make), and their total; a deliberately wrong rule (a convolution's input gradient
    forgotten) fails at the layers it touches, named."""
    from cnnsize.layers.conv import Conv

    v = cnnsize.validate("resnet18", input_shape=(3, 16, 16), batch=2, device="cpu", runs=0)
    assert v.ok and v.totals["backward_macs"].measured == sum(torch_backward(
        cnnsize.analyze("resnet18", input_shape=(3, 16, 16), batch=2, training=True)).values())
    assert sum("backward_macs" in row.figures for row in v.layers) == len(v.layers) - 1
    original = Conv.backward_macs
    monkeypatch.setattr(Conv, "backward_macs", lambda self, *args: (0, original(self, *args)[1]))
    wrong = cnnsize.validate("lenet5", batch=2, device="cpu", runs=0)
    assert not wrong.ok and any("layer 'C3' backward_macs" in m for m in wrong.mismatches())
    assert "layer 'C1' backward_macs" not in " ".join(wrong.mismatches())  # the first layer has no input gradient


def test_an_output_nothing_reads_takes_part_in_backward():
    """The loss reads every output nothing reads (an auxiliary head), so backward reaches the layers before it; a
    detector's post-processing passes no gradient. Found by test_properties: l0 feeds only l1, an unread output."""
    spec = {"name": "unread", "input": [1, 3, 3], "fit": "floor", "layers": [
        {"fc": {"name": "l0", "units": 1, "bias": False}}, {"relu": {"name": "l1"}},
        {"relu": {"name": "l2", "from": "input"}}]}
    v = cnnsize.validate(spec, device="cpu", runs=0)  # its backward: the sum of every output's, torch's count
    assert v.ok, v.mismatches()
    measured = v.totals["backward_macs"].measured
    assert measured > 0 and measured == cnnsize.analyze(spec, training=True).totals["backward_macs"]
