"""Backend workspace on the CPU: measured apart from the model's tensors, reported, and never hiding a wrong figure.

oneDNN falls back to im2col + GEMM for the backward-weights pass of a widely dilated 3×3 convolution (DeepLabV3's
ASPP) and takes a scratchpad larger than the layer's tensors. The truth for what is workspace is torch's own memory
profiler (torch.profiler's MemoryProfile, run in the same test): storage no tensor ever owns, and its TEMPORARY
tensors (made and freed inside one operator).
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

import cnnsize  # noqa: E402
from cnnsize.cli import main  # noqa: E402

# two dilated 3×3 convolutions on a 14×14 map, as the ASPP of deeplabv3 at 224×224 (dilation 12 and 6)
ASPP = {"name": "aspp", "input": [128, 14, 14], "layers": [
    {"conv": {"filters": 128, "kernel": 3, "pad": 12, "dilation": 12, "bias": False}}, "relu",
    {"conv": {"filters": 128, "kernel": 3, "pad": 6, "dilation": 6}}]}
# the same on a larger map with fewer channels, one convolution straight into the next: the step's peak falls in
# the backward pass, and the first convolution's output is saved by the second alone (the relu first keeps the input,
# which the caller allocates before the measured step, out of what is saved)
ASPP_28 = {**ASPP, "name": "aspp_28", "input": [64, 28, 28], "layers": [
    "relu", {"conv": {"filters": 64, "kernel": 3, "pad": 12, "dilation": 12, "bias": False}},
    {"conv": {"filters": 64, "kernel": 3, "pad": 12, "dilation": 12}}]}


def _torch_memory_profile(spec, shape=None, batch=2):
    """(the model's peak, the overall peak) of a steady Adam step by torch's memory profiler, and ours."""
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action, Category, MemoryProfileTimeline, TensorKey

    from cnnsize.executor.validation import _split_workspace

    a = cnnsize.analyze(spec, input_shape=shape, batch=batch, device="cpu")
    model = cnnsize.build(a, device="cpu", init=True)
    opt = torch.optim.Adam(model.parameters())
    x = torch.randn(batch, *a.input_shape)

    def step():
        model(x).sum().backward()
        opt.step()
        model.zero_grad(set_to_none=True)

    model.train()
    step()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as p:
        step()
    ours = _split_workspace(p.profiler.kineto_results.experimental_event_tree())
    memory = p._memory_profile()
    tensors = workspace = tensors_peak = overall = 0
    for _, action, (key, version), nbytes in MemoryProfileTimeline(memory).timeline:
        if action not in (Action.CREATE, Action.DESTROY):
            continue
        signed = nbytes if action == Action.CREATE else -nbytes
        if not isinstance(key, TensorKey) or memory._categories.get(key, version) == Category.TEMPORARY:
            workspace += signed
        else:
            tensors += signed
        tensors_peak, overall = max(tensors_peak, tensors), max(overall, tensors + workspace)
    return (tensors_peak, overall), ours, a


@pytest.mark.parametrize("spec,shape", [(ASPP, None), ("resnet18", (3, 32, 32))])
def test_workspace_is_what_torchs_memory_profiler_calls_untracked_or_temporary(spec, shape):
    (tensors_peak, overall), ours, a = _torch_memory_profile(spec, shape)
    assert (ours.model, ours.total) == (tensors_peak, overall)
    predicted = a.totals["memory"]["training_step_peak_bytes"]
    assert abs(ours.model - predicted) <= 64  # the loss and Adam's step counters, a few bytes
    if spec is ASPP:  # the scratchpad is larger than every tensor of the model together
        assert ours.workspace > ours.model and ours.op == "aten::convolution_backward"


def test_validation_passes_and_reports_the_workspace_in_every_format(tmp_path, capsys):
    v = cnnsize.validate(ASPP, device="cpu", runs=0, batch=2)
    assert v.ok, v.mismatches()
    step = v.totals["training_step_peak_bytes"]
    assert step.workspace > 2 * cnnsize.analyze(ASPP, batch=2).totals["memory"]["training_step_peak_bytes"]
    assert step.measured_total > step.measured + step.workspace // 2
    note = next(n for n in v.notes if n.startswith("backend workspace at the training peak: "))
    assert "in aten::convolution_backward, not part of the model's memory" in note
    doc = v.to_dict()["totals"]["training_step_peak_bytes"]
    assert doc["workspace_bytes"] == step.workspace and doc["workspace_op"] == "aten::convolution_backward"
    frame = v.to_frame()
    assert frame.attrs["backend_workspace"]["bytes"] == step.workspace and note in frame.attrs["notes"]

    path = tmp_path / "aspp.yaml"
    path.write_text(json.dumps(ASPP))  # JSON is YAML
    assert main(["validate", str(path), "--device", "cpu", "--runs", "0", "--batch", "2", "-f", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["totals"]["training_step_peak_bytes"]["workspace_op"] == "aten::convolution_backward"
    assert any(n.startswith("backend workspace at the training peak") for n in doc["notes"])
    assert main(["validate", str(path), "--device", "cpu", "--runs", "0", "--batch", "2"]) == 0
    assert "note: backend workspace at the training peak: " in capsys.readouterr().out


def test_a_missing_saved_tensor_still_fails(monkeypatch):
    """Leaving the workspace out must not hide a wrong prediction: forget the tensor each conv saves for its
    backward (its input), and the training peak, like the saved bytes, no longer matches torch."""
    from cnnsize.layers.conv import Conv

    def nothing(self, ins, out, own, device):
        return []

    right = cnnsize.validate(ASPP_28, device="cpu", runs=0, batch=2)
    assert right.ok and right.totals["training_step_peak_bytes"].workspace > 2**20, right.mismatches()
    monkeypatch.setattr(Conv, "saved", nothing)
    v = cnnsize.validate(ASPP_28, device="cpu", runs=0, batch=2)
    assert not v.totals["training_step_peak_bytes"].ok
    assert not v.totals["saved_for_backward_bytes"].ok
    assert any(m.startswith("total training_step_peak_bytes") for m in v.mismatches())

