"""The bundled model zoo against published figures, and every bundled spec against torch.

torchvision's figures are quoted from its weight metadata, ``<Model>_Weights.IMAGENET1K_V1.meta``
(``num_params``, and ``_ops`` = GFLOPS, which counts a multiply-add once), in
torchvision/models/*.py of torchvision 0.29. Nothing here downloads weights or imports torchvision.
"""

from __future__ import annotations

import pytest

import cnnsize
from cnnsize.spec.sources import bundled_names

# name: (num_params, _ops in GFLOPS), from torchvision.models.<Model>_Weights.IMAGENET1K_V1.meta
TORCHVISION_META = {
    "alexnet": (61100840, 0.714),
    "vgg11": (132863336, 7.609),
    "vgg13": (133047848, 11.308),
    "vgg16": (138357544, 15.47),
    "vgg19": (143667240, 19.632),
    "vgg11_bn": (132868840, 7.609),
    "vgg16_bn": (138365992, 15.47),
    "resnet18": (11689512, 1.814),
    "resnet34": (21797672, 3.664),
    "resnet50": (25557032, 4.089),
    "resnet101": (44549160, 7.801),
    "resnet152": (60192808, 11.514),
    "resnext50_32x4d": (25028904, 4.23),
    "wide_resnet50_2": (68883240, 11.398),
    "googlenet": (6624904, 1.498),
    "inception_v3": (27161264, 5.713),  # the parameter count includes the auxiliary head (AuxLogits)
    "densenet121": (7978856, 2.834),
    "mobilenet_v2": (3504872, 0.301),
    "mobilenet_v3_large": (5483032, 0.217),
    "squeezenet1_0": (1248424, 0.819),
    "squeezenet1_1": (1235496, 0.349),
    "shufflenet_v2_x1_0": (2278604, 0.145),
    "efficientnet_b0": (5288548, 0.386),
    "convnext_tiny": (28589128, 4.456),
    "efficientnet_v2_s": (21458488, 8.366),  # at 384x384
    # torchvision.models.video.R3D_18_Weights.KINETICS400_V1.meta, at 16 frames of 112x112
    "r3d_18": (33371472, 40.697),
    # torchvision.models.segmentation.FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1.meta, at 520x520, with the
    # auxiliary head (torchvision builds it whenever it loads these weights)
    "fcn_resnet50": (35322218, 152.717),
    "vit_b_16": (86567656, 17.564),
    "swin_t": (28288354, 4.491),
}
PUBLISHED_INPUT = {"inception_v3": (3, 299, 299), "efficientnet_v2_s": (3, 384, 384), "r3d_18": (3, 16, 112, 112),
                   "fcn_resnet50": (3, 520, 520)}
SPEC_INPUT = {"inception_v3": (3, 299, 299), "r3d_18": (3, 16, 112, 112)}
WITH_AUX = {"fcn_resnet50"}  # published figures that include the auxiliary head


@pytest.mark.parametrize("name", sorted(TORCHVISION_META))
def test_torchvision_figures(name):
    params, gflops = TORCHVISION_META[name]
    assert cnnsize.analyze(name).input_shape == SPEC_INPUT.get(name, (3, 224, 224))
    a = cnnsize.analyze(name, input_shape=PUBLISHED_INPUT.get(name), variables={"aux": True} if name in WITH_AUX
                        else None)
    # torchvision publishes the MACs of the model in eval mode (auxiliary heads do not run)
    assert abs(a.totals["macs"] / 1e9 - gflops) <= 0.0005, a.totals["macs"]
    if name == "inception_v3":
        assert a.totals["params"] == 23834568  # without AuxLogits
        a = cnnsize.analyze(name, variables={"aux": True})
    assert a.totals["params"] == params


def test_googlenet_aux_heads_are_optional():
    plain = cnnsize.analyze("googlenet")
    aux = cnnsize.analyze("googlenet", variables={"aux": True})
    assert not any(r.name.startswith("aux") for r in plain.layers)
    assert {"aux1.fc2", "aux2.fc2"} <= {r.name for r in aux.layers}
    assert aux.totals["params"] > plain.totals["params"]
    assert aux.totals["receptive_field"] == plain.totals["receptive_field"]


