"""Memory traffic against the tensors torch actually hands each layer of the built network.

Hooks on every layer of cnnsize's executor build see the real input, output and parameter tensors; a layer
whose output shares its input's storage without being in place is a view and moves nothing.
"""

from __future__ import annotations

import json

import pytest

import cnnsize

torch = pytest.importorskip("torch")


def measured_traffic(spec: str, batch: int, dtype: str) -> dict[str, tuple[int, int]]:
    a = cnnsize.analyze(spec, batch=batch, dtype=dtype)
    model = cnnsize.build(a, dtype=dtype)
    seen: dict[str, tuple[int, int]] = {}

    def hook(name):
        def record(module, args, out):
            tensors = [t for t in args if isinstance(t, torch.Tensor)]
            shares = any(t.untyped_storage().data_ptr() == out.untyped_storage().data_ptr() for t in tensors)
            if shares and not getattr(module, "inplace", False):
                seen[name] = (0, 0)  # a view (flatten, chunk, dropout and identity at inference)
                return
            params, _ = model.own_tensors(name)
            read = sum(t.numel() * t.element_size() for t in tensors)
            read += sum(p.numel() * p.element_size() for _, p in params)
            seen[name] = (read, out.numel() * out.element_size())
        return record

    for name, module in model.layer_modules.items():
        module.register_forward_hook(hook(name))
    with torch.no_grad():
        model(torch.zeros(batch, *a.input_shape, dtype=getattr(torch, dtype)))
    return seen


@pytest.mark.parametrize("spec,batch,dtype", [("lenet5", 3, "float32"), ("resnet18", 2, "float32"),
                                              pytest.param("mobilenet_v2", 1, "float64", marks=pytest.mark.slow),
                                              ("squeezenet1_1", 2, "float32"),
                                              ("shufflenet_v2_x1_0", 1, "float32"), ("alexnet", 1, "float32")])
def test_traffic_matches_the_tensors_torch_moves(spec, batch, dtype):
    seen = measured_traffic(spec, batch, dtype)
    a = cnnsize.analyze(spec, batch=batch, dtype=dtype, traffic=True)
    ours = {r.name: (r.bytes_read, r.bytes_written) for r in a.layers[1:]}
    assert ours == seen
    assert a.totals["bytes_read"] == sum(r for r, _ in seen.values())
    assert a.totals["bytes_written"] == sum(w for _, w in seen.values())
    moved = a.totals["bytes_read"] + a.totals["bytes_written"]
    assert a.totals["arithmetic_intensity"] == round(a.totals["flops"] / moved, 4)


def test_traffic_in_json_only_when_asked(cli):
    plain = json.loads(cli("report", "lenet5", "-f", "json").stdout)
    assert "bytes_read" not in plain["totals"]
    doc = json.loads(cli("report", "lenet5", "--traffic", "-b", "2", "-f", "json").stdout)
    a = cnnsize.analyze("lenet5", batch=2, traffic=True)
    assert doc["totals"]["bytes_read"] == a.totals["bytes_read"]
    assert [row["bytes_written"] for row in doc["layers"]] == [r.bytes_written for r in a.layers]
    frame = a.to_frame()
    assert list(frame["bytes_read"]) == [r.bytes_read for r in a.layers]


def test_views_move_nothing_and_in_place_layers_move_their_tensor():
    a = cnnsize.analyze("alexnet", traffic=True)
    kinds = {r.type: r for r in a.layers[1:]}
    assert kinds["dropout"].bytes_read == kinds["dropout"].bytes_written == 0  # the identity at inference
    relu = kinds["relu"]
    assert relu.kind.inplace and relu.bytes_read == relu.bytes_written > 0
