"""Parameters a forward never calls (unused aux heads, a ModuleDict's other choices, a spare layer) import as
``unused`` layers: they count in params, buffers and memory as torch counts them, carry no MACs, and survive
a round trip through the spec's YAML; the MACs are those of the forward in the module's mode."""

from __future__ import annotations

import pytest

import cnnsize

from .conftest import need, run_cli

torch = pytest.importorskip("torch")
nn = torch.nn


class UnusedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.spare = nn.Linear(8, 100)  # never called
        self.choices = nn.ModuleDict({"a": nn.Linear(8, 8),
                                      "b": nn.Sequential(nn.Linear(8, 3), nn.BatchNorm1d(3))})
        self.choices["b"][0].requires_grad_(False)

    def forward(self, x):
        return self.fc(self.choices["a"](x))


def torch_truth(model, shape) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    params = list(model.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, *shape))
    return {"params": sum(p.numel() for p in params),
            "trainable_params": sum(p.numel() for p in params if p.requires_grad),
            "buffers": sum(b.numel() for b in model.buffers()), "macs": counter.get_total_flops() // 2}


def figures(spec) -> dict:
    totals = cnnsize.analyze(spec).totals
    return {k: totals[k] for k in ("params", "trainable_params", "buffers", "macs")}


@pytest.mark.parametrize("opaque", [False, True])
def test_parameters_nobody_calls_count_and_round_trip(opaque):
    model = UnusedNet().eval()
    imported = cnnsize.from_torch(model, (8,), opaque=opaque)
    truth = torch_truth(model, (8,))
    assert figures(imported.spec) == truth
    assert figures(imported.yaml) == truth  # the written spec keeps them
    rows = {r.name: r for r in imported.analyze().layers}
    assert rows["spare"].type == "unused" and rows["spare"].macs == 0
    assert rows["spare"].params == model.spare.weight.numel() + model.spare.bias.numel()


def test_unused_layers_are_shown_and_validate(tmp_path):
    spec = tmp_path / "unused.yaml"
    spec.write_text(cnnsize.from_torch(UnusedNet().eval(), (8,)).yaml, encoding="utf-8")
    shown = run_cli("report", str(spec), "--width", "200")
    assert shown.returncode == 0 and "never called: spare (Linear)" in shown.stdout
    v = cnnsize.validate(str(spec), device="cpu", runs=0)
    assert v.ok, v.mismatches()


@pytest.mark.zoo
@pytest.mark.parametrize("name,size", [("googlenet", 224), ("inception_v3", 299)])
def test_eval_forward_sizes_what_eval_runs_and_counts_every_parameter(name, size):
    """googlenet in eval mode: no aux heads run (FlopCounterMode: 1,498,376,192 MACs at 224), but the module holds
    13,004,888 parameters, as torchinfo's eval summary counts them."""
    models = need("torchvision.models")
    model = models.get_model(name, weights=None).eval()
    imported = cnnsize.from_torch(model, (3, size, size))
    assert figures(imported.spec) == torch_truth(model, (3, size, size))
    assert figures(imported.yaml) == torch_truth(model, (3, size, size))
    assert "vars" not in imported.spec  # nothing to switch: the aux heads are unused layers


def test_a_tensor_read_by_the_root_leaves_other_modules_unused():
    class Root(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(8))
            self.fc = nn.Linear(8, 8)
            self.spare = nn.Linear(8, 8)

        def forward(self, x):
            return self.fc(x) * self.scale

    model = Root().eval()
    imported = cnnsize.from_torch(model, (8,))
    assert figures(imported.spec) == torch_truth(model, (8,))
    assert [r.name for r in imported.analyze().layers if r.type == "unused"] == ["spare"]
