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


class BatchShapedPosition(nn.Module):
    """EdgeNeXt's Fourier position encoding: a mask built with the batch in its shape (``torch.zeros(B, H, W)``),
    sin-cos features of its running sums, a 1×1 convolution of them, added to the tokens: a constant per sample,
    whose convolution runs once per sample."""

    def __init__(self, dim: int = 4, hidden: int = 6):
        super().__init__()
        self.hidden = hidden
        self.proj = nn.Conv2d(2 * hidden, dim, 1)
        self.fc = nn.Linear(dim, dim)

    def forward(self, x):
        B, C, H, W = x.shape
        mask = ~torch.zeros((B, H, W)).to(dtype=torch.bool)
        y, z = mask.cumsum(1, dtype=torch.float32), mask.cumsum(2, dtype=torch.float32)
        t = 10000 ** (torch.arange(self.hidden, dtype=torch.float32) / self.hidden)
        pos = torch.cat(((y[:, :, :, None] / t).sin(), (z[:, :, :, None] / t).cos()), dim=3).permute(0, 3, 1, 2)
        pos = self.proj(pos).reshape(B, -1, H * W).permute(0, 2, 1)
        return self.fc(x.flatten(2).transpose(1, 2) + pos)


class SplitLast(nn.Module):
    """EdgeNeXt's and Res2Net's split blocks: ``spx = x.chunk(3, 1)``, the last part read as ``spx[-1]``."""

    def __init__(self):
        super().__init__()
        self.conv, self.mix = nn.Conv2d(3, 6, 1), nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        spx = self.conv(x).chunk(3, 1)
        return torch.cat([self.mix(spx[0]) + spx[1], spx[-1]], 1)


class NormInFloat32(nn.Module):
    """timm's RmsNormFp32 and rotary attention: ``x.to(torch.float32)`` for the norm, ``.to(dtype)`` back, and
    ``q.type_as(v)``, each a cast to the dtype the tensor has already (torch returns the tensor itself)."""

    def __init__(self):
        super().__init__()
        self.fc, self.norm = nn.Linear(6, 6), nn.LayerNorm(6)

    def forward(self, x):
        y = self.fc(x)
        z = self.norm(y.to(torch.float32)).to(dtype=y.dtype)
        return z.type_as(y) * y


class NoPrefixTokens(nn.Module):
    """timm's rotary attention with no prefix tokens: ``torch.cat([q[:, :, :0], rotate(q[:, :, 0:])], dim=2)``, an
    empty slice joined to the rotated tokens (a copy of them), then ``.type_as(v)``."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        q = self.fc(x).view(x.shape[0], -1, 2, 4).transpose(1, 2)
        q = torch.cat([q[:, :, :0, :], q[:, :, 0:, :] * 2], dim=2).type_as(q)
        return q.transpose(1, 2).flatten(2)


class RotaryTable(nn.Module):
    """timm's rotary embedding: a sin-cos table computed from a buffer of frequency bands, split in two by
    ``chunk(2, -1)`` and multiplied into the tokens: the buffer counts once, with the first layer reading the table."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.register_buffer("bands", torch.linspace(1.0, 4.0, 4))

    def forward(self, x):
        t = torch.arange(x.shape[1], dtype=torch.float32)[:, None] * self.bands
        sin, cos = torch.cat([t.sin(), t.cos()], -1).chunk(2, -1)
        y = self.fc(x)
        y1, y2 = y.chunk(2, -1)
        return y * torch.cat([cos, cos], -1) + torch.cat([-y2, y1], -1) * torch.cat([sin, sin], -1)


class RegisterTokens(nn.Module):
    """EVA's and DINOv3's: a class token and four register tokens joined to the patches in one ``torch.cat``."""

    def __init__(self):
        super().__init__()
        self.cls_token, self.reg_token = nn.Parameter(torch.zeros(1, 1, 6)), nn.Parameter(torch.zeros(1, 4, 6))
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        B = x.shape[0]
        x = torch.cat([self.cls_token.expand(B, -1, -1), self.reg_token.expand(B, -1, -1), self.fc(x)], dim=1)
        return self.fc(x)


