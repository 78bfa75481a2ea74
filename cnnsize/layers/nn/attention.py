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

    relative_position_index: torch.Tensor  # a buffer, for the type checker

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


def _thw_pool(x: torch.Tensor, thw: tuple, pool: nn.Module, norm: nn.Module | None) -> tuple[torch.Tensor, tuple]:
    """MViT's Pool: the tokens after the class token as a (T, H, W) volume per head, pooled, the class token put back
    in front, then normalized (torchvision's Pool with norm_before_pool False)."""
    tensor_dim = x.dim()
    if tensor_dim == 3:
        x = x.unsqueeze(1)
    class_token, x = torch.tensor_split(x, indices=(1,), dim=2)
    x = x.transpose(2, 3)
    B, N, C = x.shape[:3]  # noqa: N806 - torchvision's names
    x = x.reshape((B * N, C) + tuple(thw)).contiguous()
    x = pool(x)
    T, H, W = x.shape[2:]  # noqa: N806
    x = x.reshape(B, N, C, -1).transpose(2, 3)
    x = torch.cat((class_token, x), dim=2)
    if norm is not None:
        x = norm(x)
    if tensor_dim == 3:
        x = x.squeeze(1)
    return x, (T, H, W)


class MViTPool(nn.Module):
    """MViT's skip pooling of tokens [N, 1 + T·H·W, C]: a max pool over the (T, H, W) volume, the class token kept."""

    def __init__(self, size: tuple, kernel: tuple, stride: tuple, padding: tuple):
        super().__init__()
        self.size = tuple(size)
        # lists, as torchvision passes them (torchscan's pooling formulas fail on a list: cnnsize.passes.conventions)
        self.pool = nn.MaxPool3d(list(kernel), stride=list(stride), padding=list(padding))  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _thw_pool(x, self.size, self.pool, None)[0]


def _interpolate(table: torch.Tensor, rows: int) -> torch.Tensor:
    """A relative position table stretched to ``rows`` rows where the grids need more or fewer than the input sized
    it for (torchvision's _interpolate: linear, over the rows)."""
    if table.shape[0] == rows:
        return table
    return nn.functional.interpolate(table.permute(1, 0).unsqueeze(0), size=rows, mode="linear").squeeze(0) \
        .permute(1, 0)


def _add_rel_pos(attn, q, q_thw, k_thw, rel_pos_h, rel_pos_w, rel_pos_t):
    """MViT v2's decomposed relative positions added to the attention (torchvision's _add_rel_pos): each table
    stretched to the rows the grids need (an even pooling kernel makes a grid larger than size // stride)."""
    q_t, q_h, q_w = q_thw
    k_t, k_h, k_w = k_thw
    rel_pos_h = _interpolate(rel_pos_h, 2 * max(q_h, k_h) - 1)
    rel_pos_w = _interpolate(rel_pos_w, 2 * max(q_w, k_w) - 1)
    rel_pos_t = _interpolate(rel_pos_t, 2 * max(q_t, k_t) - 1)
    q_h_ratio, k_h_ratio = max(k_h / q_h, 1.0), max(q_h / k_h, 1.0)
    dist_h = torch.arange(q_h)[:, None] * q_h_ratio - (torch.arange(k_h)[None, :] + (1.0 - k_h)) * k_h_ratio
    q_w_ratio, k_w_ratio = max(k_w / q_w, 1.0), max(q_w / k_w, 1.0)
    dist_w = torch.arange(q_w)[:, None] * q_w_ratio - (torch.arange(k_w)[None, :] + (1.0 - k_w)) * k_w_ratio
    q_t_ratio, k_t_ratio = max(k_t / q_t, 1.0), max(q_t / k_t, 1.0)
    dist_t = torch.arange(q_t)[:, None] * q_t_ratio - (torch.arange(k_t)[None, :] + (1.0 - k_t)) * k_t_ratio
    Rh = rel_pos_h[dist_h.long()]  # noqa: N806 - torchvision's names
    Rw = rel_pos_w[dist_w.long()]  # noqa: N806
    Rt = rel_pos_t[dist_t.long()]  # noqa: N806
    B, n_head, _, dim = q.shape  # noqa: N806
    r_q = q[:, :, 1:].reshape(B, n_head, q_t, q_h, q_w, dim)
    rel_h_q = torch.einsum("bythwc,hkc->bythwk", r_q, Rh)
    rel_w_q = torch.einsum("bythwc,wkc->bythwk", r_q, Rw)
    r_q = r_q.permute(2, 0, 1, 3, 4, 5).reshape(q_t, B * n_head * q_h * q_w, dim)
    rel_q_t = torch.matmul(r_q, Rt.transpose(1, 2)).transpose(0, 1)
    rel_q_t = rel_q_t.view(B, n_head, q_h, q_w, q_t, k_t).permute(0, 1, 4, 2, 3, 5)
    rel_pos = (rel_h_q[:, :, :, :, :, None, :, None] + rel_w_q[:, :, :, :, :, None, None, :]
               + rel_q_t[:, :, :, :, :, :, None, None]).reshape(B, n_head, q_t * q_h * q_w, k_t * k_h * k_w)
    attn[:, :, 1:, 1:] += rel_pos
    return attn


