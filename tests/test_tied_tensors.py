"""Tensors held by two layers count once: a module called twice (``shares: a``), a weight tied across two modules
whose biases are their own (``shares: {weight: a}``), a module's weight read again by a function, an opaque module
with some of its parameters frozen. Parameters, trainable parameters, gradients and optimizer state are checked
against torch itself: ``parameters()`` of the user's model and the tensors a real training step makes on it."""

from __future__ import annotations

import copy

import pytest

import cnnsize
from cnnsize.core.errors import CnnsizeError

torch = pytest.importorskip("torch")
nn = torch.nn
F = nn.functional


class PartlyTied(nn.Module):
    """Two Linears, one weight, a bias each."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 6), nn.Linear(6, 6)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(self.a(x).relu())


class TiedBias(nn.Module):
    """Two convolutions, one bias, a weight each."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 1)
        self.b.bias = self.a.bias

    def forward(self, x):
        return self.b(self.a(x).relu())


class TiedFunction(nn.Module):
    """A module's weight read again by a function (a tied output projection), and a parameter read by two
    functions."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 6)
        self.w = nn.Parameter(torch.randn(6, 6))

    def forward(self, x):
        x = F.linear(self.a(x).relu(), self.a.weight)
        return F.linear(F.linear(x, self.w).relu(), self.w)


class FunctionFirst(nn.Module):
    """The function reads the tensor before the module holding it runs."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 6)

    def forward(self, x):
        return self.a(F.linear(x, self.a.weight).relu())


class Chain(nn.Module):
    """Three Linears: b ties a's weight, c ties b's (so a's) weight and b's bias."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 6)
        self.b.weight = self.a.weight
        self.c.weight, self.c.bias = self.b.weight, self.b.bias

    def forward(self, x):
        return self.c(self.b(self.a(x)).relu())


def _reused():
    lin = nn.Linear(10, 10)
    return nn.Sequential(lin, nn.ReLU(), lin)


def _frozen_tied():
    net = PartlyTied()
    net.a.weight.requires_grad_(False)  # the tied weight frozen in both
    return net


def _frozen_bias():
    net = PartlyTied()
    net.b.bias.requires_grad_(False)
    return net


NETS = {"reused": (_reused, (10,)), "partly_tied": (PartlyTied, (6,)), "tied_bias": (TiedBias, (4, 5, 5)),
        "tied_function": (TiedFunction, (6,)), "function_first": (FunctionFirst, (6,)), "chain": (Chain, (6,)),
        "frozen_tied": (_frozen_tied, (6,)), "frozen_bias": (_frozen_bias, (6,))}


def _step_tensors(model, shape) -> tuple[int, int]:
    """(gradient bytes, Adam state bytes) after a real training step on a copy of ``model``."""
    model = copy.deepcopy(model).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params)
    model(torch.randn(2, *shape)).sum().backward()
    opt.step()
    return (sum(p.grad.nbytes for p in params if p.grad is not None),
            sum(s[k].nbytes for s in opt.state.values() for k in ("exp_avg", "exp_avg_sq")))


@pytest.mark.parametrize("net", list(NETS))
def test_each_tensor_counts_once_as_torch_counts_it(net):
    factory, shape = NETS[net]
    torch.manual_seed(0)
    model = factory()
    imported = cnnsize.from_torch(model, shape)
    assert any("shares" in body for layer in imported.spec["layers"] for body in layer.values())
    a = cnnsize.analyze(imported.spec, optimizer="adam", device="cpu")
    params = list(model.parameters())  # torch lists each tensor once
    assert a.totals.params == sum(p.numel() for p in params)
    assert a.totals.trainable_params == sum(p.numel() for p in params if p.requires_grad)
    grads, state = _step_tensors(model, shape)
    assert (a.totals.memory.gradients_bytes, a.totals.memory.optimizer_bytes) == (grads, state)


@pytest.mark.parametrize("net", ["partly_tied", "tied_bias", "tied_function", "chain", "frozen_bias"])
def test_the_executor_builds_the_ties(net):
    """The built network holds each tied tensor once too (torch's count of the built model, per layer and in all)."""
    factory, shape = NETS[net]
    imported = cnnsize.from_torch(factory(), shape)
    v = cnnsize.validate(imported.spec, device="cpu", runs=0)
    bad = [(layer.name, key) for layer in v.layers for key, f in layer.figures.items() if not f.ok]
    assert not bad and all(f.ok for f in v.totals.values()), bad


def test_partial_trainable_counts_only_the_gradients_it_makes():
    """``trainable: [bias]``: gradients and optimizer state for the biases alone, as torch makes them."""
    spec = {"name": "t", "input": [3, 8, 8], "layers": [
        {"conv": {"name": "a", "filters": 4, "kernel": 3, "trainable": ["bias"]}}, {"relu": {}},
        {"fc": {"name": "b", "units": 5, "trainable": ["weight"]}}]}
    a = cnnsize.analyze(spec, optimizer="adam", device="cpu")
    model = cnnsize.build(a, init=True)
    grads, state = _step_tensors(model, (3, 8, 8))
    assert a.totals.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert (a.totals.memory.gradients_bytes, a.totals.memory.optimizer_bytes) == (grads, state)


@pytest.mark.parametrize("shares, message", [
    ({"kernel": "a"}, "unknown tensor in 'shares' 'kernel'"),
    ({}, "'shares' maps no tensor"),
    ({"weight": "nowhere"}, "nowhere"),
    ({"weight": "input"}, "the input, which holds none"),
    ({"weight": "c"}, "give 8 weight elements against 72"),
    (["a"], "'shares' names an earlier layer, or maps weight/bias to one"),
])
def test_a_bad_tie_is_one_located_line(shares, message):
    spec = {"name": "t", "input": [8], "layers": [{"fc": {"name": "a", "units": 8}},
                                                  {"fc": {"name": "c", "units": 9}},
                                                  {"fc": {"name": "b", "units": 1, "from": "a", "shares": shares}}]}
    with pytest.raises(CnnsizeError, match=message) as info:
        cnnsize.analyze(spec)
    assert info.value.layer == "b"


def test_a_tie_in_yaml_round_trips():
    imported = cnnsize.from_torch(PartlyTied(), (6,))
    assert "shares: {weight: a}" in imported.yaml
    assert cnnsize.analyze(imported.yaml).totals.params == 6 * 6 + 6 + 6


def test_sharing_a_layer_that_has_layers_nested_under_its_name():
    """``b`` shares ``a``, and ``a.inner`` is a layer of its own placed inside ``a``'s module by the executor: ``b``
    takes ``a``'s tensors only (it took ``a.inner``'s too and stopped: "'b' shares 'a''s tensor 'inner.weight'"),
    and the built network counts as torch counts it."""
    spec = {"name": "nested_share", "input": [3, 8, 8], "layers": [
        {"conv": {"name": "a", "filters": 3, "kernel": 3, "pad": 1}},
        {"conv": {"name": "b", "filters": 3, "kernel": 3, "pad": 1, "shares": "a"}},
        {"conv": {"name": "a.inner", "filters": 4, "kernel": 1}}]}
    a = cnnsize.analyze(spec)
    built = cnnsize.build(a)
    assert built.layer("b").weight is built.layer("a").weight
    assert sum(p.numel() for p in built.parameters()) == a.totals.params
    v = cnnsize.validate(spec, device="cpu", runs=0)
    assert all(f.ok for f in v.totals.values())
