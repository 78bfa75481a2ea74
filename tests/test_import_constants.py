"""Import of what model libraries write around their layers (issue 24): arithmetic with constant tensors (a relative
position bias gathered from its table, a buffer, tensors built in the forward), F.normalize, padding by negative
amounts and by -inf, im2col and col2im, Tensor.unfold, attention with a mask, a scale or a dropout, stacks in front
of the batch, products with a parameter and biases computed from parameters and buffers. Each hand-written module
reproduces one pattern of timm's and is checked against torch itself: parameters and buffers (sum of numel),
FlopCounterMode's count / 2, the output's shape, and ``validate`` building the spec and measuring it."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import cnnsize  # noqa: E402


def _truth(model, shape) -> tuple[int, int, int, tuple]:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        out = model(torch.randn(1, *shape))  # the math kernel: CPU's fused one has no FLOP formula
    return (sum(p.numel() for p in model.parameters()), sum(b.numel() for b in model.buffers()),
            counter.get_total_flops() // 2, tuple(out.shape[1:]))


def _imports_exactly(model, shape, kind: str | None = None):
    model = model.eval()
    imported = cnnsize.from_torch(model, shape)
    a = imported.analyze()
    got = (a.totals["params"], a.totals["buffers"], a.totals["macs"], tuple(a.layers[-1].output_shape))
    assert got == _truth(model, shape), imported.yaml
    if kind is not None:
        assert kind in [r.type for r in a.layers], imported.yaml
    v = cnnsize.validate(imported.spec, runs=0, device="cpu")
    assert v.mismatches() == [], imported.yaml
    return imported


class WindowBias(nn.Module):
    """Swin's window attention bias: a table gathered by a buffer of indices read through a view, added (in place
    too), then a mask buffer added with the batch merged with the windows."""

    def __init__(self):
        super().__init__()
        self.qk = nn.Linear(6, 12)
        self.table = nn.Parameter(torch.rand(9, 2))
        self.register_buffer("index", torch.randint(0, 9, (4, 4)))
        self.register_buffer("mask", torch.zeros(2, 4, 4))

    def forward(self, x):  # x: (B, 8, 6), two windows of 4 tokens
        q, k = self.qk(x).reshape(-1, 4, 2, 2, 3).permute(2, 0, 3, 1, 4).unbind(0)  # (B·2, heads, 4, 3)
        attn = q @ k.transpose(-2, -1)
        bias = self.table[self.index.view(-1)].view(4, 4, 2).permute(2, 0, 1).contiguous()
        attn = attn + bias.unsqueeze(0)
        attn.add_(bias, alpha=0.5)
        attn = attn.view(-1, 2, 2, 4, 4) + self.mask.unsqueeze(1).unsqueeze(0)
        return attn.view(-1, 2, 4, 4).softmax(-1).reshape(x.shape[0], -1)


class PositionMLP(nn.Module):
    """Swin V2's continuous position bias: an MLP run on a buffer of coordinates, once per call, its output gathered
    and squashed; and a Fourier position encoding built from torch.arange of a size (XCiT's)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.cpb = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2, bias=False))
        self.register_buffer("coords", torch.rand(1, 3, 3, 2))
        self.register_buffer("index", torch.randint(0, 9, (5, 5)))

    def forward(self, x):
        bias = self.cpb(self.coords).view(-1, 2)[self.index.view(-1)].view(5, 5, 2).permute(2, 0, 1)
        y = self.fc(x)
        attn = y.reshape(x.shape[0], 5, 2, 3).transpose(1, 2) @ y.reshape(x.shape[0], 5, 2, 3).permute(0, 2, 3, 1)
        grid = torch.arange(x.shape[-1], dtype=torch.float32) / torch.zeros(6).add(2.0)
        return (attn + 16 * torch.sigmoid(bias)).sum(-1).sum(1) * grid.view(1, 6)[:, :5].sum()


class Shapes(nn.Module):
    """Constants built in the forward from numbers alone (fx keeps them as tensors of the graph), on either side."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        y = torch.ones(4, 1, 1) - y
        y = torch.linspace(0, 1, 5) / (y + 1.0)
        return y.mul_(torch.full((1, 5), 2.0))


def test_relative_position_bias_counts_its_table_and_index():
    _imports_exactly(WindowBias(), (8, 6), "const_op")


def test_a_position_mlp_on_a_buffer_counts_its_parameters_and_macs_once():
    imported = _imports_exactly(PositionMLP(), (5, 6), "const_op")
    const = [row for row in imported.analyze().layers if row.type == "const_op"]
    assert sum(r.figures.macs for r in const) == 9 * (2 * 16 + 16 * 2), imported.yaml  # once, whatever the batch
    assert imported.analyze(batch=3).totals["macs"] == 3 * _truth(PositionMLP().eval(), (5, 6))[2] - 2 * 9 * 64


def test_constants_built_in_the_forward():
    _imports_exactly(Shapes(), (3, 4, 5), "const_op")


class Cosine(nn.Module):
    """Swin V2's and SwiftFormer's: F.normalize of queries and keys, a product with a parameter (x @ w_g) and with
    a transposed one (HaloNet's q @ rel_k.T)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.w_g = nn.Parameter(torch.rand(6, 1))
        self.rel = nn.Parameter(torch.rand(3, 6))

    def forward(self, x):
        q = F.normalize(self.fc(x), dim=-1)
        k = F.normalize(x, p=1.0, dim=1, eps=1e-6)
        return torch.cat([(q @ self.w_g) * q, k @ self.rel.transpose(-1, -2)], dim=-1)


def test_normalize_and_products_with_parameters():
    _imports_exactly(Cosine(), (5, 6), "normalize")


class Heads(nn.Module):
    """EfficientViM's head: logits weighted by a softmax of parameters, stacked in front of the batch, summed."""

    def __init__(self):
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(6, 4) for _ in range(3)])
        self.weights = nn.Parameter(torch.ones(3))

    def forward(self, x):
        w = self.weights.softmax(-1)
        return torch.stack([w[i] * head(x.mean(1)) for i, head in enumerate(self.heads)]).sum(0)


