"""from_torch: models traced with torch.fx become specs with the same figures, checked against torch itself
and, for every bundled spec, against the analysis of the spec the model was built from (a round trip)."""

from __future__ import annotations

import sys
import textwrap

import pytest
import yaml

import cnnsize
from cnnsize.engine.result import COUNT_FIELDS
from cnnsize.spec.sources import bundled_names

from .conftest import run_cli

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class Block(nn.Module):
    """A ResNet basic block written in plain torch: functional relu, += and torch.relu."""

    def __init__(self, c: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 2 * c if stride == 2 else c, 3, stride=stride, padding=1, bias=False)
        out = self.conv1.out_channels
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.down = nn.Sequential(nn.Conv2d(c, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)) \
            if stride == 2 else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x if self.down is None else self.down(x)
        return torch.relu(out)


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 7, stride=2, padding=3), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        self.layer1 = nn.Sequential(Block(16), Block(16, stride=2))
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, 10))

    def forward(self, x):
        x = self.layer1(self.stem(x))
        x = x.mean((2, 3))
        return self.head(x)


class Mixer(nn.Module):
    """Branches joined with torch.cat, a squeeze-and-excitation gate (*), chunk and a view(N, -1)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 5, padding=2)

    def forward(self, x):
        y = torch.cat([self.a(x), self.b(x)], 1)
        y = y * torch.sigmoid(F.adaptive_avg_pool2d(y, 1))
        p, q = y.chunk(2, 1)
        z = F.max_pool2d(p + q, 2)
        return z.view(z.size(0), -1)


def _totals(a):
    out = {k: a.totals[k] for k in (*COUNT_FIELDS, "weight_layers")}
    out["receptive_field"] = a.totals["receptive_field"]
    out["memory"] = {k: a.totals["memory"][k] for k in ("params_bytes", "activations_bytes", "inference_peak_bytes")}
    return out


@pytest.mark.parametrize("make", [TinyResNet, Mixer])
def test_hand_written_models_match_torch(make):
    model = make().eval()
    imported = cnnsize.from_torch(model, (3, 45, 45))  # 45 does not divide: torch's floor rule
    a = imported.analyze()
    assert a.totals["params"] == sum(p.numel() for p in model.parameters())
    assert a.totals["buffers"] == sum(b.numel() for b in model.buffers())
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = model(torch.zeros(1, 3, 45, 45))
    assert a.totals["flops"] == counter.get_total_flops()
    assert a.layers[-1].output_shape == tuple(out.shape[1:])
    kinds = [r.type for r in a.layers]
    if make is TinyResNet:
        assert kinds.count("add") == 2 and "global_avgpool" in kinds and kinds[-1] == "fc"
    else:
        assert {"concat", "mul", "chunk", "add", "flatten"} <= set(kinds)
    # the imported spec, built and run by cnnsize in torch: every per-layer figure and the totals agree
    v = cnnsize.validate(imported.spec, device="cpu", runs=0)
    assert all(row.ok for row in v.layers)
    assert all(f.ok for f in v.totals.values()), v.mismatches()
    assert yaml.safe_load(imported.yaml) == imported.spec  # the YAML text is the same spec
    assert cnnsize.analyze(imported.yaml).totals == a.totals


def test_unsupported_operation_is_named_with_its_place():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.Softplus()))
    with pytest.raises(cnnsize.CnnsizeError, match=r"Softplus.*fx node '_1_0'.*module '1\.0'"):
        cnnsize.from_torch(model, (3, 8, 8))

    class Mixer(nn.Module):  # rows of 64 values from across the samples: no per-sample layer
        def forward(self, x):
            return x.reshape(3, -1)

    with pytest.raises(cnnsize.CnnsizeError, match=r"reshape to \[3, 64\] \(it mixes the samples.*fx node 'reshape'"):
        cnnsize.from_torch(Mixer(), (3, 8, 8))

    class LastAxisLinear(nn.Module):  # was refused before the linear kind: now a layer on the last axis
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(x)

    a = cnnsize.from_torch(LastAxisLinear(), (3, 8, 8)).analyze()
    assert a.layers[-1].type == "linear" and a.layers[-1].output_shape == (3, 8, 2)
    assert a.totals["params"] == 8 * 2 + 2 and a.totals["macs"] == 3 * 8 * 8 * 2


@pytest.mark.parametrize("name", bundled_names())
def test_round_trip_of_every_bundled_spec(name):
    from cnnsize.executor.builder import build_module

    a = cnnsize.analyze(name, fit="floor")
    model = build_module(name, device=torch.device("meta"), fit="floor")  # the meta device: no memory, no time
    imported = cnnsize.from_torch(model, a.inputs if len(a.inputs) > 1 else a.input_shape, name=name)
    b = imported.analyze()
    assert _totals(b) == _totals(a)
    def kind(r):  # nn.Linear on a flat (N, D) input is fc: the same layer as linear on a [D] token vector
        return "fc" if r.type == "linear" and len(r.output_shape) == 1 else r.type

    def named(layer: str) -> str:  # a per-box layer runs as a wrapper around torch's own layer (so the counting
        return layer.removesuffix(".inner")  # tools see torchvision's), which the import names: a known difference

    assert [(named(r.name), kind(r), r.output_shape) for r in b.layers] == [(r.name, kind(r), r.output_shape)
                                                                              for r in a.layers]
    assert [[named(i) for i in r.inputs] for r in b.layers] == [r.inputs for r in a.layers]


def test_import_command(tmp_path):
    (tmp_path / "mynets.py").write_text(textwrap.dedent("""
        from torch import nn

        def small():
            return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(8, 4))
        """))
    out = tmp_path / "small.yaml"
    result = run_cli("import", "mynets:small", "--input", "3x16x16", "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    a = cnnsize.analyze(out)
    assert a.name == "small" and a.totals["params"] == 3 * 8 * 9 + 8 + 8 * 4 + 4
    assert [r.type for r in a.layers] == ["input", "conv", "relu", "global_avgpool", "flatten", "fc"]
    bad = run_cli("import", "mynets:smal", cwd=tmp_path)
    assert bad.returncode == 2 and "did you mean 'small'" in bad.stderr
    assert run_cli("import", "mynets", cwd=tmp_path).returncode == 2
    assert sys.modules.get("mynets") is None  # the test process itself never ran the user's code


def _torch_truth(model, shape):
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, *shape))
    return {"params": sum(p.numel() for p in model.parameters()),
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "buffers": sum(b.numel() for b in model.buffers()), "macs": counter.get_total_flops() // 2}


def _figures(a):
    return {k: a.totals[k] for k in ("params", "trainable_params", "buffers", "macs")}


class Reused(nn.Module):
    """One Linear called four times, and two convs holding the same (tied) weight and bias."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 3, 3, padding=1)
        self.b = nn.Conv2d(3, 3, 3, padding=1)
        self.b.weight, self.b.bias = self.a.weight, self.a.bias
        self.fc = nn.Linear(10, 10)
        self.head = nn.Linear(27, 10)

    def forward(self, x):
        x = self.head(torch.relu(self.b(self.a(x))).flatten(1))
        for _ in range(4):
            x = self.fc(x)
        return x


