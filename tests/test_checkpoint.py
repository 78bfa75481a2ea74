"""Activation checkpointing (--checkpoint every:N|LIST, --checkpoint-impl) against torch on the CPU: the training
step's peak with the segments under torch.utils.checkpoint (both variants) against every allocation torch makes (the
profiler's record, as tests/test_memory.py measures a plain step), within the same 3%; the work it recomputes
against FlopCounterMode's count of the real checkpointed step less a plain one; with gradient accumulation and a
frozen prefix; and what the reentrant variant leaves untrained, against the gradients torch makes.
"""

from __future__ import annotations

import json
import warnings

import pytest

import cnnsize

torch = pytest.importorskip("torch")

slow = pytest.mark.slow
IMPLS = ("non-reentrant", "reentrant")


def _step(a, optimizer: str = "sgd", micro_steps: int = 1, frozen: str | None = None):
    """(model, the parameters trained, one training step) of the built network as ``a`` says: its segments under
    torch.utils.checkpoint, ``micro_steps`` forwards and backwards, then the optimizer's step; the input made in the
    step, as a data loader's batch."""
    from cnnsize.executor.validation import checkpointed_run

    torch.manual_seed(0)
    model = cnnsize.build(a, device="cpu", init=True)
    if frozen is not None:
        names = [node.name for node in a.graph.nodes]
        for name in names[: names.index(frozen) + 1]:
            for p in model.layer(name).parameters(recurse=False):
                p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = {"sgd": lambda: torch.optim.SGD(params, lr=0.1), "adam": lambda: torch.optim.Adam(params)}[optimizer]()
    run = checkpointed_run(model, a.checkpoint["spans"], a.checkpoint["impl"] == "reentrant") \
        if a.checkpoint else model.with_heads

    def step():
        for _ in range(micro_steps):
            outputs = [y for y in run(torch.randn((a.batch, *a.input_shape))) if y.requires_grad]
            sum(y.float().sum() for y in outputs).backward()
        opt.step()
        model.zero_grad(set_to_none=True)

    model.train()
    return model, params, step


