"""Import never changes the user's model: a property over hypothesis-built modules (submodules shared under
several names, tied tensors across modules, frozen parts, buffers, existing hooks, train and eval mode,
untraceable submodules), in normal and opaque mode and for imports that fail, and on torchvision models.

The snapshot compares everything a user could notice: the identity, class, values, device, dtype and
requires_grad of every parameter and buffer, the class, training flag, attributes and hook dicts of every
module under every name, the state_dict's keys, and the model's output."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnnsize
from cnnsize.core.errors import CnnsizeError

from .conftest import need, representative

torch = pytest.importorskip("torch")
nn = torch.nn

D = 6  # every layer maps D features to D: any call order runs
HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
              "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called",
              "_state_dict_hooks", "_load_state_dict_pre_hooks")


def _bits(t):
    """The tensor's bytes (so that -0.0 and NaN compare exactly)."""
    return t.detach().cpu().clone().contiguous().reshape(-1).view(torch.uint8)


def snapshot(model) -> dict:
    """What a user sees of ``model``, as comparable values (tensors by identity and by their exact bits)."""
    def tensors(pairs):
        return [(name, id(t), type(t), t.device, t.dtype, t.requires_grad, t.shape, t.stride(),
                 _bits(t) if t.device.type != "meta" else None) for name, t in pairs]

    modules = [(name, id(m), type(m), m.training, sorted(vars(m)),
                {key: [(k, id(h)) for k, h in getattr(m, key, {}).items()] for key in HOOK_DICTS},
                [(k, id(v)) for k, v in m._modules.items()])
               for name, m in model.named_modules(remove_duplicate=False)]
    return {"params": tensors(model.named_parameters(remove_duplicate=False)),
            "buffers": tensors(model.named_buffers(remove_duplicate=False)),
            "modules": modules, "state_dict": list(model.state_dict(keep_vars=True))}


def assert_same(before: dict, after: dict) -> None:
    assert after["modules"] == before["modules"]
    assert after["state_dict"] == before["state_dict"]
    for key in ("params", "buffers"):
        assert len(after[key]) == len(before[key])
        for was, now in zip(before[key], after[key]):
            assert now[:8] == was[:8], (key, was[0])
            assert was[8] is not None and now[8] is not None
            assert torch.equal(was[8], now[8]), (key, was[0])


def output(model, x):
    with torch.no_grad():
        return model(x).detach().clone()


class Branchy(nn.Module):
    """Python control flow on values: fx cannot trace it, so the import runs it (kept as one measured call)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, D)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1  # a buffer the forward writes in place
        return self.fc(x) if float(x.sum()) >= 0 else -x


class ShapeBranch(nn.Module):
    """Python control flow on a shape: fx fails at first, and the import traces it again once shapes are known."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, D)

    def forward(self, x):
        if x.shape[-1] == D:
            return self.fc(x)
        return x


class Fails(Exception):
    pass


class Net(nn.Module):
    """The drawn layers, called in the drawn order (a layer may be called several times)."""

    def __init__(self, layers, calls, fail):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.calls = list(calls)
        self.fail = fail
        if fail == "shape":  # sized for another input than the one the import is given
            self.last = nn.Linear(D, D)

    def forward(self, x):
        for i in self.calls:
            x = self.layers[i](x)
        if self.fail == "shape":
            x = self.last(x)
        if self.fail == "raise":
            raise Fails("a forward that fails")
        if self.fail == "unsupported":
            x = torch.fft.fft(x).real  # no kind stands for it: refused unless opaque
        return x


LAYERS = {"linear": lambda: nn.Linear(D, D), "linear_nobias": lambda: nn.Linear(D, D, bias=False),
          "bn": lambda: nn.BatchNorm1d(D), "relu": nn.ReLU, "ln": lambda: nn.LayerNorm(D), "branchy": Branchy,
          "shape_branch": ShapeBranch}


