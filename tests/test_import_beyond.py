"""Beyond torchvision: models as model libraries write them import with torch's own figures.

Each row is a small hand-written ``nn.Module`` in the style of real model code (timm, detection and segmentation
heads, attention written out): functional calls whose weights are the module's attributes, split/chunk and channel
slicing, F.pad, elementwise operations with tensors and constants, means over axes, functional pooling and
interpolation, a submodule fx cannot trace (control flow on shapes) and optional forward arguments. The truth is
torch itself (tests/zoo_truth.py: parameters, buffers, FlopCounterMode's MACs, the storages of a real forward), and
every imported spec is built and run by cnnsize.validate on CPU.
"""

from __future__ import annotations

import pytest

import cnnsize

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class Fn(nn.Module):
    """A module whose forward is one function of its input and of its submodules ``mods``."""

    def __init__(self, fn, *mods: nn.Module):
        super().__init__()
        self.fn = fn
        self.mods = nn.ModuleList(mods)

    def forward(self, x):
        return self.fn(self, x)


def conv(c_in=3, c_out=4, k=1):
    return nn.Conv2d(c_in, c_out, k)


class BatchNormAct(nn.Module):
    """A batch norm and its activation in one module, its tensors its own attributes (timm's BatchNormAct2d)."""

    def __init__(self, c: int):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.rand(c)), nn.Parameter(torch.rand(c))
        self.register_buffer("running_mean", torch.rand(c))
        self.register_buffer("running_var", torch.rand(c) + 0.5)
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training, 0.1, 1e-5)
        return F.relu(x, inplace=True)


class WeightConv(nn.Module):
    """F.conv2d, F.linear, F.layer_norm and F.group_norm with the module's own parameters."""

    def __init__(self):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.randn(8, 3, 3, 3)), nn.Parameter(torch.randn(8))
        self.ln_w, self.ln_b = nn.Parameter(torch.ones(8)), nn.Parameter(torch.zeros(8))
        self.gn_w, self.gn_b = nn.Parameter(torch.ones(8)), nn.Parameter(torch.zeros(8))
        self.fc_w, self.fc_b = nn.Parameter(torch.randn(5, 8)), nn.Parameter(torch.randn(5))

    def forward(self, x):
        x = F.conv2d(x, self.weight, self.bias, stride=2, padding=1)
        x = F.group_norm(x, 2, self.gn_w, self.gn_b, 1e-5)
        x = F.layer_norm(x.permute(0, 2, 3, 1), (8,), self.ln_w, self.ln_b, 1e-6).permute(0, 3, 1, 2)
        return F.linear(x.mean((2, 3)), self.fc_w, self.fc_b)


