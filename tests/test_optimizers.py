"""Adafactor (torch.optim.Adafactor) and 8-bit Adam (bitsandbytes' Adam8bit/AdamW8bit): the state cnnsize counts
against the tensors the real optimizers keep after a step, and Adafactor's step peak against torch's CPU allocations
(the profiler's record of every allocation, test_memory's 3%). bitsandbytes runs on the CPU since 0.50: its test is
in the zoo set; its CPU step dequantizes each tensor's states to float32, which cnnsize (modelling the CUDA kernel,
in place) does not count, so only the state is compared."""

from __future__ import annotations

import pytest

import cnnsize
from cnnsize.engine import optimizers

from .conftest import need

torch = pytest.importorskip("torch")
slow = pytest.mark.slow

NETS = [("lenet5", None), pytest.param("resnet18", (3, 64, 64), marks=slow),
        pytest.param("mobilenet_v2", (3, 64, 64), marks=slow), pytest.param("vit_b_16", None, marks=slow)]


def _stepped(a, make):
    """The built network and its optimizer after one step (the state made), and a steady-state step to measure."""
    model = cnnsize.build(a, device="cpu", init=True)
    opt = make([p for p in model.parameters() if p.requires_grad])
    x = torch.randn((a.batch, *a.input_shape))

    def step():
        model(x).float().sum().backward()
        opt.step()
        model.zero_grad(set_to_none=True)

    model.train()
    step()
    return opt, step


def _state_bytes(opt) -> int:
    """Bytes of every tensor the optimizer keeps, each storage once (bitsandbytes shares its quantization maps), the
    step counters apart (a host scalar in torch, an int in bitsandbytes: not counted)."""
    seen = {v.data_ptr(): v.nbytes for s in opt.state.values() for k, v in s.items() if torch.is_tensor(v)
            and k != "step"}
    return sum(seen.values())


@pytest.mark.parametrize("spec, shape", NETS)
def test_adafactor_state_and_step_peak_equal_torchs(spec, shape):
    from cnnsize.executor.validation import _peak_allocated

    a = cnnsize.analyze(spec, input_shape=shape, batch=2, device="cpu", optimizer="adafactor")
    opt, step = _stepped(a, torch.optim.Adafactor)
    m = a.totals["memory"]
    assert m["optimizer_bytes"] == _state_bytes(opt)
    assert all(s["step"].device.type == "cpu" and s["step"].dim() == 0 for s in opt.state.values())
    measured = _peak_allocated(torch.device("cpu"), step).model
    predicted = m["training_step_peak_bytes"]
    assert abs(measured - predicted) <= 0.03 * predicted, (m["training_peak_phase"], measured)


def test_adafactor_factors_a_convolutions_last_two_axes():
    """torch factors a (O, I, kh, kw) weight over (kh, kw): row and column factors of O·I·kh and O·I·kw values."""
    conv = torch.nn.Conv2d(8, 16, (3, 5))
    opt = torch.optim.Adafactor(conv.parameters())
    conv(torch.randn(1, 8, 9, 9)).sum().backward()
    opt.step()
    a = cnnsize.analyze("name: c\ninput: [8, 9, 9]\nlayers:\n  - conv: {filters: 16, kernel: [3, 5]}\n", device="cpu",
                        optimizer="adafactor")
    assert a.totals["memory"]["optimizer_bytes"] == _state_bytes(opt) == 4 * (16 * 8 * 3 + 16 * 8 * 5 + 16)


@pytest.mark.zoo
@pytest.mark.parametrize("spec, shape", [("lenet5", None), ("resnet18", (3, 64, 64)), ("mobilenet_v2", (3, 64, 64))])
@pytest.mark.parametrize("name", optimizers.EIGHT_BIT)
def test_8bit_adam_state_equals_bitsandbytes(spec, shape, name):
    bnb = need("bitsandbytes")
    a = cnnsize.analyze(spec, input_shape=shape, batch=2, device="cpu", optimizer=name)
    opt, _ = _stepped(a, {"adam8bit": bnb.optim.Adam8bit, "adamw8bit": bnb.optim.AdamW8bit}[name])
    assert a.totals["memory"]["optimizer_bytes"] == _state_bytes(opt)
    assert any(s["state1"].dtype == torch.uint8 for s in opt.state.values())  # some tensors are 8-bit
    assert any(s["state1"].dtype == torch.float32 for s in opt.state.values())  # the small ones are not