def test_shared_modules_count_params_once_and_macs_per_call():
    model = Reused().eval()
    imported = cnnsize.from_torch(model, (3, 3, 3))
    a = imported.analyze()
    assert _figures(a) == _torch_truth(model, (3, 3, 3))
    assert a.totals["params"] == 84 + 280 + 110  # the Linear's 110 once, not 440
    layers = {next(iter(body.values()))["name"]: body for body in imported.spec["layers"]}
    assert layers["b"]["conv"]["shares"] == "a" and layers["fc_3"]["fc"]["shares"] == "fc"
    v = cnnsize.validate(imported.spec, device="cpu", runs=0)  # the built model shares the tensors too
    assert v.ok, v.mismatches()


def test_shares_must_name_an_earlier_layer_of_the_same_kind():
    spec = {"input": [3, 4, 4], "layers": [{"conv": {"name": "a", "filters": 3, "kernel": 1}}, "relu",
                                           {"conv": {"filters": 3, "kernel": 1, "shares": "relu1"}}]}
    with pytest.raises(cnnsize.CnnsizeError, match="'shares' names 'relu1', a relu, not a conv"):
        cnnsize.analyze(spec)
    spec["layers"][2]["conv"].update(shares="a", filters=4)
    with pytest.raises(cnnsize.CnnsizeError, match="shares the parameters of 'a'"):
        cnnsize.analyze(spec)


