"""Each layer kind's torch mapping (its ``torch_modules``, ``torch_functions`` and ``from_torch``), one row per
form: a tiny torch model imports to that kind with torch's own parameters, buffers, MACs and output shape.

Every kind that declares a torch mapping must have a row here (the last test checks it): adding a kind
touches its own file, one row of this table and the regenerated schema.
"""

from __future__ import annotations

import pytest

import cnnsize
from cnnsize.layers import REGISTRY

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class Fn(nn.Module):
    """A module whose forward is one function of its input (the functional and method forms)."""

    def __init__(self, fn, *modules: nn.Module):
        super().__init__()
        self.fn = fn
        self.mods = nn.ModuleList(modules)

    def forward(self, x):
        return self.fn(self, x)


class FunctionalConvBN(nn.Module):
    """A fused module in the style of model libraries: the layers' weights are its own attributes."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 3, 3, 3))
        self.bias = nn.Parameter(torch.randn(6))
        self.register_buffer("running_mean", torch.zeros(6))
        self.register_buffer("running_var", torch.ones(6))
        self.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long))
        self.bn_weight = nn.Parameter(torch.ones(6))
        self.bn_bias = nn.Parameter(torch.zeros(6))

    def forward(self, x):
        x = F.conv2d(x, self.weight, self.bias, 2, 1)
        x = F.batch_norm(x, self.running_mean, self.running_var, self.bn_weight, self.bn_bias, False, 0.1, 1e-3)
        return F.relu(x, inplace=True)


class FunctionalLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(5, 12))

    def forward(self, x):
        return F.linear(x.flatten(1), self.weight)


class Attention(nn.Module):
    """Self-attention as torchvision's ViT calls it, run on torch's math kernel outside the fused inference path, so
    that FlopCounterMode sees QKᵀ and attention·V (the fused kernels have no FLOP formula on CPU)."""

    def __init__(self, functional: bool = False):
        super().__init__()
        self.functional = functional
        self.attn = None if functional else nn.MultiheadAttention(6, 2, batch_first=True)

    def forward(self, x):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):
            if self.functional:
                return F.scaled_dot_product_attention(x, x, x)
            return self.attn(x, x, x, need_weights=False)[0]


# id: (make the model, input shape C x H x W, the kind it must import to)
ROWS = {
    "conv2d": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (3, 9, 9), "conv"),
    "conv1d_same": (lambda: nn.Conv1d(2, 3, 4, padding="same", bias=False), (2, 10), "conv"),
    "conv_functional": (FunctionalConvBN, (3, 8, 8), "conv"),
    "bn_functional": (FunctionalConvBN, (3, 8, 8), "bn"),
    "deconv2d": (lambda: nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1), (3, 5, 5), "deconv"),
    "fc": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 5)), (3, 2, 2), "fc"),
    "fc_functional": (FunctionalLinear, (3, 2, 2), "fc"),
    "flatten_view": (lambda: Fn(lambda s, x: x.view(x.size(0), -1)), (3, 2, 2), "flatten"),
    "maxpool2d": (lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True), (3, 9, 9), "maxpool"),
    "maxpool_functional": (lambda: Fn(lambda s, x: F.max_pool2d(x, 2)), (3, 9, 9), "maxpool"),
    "avgpool1d": (lambda: nn.AvgPool1d(3, 2, count_include_pad=False, padding=1), (3, 9), "avgpool"),
    "adaptive_avgpool": (lambda: nn.AdaptiveAvgPool2d((3, None)), (3, 9, 7), "adaptive_avgpool"),
    "adaptive_maxpool": (lambda: Fn(lambda s, x: F.adaptive_max_pool2d(x, 2)), (3, 9, 7), "adaptive_maxpool"),
    "global_avgpool_mean": (lambda: Fn(lambda s, x: x.mean((2, 3))), (3, 5, 5), "global_avgpool"),
    "global_maxpool": (lambda: nn.AdaptiveMaxPool3d(1), (2, 3, 4, 4), "global_maxpool"),
    "bn": (lambda: nn.BatchNorm2d(3, eps=1e-3, momentum=0.01), (3, 4, 4), "bn"),
    "layernorm_flat": (lambda: nn.Sequential(nn.Flatten(), nn.LayerNorm(48)), (3, 4, 4), "layernorm"),
    "lrn": (lambda: nn.LocalResponseNorm(3, alpha=2e-4, k=1.5), (6, 4, 4), "lrn"),
    "relu_inplace": (lambda: nn.ReLU(inplace=True), (3, 4, 4), "relu"),
    "relu_method": (lambda: Fn(lambda s, x: x.relu()), (3, 4, 4), "relu"),
    "relu6_hardtanh": (lambda: Fn(lambda s, x: F.hardtanh(x, 0.0, 6.0)), (3, 4, 4), "relu6"),
    "leaky_relu": (lambda: Fn(lambda s, x: F.leaky_relu(x, 0.2, True)), (3, 4, 4), "leaky_relu"),
    "sigmoid": (lambda: nn.Sigmoid(), (3, 4, 4), "sigmoid"),
    "tanh": (lambda: Fn(lambda s, x: torch.tanh(x)), (3, 4, 4), "tanh"),
    "softmax": (lambda: nn.Sequential(nn.Flatten(), nn.Softmax(dim=1)), (3, 2, 2), "softmax"),
    "dropout": (lambda: nn.Dropout(0.3), (3, 4, 4), "dropout"),
    "hardswish": (lambda: nn.Hardswish(), (3, 4, 4), "hardswish"),
    "hardsigmoid": (lambda: Fn(lambda s, x: F.hardsigmoid(x)), (3, 4, 4), "hardsigmoid"),
    "silu": (lambda: nn.SiLU(inplace=True), (3, 4, 4), "silu"),
    "gelu": (lambda: nn.GELU(approximate="tanh"), (3, 4, 4), "gelu"),
    "identity": (lambda: nn.Sequential(nn.Conv2d(3, 3, 1), nn.Identity()), (3, 4, 4), "identity"),
    "upsample": (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), (3, 4, 5), "upsample"),
    "interpolate_size": (lambda: Fn(lambda s, x: F.interpolate(x, size=(8, 15))), (3, 4, 5), "upsample"),
    "zeropad": (lambda: nn.ZeroPad2d((1, 2, 0, 3)), (3, 4, 5), "zeropad"),
    "channel_shuffle": (lambda: nn.ChannelShuffle(2), (4, 3, 3), "channel_shuffle"),
    "chunk": (lambda: Fn(lambda s, x: x.chunk(2, 1)[1]), (4, 3, 3), "chunk"),
    "add": (lambda: Fn(lambda s, x: s.mods[0](x) + x, nn.Conv2d(3, 3, 1)), (3, 4, 4), "add"),
    "mul": (lambda: Fn(lambda s, x: torch.mul(s.mods[0](x), x), nn.Conv2d(3, 3, 1)), (3, 4, 4), "mul"),
    "concat": (lambda: Fn(lambda s, x: torch.cat([s.mods[0](x), x], 1), nn.Conv2d(3, 3, 1)), (3, 4, 4), "concat"),
    "softmax_last_axis": (lambda: nn.Softmax(dim=-1), (3, 4, 5), "softmax"),
    "log_softmax": (lambda: Fn(lambda s, x: F.log_softmax(x, dim=2)), (3, 4, 5), "log_softmax"),
    "elu": (lambda: nn.ELU(0.5), (3, 4, 4), "elu"),
    "elu_functional": (lambda: Fn(lambda s, x: F.elu(s.mods[0](x), 0.3, True), nn.Conv2d(3, 3, 1)), (3, 4, 4), "elu"),
    "prelu": (lambda: nn.PReLU(3), (3, 4, 4), "prelu"),
    "channel_dropout": (lambda: nn.Dropout2d(0.2), (3, 4, 4), "channel_dropout"),
    "groupnorm": (lambda: nn.GroupNorm(3, 6), (6, 4, 4), "groupnorm"),
    "groupnorm_functional": (lambda: Fn(lambda s, x: F.group_norm(x, 2)), (4, 3, 3), "groupnorm"),
    "instancenorm": (lambda: nn.InstanceNorm2d(3, affine=True), (3, 4, 5), "instancenorm"),
    "reflectpad": (lambda: nn.ReflectionPad2d((1, 2, 0, 1)), (3, 4, 5), "reflectpad"),
    "replicatepad": (lambda: nn.ReplicationPad1d(2), (3, 6), "replicatepad"),
    "layernorm_tokens": (lambda: nn.LayerNorm(6), (5, 6), "layernorm"),
    "layernorm_permuted": (lambda: Fn(lambda s, x: s.mods[0](x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2),
                                      nn.LayerNorm(3)), (3, 4, 4), "permute"),
    "linear_tokens": (lambda: nn.Linear(6, 4), (5, 6), "linear"),
    "matmul": (lambda: Fn(lambda s, x: torch.matmul(s.mods[0](x), x.transpose(1, 2)), nn.Linear(6, 6)), (5, 6),
               "matmul"),
    "transpose": (lambda: Fn(lambda s, x: x.transpose(1, 2)), (5, 6), "transpose"),
    "contiguous": (lambda: Fn(lambda s, x: x.transpose(1, 2).contiguous()), (5, 6), "contiguous"),
    "reshape": (lambda: Fn(lambda s, x: x.reshape(x.shape[0], 2, -1)), (4, 3, 3), "reshape"),
    "flatten_range": (lambda: Fn(lambda s, x: x.flatten(2)), (3, 4, 5), "flatten"),
    "mha": (lambda: Attention(), (5, 6), "mha"),
    "sdpa": (lambda: Attention(functional=True), (2, 5, 6), "sdpa"),
    "select_class_token": (lambda: Fn(lambda s, x: x[:, 0]), (5, 6), "select"),
    "roll": (lambda: Fn(lambda s, x: torch.roll(x, (-1, 2), (2, 3))), (3, 4, 5), "roll"),
    "chunk_last_axis": (lambda: Fn(lambda s, x: x.chunk(3, -1)[2]), (4, 6), "chunk"),
    "unsqueeze_view": (lambda: Fn(lambda s, x: x.unsqueeze(1).transpose(1, 3)), (5, 6), "reshape"),
    "slice_channels": (lambda: Fn(lambda s, x: s.mods[0](x)[:, 1:3], nn.Conv2d(3, 4, 1)), (3, 4, 4), "slice"),
    "split": (lambda: Fn(lambda s, x: torch.split(x, [1, 2], 1)[1]), (3, 4, 4), "slice"),
    "sub": (lambda: Fn(lambda s, x: s.mods[0](x) - x, nn.Conv2d(3, 3, 1)), (3, 4, 4), "sub"),
    "div": (lambda: Fn(lambda s, x: s.mods[0](x) / x, nn.Conv2d(3, 3, 1)), (3, 4, 4), "div"),
    "scalar": (lambda: Fn(lambda s, x: 1 - s.mods[0](x) * 0.5, nn.Conv2d(3, 3, 1)), (3, 4, 4), "scalar"),
    "mean_axis": (lambda: Fn(lambda s, x: s.mods[0](x).mean(1, keepdim=True), nn.Conv2d(3, 3, 1)), (3, 4, 4), "mean"),
    "pad_functional": (lambda: Fn(lambda s, x: F.pad(x, (1, 0, 2, 2), value=0.5)), (3, 4, 4), "zeropad"),
}


def _fused(name: str, *args):
    """A fused module of cnnsize.layers.nn.attention (torchvision's MaxViT and MViT modules, rebuilt)."""
    from cnnsize.layers.nn import attention

    return getattr(attention, name)(*args)


ROWS.update({
    "maxvit_attention": (lambda: _fused("MaxVitAttention", 8, 2, 2), (3, 4, 8), "maxvit_attention"),
    "mvit_attention_v2": (lambda: _fused("MViTAttention", 8, 16, 2, (2, 4, 4), (3, 3, 3), (1, 2, 2), (3, 3, 3),
                                         (1, 2, 2), True, False, True, 1e-6), (33, 8), "mvit_attention"),
    "mvit_attention_v1": (lambda: _fused("MViTAttention", 8, 8, 1, (2, 4, 4), (), (), (3, 3, 3), (1, 2, 2), False,
                                         True, False, 1e-6), (33, 8), "mvit_attention"),
    "mvit_pool": (lambda: _fused("MViTPool", (2, 4, 4), (3, 3, 3), (1, 2, 2), (1, 1, 1)), (33, 8), "mvit_pool"),
    "mvit_pos_embed": (lambda: _fused("MViTPosition", 8, (2, 4, 4)), (33, 8), "mvit_pos_embed"),
})


def _built_kind_rows() -> dict:
    """Rows for kinds whose torch module is cnnsize's own (locally_connected, ...): cnnsize.build makes them."""
    from cnnsize.executor.builder import build_module

    spec = {"input": [3, 6, 6], "layers": [{"locally_connected": {"filters": 2, "kernel": 3}}]}
    tokens = {"input": [3, 8, 8], "layers": [{"patch_embed": {"filters": 6, "patch": 4}}, "class_token", "pos_embed"]}
    scale = {"input": [3, 4, 4], "layers": ["layer_scale", {"stochastic_depth": {"p": 0.1}}]}
    windows = {"input": [4, 6, 3], "layers": [{"window_partition": {"window": 2}},
                                              {"window_merge": {"window": 2, "size": [4, 6]}},
                                              {"permute": {"dims": [2, 0, 1]}}, "contiguous"]}
    swin = {"input": [6, 7, 12], "layers": [{"swin_attention": {"heads": 3, "window": 4, "shift": 2}}, "patch_merge"]}
    swin2 = {"input": [8, 8, 12], "layers": [{"swin_attention": {"heads": 3, "window": 4, "shift": 2, "version": "v2",
                                                                 "cpb_hidden": 16}}]}
    examples = {f"{kind}:{name}": (kind, *REGISTRY[kind].examples[name]) for kind, name in BUILT_EXAMPLES}
    built = {row: (lambda s=shape, ls=layers: build_module({"input": s, "layers": ls, "fit": "floor"}), tuple(shape),
                   kind) for row, (kind, shape, layers) in examples.items()}
    return {**built,
            "locally_connected": (lambda: build_module(spec), (3, 6, 6), "locally_connected"),
            "swin_attention": (lambda: build_module(swin), (6, 7, 12), "swin_attention"),
            "swin_attention_v2": (lambda: build_module(swin2), (8, 8, 12), "swin_attention"),
            "patch_merge": (lambda: build_module(swin), (6, 7, 12), "patch_merge"),
            **{kind: (lambda: build_module(tokens), (3, 8, 8), kind) for kind in ("patch_embed", "class_token",
                                                                                  "pos_embed")},
            **{kind: (lambda: build_module(scale), (3, 4, 4), kind) for kind in ("layer_scale", "stochastic_depth")},
            **{kind: (lambda: build_module(windows), (4, 6, 3), kind) for kind in ("window_partition", "window_merge",
                                                                                   "contiguous")}}


def _own_rows() -> dict:
    """Every kind's own torch examples (LayerKind.torch_examples, in the kind's file)."""
    return {f"{name}:{example}": (make, shape, name) for name, kind in REGISTRY.items()
            for example, (make, shape) in kind.torch_examples().items()}


# kinds whose module is a stand-in of cnnsize's own (a detector's post-processing): their own examples, built
BUILT_EXAMPLES = (("detections", "detections_head"), ("detections", "detections_softmax"),
                  ("roi_align", "roi_align_levels"))
BUILT = (*(f"{kind}:{name}" for kind, name in BUILT_EXAMPLES), "locally_connected", "patch_embed", "class_token",
         "pos_embed", "layer_scale", "stochastic_depth", "window_partition", "window_merge", "contiguous",
         "swin_attention", "swin_attention_v2", "patch_merge")


@pytest.mark.parametrize("row", [*ROWS, *BUILT, *_own_rows()])
def test_kind_imports_with_torch_figures(row):
    from torch.utils.flop_counter import FlopCounterMode

    make, shape, kind = {**ROWS, **_built_kind_rows(), **_own_rows()}[row]
    model = make().eval()
    a = cnnsize.from_torch(model, shape).analyze()
    assert kind in [r.type for r in a.layers]
    assert a.totals["params"] == sum(p.numel() for p in model.parameters())
    assert a.totals["buffers"] == sum(b.numel() for b in model.buffers())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = model(torch.randn(1, *shape))
    assert 2 * a.totals["macs"] == counter.get_total_flops()
    assert a.layers[-1].output_shape == tuple(out.shape[1:])


def test_every_kind_with_a_torch_mapping_has_a_row():
    rows = {kind for _, _, kind in [*ROWS.values(), *_own_rows().values(), *_built_kind_rows().values()]}
    declared = {name for name, kind in REGISTRY.items() if kind.torch_modules or kind.torch_functions}
    assert declared - rows == set(), "add a row to ROWS for each kind that declares torch modules or functions"
