"""Composite layers' transient tensors in the memory peaks, against torch's measured CPU peaks.

A composite kind (Swin's, MaxViT's and MViT's attention, patch merging, MViT's pooling and position table) makes
tensors on the way to its output that live only while it runs (QKᵀ, the softmax, padded and rolled copies). The
inference peak and the training step's peak hold them at the layer's moment (LayerKind.transient). The truth is
torch's own: every allocation of a no-grad forward and of a steady Adam step, recorded by torch.profiler on the CPU
(cnnsize.executor.validation._peak_allocated, backend workspace apart), on single-layer networks large enough that
the validation's fixed slack does not hide an error.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import cnnsize  # noqa: E402
from cnnsize.executor.validation import _peak_allocated, _step_peak  # noqa: E402

from .test_fused_attention import MAXVIT, MVIT  # noqa: E402
from .test_swin import GEOMETRIES  # noqa: E402

CPU = torch.device("cpu")


def peaks(spec: dict, batch: int) -> dict[str, tuple[int, int]]:
    """{"inference": (predicted, measured), "training": (predicted, measured)} bytes beyond the model and its input."""
    a = cnnsize.analyze(spec, batch=batch, device="cpu")
    model = cnnsize.build(a, device="cpu")
    x = torch.zeros((batch, *a.input_shape))

    def forward():
        with torch.no_grad():
            model(x)

    forward()
    inference = _peak_allocated(CPU, forward).model
    predicted = a.totals["memory"]["inference_peak_activations_bytes"] - x.numel() * x.element_size()
    step_predicted, step, _ = _step_peak(a, model, CPU, "float32")
    return {"inference": (predicted, inference), "training": (step_predicted, step.model)}


def off(pair: tuple[int, int]) -> float:
    predicted, measured = pair
    return measured / predicted - 1


def swin(row: str) -> tuple[dict, int]:
    shape, settings, batch = GEOMETRIES[row]
    return {"name": row, "input": shape, "layers": [{"swin_attention": settings}, "patch_merge"]}, 16 * batch


def maxvit(g: int, p: int, d: int, heads: int, size: int) -> dict:
    return {"input": [g, p, d], "layers": [{"linear": {"units": d}}, {"maxvit_attention": {"heads": heads,
                                                                                          "size": size}}]}


def mvit(name: str) -> dict:
    return {"input": [33, 8], "layers": [{"linear": {"units": 8}}, {"mvit_attention": MVIT[name]}]}


POOL = {"input": [32, 8], "layers": ["class_token", {"mvit_pos_embed": {"size": [2, 4, 4]}}, {"linear": {"units": 8}},
                                     {"mvit_pool": {"size": [2, 4, 4], "kernel": [1, 3, 3], "stride": [1, 2, 2]}}]}
CASES = {**{f"swin_{row}": swin(row) for row in sorted(GEOMETRIES)},
         **{"maxvit_" + "_".join(map(str, row)): (maxvit(*row), 32) for row in MAXVIT},
         **{f"mvit_{name}": (mvit(name), 32) for name in sorted(MVIT)}, "mvit_pool_and_position": (POOL, 32)}
# measured here (torch 2.13, CPU): inference within -11%..+8% of torch for every case; training within ±10% but for
# these, where the transients' worst moment is not the attention matrix's two copies (the prediction's rule)
TRAINING_SPREAD = {"swin_crop_inner": 0.15, "swin_video": 0.15, "mvit_v1_pooled_q": 0.18}


# windows of one position on some axes: the inference peak is 17-30% under torch's (the worst moment is not the
# attention matrix's two copies there); found by the geometries test_swin adds, not modelled yet
INFERENCE_GAPS = {"swin_video_partition_only", "swin_windows_along_one_axis"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason="inference peak, "
                                               "windows of one position")) if c in INFERENCE_GAPS else c
                                  for c in sorted(CASES)])
def test_composite_transients_in_the_peaks_match_torch(case):
    spec, batch = CASES[case]
    p = peaks(spec, batch)
    assert abs(off(p["inference"])) <= 0.12, p
    assert abs(off(p["training"])) <= TRAINING_SPREAD.get(case, 0.10), p


@pytest.mark.parametrize("row", ["v2_one_window_batch", "video_shrunk"])
def test_the_swin_geometries_that_missed_the_training_peak_validate(row):
    """Without the transients these two predicted 455,244 and 703,288 bytes against torch's 776,920 and 1,286,400."""
    shape, settings, batch = GEOMETRIES[row]
    v = cnnsize.validate({"name": row, "input": shape, "layers": [{"swin_attention": settings}, "patch_merge"]},
                         device="cpu", runs=0, batch=batch)
    assert v.totals["training_step_peak_bytes"].ok, v.totals["training_step_peak_bytes"]


def test_without_the_transients_the_peaks_fall_short(monkeypatch):
    """The check can fail: with transient() at 0 again, the inference peak of a Swin layer misses torch's by far."""
    from cnnsize.layers.base import LayerKind
    from cnnsize.layers.swin import SwinAttention

    spec, batch = swin("shifted")
    monkeypatch.setattr(SwinAttention, "transient", LayerKind.transient)
    p = peaks(spec, batch)
    assert off(p["inference"]) > 0.5 and off(p["training"]) > 0.0, p


def test_swin_t_sized_peaks():
    """A Swin-T stage at 56×56 (96 channels, 3 heads, window 7, shifted), batch 2."""
    spec = {"input": [56, 56, 96], "layers": [{"swin_attention": {"heads": 3, "window": 7}},
                                              {"swin_attention": {"heads": 3, "window": 7, "shift": 3}}]}
    p = peaks(spec, 2)
    assert abs(off(p["inference"])) <= 0.10 and abs(off(p["training"])) <= 0.10, p


def test_maxvit_t_sized_peaks():
    """MaxViT-T's first block's window and grid attention: 64 channels at 56×56, 2 heads, 7×7 partitions, batch 2."""
    spec = {"input": [64, 49, 64], "layers": [{"maxvit_attention": {"heads": 2, "size": 7}},
                                              {"maxvit_attention": {"heads": 2, "size": 7}}]}
    p = peaks(spec, 2)
    assert abs(off(p["inference"])) <= 0.10 and abs(off(p["training"])) <= 0.10, p
