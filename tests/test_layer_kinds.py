"""Every layer kind and graph form, checked against torch: output shapes, parameters, buffers and MACs.

One row per kind configuration: a tiny spec whose last layer is the one under test. The truth is torch
itself: each layer is built with its kind's ``build(ins, out)``, the graph is run, and torch's
FlopCounterMode counts the multiply-adds (it counts a multiply-add as two FLOPs).
"""

from __future__ import annotations

import pytest

import cnnsize
from cnnsize.layers import REGISTRY

torch = pytest.importorskip("torch")
from .torch_graph import measure  # noqa: E402

C = {"conv": {"filters": 4, "kernel": 3, "pad": 1}}
ROWS = {
    "conv2d": ([3, 9, 9], [{"conv": {"filters": 5, "kernel": 3, "stride": 2}}]),
    "conv2d_groups_dilation": ([4, 12, 12], [{"conv": {"filters": 8, "kernel": 3, "groups": 2, "dilation": 2}}]),
    "conv2d_same_rect": ([3, 10, 7], [{"conv": {"filters": 2, "kernel": [3, 5], "pad": "same", "bias": False}}]),
    "conv1d": ([2, 100], [{"conv": {"filters": 6, "kernel": 9, "stride": 4, "pad": 2}}]),
    "conv3d": ([2, 5, 8, 8], [{"conv": {"filters": 3, "kernel": [3, 3, 3], "stride": [1, 2, 2], "pad": 1}}]),
    "deconv2d": ([4, 5, 5], [{"deconv": {"filters": 3, "kernel": 4, "stride": 2, "pad": 1}}]),
    "deconv2d_output_pad_groups": ([4, 5, 6], [{"deconv": {"filters": 6, "kernel": 3, "stride": 2, "pad": 1,
                                                           "output_pad": 1, "groups": 2}}]),
    "deconv1d": ([3, 11], [{"deconv": {"filters": 2, "kernel": 5, "stride": 3, "dilation": 2, "bias": False}}]),
    "deconv3d": ([2, 3, 4, 4], [{"deconv": {"filters": 2, "kernel": 2, "stride": 2}}]),
    "upsample_nearest": ([3, 4, 5], [{"upsample": {"scale": 2}}]),
    "upsample_bilinear": ([3, 4, 5], [{"upsample": {"scale": [2, 3], "mode": "bilinear"}}]),
    "upsample1d_linear": ([2, 7], [{"upsample": {"scale": 3, "mode": "linear", "align_corners": True}}]),
    "zeropad2d": ([3, 4, 5], [{"zeropad": {"pad": [1, 2]}}]),
    "zeropad2d_asymmetric": ([3, 4, 5], [{"zeropad": {"pad": 0, "pad_end": [1, 3]}}]),
    "zeropad1d": ([3, 4], [{"zeropad": {"pad": 2}}]),
    "chunk": ([8, 3, 3], [{"chunk": {"chunks": 2, "index": 1}}, {"conv": {"filters": 3, "kernel": 1}}]),
    "channel_shuffle": ([8, 3, 3], [{"channel_shuffle": {"groups": 4}}]),
    "relu6": ([3, 4, 4], ["relu6"]),
    "hardswish": ([3, 4, 4], ["hardswish"]),
    "hardsigmoid": ([3, 4, 4], ["hardsigmoid"]),
    "silu": ([3, 4, 4], ["silu"]),
    "gelu": ([3, 4, 4], [{"gelu": {"approximate": "tanh"}}]),
    "identity": ([3, 4, 4], ["identity"]),
    "layernorm_channels": ([6, 4, 4], [{"layernorm": {}}]),
    "layernorm_flat": ([3, 4, 4], [{"fc": {"units": 10}}, {"layernorm": {"eps": 1e-5}}]),
    "adaptive_maxpool": ([3, 10, 7], [{"adaptive_maxpool": {"output": [3, 5]}}]),
    "adaptive_avgpool": ([3, 10, 7], [{"adaptive_avgpool": {"output": [4, 3]}}]),
    "global_maxpool": ([3, 10, 7], ["global_maxpool"]),
    "global_avgpool1d": ([3, 10], ["global_avgpool"]),
    "maxpool1d": ([3, 17], [{"maxpool": {"kernel": 3, "stride": 2, "ceil_mode": True}}]),
    "avgpool3d": ([2, 4, 6, 6], [{"avgpool": {"kernel": 2}}]),
    "maxpool3d": ([2, 5, 6, 6], [{"maxpool": {"kernel": 3, "stride": 2, "pad": 1}}]),
    "bn1d_signal": ([3, 20], [{"conv": {"filters": 4, "kernel": 3}}, "bn"]),
    "bn3d": ([3, 4, 5, 5], ["bn"]),
    "add_residual": ([4, 6, 6], [{"conv": {**C["conv"], "name": "a"}},
                                 {"conv": {**C["conv"], "name": "b", "from": "input"}},
                                 {"add": {"from": ["a", "b"]}}]),
    "add_three": ([4, 6, 6], [{"conv": {**C["conv"], "name": "a"}}, "relu",
                              {"add": {"from": ["a", "relu1", "input"]}}]),
    "concat_branches": ([3, 8, 8], [{"conv": {"filters": 2, "kernel": 1, "name": "b1"}},
                                    {"conv": {"filters": 5, "kernel": 3, "pad": 1, "name": "b2", "from": "input"}},
                                    {"maxpool": {"kernel": 3, "stride": 1, "pad": 1, "name": "b3", "from": "input"}},
                                    {"concat": {"from": ["b1", "b2", "b3"]}}]),
    "mul_squeeze_excite": ([8, 5, 5], [{"conv": {**C["conv"], "filters": 8, "name": "x"}}, "global_avgpool",
                                       {"conv": {"filters": 2, "kernel": 1}}, "relu",
                                       {"conv": {"filters": 8, "kernel": 1}}, "hardsigmoid",
                                       {"mul": {"from": ["x", "hardsigmoid1"]}}]),
    "fc_flatten_softmax": ([3, 4, 4], ["flatten", {"fc": {"units": 7}}, "softmax"]),
    "unused_spare": ([3, 4, 4], [{"unused": {"module": "spare (Linear)", "weights": 5, "buffers": 2}},
                                 {"conv": {"filters": 2, "kernel": 1, "from": "input"}}]),
    "lrn_dropout_tanh": ([6, 4, 4], [{"lrn": {"size": 3}}, "dropout", "tanh", "sigmoid", "leaky_relu"]),
    "locally_connected": ([2, 6, 6], [{"locally_connected": {"filters": 3, "kernel": 3, "stride": 1}}]),
    "add_inplace": ([4, 6, 6], [{"conv": {**C["conv"], "name": "a"}}, {"bn": {"name": "b"}},
                                {"add": {"from": ["b", "input"], "inplace": True}}, "relu"]),
    "softmax_axis_log_softmax": ([3, 4, 5], [{"softmax": {"axis": 2}}, {"log_softmax": {"axis": 1}}]),
    "elu_prelu": ([3, 4, 4], [{"elu": {"alpha": 0.5}}, "prelu", {"prelu": {"per_channel": True}}]),
    "channel_dropout2d": ([3, 4, 4], [{"channel_dropout": {"p": 0.2}}]),
    "channel_dropout1d": ([3, 7], [{"channel_dropout": {"p": 0.2}}, {"dropout": {"p": 0.0}},
                                   {"channel_dropout": {"p": 0.0}}]),
    "stochastic_depth": ([3, 4, 4], [{"stochastic_depth": {"p": 0.1}}]),
    "stochastic_depth_batch": ([3, 4, 4], [{"stochastic_depth": {"p": 0.1, "mode": "batch"}},
                                           {"stochastic_depth": {"p": 0.0}}]),
    "layer_scale_channels": ([3, 4, 4], [{"layer_scale": {}}]),
    "layernorm_last_tokens": ([5, 6], [{"layernorm": {"axis": "last", "eps": 1e-5}},
                                       {"layer_scale": {"axis": "last"}}]),
    "groupnorm": ([6, 4, 4], [{"groupnorm": {"groups": 3}}]),
    "groupnorm3d_plain": ([4, 2, 3, 3], [{"groupnorm": {"groups": 2, "affine": False}}]),
    "instancenorm2d": ([3, 4, 5], [{"instancenorm": {}}]),
    "instancenorm1d_affine_stats": ([3, 8], [{"instancenorm": {"affine": True, "track_running_stats": True}}]),
    "reflectpad2d": ([3, 4, 5], [{"reflectpad": {"pad": [1, 2]}}]),
    "reflectpad1d_asymmetric": ([3, 6], [{"reflectpad": {"pad": 2, "pad_end": 3}}]),
    "replicatepad3d": ([2, 3, 4, 4], [{"replicatepad": {"pad": 1}}]),
    "convnext_style_block": ([8, 5, 5], [{"conv": {"filters": 8, "kernel": 7, "pad": 3, "groups": 8, "name": "dw"}},
                                         {"permute": {"dims": [1, 2, 0]}}, {"layernorm": {"axis": "last"}},
                                         {"linear": {"units": 32}}, "gelu", {"linear": {"units": 8}},
                                         {"permute": {"dims": [2, 0, 1]}}, {"layer_scale": {}},
                                         "stochastic_depth", {"add": {"from": ["layer_scale1", "input"]}}]),
    "vit_style_tokens": ([3, 8, 8], [{"patch_embed": {"filters": 6, "patch": 4}}, "class_token", "pos_embed",
                                     {"linear": {"units": 12, "bias": False}}, {"layernorm": {"axis": "last"}}]),
    "matmul_transpose": ([3, 4, 5], [{"linear": {"units": 5, "name": "q"}},
                                     {"transpose": {"axes": [1, 2], "name": "kt"}},
                                     {"matmul": {"from": ["q", "kt"]}}, {"softmax": {"axis": 2}}]),
    "mha_vit_block": ([3, 8, 8], [{"patch_embed": {"filters": 8, "patch": 2}}, "class_token",
                                  {"layernorm": {"axis": "last"}}, {"mha": {"heads": 2}},
                                  {"add": {"from": ["mha1", "class_token1"]}}, {"select": {"axis": 0, "index": 0}},
                                  {"linear": {"units": 3}}]),
    "mha_no_bias_select_axis1": ([6, 4], [{"mha": {"heads": 4, "bias": False}}, {"select": {"axis": 1, "index": 3}}]),
    "sdpa_heads": ([4, 6], [{"linear": {"units": 12, "name": "q"}}, {"reshape": {"shape": [4, 2, 6]}},
                            {"permute": {"dims": [1, 0, 2], "name": "qh"}},
                            {"linear": {"units": 12, "from": "input", "name": "k"}}, {"reshape": {"shape": [4, 2, 6]}},
                            {"permute": {"dims": [1, 0, 2], "name": "kh"}},
                            {"sdpa": {"from": ["qh", "kh", "kh"]}}]),
    "swin_windows": ([6, 4, 6], [{"permute": {"dims": [1, 2, 0]}}, {"roll": {"shifts": [3, 5], "axes": [0, 1]}},
                                 {"window_partition": {"window": 2}}, {"linear": {"units": 18}},
                                 {"chunk": {"chunks": 3, "index": 1, "axis": 2}},
                                 {"window_merge": {"window": [2, 2], "size": [4, 6]}},
                                 {"roll": {"shifts": [1, 1], "axes": [0, 1]}}]),
    "swin_block": ([12, 14, 14], [{"permute": {"dims": [1, 2, 0]}}, {"layernorm": {"axis": "last"}},
                                  {"swin_attention": {"heads": 3, "window": 4, "shift": 2}},
                                  {"add": {"from": ["layernorm1", "swin_attention1"]}}, "patch_merge",
                                  {"linear": {"units": 24, "bias": False}}]),
    "swin_v2_and_video": ([2, 6, 8, 12], [{"swin_attention": {"heads": 2, "window": [4, 3, 3], "shift": [2, 1, 1],
                                                              "shrink": True}}, "patch_merge",
                                          {"reshape": {"shape": [6, 4, 48]}},
                                          {"swin_attention": {"heads": 4, "window": 2, "shift": 1, "version": "v2",
                                                              "cpb_hidden": 8}}]),
    "maxvit_windows": ([8, 4, 4], [{"permute": {"dims": [1, 2, 0]}}, {"reshape": {"shape": [4, 1, 4, 8]}},
                                   {"transpose": {"axes": [1, 2]}}, "contiguous", {"reshape": {"shape": [4, 4, 8]}},
                                   {"maxvit_attention": {"heads": 2, "size": 2}}]),
    "maxvit_attention_one_head": ([1, 9, 4], [{"maxvit_attention": {"heads": 1, "size": 3}}]),
    "mvit_v1_block": ([32, 8], ["class_token", {"mvit_pos_embed": {"size": [2, 4, 4]}},
                                {"mvit_attention": {"dim": 16, "heads": 2, "size": [2, 4, 4], "kernel_kv": [3, 3, 3],
                                                    "stride_kv": [1, 2, 2]}},
                                {"mvit_pool": {"size": [2, 4, 4], "kernel": [1, 3, 3], "stride": [1, 2, 2]}}]),
    "mvit_v2_block": ([33, 8], [{"mvit_attention": {"dim": 8, "heads": 1, "size": [2, 4, 4], "kernel_q": 3,
                                                    "stride_q": [1, 2, 2], "kernel_kv": 3, "stride_kv": [1, 2, 2],
                                                    "residual_pool": True, "cls_residual": False, "rel_pos": True}}]),
    "slice_sub_div_scalar_mean": ([6, 5, 7], [{"conv": {"filters": 6, "kernel": 1, "name": "x"}},
                                              {"slice": {"axis": 0, "start": 1, "end": 4, "name": "s"}},
                                              {"slice": {"axis": 0, "end": 3, "from": "x", "name": "t"}},
                                              {"sub": {"from": ["s", "t"]}}, {"mean": {"axes": 0, "keepdim": True}},
                                              {"scalar": {"op": "add", "value": 1.0}},
                                              {"div": {"from": ["sub1", "scalar1"]}},
                                              {"scalar": {"op": "rsub", "value": 2.0}},
                                              {"scalar": {"op": "pow", "value": 2.0}},
                                              {"scalar": {"op": "mul", "value": 0.5, "inplace": True}},
                                              {"slice": {"axis": 2, "start": 1, "step": 2}},
                                              {"slice": {"axis": 1, "end": 4}}, {"mean": {"axes": [1, 2]}}]),
    "pad_value_upsample_size": ([3, 4, 5], [{"zeropad": {"pad": [1, 0], "pad_end": [0, 2], "value": -1.0}},
                                            {"upsample": {"size": [7, 9], "mode": "bilinear"}}]),
    "flatten_range_reshape": ([4, 3, 6], [{"flatten": {"start": 1}}, {"transpose": {"axes": [0, 1]}}, "contiguous",
                                          {"reshape": {"shape": [2, 9, 4]}}, {"linear": {"units": 3}}]),
}