class ShapeBranchAtRoot(nn.Module):
    """timm's ViT with a dynamic image size: the model's own forward branches on the grid's size (its position
    embedding resampled only where the grid differs) and then splits the heads with the batch read from the shape
    (``reshape(B, N, 3, h, d)``): traced again with proxies that know their shapes, the batch kept a variable."""

    def __init__(self):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, 6, 8))
        self.qkv, self.out = nn.Linear(8, 24), nn.Linear(8, 8)

    def forward(self, x):
        B, N, C = x.shape
        pos = self.pos if N == self.pos.shape[1] else F.interpolate(self.pos.transpose(1, 2), size=N).transpose(1, 2)
        x = x + pos
        q, k, v = self.qkv(x).reshape(B, N, 3, 2, C // 2).permute(2, 0, 3, 1, 4).unbind(0)
        y = (q @ k.transpose(-2, -1)).softmax(-1) @ v
        return self.out(y.transpose(1, 2).reshape(B, N, C))


class StackedHeads(nn.Module):
    """CrossViT's head: each branch's logits stacked in front of the batch, then averaged over that axis,
    ``torch.mean(torch.stack([...], dim=0), dim=0)``."""

    def __init__(self):
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(6, 4), nn.Linear(6, 4)])

    def forward(self, x):
        return torch.mean(torch.stack([head(x[:, i]) for i, head in enumerate(self.heads)], dim=0), dim=0)


# id: (make the model, input shape per sample)
ROWS = {
    "max_values_over_tokens": (TokenMax, (5, 6)),
    "query_repeated_per_window": (GlobalQuery, (4, 6, 4)),
    "constant_with_the_batch_in_its_shape": (BatchShapedPosition, (4, 3, 5)),
    "last_part_by_a_negative_index": (SplitLast, (3, 4, 5)),
    "cast_to_its_own_dtype": (NormInFloat32, (5, 6)),
    "empty_slice_joined": (NoPrefixTokens, (5, 8)),
    "rotary_table_split_from_a_buffer": (RotaryTable, (5, 8)),
    "class_and_register_tokens": (RegisterTokens, (5, 6)),
    "shape_branch_in_the_models_own_forward": (ShapeBranchAtRoot, (6, 8)),
    "mean_over_an_axis_in_front_of_the_batch": (StackedHeads, (5, 6)),
}


# rows computing a constant in the forward: its intermediates (the encoding's sin, cos, cat) are torch's storages but no
# layer's output in the spec (a const_op holds its constant), as tests/test_import_constants.py leaves them out too
CONSTANTS_BUILT = ("constant_with_the_batch_in_its_shape", "rotary_table_split_from_a_buffer")


@pytest.mark.parametrize("row", ROWS)
def test_pattern_imports_with_torchs_figures(row):
    from .zoo_truth import assert_imports_as_torch, torch_figures

    make, shape = ROWS[row]
    torch.manual_seed(0)
    model = make().eval()
    truth = torch_figures(model, shape)
    if row in CONSTANTS_BUILT:
        del truth["activations"]
    assert_imports_as_torch(model, shape, truth)


def test_the_indices_of_a_max_are_refused_in_one_line():
    class Indices(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 4)

        def forward(self, x):
            return self.fc(x).max(1)[1]

    with pytest.raises(cnnsize.CnnsizeError, match=r"the indices of max\(dim\)"):
        cnnsize.from_torch(Indices().eval(), (5, 6))


def test_a_cast_to_another_dtype_is_refused_in_one_line():
    class Half(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 4)

        def forward(self, x):
            return self.fc(x).to(torch.float16)

    with pytest.raises(cnnsize.CnnsizeError, match=r"cannot import \.to\(\) to another dtype"):
        cnnsize.from_torch(Half().eval(), (5, 6))


