"""The fused kinds of hybrid models (maxvit_attention, mvit_attention, mvit_pool, mvit_pos_embed) against torch.

Each one's figures come from formulas of its settings (pure arithmetic); torch is the truth twice over:
``cnnsize.validate`` runs the built module (cnnsize.layers.nn.attention, the same operations as torchvision's)
and measures every storage it creates, its FLOPs and what autograd saves, at batch 1 and 2 (a size-1 batch or
head count turns some of torch's copies into views); and, where torchvision is installed, torchvision's own
modules import to these kinds with torch's parameters, buffers, MACs and the activations of a real forward
(tests/zoo_truth.py).
"""

from __future__ import annotations

import pytest

import cnnsize

from .conftest import need, representative

pytest.importorskip("torch")

MAXVIT = [(4, 4, 8, 2, 2), (1, 9, 16, 4, 3), (3, 9, 4, 1, 3), (1, 4, 4, 1, 2), (2, 16, 8, 1, 4)]  # G, P, D, heads, size


def _mvit(heads: int, q: bool, v2: bool, stride_q=(1, 2, 2), cls: bool = False) -> dict:
    att = {"dim": 8 * heads, "heads": heads, "size": [2, 4, 4], "kernel_kv": [3, 3, 3], "stride_kv": [1, 2, 2],
           "residual_pool": v2, "cls_residual": cls, "rel_pos": v2}
    if q:
        att.update(kernel_q=[3, 3, 3], stride_q=list(stride_q))
    return att


MVIT = {"v1_one_head": _mvit(1, False, False), "v1_heads": _mvit(2, False, False), "v1_pooled_q": _mvit(2, True, False),
        "v2_one_head": _mvit(1, True, True), "v2_heads": _mvit(2, True, True, (1, 1, 1)),
        "v2_cls_residual": _mvit(2, True, True, cls=True)}


def _validates(spec: dict) -> None:
    for batch in (1, 2):
        v = cnnsize.validate(spec, device="cpu", runs=0, batch=batch)
        assert v.ok, (batch, v.mismatches())


@pytest.mark.parametrize("g,p,d,heads,size", MAXVIT)
def test_maxvit_attention_validates(g, p, d, heads, size):
    _validates({"input": [g, p, d], "layers": [{"linear": {"units": d}},
                                               {"maxvit_attention": {"heads": heads, "size": size}}]})


# the default run: one of each version (v1 pooling q, v2 with its class token and residual pooling); the rest slow
@pytest.mark.parametrize("name", representative(sorted(MVIT), ("v1_pooled_q", "v2_cls_residual")))
def test_mvit_attention_validates(name):
    _validates({"input": [33, 8], "layers": [{"linear": {"units": 8}}, {"mvit_attention": MVIT[name]}]})


@pytest.mark.parametrize("heads", [1, 2])
def test_mvit_attention_with_a_head_size_of_one_validates(heads):
    """One feature per head (dim = heads): torch runs the relative positions' einsums as elementwise multiplies (no
    copy of q, which FlopCounterMode counts as 0 FLOPs) and the heads' merge is followed by a matmul and a separate
    bias add; were 64 MACs and 160 activations off at batch 1 (dim 2, 2 heads)."""
    att = {**_mvit(heads, True, True), "dim": heads}
    _validates({"input": [33, 8], "layers": [{"linear": {"units": 8}}, {"mvit_attention": att}]})


def test_mvit_pool_and_position_validate():
    _validates({"input": [32, 8], "layers": ["class_token", {"mvit_pos_embed": {"size": [2, 4, 4]}},
                                             {"linear": {"units": 8}},
                                             {"mvit_pool": {"size": [2, 4, 4], "kernel": [1, 3, 3],
                                                            "stride": [1, 2, 2]}}]})


def test_fused_kinds_refuse_what_does_not_fit():
    with pytest.raises(cnnsize.CnnsizeError, match="needs 9 tokens per group"):
        cnnsize.analyze({"input": [4, 4, 8], "layers": [{"maxvit_attention": {"heads": 2, "size": 3}}]})
    with pytest.raises(cnnsize.CnnsizeError, match="at least 2×2 tokens"):
        cnnsize.analyze({"input": [4, 1, 8], "layers": [{"maxvit_attention": {"heads": 2, "size": 1}}]})
    with pytest.raises(cnnsize.CnnsizeError, match="not a class token and the"):
        cnnsize.analyze({"input": [32, 8], "layers": [{"mvit_pool": {"size": [2, 4, 4], "kernel": 3, "stride": 2}}]})


def _truth_matches(module, shape) -> None:
    from .zoo_truth import torch_figures

    truth = torch_figures(module, shape)
    a = cnnsize.from_torch(module, shape).analyze()
    assert {k: a.totals[k] for k in truth} == truth


@pytest.mark.zoo
@pytest.mark.parametrize("g,p,d,heads,size", MAXVIT)
def test_torchvisions_maxvit_attention_imports_exactly(g, p, d, heads, size):
    from_tv = need("torchvision").models.maxvit.RelativePositionalMultiHeadAttention
    _truth_matches(from_tv(d, d // heads, size * size), (g, p, d))


class _Block:
    """torchvision's MViT modules called as the model calls them: with the (T, H, W) of their input."""

    @staticmethod
    def wrap(module, thw):
        torch = need("torch")

        class Call(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lead = torch.nn.Linear(8, 8)  # a computed input, as in the model (and a parameter for the truth)
                self.inner = module

            def forward(self, x):
                return self.inner(self.lead(x), thw)[0]

        return Call()


@pytest.mark.zoo
@pytest.mark.parametrize("name", sorted(MVIT))
def test_torchvisions_mvit_attention_imports_exactly(name):
    mvit = need("torchvision").models.video.mvit
    torch = need("torch")
    a = MVIT[name]
    module = mvit.MultiscaleAttention(a["size"], 8, a["dim"], a["heads"], a.get("kernel_q", []),
                                      a["kernel_kv"], a.get("stride_q", []), a["stride_kv"], a["residual_pool"],
                                      a["cls_residual"], a["rel_pos"],
                                      norm_layer=lambda n: torch.nn.LayerNorm(n, eps=1e-6))
    _truth_matches(_Block.wrap(module, tuple(a["size"])), (33, 8))


@pytest.mark.zoo
def test_torchvisions_mvit_pool_and_position_import_exactly():
    mvit = need("torchvision").models.video.mvit
    torch = need("torch")
    pool = mvit.Pool(torch.nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)), None)
    _truth_matches(_Block.wrap(pool, (2, 4, 4)), (33, 8))
    for relative in (False, True):
        _truth_matches(mvit.PositionalEncoding(8, (4, 4), 2, relative), (32, 8))