def test_torchvision_module_names_line_up():
    names = {r.name for r in cnnsize.analyze("resnet50").layers}
    assert {"conv1", "bn1", "layer1.0.downsample.0", "layer3.5.conv3", "layer4.2.bn3", "fc"} <= names
    assert "layer2.1.downsample.0" not in names
    names = {r.name for r in cnnsize.analyze("densenet121").layers}
    assert {"features.denseblock4.denselayer16.conv2", "features.transition3.conv", "classifier"} <= names
    names = {r.name for r in cnnsize.analyze("inception_v3").layers}
    assert {"Mixed_7c.branch3x3dbl_3b.conv", "Mixed_5b.branch_pool.bn"} <= names
    names = {r.name for r in cnnsize.analyze("mobilenet_v3_large").layers}
    assert {"features.4.block.2.fc1", "features.1.block.0.0", "features.15.block.3.1"} <= names


def test_alexnet_2012_matches_the_paper():
    """Krizhevsky et al. 2012: "60 million parameters and 650,000 neurons" (seed 001_be9802bede35e9ba.txt)."""
    a = cnnsize.analyze("alexnet_2012")
    assert abs(a.totals["params"] - 60_000_000) / 60_000_000 < 0.02
    neurons = sum(r.activations for r in a.layers if r.weight_layer)
    assert neurons == 659_272 and abs(neurons - 650_000) / 650_000 < 0.02
    assert a.layer("conv2").params == 5 * 5 * 48 * 256 + 256  # each GPU's half sees 48 maps


def test_mobilenet_v1_matches_the_paper():
    """Howard et al. 2017, Table 8: 1.0 MobileNet-224 has 569 million mult-adds and 4.2 million parameters."""
    a = cnnsize.analyze("mobilenet_v1")
    assert round(a.totals["macs"] / 1e6) == 569
    assert round(a.totals["params"] / 1e6, 1) == 4.2


def test_zfnet_sizes_match_figure_3():
    """Zeiler and Fergus 2013, Figure 3: 110, 55, 26, 13, 13, 13, 6 and 96/256/384/384/256 maps."""
    a = cnnsize.analyze("zfnet")
    got = [a.layer(n).output_shape for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")]
    assert got == [(96, 110, 110), (96, 55, 55), (256, 26, 26), (256, 13, 13), (384, 13, 13), (384, 13, 13),
                   (256, 13, 13), (256, 6, 6)]


def test_resnet152_fits_on_one_screen():
    lines = (cnnsize.spec.sources.bundled_path("resnet152").read_text().splitlines())
    assert len(lines) <= 50


def test_one_dimensional_example():
    a = cnnsize.analyze("m5_speech")
    assert a.input_shape == (1, 32000)
    assert a.layer("conv1").output_shape == (128, 7981)  # (32000 - 80)/4 + 1, rounded down
    assert a.totals["receptive_field"].size == (1772,)


torch = pytest.importorskip("torch")
from .torch_graph import measure  # noqa: E402


@pytest.mark.parametrize("name", bundled_names())
def test_bundled_spec_matches_torch(name):
    """Every bundled spec at its own input, built layer by layer in torch: shapes, params, buffers and MACs.

    Run on torch's meta device: its shape and FLOP logic without computing values (the kinds run for real
    in test_layer_kinds.py).
    """
    a = cnnsize.analyze(name, variables={"aux": True} if name in ("googlenet", "inception_v3") else None)
    got = measure(a, device="meta")
    for r in a.layers:
        assert got["shapes"][r.name] == tuple(r.output_shape), r.name
    assert (got["params"], got["buffers"], got["macs"]) == (a.totals["params"], a.totals["buffers"], a.totals["macs"])



@pytest.mark.slow
@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_auxiliary_heads_validate(name):
    """The aux variants (tests/test_executor.py validates every bundled spec as it ships)."""
    size = 299 if name == "inception_v3" else 96  # Inception's aux head needs its 17x17 maps: the full input
    a = cnnsize.analyze(name, input_shape=(3, size, size), fit="floor", variables={"aux": True})
    v = cnnsize.validate(a, device="cpu", runs=0)
    assert v.ok, v.mismatches()