class ValueBranchAttention(nn.Module):
    """A block fx cannot trace (a branch on a value, as MobileViT's block once read the map's size) holding a fused
    attention: kept whole as measured, its attention's products counted as the sdpa kind counts them (the math
    path), which FlopCounterMode cannot see inside CPU's fused kernel."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(8, 24)

    def forward(self, x):
        if float(x.abs().sum()) >= 0:  # a value: fx cannot trace it
            q, k, v = self.qkv(x).reshape(x.shape[0], -1, 3, 2, 4).permute(2, 0, 3, 1, 4).unbind(0)
            x = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        return x


def test_attention_inside_a_measured_call_counts_its_products():
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    model = nn.Sequential(nn.Linear(8, 8), ValueBranchAttention(), nn.Linear(8, 3)).eval()
    a = cnnsize.from_torch(model, (5, 8)).analyze()
    assert "opaque" in [r.type for r in a.layers]
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH), torch.no_grad():
        model(torch.randn(1, 5, 8))
    assert 2 * a.totals["macs"] == counter.get_total_flops()
    assert a.totals["macs"] > 40 + 5 * 8 * 24 + 24  # more than the linear layers: the attention's two products


class BatchNormOnTokensMerged(nn.Module):
    """LeViT's LinearNorm: a linear layer, then BatchNorm1d on its tokens merged into the batch,
    ``self.bn(x.flatten(0, 1)).reshape_as(x)`` (reshape_as reads the other tensor's shape alone)."""

    def __init__(self):
        super().__init__()
        self.fc, self.bn = nn.Linear(6, 8), nn.BatchNorm1d(8)

    def forward(self, x):
        x = self.fc(x)
        return self.bn(x.flatten(0, 1)).reshape_as(x)


class ConvNorm(nn.Sequential):
    """EfficientViT-MSRA's ConvNorm: a convolution and a batch norm."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)


class WindowsInAnUntraceableBlock(nn.Module):
    """EfficientViT-MSRA's LocalWindowAttention: a branch on the input's size (fx cannot trace it, the block is traced
    again once its shapes are known), windows merged into the batch ``x.reshape(B * nH * nW, ws, ws, C)`` (the batch a
    variable of the graph, not batch 1's number), a ConvNorm run on them, and the windows put back."""

    def __init__(self, dim: int = 4, ws: int = 3):
        super().__init__()
        self.ws, self.qkv = ws, ConvNorm(dim, dim)

    def forward(self, x):
        B, C, H, W = x.shape
        ws = self.ws
        if H == ws and W == ws:
            return self.qkv(x)
        nH, nW = H // ws, W // ws
        x = x.permute(0, 2, 3, 1).view(B, nH, ws, nW, ws, C).transpose(2, 3)
        x = self.qkv(x.reshape(B * nH * nW, ws, ws, C).permute(0, 3, 1, 2))
        x = x.permute(0, 2, 3, 1).view(B, nH, nW, ws, ws, C).transpose(2, 3).reshape(B, H, W, C)
        return x.permute(0, 3, 1, 2)


class WindowBlocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.blocks = nn.Sequential(WindowsInAnUntraceableBlock(), WindowsInAnUntraceableBlock())

    def forward(self, x):
        return self.blocks(self.stem(x))


class TableKeptAsBuffer(nn.Module):
    """ConViT's gated positional attention: a buffer the forward replaces with a table it builds for the input's
    token count (``self.rel_indices = self.get_rel_indices(N)``, a branch on sizes fx cannot trace), then projects;
    the model holds the table as its buffer once it has run."""

    def __init__(self):
        super().__init__()
        self.register_buffer("rel", torch.zeros(1, 1, 1, 3), persistent=False)
        self.pos, self.fc = nn.Linear(3, 2), nn.Linear(6, 6)

    def table(self, n: int):
        t = torch.zeros(1, n, n, 3)
        idx = torch.arange(n).view(1, -1) - torch.arange(n).view(-1, 1)
        t[:, :, :, 0] = idx.unsqueeze(0)
        t[:, :, :, 1] = (idx ** 2).unsqueeze(0)
        return t.to(device=self.fc.weight.device, dtype=self.fc.weight.dtype)

    def forward(self, x):
        B, N, C = x.shape
        if self.rel is None or self.rel.shape[1] != N:
            self.rel = self.table(N)
        score = self.pos(self.rel.expand(B, -1, -1, -1)).permute(0, 3, 1, 2).softmax(-1)
        y = self.fc(x).view(B, N, 2, 3).transpose(1, 2)
        attn = ((y @ y.transpose(-2, -1)).softmax(-1) + score) / 2
        return (attn @ y).transpose(1, 2).reshape(B, N, C)


class TableBlocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(TableKeptAsBuffer(), TableKeptAsBuffer())

    def forward(self, x):
        return self.blocks(x)


class PoolInWindows(nn.Module):
    """SAM2's Hiera: queries split into windows merged into the batch, max-pooled in each window (MaxPool2d on
    [B·windows, C, h, w]), then put back."""

    def __init__(self):
        super().__init__()
        self.q, self.pool = nn.Linear(5, 5), nn.MaxPool2d(2, 2)

    def forward(self, x):
        B, H, W, C = x.shape
        q = self.q(x).view(B, 2, H // 2, 2, W // 2, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, H // 2, W // 2, C)
        q = self.pool(q.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return q.reshape(B, 2, 2, H // 4, W // 4, C).permute(0, 1, 3, 2, 4, 5).reshape(B, H // 2, W // 2, C)


class BlurPool(nn.Module):
    """timm's BlurPool2d (TResNet's anti-aliased downsampling): a fixed blur filter held as a buffer, the input padded
    by reflection, then ``F.conv2d(x, self.filt, stride=2, groups=C)``: the filter is a buffer, not a parameter."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        coeffs = torch.tensor([1.0, 2.0, 1.0]) / 4
        self.register_buffer("filt", (coeffs[:, None] * coeffs[None, :])[None, None].repeat(channels, 1, 1, 1),
                             persistent=False)

    def forward(self, x):
        x = F.pad(self.conv(x), [1, 1, 1, 1], mode="reflect")
        return F.conv2d(x, self.filt, stride=2, groups=x.shape[1])


class StandardizedConv(nn.Conv2d):
    """timm's ScaledStdConv2d (NFNet's): the weight standardized per filter in every forward, scaled by a learned gain
    (one per filter), then the convolution: its parameters the weight, the bias and the gains."""

    def __init__(self, cin: int, cout: int, kernel: int, bias: bool = True):
        super().__init__(cin, cout, kernel, padding=kernel // 2, bias=bias)
        self.gain = nn.Parameter(torch.full((cout, 1, 1, 1), 1.5))
        self.scale = self.weight[0].numel() ** -0.5

    def forward(self, x):
        weight = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                              weight=(self.gain * self.scale).view(-1), training=True, momentum=0.0,
                              eps=1e-6).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class NormFreeBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = StandardizedConv(3, 5, 3), StandardizedConv(5, 4, 1, bias=False)

    def forward(self, x):
        return self.conv2(F.gelu(self.conv1(x)))


# id: (make the model, input shape per sample), the rows of issue 24's last families (levit, efficientvit_msra, convit,
# tiny_vit, hieradet_sam2, tresnet, nfnet)
ROWS_MORE = {
    "batch_norm_on_tokens_merged_into_the_batch": (BatchNormOnTokensMerged, (5, 6)),
    "windows_merged_in_an_untraceable_block": (WindowBlocks, (3, 6, 6)),
    "table_the_forward_keeps_as_a_buffer": (TableBlocks, (5, 6)),
    "max_pool_in_windows_merged_into_the_batch": (PoolInWindows, (8, 8, 5)),
    "convolution_by_a_buffer": (BlurPool, (3, 8, 8)),
    "weight_standardized_with_a_gain": (NormFreeBlock, (3, 8, 8)),
}


# rows that trace a block again on shapes (a second or more each): in the slow set, the default set's budget being tight
SLOW_ROWS = ("windows_merged_in_an_untraceable_block", "table_the_forward_keeps_as_a_buffer")


@pytest.mark.parametrize("row", [pytest.param(r, marks=[pytest.mark.slow] if r in SLOW_ROWS else [])
                                 for r in ROWS_MORE])
def test_more_patterns_import_with_torchs_figures(row):
    from .zoo_truth import assert_imports_as_torch, torch_figures

    make, shape = ROWS_MORE[row]
    torch.manual_seed(0)
    model = make().eval()
    truth = torch_figures(make().eval(), shape)  # a model of its own: a forward may set its buffers (ConViT's table)
    if row == "table_the_forward_keeps_as_a_buffer":
        del truth["activations"]  # the table's intermediates: no layer's output (as CONSTANTS_BUILT's rows)
    assert_imports_as_torch(model, shape, truth)