def measured_peak(a, optimizer: str = "sgd", micro_steps: int = 1, frozen: str | None = None) -> int:
    """Bytes a steady-state checkpointed step allocates on the CPU beyond the model and its state."""
    from cnnsize.executor.validation import _peak_allocated

    _, _, step = _step(a, optimizer, micro_steps, frozen)
    with warnings.catch_warnings():  # reentrant: "None of the inputs have requires_grad=True" (see below)
        warnings.simplefilter("ignore")
        step()  # the first step makes the optimizer state, which stays resident
        return _peak_allocated(torch.device("cpu"), step).model


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def measured_work(a, frozen: str | None = None) -> tuple[int, int]:
    """The MACs FlopCounterMode counts in a checkpointed forward and backward (its recomputation shows in the
    backward), and in the same step without checkpointing."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from cnnsize.executor.validation import checkpointed_run

    model, _, _ = _step(a, frozen=frozen)
    x = torch.randn((a.batch, *a.input_shape))
    counts = []
    for run in (checkpointed_run(model, a.checkpoint["spans"], a.checkpoint["impl"] == "reentrant"),
                model.with_heads):
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            outputs = [y for y in run(x) if y.requires_grad]
            sum(y.float().sum() for y in outputs).backward()
        counts.append(counter.get_total_flops())
        model.zero_grad(set_to_none=True)
    return counts[0] // 2, counts[1] // 2


def _check(spec, shape, batch, setting, impl, optimizer="sgd", accumulate=None, frozen=None):
    a = cnnsize.analyze(spec, input_shape=shape, batch=batch, device="cpu", optimizer=optimizer, checkpoint=setting,
                        checkpoint_impl=impl, accumulate=accumulate, freeze_until=frozen)
    predicted = a.totals["memory"]["training_step_peak_bytes"]
    measured = measured_peak(a, optimizer, accumulate or 1, frozen)
    assert abs(measured - predicted) <= 0.03 * predicted, (a.totals["memory"]["training_peak_phase"], measured,
                                                           predicted)
    t = a.totals["training"]
    checkpointed, plain = measured_work(a, frozen)
    assert t["forward_macs"] + t["backward_macs"] + t["recompute_macs"] == checkpointed
    if not a.checkpoint["untrained"]:  # the same backward: what checkpointing adds is what it recomputes
        assert t["recompute_macs"] == checkpointed - plain
    return a


NETWORKS = [  # (spec, input, batch, checkpoint): every:N and a list of blocks, each network at a small size
    ("lenet5", None, 16, "every:2"), ("lenet5", None, 16, "C3,F5"),
    pytest.param("resnet18", (3, 32, 32), 8, "layer1,layer3", marks=slow),
    pytest.param("resnet18", (3, 64, 64), 16, "every:3", marks=slow),
    pytest.param("resnet18", (3, 64, 64), 16, "layer2.0,layer4", marks=slow),
    pytest.param("mobilenet_v2", (3, 64, 64), 16, "every:4", marks=slow),
    pytest.param("mobilenet_v2", (3, 64, 64), 16, "features.2,features.4,features.7", marks=slow),
    pytest.param("densenet121", (3, 64, 64), 4, "every:2", marks=slow),
    pytest.param("densenet121", (3, 64, 64), 4, "features.denseblock1,features.denseblock3", marks=slow),
    pytest.param("convnext_tiny", (3, 64, 64), 4, "every:2", marks=slow),
    pytest.param("convnext_tiny", (3, 64, 64), 4, "features.1,features.5", marks=slow),
    pytest.param("vit_b_16", (3, 32, 32), 8, "every:1", marks=slow),
    pytest.param("vit_b_16", (3, 32, 32), 8, "encoder.layers.encoder_layer_1,encoder.layers.encoder_layer_6",
                 marks=slow)]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("spec, shape, batch, setting", NETWORKS)
def test_checkpointed_step_peak_and_recompute_are_torchs(spec, shape, batch, setting, impl):
    """The step's peak, each segment's forward keeping only its inputs and its backward recomputing it (the
    non-reentrant variant stopping where the last tensor it needs is saved again; the reentrant one running the
    whole segment and then its backward), within 3% of torch's allocations; the MACs recomputed exactly."""
    a = _check(spec, shape, batch, setting, impl)
    assert a.totals["training"]["checkpoint"] == setting and a.totals["training"]["checkpoint_impl"] == impl


def test_checkpointing_saves_memory_and_costs_work():
    """Where activations dominate (SGD, a large batch) checkpointing lowers the step's peak, and the step's work
    grows by the MACs recomputed."""
    plain = cnnsize.analyze("resnet18", input_shape=(3, 64, 64), batch=32, optimizer="sgd", training=True)
    ckpt = cnnsize.analyze("resnet18", input_shape=(3, 64, 64), batch=32, optimizer="sgd", checkpoint="every:2")
    assert ckpt.totals["memory"]["training_step_peak_bytes"] < plain.totals["memory"]["training_step_peak_bytes"]
    t = ckpt.totals["training"]
    assert t["recompute_macs"] > 0 and t["step_macs"] == plain.totals["training"]["step_macs"] + t["recompute_macs"]
    assert t["recompute_macs"] == sum(r.macs for r in ckpt.layers if r.recomputed)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("spec, shape, setting, micro_steps", [
    ("lenet5", None, "S2,F5", 2), pytest.param("resnet18", (3, 32, 32), "layer1,layer3", 3, marks=slow),
    pytest.param("mobilenet_v2", (3, 32, 32), "every:4", 4, marks=slow)])
def test_checkpointing_with_accumulation(spec, shape, setting, micro_steps, impl):
    """Gradient accumulation over 2-4 micro-steps with checkpointed segments: the recomputation runs with every
    parameter gradient held."""
    a = _check(spec, shape, 8, setting, impl, accumulate=micro_steps)
    t = a.totals["training"]
    assert t["step_macs"] == micro_steps * (t["forward_macs"] + t["backward_macs"] + t["recompute_macs"])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("spec, shape, setting, frozen", [
    ("lenet5", None, "C3,F5", "S2"), pytest.param("resnet18", (3, 32, 32), "layer1,layer3", "layer1.0.relu2",
                                                  marks=slow)])