@st.composite
def models(draw):
    kinds = draw(st.lists(st.sampled_from(sorted(LAYERS)), min_size=1, max_size=5))
    torch.manual_seed(draw(st.integers(0, 2**16)))
    layers = [LAYERS[k]() for k in kinds]
    n = len(layers)
    calls = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=7))
    net = Net(layers, calls, draw(st.sampled_from([None, None, "raise", "unsupported", "shape"])))
    for i in draw(st.lists(st.integers(0, n - 1), max_size=3)):  # one module under a second name
        net.add_module(f"alias{i}", layers[i])
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    ties = st.tuples(st.integers(0, 9), st.integers(0, 9), st.sampled_from(["weight", "bias", "both"]))
    for a, b, which in draw(st.lists(ties, max_size=2)):
        if linears:  # tensors tied across two modules: the weight, the bias or both
            src, dst = linears[a % len(linears)], linears[b % len(linears)]
            if which != "bias":
                dst.weight = src.weight
            if which != "weight" and src.bias is not None and dst.bias is not None:
                dst.bias = src.bias
    params = list(net.parameters())
    for i in draw(st.lists(st.integers(0, 50), max_size=3)):  # frozen parameters
        if params:
            params[i % len(params)].requires_grad_(False)
    fired = []
    for i in draw(st.lists(st.integers(0, n - 1), max_size=3)):
        layers[i].register_forward_hook(lambda m, a, out: fired.append(1))
        layers[i].register_forward_pre_hook(lambda m, a: None)
    modes = draw(st.lists(st.booleans(), min_size=n + 1, max_size=n + 1))  # train or eval, module by module
    net.training = modes[n]
    for layer, train in zip(layers, modes):
        layer.training = train
    opaque = draw(st.booleans())
    return net, opaque


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_import_never_changes_the_model(drawn):
    net, opaque = drawn
    x = torch.randn(4, D)
    expect_error = net.fail is not None
    runs = net.fail != "raise"
    before_out = output(net, x) if runs else None
    before = snapshot(net)
    shape = (D + 1,) if net.fail == "shape" else (D,)
    try:
        imported = cnnsize.from_torch(net, shape, opaque=opaque)
    except CnnsizeError:
        assert expect_error, "an import that should succeed failed"
    else:
        assert not expect_error or (net.fail == "unsupported" and opaque)
        params = {id(p): p for p in net.parameters()}
        totals = imported.analyze().totals
        assert totals.params == sum(p.numel() for p in params.values())
        assert totals.trainable_params == sum(p.numel() for p in params.values() if p.requires_grad)
    assert_same(before, snapshot(net))
    if runs:
        assert torch.equal(output(net, x), before_out)


def test_a_submodule_traced_again_then_run_on_fake_tensors_is_found():
    """Found by the property: fx keeps a constant of a submodule traced again (ShapeBranch's comparison) as an
    attribute of the traced copy, which the fake-tensor run (after the meta run fails) must see too."""
    net = Net([ShapeBranch()], [0], "shape")
    before = snapshot(net)
    with pytest.raises(CnnsizeError, match="does not run"):
        cnnsize.from_torch(net, (D + 1,))
    assert_same(before, snapshot(net))


class Untraced(nn.Module):
    """A submodule traced again (ShapeBranch) called twice, a second instance of it after, a function between."""

    def __init__(self):
        super().__init__()
        self.sb, self.other = ShapeBranch(), ShapeBranch()

    def forward(self, x):
        return self.other(self.sb(torch.relu(self.sb(x))))


