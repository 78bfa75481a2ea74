"""Values a forward computes and then drops: the import keeps them (torch runs them: MACs, memory) and marks the
dead end ``discarded: true``, which tools that trace the graph (fvcore, checked against the tool in
tests/test_conventions_zoo.py) drop with everything only it needs."""

from __future__ import annotations

import pytest

import cnnsize
from cnnsize.core.errors import CnnsizeError

torch = pytest.importorskip("torch")
nn = torch.nn


class Overwritten(nn.Module):
    """``out`` computed by a and b, then overwritten: a, b and the relu between run, and nothing needs them."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(5, 5), nn.Linear(5, 5), nn.Linear(5, 5)

    def forward(self, x):
        out = self.b(self.a(x).relu())
        out = self.c(x)
        return out


def test_a_value_the_forward_drops_is_kept_and_marked_discarded():
    from torch.utils.flop_counter import FlopCounterMode

    model = Overwritten()
    imported = cnnsize.from_torch(model, (5,))
    bodies = {body["name"]: body for layer in imported.spec["layers"] for body in layer.values()}
    assert [name for name, body in bodies.items() if body.get("discarded")] == ["b"]
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 5))
    assert 2 * imported.analyze().totals.macs == counter.get_total_flops()  # torch runs the dropped chain too


@pytest.mark.zoo
@pytest.mark.parametrize("count", ["torchinfo", "torch", "fvcore", "ptflops", "ptflops-aten", "thop",
                                   "torchscan-flops", "torchscan-macs", "torchscan-dmas"])
def test_discarded_values_against_the_tool(count):
    """fvcore's trace drops the chain nothing needs; the tools that hook modules or count what runs count it."""
    from .test_conventions_zoo import TOOLS

    model = Overwritten().eval()
    total, _ = TOOLS[count](model, torch.zeros(1, 5))
    imported = cnnsize.from_torch(Overwritten(), (5,))
    assert cnnsize.analyze(imported.spec, count=count).totals["counted"] == total


def test_a_returned_aux_output_is_not_discarded():
    class TwoOutputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(5, 5), nn.Linear(5, 5)

        def forward(self, x):
            return self.a(x), self.b(x)

    spec = cnnsize.from_torch(TwoOutputs(), (5,)).spec
    assert "discarded" not in str(spec)


@pytest.mark.parametrize("layers, message", [
    ([{"fc": {"name": "a", "units": 3, "discarded": True}}, {"relu": {}}], "'relu1' reads 'a', which is discarded"),
    ([{"fc": {"name": "a", "units": 3, "discarded": "yes"}}], "discarded must be true or false"),
])
def test_a_bad_discarded_is_one_located_line(layers, message):
    with pytest.raises(CnnsizeError, match=message):
        cnnsize.analyze({"input": [4], "layers": layers})