class MViTAttention(nn.Module):
    """MViT's MultiscaleAttention on tokens [N, 1 + T·H·W, C] (the class token first): a QKV projection, q, k and v
    each pooled per head by a depthwise Conv3d and a LayerNorm, attention (with v2's decomposed relative positions),
    v2's residual pooling of q, and the output projection."""

    def __init__(self, dim_in: int, dim: int, heads: int, size: tuple, kernel_q: tuple, stride_q: tuple,
                 kernel_kv: tuple, stride_kv: tuple, residual_pool: bool, residual_with_cls: bool, rel_pos: bool,
                 eps: float):
        super().__init__()
        self.size, self.output_dim, self.num_heads, self.head_dim = tuple(size), dim, heads, dim // heads
        self.scaler = 1.0 / (self.head_dim ** 0.5)
        self.residual_pool, self.residual_with_cls_embed = residual_pool, residual_with_cls
        self.qkv = nn.Linear(dim_in, 3 * dim)
        self.project = nn.Sequential(nn.Linear(dim, dim))
        hd = self.head_dim

        def pool(kernel, stride):
            if not kernel:
                return None
            conv = nn.Conv3d(hd, hd, kernel, stride=stride, padding=[k // 2 for k in kernel], groups=hd, bias=False)
            return nn.ModuleDict({"pool": conv, "norm": nn.LayerNorm(hd, eps=eps)})

        self.pool_q, self.pool_k, self.pool_v = pool(kernel_q, stride_q), pool(kernel_kv, stride_kv), \
            pool(kernel_kv, stride_kv)
        self.rel_pos_h = self.rel_pos_w = self.rel_pos_t = None
        if rel_pos:
            side = max(size[1:])
            q_size = side // stride_q[1] if len(stride_q) > 0 else side
            kv_size = side // stride_kv[1] if len(stride_kv) > 0 else side
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * max(q_size, kv_size) - 1, hd))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * max(q_size, kv_size) - 1, hd))
            self.rel_pos_t = nn.Parameter(torch.zeros(2 * size[0] - 1, hd))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape  # noqa: N806 - torchvision's names
        thw = self.size
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).transpose(1, 3).unbind(dim=2)
        k_thw = thw
        if self.pool_k is not None:
            k, k_thw = _thw_pool(k, thw, self.pool_k["pool"], self.pool_k["norm"])
        if self.pool_v is not None:
            v = _thw_pool(v, thw, self.pool_v["pool"], self.pool_v["norm"])[0]
        if self.pool_q is not None:
            q, thw = _thw_pool(q, thw, self.pool_q["pool"], self.pool_q["norm"])
        attn = torch.matmul(self.scaler * q, k.transpose(2, 3))
        if self.rel_pos_h is not None:
            attn = _add_rel_pos(attn, q, thw, k_thw, self.rel_pos_h, self.rel_pos_w, self.rel_pos_t)
        attn = attn.softmax(dim=-1)
        x = torch.matmul(attn, v)
        if self.residual_pool:
            if self.residual_with_cls_embed:
                x.add_(q)
            else:
                x[:, :, 1:, :] += q[:, :, 1:, :]
        x = x.transpose(1, 2).reshape(B, -1, self.output_dim)
        return self.project(x)


class MViTPosition(nn.Module):
    """MViT v1's position embedding added in place to tokens [N, 1 + T·H·W, D]: a learned embedding per frame plus
    one per spatial position (plus one for the class token), summed afresh on every forward."""

    def __init__(self, dim: int, size: tuple):
        super().__init__()
        self.size, self.temporal_size = tuple(size), size[0]
        self.spatial_pos = nn.Parameter(torch.zeros(size[1] * size[2], dim))
        self.temporal_pos = nn.Parameter(torch.zeros(size[0], dim))
        self.class_pos = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hw_size, embed_size = self.spatial_pos.shape
        pos_embedding = torch.repeat_interleave(self.temporal_pos, hw_size, dim=0)
        pos_embedding.add_(self.spatial_pos.unsqueeze(0).expand(self.temporal_size, -1, -1).reshape(-1, embed_size))
        pos_embedding = torch.cat((self.class_pos.unsqueeze(0), pos_embedding), dim=0).unsqueeze(0)
        return x.add_(pos_embedding)