def test_checkpointing_with_a_frozen_prefix(spec, shape, setting, frozen, impl):
    """A frozen prefix reaching into a checkpointed segment: what is frozen keeps nothing, the segment still
    recomputes from its start."""
    _check(spec, shape, 8, setting, impl, frozen=frozen)


def test_reentrant_segments_without_grad_inputs_train_nothing():
    """torch's reentrant checkpoint makes no gradient for the parameters of a segment none of whose inputs requires
    grad (the first one, reading the data): cnnsize counts them untrained, as the gradients torch makes say; the
    non-reentrant variant trains them."""
    for impl, untrained in (("reentrant", True), ("non-reentrant", False)):
        a = cnnsize.analyze("lenet5", batch=4, device="cpu", optimizer="sgd", checkpoint="C1,F5",
                            checkpoint_impl=impl)
        model, _, step = _step(a)
        with pytest.warns(UserWarning, match="None of the inputs") if untrained else _no_warning():
            outputs = checkpoint_outputs(a, model)
            outputs.backward()
        got = {name for name in a.checkpoint["segments"] if model.layer(name).weight.grad is None}
        assert got == ({"C1"} if untrained else set())
        assert a.checkpoint["untrained"] == got
        assert (a.layer("C1").backward_macs == 0) == untrained
        assert any("Reentrant checkpointing" in note for note in a.notes) == untrained


def checkpoint_outputs(a, model):
    from cnnsize.executor.validation import checkpointed_run

    run = checkpointed_run(model, a.checkpoint["spans"], a.checkpoint["impl"] == "reentrant")
    return sum(y.float().sum() for y in run(torch.randn((a.batch, *a.input_shape))))


def test_checkpoint_in_json_and_the_report(cli):
    doc = json.loads(cli("report", "resnet18", "-i", "3x32x32", "--checkpoint", "layer1,layer3", "-f",
                         "json").stdout)
    t = doc["totals"]["training"]
    assert t["checkpoint"] == "layer1,layer3" and t["checkpoint_impl"] == "non-reentrant"
    assert t["checkpoint_segments"] == ["layer1", "layer3"]
    assert t["step_macs"] == t["forward_macs"] + t["backward_macs"] + t["recompute_macs"] and t["recompute_macs"] > 0
    rows = {row["name"]: row for row in doc["layers"]}
    assert rows["layer1.0.conv1"]["recomputed"] is True and rows["layer2.0.conv1"]["recomputed"] is False
    assert rows["layer3.1.bn2"]["recomputed"] is True
    text = cli("report", "resnet18", "-i", "3x32x32", "--checkpoint", "every:2", "--wide").stdout
    assert "Recomputed" in text and "+ recompute" in text and "Checkpointing (every:2, non-reentrant)" in text
    plain = json.loads(cli("report", "lenet5", "--train", "-f", "json").stdout)["totals"]["training"]
    assert plain["checkpoint"] is None and plain["recompute_macs"] == 0


def test_python_api_forms():
    """The call forms other tools use: checkpoint="every:N" and checkpoint=None."""
    a = cnnsize.analyze("resnet18", input_shape=(3, 32, 32), checkpoint="every:2")
    b = cnnsize.analyze("resnet18", input_shape=(3, 32, 32), checkpoint=None, training=True)
    assert a.totals["training"]["recompute_macs"] > 0 and b.totals["training"]["recompute_macs"] == 0
    assert b.checkpoint is None and a.checkpoint["segments"][0] == "conv1..bn1"


@pytest.mark.parametrize("args, words", [
    (["--checkpoint", "layer9"], "did you mean 'layer4'"),
    (["--checkpoint", "every:0"], "positive integer"),
    (["--checkpoint", "every:10"], "leaves none to checkpoint"),
    (["--checkpoint", "layer1,layer1.0"], "overlap"),
    (["--checkpoint", "relu"], "writes in place"),
    (["--checkpoint", "layer1", "--checkpoint-impl", "reentrent"], "did you mean 'reentrant'"),
    (["--checkpoint", ","], "names no layer")])
def test_bad_checkpoint_is_one_line(cli, args, words):
    # validate reads the option as report does (the same parser): one case is enough for it in the default set
    for command in ("report", "validate") if words == "overlap" else ("report",):
        r = cli(command, "resnet18", "-i", "3x32x32", *args)
        assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert words in r.stderr


