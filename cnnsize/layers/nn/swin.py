"""Swin Transformer's layers in torch, written from the papers' definitions as torchvision runs them (torchvision
is not needed): shifted-window attention (v1, v2 and 3D) and patch merging. The operations and their order are
torchvision's, so the tensors torch makes on the way (cnnsize's ``scratch`` activations) are the same."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _relative_index(window: tuple) -> torch.Tensor:
    """For each pair of the N tokens of a window, the row of its offset in the (2w−1)·… table (N², or N×N in 3D)."""
    coords = torch.stack(torch.meshgrid(*[torch.arange(w) for w in window], indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    index = torch.zeros(rel.shape[:2], dtype=torch.long)
    for axis, w in enumerate(window):
        stride = math.prod(2 * v - 1 for v in window[axis + 1:])
        index += (rel[:, :, axis] + w - 1) * stride
    return index if len(window) == 3 else index.flatten()


def _coords_table(window: tuple) -> torch.Tensor:
    """Swin V2's log-spaced relative coordinates, (1, 2wh−1, 2ww−1, 2)."""
    axes = [torch.arange(-(w - 1), w, dtype=torch.float32) for w in window]
    table = torch.stack(torch.meshgrid(axes, indexing="ij")).permute(1, 2, 0).contiguous().unsqueeze(0)
    for axis, w in enumerate(window):
        table[..., axis] /= w - 1
    table *= 8
    return torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / 3.0


class SwinAttention(nn.Module):
    """Shifted-window self-attention on (N, *spatial, C) channels-last, with relative position bias."""

    relative_position_index: torch.Tensor  # buffers, for the type checker
    relative_coords_table: torch.Tensor

    def __init__(self, dim: int, window: tuple, shift: tuple, heads: int, version: str = "v1", qkv_bias: bool = True,
                 proj_bias: bool = True, cpb_hidden: int = 512, shrink: bool = False, settings: dict | None = None):
        super().__init__()
        self.window, self.shift, self.heads = tuple(window), tuple(shift), heads
        self.version, self.shrink, self.settings = version, shrink, dict(settings or {})
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        table = math.prod(2 * w - 1 for w in self.window)
        if version == "v1":
            self.relative_position_bias_table = nn.Parameter(torch.zeros(table, heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        else:
            self.register_buffer("relative_coords_table", _coords_table(self.window))
            self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((heads, 1, 1))))
            self.cpb_mlp = nn.Sequential(nn.Linear(2, cpb_hidden), nn.ReLU(inplace=True),
                                         nn.Linear(cpb_hidden, heads, bias=False))
        self.register_buffer("relative_position_index", _relative_index(self.window))

    def position_bias(self, window: tuple) -> torch.Tensor:
        n = math.prod(window)
        index = self.relative_position_index
        if index.dim() == 2:  # 3D: the index of the (possibly shrunk) window
            index = index[:n, :n].flatten()
        if self.version == "v1":
            table = self.relative_position_bias_table
        else:
            table = self.cpb_mlp(self.relative_coords_table).view(-1, self.heads)
        bias = table[index].view(n, n, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
        return 16 * torch.sigmoid(bias) if self.version == "v2" else bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sizes, c = tuple(x.shape[1:-1]), x.shape[-1]
        nd, window, shift = len(sizes), list(self.window), list(self.shift)
        if self.shrink:
            for i, n in enumerate(sizes):
                if n <= window[i]:
                    window[i], shift[i] = n, 0
        bias = self.position_bias(tuple(window))
        pads = [(w - n % w) % w for n, w in zip(sizes, window)]
        x = F.pad(x, [0, 0, *[v for p in reversed(pads) for v in (0, p)]])  # a copy, even when nothing is added
        padded = tuple(x.shape[1:-1])
        if not self.shrink:
            shift = [0 if w >= p else s for s, w, p in zip(shift, window, padded)]
        dims = tuple(range(1, nd + 1))
        if sum(shift) > 0:
            x = torch.roll(x, shifts=tuple(-s for s in shift), dims=dims)
        b, n = x.shape[0], math.prod(window)
        counts = [p // w for p, w in zip(padded, window)]
        windows = math.prod(counts)
        x = x.view(b, *[v for pair in zip(counts, window) for v in pair], c)
        order = (0, *range(1, 2 * nd, 2), *range(2, 2 * nd + 1, 2), 2 * nd + 1)
        x = x.permute(*order).reshape(b * windows, n, c)
        qkv_bias: torch.Tensor | None = self.qkv.bias
        if self.version == "v2" and qkv_bias is not None:
            qkv_bias = qkv_bias.clone()
            qkv_bias[c: 2 * c].zero_()
        qkv = F.linear(x, self.qkv.weight, qkv_bias)
        qkv = qkv.reshape(x.size(0), n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.version == "v2":
            attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
            attn = attn * torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
        else:
            attn = (q * (c // self.heads) ** -0.5).matmul(k.transpose(-2, -1))
        attn = attn + bias
        if sum(shift) > 0:
            mask = self.mask(x, padded, window, shift)
            attn = attn.view(b, windows, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.heads, n, n)
        attn = F.softmax(attn, dim=-1)
        x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), n, c)
        x = F.linear(x, self.proj.weight, self.proj.bias)
        x = x.view(b, *counts, *window, c)
        order = (0, *[v for i in range(nd) for v in (1 + i, 1 + nd + i)], 2 * nd + 1)
        x = x.permute(*order).reshape(b, *padded, c)
        if sum(shift) > 0:
            x = torch.roll(x, shifts=tuple(shift), dims=dims)
        if padded != sizes:
            x = x[(slice(None), *[slice(0, s) for s in sizes])].contiguous()
        return x

    @staticmethod
    def mask(x: torch.Tensor, padded: tuple, window: list, shift: list) -> torch.Tensor:
        """-100 between tokens of a window that the roll brought from different regions, 0 within one."""
        import itertools

        mask = x.new_zeros(padded)
        regions = [((0, -w), (-w, -s), (-s, None)) for w, s in zip(window, shift)]
        for count, cut in enumerate(itertools.product(*regions)):
            mask[tuple(slice(a, b) for a, b in cut)] = count
        nd = len(padded)
        mask = mask.view(*[v for p, w in zip(padded, window) for v in (p // w, w)])
        mask = mask.permute(*range(0, 2 * nd, 2), *range(1, 2 * nd, 2)).reshape(-1, math.prod(window))
        mask = mask.unsqueeze(1) - mask.unsqueeze(2)
        return mask.masked_fill(mask != 0, (-100.0)).masked_fill(mask == 0, 0.0)


class PatchMerge(nn.Module):
    """Swin's patch merging: pad (…, H, W, C) to even H and W, the 2×2 neighbours' channels side by side."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-3:-1]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        return torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :],
                          x[..., 1::2, 1::2, :]], -1)