def test_new_optimizers_are_valid_names(cli):
    for name in ("adafactor", "adam8bit", "adamw8bit"):
        r = cli("report", "lenet5", "--optimizer", name, "-f", "json")
        assert r.returncode == 0, r.stderr
    bad = cli("report", "lenet5", "--optimizer", "adam_8bit")
    assert bad.returncode == 2 and "did you mean 'adam8bit'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_grad_scaler_state_is_torchs():
    """fp16-mixed counts torch.amp.GradScaler's state (its scale and growth tracker) against the real scaler's
    tensors after a step (on the CPU, where torch 2.3 on runs it)."""
    from cnnsize.engine.memory import GRAD_SCALER_BYTES

    layer = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    scaler.scale(layer(torch.randn(3, 4)).sum()).backward()
    scaler.step(opt)
    scaler.update()
    assert scaler._scale.nbytes + scaler._growth_tracker.nbytes == GRAD_SCALER_BYTES
    with_scaler = cnnsize.analyze("lenet5", precision="fp16-mixed").totals["memory"]
    bf16 = cnnsize.analyze("lenet5", precision="bf16-mixed").totals["memory"]
    assert with_scaler["training_bytes"] - with_scaler["training_step_peak_bytes"] == \
        bf16["training_bytes"] - bf16["training_step_peak_bytes"] + GRAD_SCALER_BYTES


def test_fp16_without_a_scaler_is_refused(cli):
    r = cli("report", "lenet5", "--precision", "fp16-mixed", "--no-grad-scaler")
    assert r.returncode == 2 and "fp16 without a scaler underflows" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert cli("report", "lenet5", "--precision", "bf16-mixed", "--no-grad-scaler").returncode == 0
    with pytest.raises(cnnsize.CnnsizeError, match="underflows"):
        cnnsize.analyze("lenet5", amp=True, grad_scaler=False)
    r = cli("plan", "lenet5", "--device", "h100", "--precision", "fp16-mixed", "--no-grad-scaler")
    assert r.returncode == 2 and "underflows" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    found = cnnsize.plan("lenet5", "h100", grad_scaler=False)
    assert {c["precision"] for c in found["configurations"]} == {"float32", "bf16-mixed", "bf16", "fp16"}
    assert any("fp16 without a scaler underflows" in note for note in found["notes"])


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adamw", "adafactor"])
def test_validate_measures_the_step_with_the_optimizer_asked_for(optimizer):
    """validate --optimizer runs torch's optimizer of that name in the measured step: its peak against cnnsize's for
    the same optimizer (the state sizes differ by optimizer, so a step run with Adam would not match)."""
    v = cnnsize.validate("lenet5", device="cpu", runs=0, optimizer=optimizer)
    figure = v.totals["training_step_peak_bytes"]
    assert v.ok, v.mismatches()
    assert figure.predicted == cnnsize.analyze("lenet5", batch=v.batch, training=True, optimizer=optimizer,
                                               device="cpu").totals["memory"]["training_step_peak_bytes"]
    assert f"the training step measured with {optimizer}" in v.notes


@pytest.mark.parametrize("args, words", [(["--optimizer", "adam8bit"], "measured on CUDA only"),
                                         (["--optimizer", "adamm"], "did you mean 'adam'")])
def test_validate_refuses_an_optimizer_it_cannot_measure_in_one_line(cli, args, words):
    result = cli("validate", "lenet5", "--device", "cpu", "--runs", "0", *args)
    assert result.returncode == 2 and words in result.stderr and len(result.stderr.strip().splitlines()) == 1