def test_a_network_of_one_block_has_nothing_to_cut(cli, tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text("name: one\ninput: [3, 8, 8]\nlayers:\n  - conv: {filters: 4, kernel: 3}\n")
    r = cli("report", str(path), "--checkpoint", "every:1")
    assert r.returncode == 2 and "none to cut" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_every_n_keeps_in_place_layers_with_what_they_write():
    """ResNet's stem ReLU writes the batch norm's output in place: torch cannot checkpoint it apart (its input would
    change under checkpoint); every:1 puts it in the batch norm's segment, and torch runs that step."""
    a = cnnsize.analyze("resnet18", input_shape=(3, 32, 32), batch=2, device="cpu", checkpoint="every:1")
    assert ("bn1", 2, 3) in a.checkpoint["spans"]
    model, _, step = _step(a)
    step()


@pytest.mark.parametrize("impl, setting", [("non-reentrant", "every:2"),
                                           pytest.param("reentrant", "S2,F5", marks=slow)])
def test_validate_measures_the_checkpointed_step(cli, impl, setting):
    """validate --checkpoint runs the step with torch.utils.checkpoint: its peak, its work and what it recomputes.
    (Non-reentrant, S2 and F5 alone recompute nothing: F5's matrix product is where torch's early stop halts.)"""
    doc = json.loads(cli("validate", "lenet5", "-b", "4", "--device", "cpu", "--runs", "0", "--checkpoint",
                         setting, "--checkpoint-impl", impl, "-f", "json").stdout)
    assert doc["ok"], doc["mismatches"]
    expected = cnnsize.analyze("lenet5", batch=4, device="cpu", checkpoint=setting, checkpoint_impl=impl)
    assert doc["totals"]["training_step_peak_bytes"]["predicted"] == \
        expected.totals["memory"]["training_step_peak_bytes"]
    assert doc["totals"]["recompute_macs"]["predicted"] == expected.totals["training"]["recompute_macs"] > 0


def test_auto_picks_the_cheapest_segments_that_fit(cli):
    """--checkpoint auto: the every:N whose whole training budget fits --device-memory with the fewest MACs
    recomputed (each every:N's figures are the ones checked against torch above); none where the step fits without;
    one line where nothing fits, naming the least it needs."""
    kwargs = {"input_shape": (3, 64, 64), "batch": 32, "optimizer": "sgd", "device": "cpu"}
    plain = cnnsize.analyze("resnet18", training=True, **kwargs).totals["memory"]["training_bytes"]
    options = {n: cnnsize.analyze("resnet18", checkpoint=f"every:{n}", **kwargs) for n in range(1, 10)}
    budget = (plain + min(a.totals["memory"]["training_bytes"] for a in options.values())) // 2
    fits = [a for a in options.values() if a.totals["memory"]["training_bytes"] <= budget]
    cheapest = min(a.totals["training"]["recompute_macs"] for a in fits)
    a = cnnsize.analyze("resnet18", checkpoint="auto", device_memory=budget, **kwargs)
    t = a.totals["training"]
    assert t["checkpoint"] == "auto" and t["recompute_macs"] == cheapest
    assert a.totals["memory"]["training_bytes"] <= budget < plain
    assert options[int(t["checkpoint_chosen"].split(":")[1])].totals["memory"] == a.totals["memory"]
    roomy = cnnsize.analyze("resnet18", checkpoint="auto", device_memory=f"{plain}B", **kwargs).totals["training"]
    assert roomy["checkpoint_chosen"] is None and roomy["recompute_macs"] == 0
    r = cli("report", "resnet18", "-i", "3x64x64", "-b", "32", "--optimizer", "sgd", "--device", "cpu",
            "--checkpoint", "auto", "--device-memory", "1MiB")
    assert r.returncode == 2 and "no checkpointing fits" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    for command in ("report", "validate"):
        r = cli(command, "lenet5", "--checkpoint", "auto")
        assert r.returncode == 2 and "--device-memory" in r.stderr and len(r.stderr.strip().splitlines()) == 1
