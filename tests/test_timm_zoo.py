"""timm's models (pretrained=False) imported against torch itself: params and buffers (sum of numel), MACs
(FlopCounterMode's total / 2) and the output's shape, one model per architecture family (tools/timm_survey.py).

The default zoo run checks a representative few (plain, residual, dense, depthwise, grouped, token and attention
networks, each imported in seconds); ``-m slow`` checks every family: those that import exactly today must stay
exact, and every other one must stop on one line of cnnsize's (a refusal naming the pattern), never a traceback.
"""

from __future__ import annotations

import pytest

from tools import timm_survey

from .conftest import need

pytestmark = pytest.mark.zoo

# families whose smallest model imports exactly (timm 1.0.31: 95 of 98), checked under -m slow; the representative few
# in the default zoo run (maxxvit and efficientformer: a relative position bias as sdpa's mask and as const_op)
EXACT = ("beit", "byoanet", "byobnet", "cait", "coat", "convit", "convmixer", "convnext", "cpubone", "crossvit",
         "cspnet", "cspnext", "davit", "deepseek_vit", "deit", "densenet", "dla", "dpn", "edgenext", "efficientformer",
         "efficientformer_v2", "efficientnet", "efficientvim", "efficientvit_mit", "efficientvit_msra", "eva",
         "fasternet", "fastvit", "focalnet", "gcvit", "ghostnet", "hardcorenas", "hgnet", "hiera", "hieradet_sam2",
         "hrnet", "iformer", "inception_next", "inception_resnet_v2", "inception_v3", "inception_v4", "lcnetv2",
         "levit", "lowformer", "mambaout", "maxxvit", "metaformer", "mlp_mixer", "mobilenetv3", "mobilenetv5",
         "mobilevit", "mvitv2", "naflexvit", "nasnet", "nest", "nextvit", "nfnet", "pit", "pnasnet", "pvt_v2",
         "qwen3_vit", "rdnet", "regnet", "repghost", "repvit", "res2net", "resnest", "resnet", "resnetv2", "rexnet",
         "selecsls", "senet", "shvit", "sknet", "starnet", "swiftformer", "swin_transformer", "swin_transformer_v2",
         "swin_transformer_v2_cr", "tiny_vit", "tnt", "tresnet", "twins", "vgg", "visformer", "vision_transformer",
         "vision_transformer_hybrid", "vision_transformer_relpos", "vision_transformer_sam", "vitamin", "volo",
         "vovnet", "xception", "xception_aligned", "xcit")
REPRESENTATIVE = ("resnet", "efficientnet", "convnext", "deit", "byobnet", "cspnet", "davit", "mambaout", "sknet",
                  "pit", "maxxvit", "efficientformer")
# an import that takes minutes (gemma4_vit_167m: over 90 s on two shared cores), left out of the slow set's run
TOO_SLOW = ("gemma4_vit",)


def _params(families) -> list:
    return [pytest.param(f, id=f, marks=[] if f in REPRESENTATIVE else [pytest.mark.slow]) for f in families]


@pytest.mark.parametrize("family", _params(sorted(EXACT)))
def test_timm_family_imports_exactly(family):
    need("timm")
    row = timm_survey.survey(timm_survey.FAMILIES[family])
    assert row.get("exact"), row


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(set(timm_survey.FAMILIES) - set(EXACT) - set(TOO_SLOW)))
def test_timm_family_that_fails_names_its_pattern(family):
    """A family that does not import yet stops on cnnsize's one-line refusal (or imports: then move it to EXACT)."""
    need("timm")
    row = timm_survey.survey(timm_survey.FAMILIES[family])
    assert not row.get("exact"), f"{family} imports exactly now: add it to EXACT"
    assert row["cause"] != "time" and not row["cause"].startswith("crash"), row


def test_representative_families_are_in_the_survey():
    assert set(REPRESENTATIVE) <= set(EXACT) <= set(timm_survey.FAMILIES)
