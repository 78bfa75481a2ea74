"""Fused attention modules of hybrid models, written as torchvision writes them, without needing torchvision.

Each one is one layer kind of cnnsize.layers.attention: the same operations in the same order as the model's own
module, so that the tensors torch creates (and the FLOPs FlopCounterMode sees) are the same as the model's.
"""

from __future__ import annotations

from .modules import nn, torch


def relative_position_index(size: int) -> torch.Tensor:
    """MaxViT's index into its (2·size − 1)² bias table for every pair of positions of a size×size window."""
    coords = torch.stack(torch.meshgrid([torch.arange(size), torch.arange(size)], indexing="ij"))
    flat = torch.flatten(coords, 1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += size - 1
    rel[:, :, 1] += size - 1
    rel[:, :, 0] *= 2 * size - 1
    return rel.sum(-1)


class MaxVitAttention(nn.Module):
    """MaxViT's RelativePositionalMultiHeadAttention on (N, G, P, D): self-attention within each of G groups of
    P = size² tokens, with a learned bias per head for each relative position."""

    def __init__(self, dim: int, heads: int, size: int):
        super().__init__()
        self.n_heads, self.head_dim, self.size, self.max_seq_len = heads, dim // heads, size, size * size
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.scale_factor = dim ** -0.5
        self.merge = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * size - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, G, P, D = x.shape  # noqa: N806 - torchvision's names
        H, DH = self.n_heads, self.head_dim  # noqa: N806
        q, k, v = torch.chunk(self.to_qkv(x), 3, dim=-1)
        q = q.reshape(B, G, P, H, DH).permute(0, 1, 3, 2, 4)
        k = k.reshape(B, G, P, H, DH).permute(0, 1, 3, 2, 4)
        v = v.reshape(B, G, P, H, DH).permute(0, 1, 3, 2, 4)
        k = k * self.scale_factor
        dot = torch.einsum("B G H I D, B G H J D -> B G H I J", q, k)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(self.max_seq_len, self.max_seq_len, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
        dot = torch.nn.functional.softmax(dot + bias, dim=-1)
        out = torch.einsum("B G H I J, B G H J D -> B G H I D", dot, v)
        return self.merge(out.permute(0, 1, 3, 2, 4).reshape(B, G, P, D))
