"""Tensors whose batch axis moves: attention's ``reshape(B, N, 3, h, d).permute(2, 0, 3, 1, 4).unbind(0)``, windows
merged into the batch (``view(-1, w * w, C)``), ``flatten(0, 1)``, transposes through the batch. cnnsize's shapes are
per sample; the importer follows where torch holds the batch (its shapes at batch 1 and batch 2 compared) and
imports each operation on the samples alone, so the figures stay exact: every row's parameters, buffers,
FlopCounterMode's MACs and the storages of a real forward are torch's (tests/zoo_truth.py), and the imported spec,
built by cnnsize and run, validates on CPU. What mixes the samples is refused in one line naming the operation.
"""

from __future__ import annotations

import copy

import pytest

import cnnsize

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class Attention(nn.Module):
    """timm's Attention: a packed projection split into heads with the batch moved to axis 1, unbound; fused
    (F.scaled_dot_product_attention) or written out (q·scale @ kᵀ, softmax, @ v)."""

    def __init__(self, dim: int = 16, heads: int = 2, fused: bool = False):
        super().__init__()
        self.heads, self.head_dim, self.fused = heads, dim // heads, fused
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.fused:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q @ k.transpose(-2, -1)) * self.head_dim ** -0.5
            x = attn.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class Windows(nn.Module):
    """Swin-style windows merged into the batch (B·nW, w·w, C), a per-window MLP, and the windows merged back."""

    def __init__(self, dim: int = 8, window: int = 2):
        super().__init__()
        self.window = window
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        B, H, W, C = x.shape
        w = self.window
        x = x.view(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, C)
        x = self.mlp(x).softmax(-1)
        x = x.view(-1, H // w, W // w, w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)
        return x


class Pixels(nn.Module):
    """Every pixel a row of a (B·H·W, C) matrix, a linear layer on it, and back (an MLP written on rows)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 6)

    def forward(self, x):
        B, C, H, W = x.shape
        y = self.fc(x.permute(0, 2, 3, 1).reshape(B * H * W, C))
        return y.view(B, H, W, -1).permute(0, 3, 1, 2).relu()


class Flatten01(nn.Module):
    """flatten(0, 1) of (B, n, L, D) to (B·n, L, D), a layer norm and a linear on it, unflattened back."""

    def __init__(self):
        super().__init__()
        self.norm, self.fc = nn.LayerNorm(6), nn.Linear(6, 5)

    def forward(self, x):
        B = x.shape[0]
        y = self.fc(self.norm(x.flatten(0, 1)))
        return y.unflatten(0, (B, -1))


class BatchSecond(nn.Module):
    """A sequence-first layout: the batch swapped to axis 1 (N, B, D) and back."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        y = self.fc(x.transpose(0, 1)).sigmoid()
        return y.transpose(0, 1) * x


class Select3(nn.Module):
    """q, k and v picked by index from the (3, B, h, N, d) stack (older timm: qkv[0], qkv[1], qkv[2])."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(8, 24)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, 2, 4).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        return ((q @ k.transpose(-2, -1)).softmax(-1) @ v).transpose(1, 2).flatten(2)


class PaddedWindows(nn.Module):
    """timm's DaViT and Swin: a channels-last map padded to whole windows (F.pad of three axes), windows merged into
    the batch, then cropped back to its size read from the traced shape (x[:, :H, :W, :])."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        B, H, W, C = x.shape
        x = F.pad(self.fc(x), (0, 0, 0, 1, 0, 2))
        w = x.view(B, 2, 3, 3, 2, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, 6, C)
        x = self.fc(w).view(B, 2, 3, 3, 2, C).permute(0, 1, 3, 2, 4, 5).reshape(B, 6, 6, C)
        return x[:, :H, :W, :].contiguous()


class ClassAttention(nn.Module):
    """CaiT's class attention: the class token joined to the tokens and added to what attends to them, one
    parameter read twice through its expand (counted once)."""

    def __init__(self):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 6))
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        c = self.cls_token.expand(x.shape[0], -1, -1)
        return c + self.fc(torch.cat((c, x), dim=1))[:, :1]


# id: (make the model, input shape per sample)
ROWS = {
    "class_token_read_twice": (ClassAttention, (4, 6)),
    "padded_windows_cropped": (PaddedWindows, (4, 5, 6)),
    "attention_written_out": (Attention, (5, 16)),
    "attention_fused": (lambda: Attention(fused=True), (5, 16)),
    "attention_indexed": (Select3, (5, 8)),
    "windows_merged_into_batch": (Windows, (4, 6, 8)),
    "pixels_as_rows": (Pixels, (4, 3, 5)),
    "flatten_batch_with_an_axis": (Flatten01, (3, 4, 6)),
    "batch_second": (BatchSecond, (5, 6)),
}


