"""Patterns timm's model code writes (issue 24), each in a tiny module of its own, no timm: imported exactly against
torch itself (parameters, buffers, FlopCounterMode's MACs / 2 and the storages of a real forward, tests/zoo_truth.py),
and the imported spec, built by cnnsize and run, validates on CPU. tests/test_timm_zoo.py checks the families that
write them."""

from __future__ import annotations

import pytest

import cnnsize

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class TokenMax(nn.Module):
    """VOLO's token-labelling head: the class token's scores plus half the best token's, ``x.max(1)[0]``."""

    def __init__(self):
        super().__init__()
        self.head, self.aux = nn.Linear(6, 4), nn.Linear(6, 4)

    def forward(self, x):
        return self.head(x[:, 0]) + 0.5 * self.aux(x[:, 1:]).max(1)[0]


class GlobalQuery(nn.Module):
    """GCViT's global attention: one query per image, repeated for each of its windows (the windows merged into the
    batch), ``q_global.repeat_interleave(B // q_global.shape[0], dim=0)``, then split into heads with the windows'
    keys; and a repeat along a per-sample axis."""

    def __init__(self, dim: int = 4):
        super().__init__()
        self.kv, self.q, self.proj = nn.Linear(dim, 2 * dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x):
        B, H, W, C = x.shape
        windows = x.view(B, 2, H // 2, 2, W // 2, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, H * W // 4, C)
        b, n, _ = windows.shape
        q_global = self.q(x[:, :H // 2, :W // 2].reshape(B, n, C))
        k, v = self.kv(windows).reshape(b, n, 2, C).unbind(2)
        q = q_global.repeat_interleave(b // q_global.shape[0], dim=0)
        y = self.proj((q.reshape(b, n, C) * k).softmax(-1) * v)
        y = y.view(B, 2, 2, H // 2, W // 2, C).permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)
        return y.repeat_interleave(2, dim=-1)


# id: (make the model, input shape per sample)
ROWS = {
    "max_values_over_tokens": (TokenMax, (5, 6)),
    "query_repeated_per_window": (GlobalQuery, (4, 6, 4)),
}


@pytest.mark.parametrize("row", ROWS)
def test_pattern_imports_with_torchs_figures(row):
    from .zoo_truth import torch_figures

    make, shape = ROWS[row]
    torch.manual_seed(0)
    model = make().eval()
    truth = torch_figures(model, shape)
    imported = cnnsize.from_torch(model, shape)
    a = imported.analyze()
    assert {k: a.totals[k] for k in truth} == truth
    with torch.no_grad():
        out = model(torch.randn(1, *shape))
    assert a.layers[-1].output_shape == tuple(out.shape[1:])
    assert "opaque" not in {r.type for r in a.layers}
    v = cnnsize.validate(imported.spec, device="cpu", runs=0)  # built by cnnsize and run: the same figures
    assert v.ok, v.mismatches()


def test_the_indices_of_a_max_are_refused_in_one_line():
    class Indices(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 4)

        def forward(self, x):
            return self.fc(x).max(1)[1]

    with pytest.raises(cnnsize.CnnsizeError, match=r"the indices of max\(dim\)"):
        cnnsize.from_torch(Indices().eval(), (5, 6))