# every kind's own examples (LayerKind.examples, in the kind's file) join the table: a new kind brings its rows
OWN_ROWS = {name: example for kind in REGISTRY.values() for name, example in kind.examples.items()}
assert not set(OWN_ROWS) & set(ROWS), "a kind's example is named as a row of the table above"
ROWS.update(OWN_ROWS)


@pytest.mark.parametrize("row", sorted(ROWS))
def test_kind_matches_torch(row):
    shape, layers = ROWS[row]
    a = cnnsize.analyze({"name": row, "input": shape, "layers": layers, "fit": "floor"})
    got = measure(a)
    for r in a.layers:
        assert got["shapes"][r.name] == tuple(r.output_shape), r.name
    assert got["params"] == a.totals["params"]
    assert got["buffers"] == a.totals["buffers"]
    assert got["macs"] == a.totals["macs"]


def test_mha_counts_what_torch_counts_for_the_real_module():
    """nn.MultiheadAttention itself: its parameters, and FlopCounterMode on its slow path with the math kernel (the
    fused inference kernels have no FLOP formula): the QKV projection, QKᵀ, attention·V and the output projection."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    length, dim, heads = 7, 12, 3
    module = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
    a = cnnsize.analyze({"input": [length, dim], "layers": [{"mha": {"heads": heads}}]})
    x = torch.randn(1, length, dim)
    with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        module(x, x, x, need_weights=False)
    assert a.totals["params"] == sum(p.numel() for p in module.parameters())
    assert 2 * a.totals["macs"] == counter.get_total_flops()


def test_every_kind_is_documented():
    """docs/kinds.md lists every kind (generated: python -m tools.regen), and the hand-written table of docs/spec.md
    names only kinds that exist (one renamed or removed must leave it)."""
    import re

    from tools import regen

    from .conftest import ROOT

    reference = regen.block("kinds")
    assert reference == regen.kinds_table(), "docs/kinds.md is stale: run python -m tools.regen"
    assert [kind for kind in REGISTRY if f"| `{kind}` |" not in reference] == []
    text = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    table = text[text.index("Layer kinds and their settings"):text.index("## When a filter does not fit")]
    rows = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| `")]
    named = {n for cell in rows for n in re.findall(r"`(\w+)`", re.sub(r"\([^()]*\)", "", cell))}  # not settings
    assert "conv" in named and "mvit_pos_embed" in named
    assert sorted(named - set(REGISTRY)) == []


def test_every_kind_has_a_row():
    used = set()
    for _, layers in ROWS.values():
        for layer in layers:
            used.add(layer if isinstance(layer, str) else next(iter(layer)))
    # opaque holds figures torch measured and cannot be built: test_from_torch checks it against torch
    assert set(REGISTRY) - used - {"opaque"} == set()


def test_every_kind_declares_its_onnx_mapping_or_why_none():
    """Each kind names the ONNX operators it stands for (tests/test_onnx_import.py runs a graph of each) or says why
    it has none (onnx_none), never both."""
    undeclared = [k for k, kind in REGISTRY.items() if not kind.onnx_ops and not kind.onnx_none.strip()]
    both = [k for k, kind in REGISTRY.items() if kind.onnx_ops and kind.onnx_none]
    assert (undeclared, both) == ([], [])


INPLACE_ROWS = {f"{kind}_inplace": ([3, 4, 4], [{"conv": {"filters": 3, "kernel": 1}}, {kind: {"inplace": True}},
                                                 {"conv": {"filters": 3, "kernel": 1}}])
                for kind in ("relu", "relu6", "hardswish", "hardsigmoid", "silu", "leaky_relu", "dropout")
                if "inplace" in REGISTRY[kind].params}
SAVED_ROWS = {**ROWS, **INPLACE_ROWS}


@pytest.mark.parametrize("row", sorted(SAVED_ROWS))
def test_kind_saves_for_backward_what_torch_saves(row):
    """The memory model's saved-for-backward bytes equal torch's saved_tensors_hooks (a layer after a trainable
    conv, so that its input requires grad as it does inside a network)."""
    shape, layers = SAVED_ROWS[row]
    lead = [{"conv": {"filters": shape[0], "kernel": 1, "name": "lead"}}] if len(shape) > 1 else []
    v = cnnsize.validate({"name": row, "input": shape, "layers": lead + layers, "fit": "floor"}, runs=0,
                         device="cpu")
    figure = v.totals["saved_for_backward_bytes"]
    assert figure.predicted == figure.measured, row
    # and each layer's new storage at inference (views and in-place layers none), as the forward pass makes them
    assert [m for m in v.mismatches() if "activations" in m or "output_shape" in m] == []