def test_partly_frozen_layers_count_trainable_params_per_parameter():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 36, 5)).eval()
    model[0].weight.requires_grad_(False)
    model[3].bias.requires_grad_(False)
    model[1].requires_grad_(False)
    imported = cnnsize.from_torch(model, (3, 8, 8))
    assert _figures(imported.analyze()) == _torch_truth(model, (3, 8, 8))
    assert imported.spec["layers"][0]["conv"]["trainable"] == ["bias"]
    v = cnnsize.validate(imported.spec, device="cpu", runs=0)
    assert v.ok, v.mismatches()


@pytest.mark.parametrize("layer", [nn.Conv2d(3, 4, 3), nn.BatchNorm2d(3), nn.ConvTranspose2d(3, 2, 2, stride=2)])
def test_a_bare_layer_as_the_model_imports(layer):
    a = cnnsize.from_torch(layer.eval(), (3, 6, 6)).analyze()
    assert _figures(a) == _torch_truth(layer, (3, 6, 6))


def test_in_place_operations_are_counted_once_in_activations():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            out = self.conv(x)
            out += x
            return self.relu(out)

    a = cnnsize.from_torch(Residual().eval(), (3, 5, 5)).analyze()
    assert [r.type for r in a.layers] == ["input", "conv", "add", "relu"]
    assert a.totals["activations"] == 2 * 75  # the input and the conv's output; += and relu_ write into it


def test_several_outputs_are_kept_with_the_main_one_last():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Conv2d(3, 4, 3)
            self.main = nn.Conv2d(4, 2, 1)
            self.aux = nn.Sequential(nn.Conv2d(4, 5, 1), nn.ReLU())

        def forward(self, x, scale=None):  # an optional argument, left at its default
            y = self.body(x)
            return {"aux": self.aux(y), "out": self.main(y)}

    model = TwoHeads().eval()
    imported = cnnsize.from_torch(model, (3, 6, 6))
    full = imported.analyze()
    assert _figures(full)["params"] == sum(p.numel() for p in model.parameters())
    plain = cnnsize.analyze(imported.spec, variables={"aux": False})
    assert plain.layers[-1].name == "main" and "aux.0" not in {r.name for r in plain.layers}
    assert full.totals["macs"] == _torch_truth(model, (3, 6, 6))["macs"]  # both heads run in torch
    assert yaml.safe_load(imported.yaml) == imported.spec


@pytest.mark.parametrize("model,cause", [
    (nn.Sequential(nn.MaxPool2d(2, return_indices=True)), "return_indices"),
    (nn.Softplus(), r"module type torch.nn.modules.activation.Softplus \(fx node .softplus., module .softplus."),
])
def test_messages_name_the_real_cause(model, cause):
    with pytest.raises(cnnsize.CnnsizeError, match=cause):
        cnnsize.from_torch(model, (3, 4, 4))


def test_a_second_input_and_a_forward_returning_none_are_named():
    class Two(nn.Module):
        def forward(self, x, y):
            return x + y

    class Nothing(nn.Module):
        def forward(self, x):
            return None

    with pytest.raises(cnnsize.CnnsizeError, match="a second input 'y'"):
        cnnsize.from_torch(Two(), (3, 4, 4))
    with pytest.raises(cnnsize.CnnsizeError, match="a forward returning None"):
        cnnsize.from_torch(Nothing(), (3, 4, 4))