@pytest.mark.parametrize("row", ROWS)
def test_moving_batch_imports_with_torchs_figures(row):
    from .zoo_truth import assert_imports_as_torch, torch_figures

    make, shape = ROWS[row]
    torch.manual_seed(0)
    model = make().eval()
    truth = torch_figures(model, shape)
    # FlopCounterMode counts no MACs in CPU's fused attention kernel: those of the meta device's path (as the zoo
    # test measures); the storages are the CPU's (the meta device's attention materializes its matrices, and lays
    # its output out otherwise)
    truth["macs"] = torch_figures(copy.deepcopy(model).to("meta"), shape)["macs"]
    assert_imports_as_torch(model, shape, truth)


def test_attention_imports_as_per_sample_views():
    """The heads' split is one per-sample permute, q, k and v selects of it: no layer sees the batch."""
    spec = cnnsize.from_torch(Attention().eval(), (5, 16)).spec
    kinds = [next(iter(layer)) for layer in spec["layers"]]
    assert kinds[:6] == ["linear", "reshape", "permute", "select", "select", "select"]
    body = spec["layers"][2]["permute"]
    assert body["dims"] == [1, 2, 0, 3]  # (N, 3, h, d) -> (3, h, N, d): torch's (3, B, h, N, d) per sample


class Mixes(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.fn(self, x)


@pytest.mark.parametrize("fn,message", [
    (lambda s, x: x.reshape(3, -1), r"cannot import reshape to \[3, 64\] \(it mixes the samples of the batch"),
    (lambda s, x: x.permute(1, 2, 3, 0).reshape(3, 8, -1), r"reshape to \[3, 8, 8\] \(it mixes the samples"),
    (lambda s, x: x.softmax(0), r"softmax over dim 0 \(over the batch axis"),
    (lambda s, x: x.transpose(0, 1)[:, 0], r"getitem \(its output does not grow with the batch"),
    (lambda s, x: x.sum(0), r"its output does not grow with the batch"),
], ids=["rows_across_samples", "batch_inside", "softmax_over_batch", "index_batch", "sum_batch"])
def test_what_mixes_the_samples_is_refused_in_one_line(fn, message):
    with pytest.raises(cnnsize.CnnsizeError, match=message) as info:
        cnnsize.from_torch(Mixes(fn), (3, 8, 8))
    assert "\n" not in str(info.value)


def test_a_conv_on_the_batch_merged_with_a_per_sample_axis_is_a_per_box_conv():
    """x.reshape(-1, 3, 4, 4) then a conv: each sample's 4 pieces merged into the batch, as a detector's RoI heads
    hold their boxes (refused before the per-box kinds): the conv on each of the 4, exact at batch 1 and 2."""
    from torch.utils.flop_counter import FlopCounterMode

    model = Mixes(lambda s, x: s.conv(x.reshape(-1, 3, 4, 4))).eval()
    a = cnnsize.from_torch(model, (3, 8, 8)).analyze()
    assert [(r.type, r.output_shape) for r in a.layers[1:]] == [("reshape", (4, 3, 4, 4)), ("box_conv", (4, 4, 4, 4))]
    for batch in (1, 2):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            y = model(torch.randn(batch, 3, 8, 8))
        assert counter.get_total_flops() // 2 == a.totals["macs"] * batch
        assert tuple(y.shape) == (4 * batch, 4, 4, 4)
    assert a.totals["params"] == sum(p.numel() for p in model.parameters())


class GatheredBias(nn.Module):
    """A relative position bias: a table of parameters gathered by a buffer of indices, added to the scores."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 5)
        self.table = nn.Parameter(torch.randn(9, 1))
        self.register_buffer("index", torch.randint(0, 9, (25,)))

    def forward(self, x):
        return self.fc(x) + self.table[self.index][:5, 0]  # broadcast over the positions, as a bias is


def test_tensor_computed_from_parameters_is_not_taken_for_weights():
    """The gathered bias is neither the table's parameters nor a parameter of its own shape: imported, the figures are
    torch's; otherwise the import stops on one line naming the call (it used to count 5 weights for the table's 9)."""
    model = GatheredBias().eval()
    try:
        a = cnnsize.from_torch(model, (5, 6)).analyze()
    except cnnsize.CnnsizeError as exc:
        assert "add" in exc.one_line() and "\n" not in exc.one_line()
        return
    assert a.totals["params"] == sum(p.numel() for p in model.parameters())
    assert a.totals["buffers"] == sum(b.numel() for b in model.buffers())