def test_stack_in_front_of_the_batch():
    _imports_exactly(Heads(), (5, 6), "stack")


class Crop(nn.Module):
    """NASNet's ZeroPad2d((-1, 1, -1, 1)) before a strided pool, F.pad cropping, and a -inf pad before a max pool."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.pad = nn.ZeroPad2d((-1, 1, -1, 1))

    def forward(self, x):
        y = F.avg_pool2d(self.pad(self.conv(x)), 1, stride=2)
        y = F.pad(y, (0, -1, -1, 0))
        return F.max_pool2d(F.pad(y, (1, 1, 1, 1), value=float("-inf")), 3, 1)


def test_padding_by_negative_amounts_crops_and_by_minus_infinity_pads():
    _imports_exactly(Crop(), (3, 7, 8), "slice")


class Windows(nn.Module):
    """TNT's nn.Unfold, VOLO's F.fold of unfolded windows, HaloNet's Tensor.unfold of a padded map, whose last axis is
    then padded with the batch merged into the rows."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.unfold = nn.Unfold(kernel_size=3, padding=1, stride=2)
        self.fold = nn.Fold(output_size=(6, 6), kernel_size=3, padding=1, stride=2)

    def forward(self, x):
        y = self.conv(x)
        cols = self.unfold(y)
        back = self.fold(cols) + F.fold(F.unfold(y, 2, stride=2), (6, 6), 2, stride=2)
        blocks = F.pad(back, [1, 1, 1, 1]).unfold(2, 4, 2).unfold(3, 4, 2)  # (B, 4, 3, 3, 4, 4)
        rows = blocks.reshape(-1, 3, 16)  # the batch merged with the channels and rows
        return F.pad(rows, [0, 1]).reshape(x.shape[0], -1)


def test_unfold_fold_and_tensor_unfold():
    _imports_exactly(Windows(), (3, 6, 6), "im2col")


class MaskedAttention(nn.Module):
    """BEiT's attention: a relative position bias from its table as attn_mask; a computed mask, a scale, is_causal
    and a dropout of 0; and F.linear with a bias concatenated from parameters and a buffer (q_bias, a zero k_bias,
    v_bias)."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(6, 18, bias=False)
        self.q_bias, self.v_bias = nn.Parameter(torch.zeros(6)), nn.Parameter(torch.zeros(6))
        self.register_buffer("k_bias", torch.zeros(6))
        self.table = nn.Parameter(torch.rand(9, 2))
        self.register_buffer("index", torch.randint(0, 9, (5, 5)))

    def forward(self, x):
        bias = torch.cat((self.q_bias, self.k_bias, self.v_bias))
        qkv = F.linear(x, weight=self.qkv.weight, bias=bias)
        q, k, v = qkv.reshape(x.shape[0], 5, 3, 2, 3).permute(2, 0, 3, 1, 4).unbind(0)
        rel = self.table[self.index.view(-1)].view(5, 5, 2).permute(2, 0, 1).unsqueeze(0)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=rel, dropout_p=0.0, scale=0.25)
        b = F.scaled_dot_product_attention(q, k, v, attn_mask=(q @ k.transpose(-2, -1)).sigmoid())
        c = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return (a + b + c).transpose(1, 2).reshape(x.shape[0], 5, 6)


def test_sdpa_with_a_mask_a_scale_and_a_computed_bias():
    _imports_exactly(MaskedAttention(), (5, 6), "sdpa")


def test_the_users_model_is_not_changed_by_tensors_built_in_its_forward():
    model = Shapes().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = [n for n, _ in model.named_modules()]
    cnnsize.from_torch(model, (3, 4, 5))
    assert names == [n for n, _ in model.named_modules()]
    assert not [k for k in vars(model) if k.startswith("_tensor_constant")]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_constant_computed_from_trained_parameters_has_an_unknown_backward():
    """Its forward's products are counted (FlopCounterMode's figure at import) but not how they are done: the
    parameters' gradients are not guessed (null, and so the step's totals), the input's gradient does none."""
    spec = {"name": "c", "input": [5, 6], "layers": [
        {"const_op": {"name": "bias", "op": "add", "shape": [5, 6], "weights": 80, "macs": 576}}]}
    a = cnnsize.analyze(spec, training=True)
    assert a.layers[1].get("backward_macs") is None and a.totals["training"]["backward_macs"] is None
    frozen = cnnsize.analyze({**spec, "layers": [{"const_op": {**spec["layers"][0]["const_op"], "trainable": False}}]},
                             training=True)
    assert frozen.layers[1].get("backward_macs") == 0
