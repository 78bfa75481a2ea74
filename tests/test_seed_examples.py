"""Every worked example of the lecture slides, reproduced by the calculators and the analysis.

Sources (text extracted from the slides, in ../shared/seeds/):
  000_ed85fa856022e0dc.txt  CS231n-style "Understanding CNNs" (VGG16 table, AlexNet shapes, 7x7 strides, 760 params)
  001_be9802bede35e9ba.txt  "CNNs / ConvNets" (7x7 examples, padding (F-1)/2, max pool example, pooling formula)
  002_632c96f7e22cba0b.txt  CS5670 (2-layer net 308,200 weights; 6 filters -> 28x28x6, 456 params)
  003_6cfb033e448c35e6.txt  CSC2515 Lecture 9 (LeNet table, locally connected 4M parameters)
  004_cd53ee89cf958062.txt  Hajij (32x32x3 with 20 5x5 filters -> 28x28x20; 3x3 filter -> 30x30)
"""

from __future__ import annotations

import pytest

import cnnsize
from cnnsize import calc


def one_layer(layer: str, input_shape: str = "[3, 32, 32]"):
    return cnnsize.analyze(f"input: {input_shape}\nlayers:\n  - {layer}\n").layers[1]


# --- 7x7 input, 3x3 filter (000, 001, 002): "(N - F) / stride + 1" --------------------------------------------
@pytest.mark.parametrize("stride, expected", [(1, (7 - 3) // 1 + 1), (2, (7 - 3) // 2 + 1)])
def test_7x7_input_3x3_filter_fits_at_stride_1_and_2(stride, expected):
    assert calc.conv_output_size(7, 3, stride) == expected  # 5 and 3, as the slides say
    assert one_layer(f"conv: {{filters: 1, kernel: 3, stride: {stride}}}", "[1, 7, 7]").output_shape == (1, expected,
                                                                                                          expected)


def test_7x7_input_3x3_filter_stride_3_does_not_fit():
    """(7 - 3)/3 + 1 = 2.33: "doesn't fit! cannot apply 3x3 filter on 7x7 input with stride 3." (001, 002)"""
    with pytest.raises(cnnsize.DoesNotFit) as err:
        calc.conv_output_size(7, 3, 3)
    message = str(err.value)
    assert "(7 − 3)/3 + 1 = 2.33: does not fit" in message
    # the fixes offered really fit: stride 1 or 2, pad 1, input 6 or 9
    assert "stride 1 (output 5) or 2 (output 3)" in message
    assert calc.conv_output_size(7, 3, 3, padding=1) == 3 and "pad 1 (output 3)" in message
    assert calc.conv_output_size(6, 3, 3) == 2 and calc.conv_output_size(9, 3, 3) == 3 and "input 6 or 9" in message
    assert calc.conv_output_size(7, 3, 3, fit="floor") == 2  # what PyTorch computes


def test_7x7_input_pad_1_gives_7x7_output():
    """"input 7x7, 3x3 filter, applied with stride 1, pad with 1 pixel border => 7x7 output!" (001, 002)"""
    assert calc.conv_output_size(7, 3, 1, 1) == 7


@pytest.mark.parametrize("f, pad", [(3, 1), (5, 2), (7, 3)])
def test_padding_f_minus_1_over_2_preserves_size(f, pad):
    """"zero-padding with (F-1)/2 (will preserve size spatially) F = 3 => 1, F = 5 => 2, F = 7 => 3" (001)"""
    assert pad == (f - 1) // 2
    for n in (7, 32, 224):
        assert calc.conv_output_size(n, f, 1, pad) == n


def test_32_input_shrinks_by_4_with_5x5_filters():
    """"32x32 input convolved repeatedly with 5x5 filters shrinks volumes spatially! (32 -> 28 -> 24 ...)" (001)"""
    assert calc.conv_output_size(32, 5) == 28
    assert calc.conv_output_size(28, 5) == 24


# --- the 760-parameter conv (000, 001, 002) --------------------------------------------------------------------
def test_ten_5x5_filters_stride_1_pad_2_on_32x32x3():
    """Output "(32+2*2-5)/1+1 = 32 spatially, so 32x32x10"; params "5*5*3 + 1 = 76 ... => 76*10 = 760"."""
    row = one_layer("conv: {filters: 10, kernel: 5, stride: 1, pad: 2}")
    assert row.output_shape == (10, 32, 32)
    assert row.params == 76 * 10 == 760
    assert row.weights == 5 * 5 * 3 * 10 and row.biases == 10
    assert str(calc.conv_output_size(32, 5, 1, 2, explain=True)) == "(32 + 2·2 − 5)/1 + 1 = 32"
    assert str(calc.conv_params(3, 10, 5, explain=True)) == "(5·5·3 + 1)·10 = 760"


def test_six_5x5_filters_give_28x28x6_and_456_params():
    """"6 5x5 filters ... a 'new image' of size 28x28x6! (total number of parameters: 6 x (75 + 1) = 456)" (002)"""
    row = one_layer("conv: {filters: 6, kernel: 5}")
    assert row.output_shape == (6, 28, 28)
    assert row.params == 6 * (75 + 1) == 456


def test_hajij_examples():
    """"32x32x3 -> 5x5x3, 20 filters -> 28x28x20"; a 3x3x3 filter on 32x32x3 -> "30X30X1" activation map (004)."""
    assert one_layer("conv: {filters: 20, kernel: 5}").output_shape == (20, 28, 28)
    assert one_layer("conv: {filters: 1, kernel: 3}").output_shape == (1, 30, 30)


def test_conv_summary_formula():
    """"F*F*D1 weights per filter, for total of (F*F*D1)*K weights and K biases"; D2 = K (001)."""
    for f, d1, k in [(3, 3, 64), (5, 3, 10), (1, 64, 16)]:
        row = one_layer(f"conv: {{filters: {k}, kernel: {f}}}", f"[{d1}, 32, 32]")
        assert row.weights == f * f * d1 * k and row.biases == k and row.output_shape[0] == k


# --- pooling (001) -----------------------------------------------------------------------------------------------
def test_pooling_formula_and_max_pool_example_shape():
    """"W2 = (W1 - F)/S + 1, D2 = D1, introduces ZERO parameters"; the 4x4 single depth slice -> 2x2 (001)."""
    row = one_layer("maxpool: {kernel: 2, stride: 2}", "[1, 4, 4]")
    assert row.output_shape == (1, 2, 2) and row.params == 0
    for w1, f, s in [(224, 2, 2), (55, 3, 2), (27, 3, 2), (13, 3, 2)]:
        assert calc.pool_output_size(w1, f, s) == (w1 - f) // s + 1


# --- fully connected (002) ---------------------------------------------------------------------------------------
def test_two_layer_net_3072_100_10_has_308200_weights():
    """"Total number of weights to learn: 3,072 x 100 + 100 x 10 = 308,200" (002)."""
    a = cnnsize.analyze("input: [3, 32, 32]\nlayers:\n  - fc: {units: 100}\n  - relu\n  - fc: {units: 10}\n")
    assert a.totals["weights"] == 3072 * 100 + 100 * 10 == 308_200
    assert calc.fc_params(3072, 100, bias=False) + calc.fc_params(100, 10, bias=False) == 308_200


def test_a_5x5x3_filter_has_76_weights_vs_3072_for_fc():
    """"Number of weights: 5 x 5 x 3 + 1 = 76 (vs. 3072 for a fully-connected layer)" (002)."""
    assert calc.conv_params(3, 1, 5) == 76
    assert calc.fc_params(32 * 32 * 3, 1, bias=False) == 3072


# --- locally connected (003) -------------------------------------------------------------------------------------
def test_locally_connected_200x200_40k_units_10x10_filters_4m_parameters():
    """"Example: 200x200 image, 40K hidden units, Filter size: 10x10, 4M parameters" (003).

    The slide counts weights; with one bias per hidden unit there are 40K more.
    """
    row = one_layer("locally_connected: {filters: 1, kernel: 10, pad: same}", "[1, 200, 200]")
    assert row.output_shape == (1, 200, 200) and row.activations == 40_000
    assert row.weights == 4_000_000 and row.biases == 40_000
    assert calc.locally_connected_params(1, 1, 10, 200, bias=False) == 4_000_000


# --- LeNet (003): "Sizes of layers in LeNet" ---------------------------------------------------------------------
LENET_TABLE = """
C1	convolution	4704	117,600	150
S2	pooling	1176	4704	0
C3	convolution	1600	240,000	2400
S4	pooling	400	1600	0
F5	fully connected	120	48,000	48,000
F6	fully connected	84	10,080	10,080
output	fully connected	10	840	840
"""


def test_lenet_table_every_row():
    a = cnnsize.analyze("lenet5")
    for line in LENET_TABLE.strip().splitlines():
        name, _kind, units, connections, weights = line.split("\t")
        row = a.layer(name)
        assert row.activations == int(units.replace(",", "")), name
        assert row.connections == int(connections.replace(",", "")), name
        assert row.weights == int(weights.replace(",", "")), name


# --- AlexNet (000): "Full (simplified) AlexNet architecture" -----------------------------------------------------
ALEXNET_SHAPES = """
[227x227x3] INPUT
[55x55x96] CONV1
[27x27x96] POOL1
[27x27x96] NORM1
[27x27x256] CONV2
[13x13x256] POOL2
[13x13x256] NORM2
[13x13x384] CONV3
[13x13x384] CONV4
[13x13x256] CONV5
[6x6x256] POOL3
[4096] FC6
[4096] FC7
[1000] FC8
"""


def test_alexnet_cs231n_every_shape():
    """The slide writes width x height x depth; cnnsize writes channels x height x width."""
    a = cnnsize.analyze("alexnet_cs231n")
    for line in ALEXNET_SHAPES.strip().splitlines():
        dims, name = line.split()
        wxhxd = tuple(int(v) for v in dims.strip("[]").split("x"))
        chw = (wxhxd[2], wxhxd[1], wxhxd[0]) if len(wxhxd) == 3 else wxhxd
        row = a.layer("input" if name == "INPUT" else name)
        assert row.output_shape == chw, name


# --- VGG16 (000): the memory / params table ------------------------------------------------------------------------
VGG16_TABLE = """
INPUT: [224x224x3] memory: 224*224*3=150K params: 0
CONV3-64: [224x224x64] memory: 224*224*64=3.2M params: (3*3*3)*64 = 1,728
CONV3-64: [224x224x64] memory: 224*224*64=3.2M params: (3*3*64)*64 = 36,864
POOL2: [112x112x64] memory: 112*112*64=800K params: 0
CONV3-128: [112x112x128] memory: 112*112*128=1.6M params: (3*3*64)*128 = 73,728
CONV3-128: [112x112x128] memory: 112*112*128=1.6M params: (3*3*128)*128 = 147,456
POOL2: [56x56x128] memory: 56*56*128=400K params: 0
CONV3-256: [56x56x256] memory: 56*56*256=800K params: (3*3*128)*256 = 294,912
CONV3-256: [56x56x256] memory: 56*56*256=800K params: (3*3*256)*256 = 589,824
CONV3-256: [56x56x256] memory: 56*56*256=800K params: (3*3*256)*256 = 589,824
POOL2: [28x28x256] memory: 28*28*256=200K params: 0
CONV3-512: [28x28x512] memory: 28*28*512=400K params: (3*3*256)*512 = 1,179,648
CONV3-512: [28x28x512] memory: 28*28*512=400K params: (3*3*512)*512 = 2,359,296
CONV3-512: [28x28x512] memory: 28*28*512=400K params: (3*3*512)*512 = 2,359,296
POOL2: [14x14x512] memory: 14*14*512=100K params: 0
CONV3-512: [14x14x512] memory: 14*14*512=100K params: (3*3*512)*512 = 2,359,296
CONV3-512: [14x14x512] memory: 14*14*512=100K params: (3*3*512)*512 = 2,359,296
CONV3-512: [14x14x512] memory: 14*14*512=100K params: (3*3*512)*512 = 2,359,296
POOL2: [7x7x512] memory: 7*7*512=25K params: 0
FC: [1x1x4096] memory: 4096 params: 7*7*512*4096 = 102,760,448
FC: [1x1x4096] memory: 4096 params: 4096*4096 = 16,777,216
FC: [1x1x1000] memory: 1000 params: 4096*1000 = 4,096,000
"""


def _vgg16_rows():
    """The slide table's rows: (memory as the exact product, params without biases)."""
    for line in VGG16_TABLE.strip().splitlines():
        memory = line.split("memory: ")[1].split("=")[0].split(" ")[0]
        product = 1
        for factor in memory.split("*"):
            product *= int(factor)
        params = line.split("params: ")[1].split("= ")[-1].replace(",", "")
        yield line.split(":")[0], product, int(params)


def test_vgg16_table_every_row():
    a = cnnsize.analyze("vgg16")
    # the rows the slide lists: input, convs, pools, fcs (not torchvision's adaptive pool, the identity at 224)
    materialized = [r for r in a.layers if r.activations and r.name != "avgpool"]
    assert a.layer("avgpool").output_shape == a.layer("pool5").output_shape == (512, 7, 7)
    assert len(materialized) == len(list(_vgg16_rows()))
    for row, (label, memory, params) in zip(materialized, _vgg16_rows()):
        assert row.activations == memory, (label, row.name)
        assert row.weights == params, (label, row.name)


def test_vgg16_totals_against_torchvision_and_the_slide():
    """torchvision.models.VGG16_Weights.IMAGENET1K_V1.meta: num_params 138,357,544, GFLOPS 15.47 (MACs counted once).

    Memory: the slide's rows sum to 15,237,608 values (~61 MB at float32), not its "24M x 4 bytes ~= 96MB";
    torchvision's adaptive pool (the identity at 224, yet a new tensor) adds 512·7·7 = 25,088.
    """
    a = cnnsize.analyze("vgg16")
    assert a.totals["params"] == 138_357_544
    assert a.totals["macs"] == 15_470_264_320 and round(a.totals["macs"] / 1e9, 2) == 15.47
    assert a.totals["flops"] == 2 * a.totals["macs"]
    pool = 512 * 7 * 7
    assert a.totals["activations"] == sum(memory for _, memory, _ in _vgg16_rows()) + pool == 15_237_608 + pool
    assert a.totals["memory"]["activations_bytes"] == (15_237_608 + pool) * 4
    assert a.totals["weights"] == sum(params for *_, params in _vgg16_rows())
    assert a.totals["weight_layers"] == 16
    assert a.totals["receptive_field"].size == (212, 212)  # pool5, known from the VGG literature
    assert cnnsize.analyze("vgg16", batch=8, dtype="float16").totals["memory"]["activations_bytes"] == \
        (15_237_608 + pool) * 8 * 2


def test_vgg16_keeps_its_parameters_at_other_sizes():
    """torchvision's VGG16 has 138,357,544 parameters at any input size: its AdaptiveAvgPool2d(7) feeds fc6 7×7×512.

    Checked against torch layer by layer (tests/torch_graph.py), run at 320×320 on the meta device.
    """
    pytest.importorskip("torch")
    from .torch_graph import measure

    a = cnnsize.analyze("vgg16", input_shape=(3, 320, 320))
    assert a.layer("pool5").output_shape == (512, 10, 10) and a.layer("avgpool").output_shape == (512, 7, 7)
    got = measure(a, device="meta")
    assert got["shapes"]["avgpool"] == (512, 7, 7) and got["shapes"]["fc8"] == (1000,)
    assert got["params"] == a.totals["params"] == 138_357_544 and got["macs"] == a.totals["macs"]


def test_three_3x3_convs_see_7x7_like_one_7x7_conv():
    """"Stack of three 3x3 conv (stride 1) layers has same effective receptive field as one 7x7 conv layer" and
    "fewer parameters: 3 * (3^2 C^2) vs. 7^2 C^2 for C channels per layer" (000)."""
    c = 64
    three = cnnsize.analyze({"input": [c, 56, 56], "layers": [
        {"conv": {"filters": c, "kernel": 3, "pad": 1, "bias": False}}] * 3})
    one = cnnsize.analyze({"input": [c, 56, 56], "layers": [{"conv": {"filters": c, "kernel": 7, "pad": 3,
                                                                       "bias": False}}]})
    assert three.totals["receptive_field"].size == one.totals["receptive_field"].size == (7, 7)
    assert three.totals["params"] == 3 * (3**2 * c**2) and one.totals["params"] == 7**2 * c**2


@pytest.mark.parametrize("name, params, gflops", [
    ("vgg11", 132_863_336, 7.61), ("vgg13", 133_047_848, 11.31), ("vgg19", 143_667_240, 19.63)])
def test_vgg_family_against_torchvision_metadata(name, params, gflops):
    """torchvision.models.VGG{11,13,19}_Weights.IMAGENET1K_V1.meta (num_params, _ops in GFLOPS = GMACs)."""
    a = cnnsize.analyze(name)
    assert a.totals["params"] == params
    assert round(a.totals["macs"] / 1e9, 2) == gflops
