"""Swin's layers (swin_attention, patch_merge) against torch.

Without torchvision: each geometry (shifted or not, padded, one window, one head, v2, 3D with shrinking windows) is
built and validated on CPU, which measures the output shape, params, buffers, FlopCounterMode's MACs, the storages
the module makes (the layer's activations, its intermediates included) and what autograd saves. With torchvision
(the zoo set): torchvision's own modules import to these kinds with torch's figures, and cnnsize's build computes
the same values with the same state dict.
"""

from __future__ import annotations

import pytest

import cnnsize

from .conftest import need

torch = pytest.importorskip("torch")

# id: (input (…, C) channels-last, swin_attention settings, batch)
GEOMETRIES = {
    "shifted": ([7, 8, 12], {"heads": 3, "window": 3, "shift": 1}, 2),
    "not_shifted": ([6, 6, 12], {"heads": 3, "window": 3}, 1),
    "padded_one_window": ([5, 7, 12], {"heads": 3, "window": 7, "shift": 3}, 1),
    "one_window_batch": ([7, 7, 12], {"heads": 3, "window": 7, "shift": 3}, 2),
    "v2_one_window_batch": ([5, 6, 12], {"heads": 3, "window": 8, "shift": 4, "version": "v2", "cpb_hidden": 16}, 3),
    "crop_inner": ([6, 8, 12], {"heads": 3, "window": 4, "shift": 2}, 1),
    "one_head": ([6, 6, 12], {"heads": 1, "window": 3, "shift": 1}, 2),
    "one_position": ([1, 1, 24], {"heads": 4, "window": 7, "shift": 3}, 1),
    "v2": ([8, 10, 12], {"heads": 3, "window": 4, "shift": 2, "version": "v2", "cpb_hidden": 32}, 2),
    "v2_one_window": ([6, 6, 12], {"heads": 3, "window": 8, "shift": 4, "version": "v2", "cpb_hidden": 16}, 1),
    "video": ([3, 7, 6, 12], {"heads": 2, "window": [4, 3, 3], "shift": [2, 1, 1], "shrink": True}, 2),
    "video_shrunk": ([4, 7, 7, 12], {"heads": 2, "window": [8, 7, 7], "shift": [4, 3, 3], "shrink": True}, 1),
    # windows of one position on some axes: the partition copies (the window axes interleave with the counts'),
    # the merge back is a view (each axis is either counted or windowed): torch's reshape rule, not the axes' order
    "video_partition_only": ([2, 3, 7, 12], {"heads": 2, "window": [1, 16, 1], "shift": [0, 4, 0], "shrink": True}, 2),
    "windows_along_one_axis": ([1, 8, 12], {"heads": 3, "window": [1, 4]}, 2),
    # issue #22, windows larger than the input, shrunk (Video Swin): at batch 1 the partition is a strided view, which
    # QKV's F.linear copies, its bias added in place (validate measured a third tensor: see the test below); and a
    # window shrunk to one position, whose part of the index is a view of the buffer, not a copy autograd keeps
    "video_windows_as_views": ([3, 2, 8, 8], {"heads": 4, "window": [4, 3, 1], "shrink": True}, 1),
    "video_one_position_shrunk": ([1, 7, 6, 2], {"heads": 1, "window": [16, 1, 1], "shrink": True}, 1),
}
FIGURES = ("output_shape", "weights", "biases", "params", "buffers", "macs", "activations")


@pytest.mark.parametrize("row", sorted(GEOMETRIES))
def test_swin_attention_validates(row):
    shape, settings, batch = GEOMETRIES[row]
    v = cnnsize.validate({"name": row, "input": shape, "layers": [{"swin_attention": settings}, "patch_merge"]},
                         device="cpu", runs=0, batch=batch)
    for layer in v.layers:
        for key in FIGURES if layer.name != "input" else ("output_shape", "activations"):
            assert layer.figures[key].ok, (layer.name, key, layer.figures[key])
    for key in ("params", "buffers", "macs", "activations", "saved_for_backward_bytes"):
        assert v.totals[key].ok, (key, v.totals[key])


def test_linear_on_strided_windows_adds_its_bias_in_place():
    """Swin's windows at batch 1 may be a strided view: torch's F.linear copies them and makes one product, adding the
    bias into it in place (torch's own allocations, recorded by the profiler), where under a Python dispatch mode
    (validate's count of a layer's tensors) it adds out of place; validate counts the tensors of the plain run."""
    from torch.autograd.profiler import profile

    from cnnsize.executor.validation import _allocations

    windows = torch.zeros(1, 3, 2, 8, 8).view(1, 1, 3, 1, 2, 8, 1, 8).permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(8, 6, 8)
    assert not windows.is_contiguous()
    qkv = torch.nn.Linear(8, 24)
    with torch.no_grad(), profile(use_cpu=True, profile_memory=True) as prof:
        qkv(windows)
    made = [nbytes for _, _, nbytes, _ in _allocations(prof.kineto_results.experimental_event_tree()) if nbytes > 0]
    assert sorted(made) == [windows.numel() * 4, 3 * windows.numel() * 4]  # the copy and the product, no sum
    v = cnnsize.validate({"input": [3, 2, 8, 8], "layers": [{"swin_attention": {"heads": 4, "window": [4, 3, 1],
                                                                              "shrink": True}}]},
                         device="cpu", runs=0, batch=1)
    assert v.ok, v.mismatches()