@pytest.mark.parametrize("net", [Untraced, lambda: Net([ShapeBranch()], [0, 0, 0], None)])
def test_a_submodule_traced_again_imports_every_call(net):
    """Only the first call of a submodule traced again was inlined: the calls after it read what that call computes,
    whose shapes are known once it runs, and stayed opaque (their MACs measured, their weights 0)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = net()
    imported = cnnsize.from_torch(model, (D,))
    kinds = [next(iter(layer)) for layer in imported.spec["layers"]]
    assert "opaque" not in kinds and kinds.count("fc") == 3
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, D))
    totals = imported.analyze().totals
    assert totals.macs * 2 == counter.get_total_flops()
    assert totals.params == sum(p.numel() for p in model.parameters())


def test_a_function_after_a_submodule_fx_could_not_trace_is_not_named_inside_it():
    """fx leaves the failed submodule's scope open: the torch.relu called by the model's own forward after it was
    named 'sb.relu', folded under sb by --depth."""
    names = [next(iter(layer.values()))["name"] for layer in cnnsize.from_torch(Untraced(), (D,)).spec["layers"]]
    assert "relu" in names and "sb.relu" not in names


def test_a_layer_called_twice_stays_a_parameter_and_counts_once():
    """The issue's example: the tie-weights reparametrization left l.weight a meta tensor, 0 trainable."""
    lin = nn.Linear(10, 10)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    weight = lin.weight
    x = torch.randn(2, 10)
    want = output(model, x)
    totals = cnnsize.from_torch(model, (10,)).analyze().totals
    assert lin.weight is weight and isinstance(lin.weight, nn.Parameter) and lin.weight.device.type == "cpu"
    assert lin.weight.requires_grad and lin.bias.requires_grad
    assert torch.equal(output(model, x), want)
    n = sum(p.numel() for p in model.parameters())  # 110: torch (and torchinfo) count the shared layer once
    assert totals.params == totals.trainable_params == n == 110


def _zoo_names() -> list[str]:
    try:
        from torchvision.models import list_models

        return sorted(list_models(module=__import__("torchvision.models", fromlist=["x"])))
    except ImportError:
        return ["resnet18", "googlenet", "mobilenet_v3_small"]


@pytest.mark.zoo
@pytest.mark.parametrize("name", representative(_zoo_names(), {"resnet18", "googlenet", "mobilenet_v3_small"}))
def test_torchvision_models_are_left_unchanged(name):
    models = need("torchvision.models")
    size = 299 if name == "inception_v3" else 224
    for train in (True, False):
        model = models.get_model(name, weights=None)
        model.train(train)
        model.get_submodule(next(n for n, _ in model.named_modules() if n)).train(not train)  # mixed modes
        model.register_forward_hook(lambda m, a, out: None)
        x = torch.randn(1, 3, size, size)
        want = output(copy.deepcopy(model).eval(), x)  # its output, from a copy (the model keeps its modes)
        before = snapshot(model)
        cnnsize.from_torch(model, (3, size, size))
        cnnsize.from_torch(model, (3, size, size), opaque=True)
        with pytest.raises(CnnsizeError):
            cnnsize.from_torch(model, (4, size, size))  # four channels for three: a failed import
        assert_same(before, snapshot(model))
        assert torch.equal(output(copy.deepcopy(model).eval(), x), want)


@pytest.mark.parametrize("frozen", [[0], [1], [0, 1]])
def test_an_opaque_layer_with_some_parameters_frozen_counts_them_frozen(frozen):
    """Found by the property above: an opaque layer was trainable or not as a whole."""
    net = nn.Sequential(Branchy())
    params = list(net.parameters())
    for i in frozen:
        params[i].requires_grad_(False)
    imported = cnnsize.from_torch(net, (D,))
    assert any("opaque" in layer for layer in imported.spec["layers"])
    totals = imported.analyze().totals
    assert totals.trainable_params == sum(p.numel() for p in params if p.requires_grad)
    assert totals.params == sum(p.numel() for p in params)


def test_a_module_never_called_whose_tensors_a_called_module_ties_is_not_unused():
    """Found by the property above: torch lists a tied tensor under its first name, here the module that never
    runs; the called module reads it, so it counts once (torch's parameters()), not again as unused."""
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.spare, self.used = nn.Linear(D, D), nn.Linear(D, D)
            self.used.weight, self.used.bias = self.spare.weight, self.spare.bias

        def forward(self, x):
            return self.used(x)

    net = Tied()
    imported = cnnsize.from_torch(net, (D,))
    assert not any("unused" in layer for layer in imported.spec["layers"])
    assert imported.analyze().totals.params == sum(p.numel() for p in net.parameters())