class Split(nn.Module):
    """torch.split into unequal parts, each part its own branch (Inception-style and CSP blocks)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 2, 1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        p, q = torch.split(x, [2, 4], dim=1)
        return torch.cat([self.a(p), self.b(q)], 1)


class SamePad(nn.Module):
    """timm's dynamic 'same' padding: Python control flow on the input's shape, which fx cannot trace."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)

    def forward(self, x):
        ih, iw = x.size()[-2:]
        pad_h = max((-(ih // -2) - 1) * 2 + 3 - ih, 0)
        pad_w = max((-(iw // -2) - 1) * 2 + 3 - iw, 0)
        if pad_h > 0 or pad_w > 0:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return self.conv(x)


class Attention(nn.Module):
    """Attention written out (timm's ViT block), with an optional mask left at its default."""

    def __init__(self, dim: int = 6, heads: int = 2):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x, attn_mask=None):
        n, length, dim = x.shape
        qkv = self.qkv(x).reshape(n, length, 3, self.heads, dim // self.heads).permute(0, 2, 3, 1, 4)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        if attn_mask is not None:
            attn = attn + attn_mask
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(n, length, dim)
        return self.proj(x)


class FusedAttention(nn.Module):
    """nn.MultiheadAttention as torchvision's ViT calls it: at inference on CPU torch's fused kernel, which stores no
    L×L attention matrix (the truth is a real CPU forward's storages)."""

    def __init__(self, dim: int = 8, heads: int = 2):
        super().__init__()
        self.norm, self.attn = nn.LayerNorm(dim), nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x):
        y = self.norm(x)
        return x + self.attn(y, y, y, need_weights=False)[0]


# id: (make the model, input shape per sample)
ROWS = {
    "batch_norm_act_functional": (lambda: nn.Sequential(conv(), BatchNormAct(4)), (3, 8, 8)),
    "weights_as_attributes": (WeightConv, (3, 9, 9)),
    "split_unequal": (Split, (6, 5, 5)),
    "split_last_axis": (lambda: Fn(lambda s, x: torch.split(s.mods[0](x), 2, -1)[1], conv(3, 3)), (3, 4, 6)),
    "chunk_summed": (lambda: Fn(lambda s, x: sum(torch.chunk(s.mods[0](x), 2, 1)), conv()), (3, 4, 6)),
    "chunk_uneven": (lambda: Fn(lambda s, x: s.mods[0](x).chunk(3, 1)[2], conv(3, 5)), (3, 4, 6)),
    "channel_slice": (lambda: Fn(lambda s, x: F.relu(s.mods[0](x)[:, 1:3]), conv()), (3, 4, 6)),
    "channel_slices_added": (lambda: Fn(lambda s, x: (lambda y: y[:, :2] + y[:, 2:])(s.mods[0](x)), conv()),
                             (3, 4, 6)),
    "strided_slice": (lambda: Fn(lambda s, x: s.mods[0](x)[..., ::2, 1::2], conv()), (3, 5, 6)),
    "narrow": (lambda: Fn(lambda s, x: s.mods[0](x).narrow(2, 1, 2), conv()), (3, 4, 6)),
    "flatten_2_to_last": (lambda: Fn(lambda s, x: s.mods[0](x).flatten(2, -1).transpose(1, 2), conv()), (3, 4, 6)),
    "pad_constant": (lambda: Fn(lambda s, x: F.pad(s.mods[0](x), (1, 1, 2, 0)), conv()), (3, 4, 6)),
    "pad_value_last_axis": (lambda: Fn(lambda s, x: F.max_pool2d(F.pad(s.mods[0](x), (0, 1), value=-1.0), 2),
                                       conv()), (3, 4, 5)),
    "pad_reflect": (lambda: Fn(lambda s, x: F.pad(s.mods[0](x), (1, 1, 2, 0), mode="reflect"), conv()), (3, 4, 6)),
    "pad_replicate_1d": (lambda: Fn(lambda s, x: F.pad(s.mods[0](x), (2, 1), mode="replicate"), nn.Conv1d(3, 3, 1)),
                         (3, 7)),
    "sub_tensors": (lambda: Fn(lambda s, x: s.mods[0](x) - x, conv(3, 3)), (3, 4, 6)),
    "sub_mean": (lambda: Fn(lambda s, x: (lambda y: y - y.mean(1, keepdim=True))(s.mods[0](x)), conv()), (3, 4, 6)),
    "div_tensors": (lambda: Fn(lambda s, x: torch.div(s.mods[0](x), s.mods[1](x).sigmoid() + 1), conv(), conv()),
                    (3, 4, 6)),
    "sub_constant": (lambda: Fn(lambda s, x: s.mods[0](x) - 0.5, conv()), (3, 4, 6)),
    "constant_minus": (lambda: Fn(lambda s, x: 1 - torch.sigmoid(s.mods[0](x)), conv()), (3, 4, 6)),
    "div_constant": (lambda: Fn(lambda s, x: s.mods[0](x) / 2.0, conv()), (3, 4, 6)),
    "mul_add_constants": (lambda: Fn(lambda s, x: s.mods[0](x) * 2.0 + 1, conv()), (3, 4, 6)),
    "in_place_constants": (lambda: Fn(lambda s, x: s.mods[0](x).mul_(3).sub_(1), conv()), (3, 4, 6)),
    "pow_constant": (lambda: Fn(lambda s, x: s.mods[0](x).pow(2).mean(-1, keepdim=True), nn.Linear(6, 6)),
                     (5, 6)),
    "mean_one_axis": (lambda: Fn(lambda s, x: s.mods[0](x).mean(-1), conv()), (3, 4, 6)),
    "mean_tokens": (lambda: Fn(lambda s, x: s.mods[0](x).mean(1), nn.Linear(6, 4)), (5, 6)),
    "mean_spatial_keepdim": (lambda: Fn(lambda s, x: torch.mean(s.mods[0](x), dim=[2, 3], keepdim=True), conv()),
                             (3, 4, 6)),
    "adaptive_functional": (lambda: Fn(lambda s, x: F.adaptive_avg_pool2d(s.mods[0](x), (2, 3)) +
                                       F.adaptive_max_pool2d(s.mods[0](x), (2, 3)), conv()), (3, 4, 6)),
    "pools_functional": (lambda: Fn(lambda s, x: F.avg_pool2d(F.max_pool2d(s.mods[0](x), 3, 1, 1), 2, ceil_mode=True,
                                                              count_include_pad=False), conv()), (3, 5, 7)),
    "pool1d_3d_functional": (lambda: Fn(lambda s, x: F.avg_pool3d(F.max_pool3d(s.mods[0](x), 2), 1),
                                        nn.Conv3d(3, 3, 1)), (3, 4, 4, 6)),
    "interpolate_scale": (lambda: Fn(lambda s, x: F.interpolate(s.mods[0](x), scale_factor=2), conv()), (3, 4, 6)),
    "interpolate_size": (lambda: Fn(lambda s, x: F.interpolate(s.mods[0](x), size=(7, 9), mode="bilinear"), conv()),
                         (3, 4, 6)),
    "interpolate_to_another": (lambda: Fn(lambda s, x: F.interpolate(F.max_pool2d(s.mods[0](x), 2), size=x.shape[-2:],
                                                                     mode="bilinear", align_corners=False), conv()),
                               (3, 5, 7)),
    "untraceable_same_pad": (lambda: nn.Sequential(SamePad(), nn.ReLU(), nn.Conv2d(4, 2, 1)), (3, 9, 9)),
    "optional_mask_argument": (Attention, (5, 6)),
    "mha_fused_inference": (FusedAttention, (7, 8)),
    "optional_mask_nested": (lambda: nn.Sequential(nn.Linear(6, 6), Attention()), (5, 6)),
}


@pytest.mark.parametrize("row", ROWS)
def test_library_style_model_imports_with_torchs_figures(row):
    from .zoo_truth import assert_imports_as_torch, torch_figures

    make, shape = ROWS[row]
    torch.manual_seed(0)
    model = make().eval()
    truth = torch_figures(model, shape)
    if any(isinstance(m, nn.MultiheadAttention) for m in model.modules()):
        # FlopCounterMode cannot see inside the fused CPU kernel: the MACs of the same module on the meta device,
        # which takes the unfused path (as the zoo test does)
        import copy

        truth["macs"] = torch_figures(copy.deepcopy(model).to("meta"), shape)["macs"]
    assert_imports_as_torch(model, shape, truth)


def test_an_untraceable_submodule_becomes_its_layers():
    model = nn.Sequential(SamePad(), nn.ReLU()).eval()
    imported = cnnsize.from_torch(model, (3, 9, 9))
    assert [next(iter(layer)) for layer in imported.spec["layers"]] == ["zeropad", "conv", "relu"]
    assert imported.spec["layers"][1]["conv"]["name"] == "0.conv"  # its module path, as torch names it


class Unpacks(nn.Module):
    """Unpacks its input's shape (``n, c, h, w = x.shape``), as torchvision's ViT and ShuffleNet do."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        return self.conv(x).reshape(n, 4, h * w)


def test_shape_unpacking_in_a_submodule_is_traced_not_kept_whole():
    """fx unpacks a shape by reading its caller's bytecode: a submodule doing so is traced into, so a model on the
    meta device (which cannot run a submodule kept whole) imports."""
    with torch.device("meta"):
        model = nn.Sequential(Unpacks(), nn.ReLU())
    imported = cnnsize.from_torch(model, (3, 5, 6))
    assert [next(iter(layer)) for layer in imported.spec["layers"]] == ["conv", "reshape", "relu"]