def test_patch_merge_pads_odd_sizes():
    a = cnnsize.analyze({"input": [2, 5, 7, 6], "layers": ["patch_merge"]})
    assert a.layers[-1].output_shape == (2, 3, 4, 24)
    assert a.layers[-1].activations == 2 * 6 * 8 * 6 + 2 * 3 * 4 * 24  # the padded copy, then the concatenation
    v = cnnsize.validate({"input": [2, 5, 7, 6], "layers": ["patch_merge"]}, device="cpu", runs=0)
    assert v.ok, v.mismatches()


def test_swin_attention_errors():
    with pytest.raises(cnnsize.CnnsizeError, match="channels-last"):
        cnnsize.analyze({"input": [12, 4], "layers": [{"swin_attention": {"heads": 3, "window": 2}}]})
    with pytest.raises(cnnsize.CnnsizeError, match="divisible by heads"):
        cnnsize.analyze({"input": [4, 4, 10], "layers": [{"swin_attention": {"heads": 3, "window": 2}}]})
    with pytest.raises(cnnsize.CnnsizeError, match="smaller than the window"):
        cnnsize.analyze({"input": [4, 4, 12], "layers": [{"swin_attention": {"heads": 3, "window": 2, "shift": 2}}]})
    with pytest.raises(cnnsize.CnnsizeError, match="2D only"):
        cnnsize.analyze({"input": [2, 4, 4, 12], "layers": [{"swin_attention": {"heads": 3, "window": 2,
                                                                                "version": "v2"}}]})


def _torchvision_modules():
    tv = need("torchvision").models
    s, v = tv.swin_transformer, tv.video.swin_transformer
    return {"v1_shifted_padded": (s.ShiftedWindowAttention(12, [3, 3], [1, 1], 3), (7, 8, 12)),
            "v1_one_window": (s.ShiftedWindowAttention(24, [7, 7], [3, 3], 4), (5, 7, 24)),
            "v2_shifted": (s.ShiftedWindowAttentionV2(12, [4, 4], [2, 2], 3), (8, 10, 12)),
            "v3d_shrunk": (v.ShiftedWindowAttention3d(12, [4, 3, 3], [2, 1, 1], 2), (3, 7, 6, 12)),
            "patch_merging": (s.PatchMerging(12), (5, 7, 12)),
            "patch_merging_v2": (s.PatchMergingV2(12), (6, 4, 12)),
            "patch_embed_3d": (v.PatchEmbed3d([2, 4, 4], embed_dim=8, norm_layer=torch.nn.LayerNorm), (3, 5, 9, 8))}


@pytest.mark.zoo
@pytest.mark.parametrize("row", ["v1_shifted_padded", "v1_one_window", "v2_shifted", "v3d_shrunk", "patch_merging",
                                 "patch_merging_v2", "patch_embed_3d"])
def test_torchvision_swin_modules_import_with_torch_figures(row):
    from .zoo_truth import torch_figures

    torch.manual_seed(0)
    module, shape = _torchvision_modules()[row]
    truth = torch_figures(module, shape)
    imported = cnnsize.from_torch(module, shape)
    a = imported.analyze()
    assert {key: a.totals[key] for key in truth} == truth
    # cnnsize's own build computes what torchvision computes, with torchvision's state dict
    model = cnnsize.build(imported.spec)
    state = {f"{next(iter(model.layer_modules))}.{k}": t for k, t in module.state_dict().items()}
    if row in ("v1_shifted_padded", "v1_one_window", "v2_shifted", "v3d_shrunk"):
        model.load_state_dict(state)
        x = torch.randn(2, *shape)
        with torch.no_grad():
            assert torch.allclose(model(x), module(x), atol=1e-5)


def test_explain_shows_the_intermediates_and_symbols_are_refused():
    sympy = pytest.importorskip("sympy")
    spec = {"input": [8, 8, 12], "layers": [{"swin_attention": {"heads": 3, "window": 4, "shift": 2, "version": "v2"}}]}
    a = cnnsize.analyze(spec)
    steps = cnnsize.explain(spec).layers[-1].steps
    assert f"made on the way = {a.layers[-1].activations}" in " ".join(steps)
    assert any(s.startswith("MACs once per call") for s in steps)
    with pytest.raises(cnnsize.CnnsizeError, match="sizes that are numbers"):
        cnnsize.analyze("swin_t", input_shape=(3, *sympy.symbols("H W", positive=True, integer=True)))