class DataDependent(nn.Module):
    """A submodule fx cannot trace into: Python control flow on a tensor's value."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))

    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x


class Unrepresentable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.odd = DataDependent()
        self.soft = nn.Softplus()
        self.bil = nn.Bilinear(4, 4, 3)

    def forward(self, x):
        y = self.soft(self.odd(self.conv(x)))
        y = torch.einsum("nchw,nchw->nc", y, y)
        return self.bil(y, y)


def test_opaque_layers_carry_what_torch_measured():
    model = Unrepresentable().eval()
    with pytest.raises(cnnsize.CnnsizeError, match=r"Softplus \(fx node 'soft', module 'soft'"):
        cnnsize.from_torch(model, (3, 8, 8))  # the untraceable submodule is no error: the Softplus is
    imported = cnnsize.from_torch(model, (3, 8, 8), opaque=True)
    a = imported.analyze()
    truth = _torch_truth(model, (3, 8, 8))
    assert (a.totals["params"], a.totals["macs"]) == (truth["params"], truth["macs"])
    assert [r.type for r in a.layers] == ["input", "conv", "opaque", "opaque", "opaque", "opaque"]
    assert a.layers[-1].output_shape == (3,)
    assert "opaque" in cnnsize.analyze(imported.yaml).layers[2].type
    with pytest.raises(cnnsize.CnnsizeError, match="layer 'odd': layer kind 'opaque'.*cannot be built"):
        cnnsize.validate(imported.spec, device="cpu", runs=0)


@pytest.mark.slow  # a torch import in a subprocess: the slow set (the default run stays under 5 minutes)
def test_import_command_opaque(tmp_path):
    (tmp_path / "oddnets.py").write_text(textwrap.dedent("""
        from torch import nn

        def soft():
            return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Softplus())
        """))
    bad = run_cli("import", "oddnets:soft", "--input", "3x8x8", cwd=tmp_path)
    assert bad.returncode == 2 and "Softplus (fx node '_1', module '1'" in bad.stderr
    assert "Traceback" not in bad.stderr
    good = run_cli("import", "oddnets:soft", "--input", "3x8x8", "--opaque", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "opaque: {name: '1', op: module type torch.nn.modules.activation.Softplus" in good.stdout


@pytest.mark.parametrize("grid", [4, 2])  # 2: one window per axis, where torch's reshape stays a view
def test_a_reshape_of_a_permuted_tensor_copies_as_torch_does(grid):
    """MaxViT's window partition and back (reshape, permute, reshape): the last reshape copies the strided tensor,
    unless a size-1 axis lets it stay a view; the import follows torch's storages (contiguous, then reshape)."""
    from .torch_storages import forward_activations

    class Windows(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            x = self.conv(x)
            b, c, h, w = x.shape
            x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 3, 5, 1).reshape(b, -1, 4, c)
            x = x.unsqueeze(1).squeeze(1)  # views, nothing to count
            x = x.reshape(b, h // 2, w // 2, 2, 2, c).permute(0, 5, 1, 3, 2, 4)
            return x.reshape(b, c, h, w)

    model = Windows().eval()
    shape = (3, grid, grid)
    imported = cnnsize.from_torch(model, shape)
    kinds = [r.type for r in imported.analyze().layers]
    assert kinds.count("contiguous") == (2 if grid == 4 else 0)
    assert imported.analyze().totals["activations"] == forward_activations(model, torch.randn(1, *shape))
    v = cnnsize.validate(imported.spec, device="cpu", runs=0)
    assert v.ok, v.mismatches()


def test_a_flatten_of_a_permuted_tensor_copies_as_torch_does():
    from .torch_storages import forward_activations

    class ChannelsLast(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.fc = nn.Linear(64, 2)

        def forward(self, x):
            return self.fc(self.conv(x).permute(0, 2, 3, 1).flatten(1))

    model = ChannelsLast().eval()
    imported = cnnsize.from_torch(model, (3, 4, 4))
    assert [r.type for r in imported.analyze().layers][2:4] == ["permute", "contiguous"]
    assert imported.analyze().totals["activations"] == forward_activations(model, torch.randn(1, 3, 4, 4))
