"""torch modules that torch.nn lacks, used by the layer builders (torch imported here only)."""

from __future__ import annotations

import operator
from typing import Any

from ...core.errors import MissingDependency

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised without torch
    raise MissingDependency("the executor needs torch",
                            hint="pip install 'cnnsize[torch]'") from exc


class FlattenLinear(nn.Linear):
    """nn.Linear that flattens (N, C, H, W) to (N, C·H·W) first, so parameter names stay 'fc6.weight'.

    The flattening is a forward pre-hook, so every hook (torchinfo, torchscan, ptflops, ...) sees the flat
    input an nn.Linear after torch.flatten sees, as in torchvision's models.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_forward_pre_hook(_flatten_input)


def _flatten_input(module: nn.Module, args: tuple) -> tuple:
    return (args[0].flatten(1), *args[1:])


class LocallyConnected2d(nn.Module):
    """A 2D convolution without weight sharing, done as one batched matmul over unfolded patches.

    One bmm means torch's FlopCounterMode counts exactly output units × K·K·C multiply-adds.
    """

    def __init__(self, in_channels: int, filters: int, kernel: tuple, stride: tuple, pads: tuple,
                 out_size: tuple, bias: bool = True):
        super().__init__()
        self.kernel, self.stride, self.pads, self.out_size = kernel, stride, pads, out_size
        positions = out_size[0] * out_size[1]
        fan_in = in_channels * kernel[0] * kernel[1]
        self.weight = nn.Parameter(torch.empty(positions, fan_in, filters))
        self.bias = nn.Parameter(torch.empty(filters, *out_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / (self.weight.shape[1] ** 0.5)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = self.pads
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        # (L, N, C·K·K) in a tensor of its own: unfold may return a strided view of a larger buffer
        # (1x1 or non-overlapping windows), which the matmul would then keep whole for backward
        patches = F.unfold(x, self.kernel, stride=self.stride).permute(2, 0, 1)
        patches = patches.clone(memory_format=torch.contiguous_format)
        out = torch.bmm(patches, self.weight)  # (L, N, filters)
        # one contiguous copy: a strided view would make a following flatten copy again
        out = out.permute(1, 2, 0).reshape(x.shape[0], -1, *self.out_size).contiguous()
        return out.add_(self.bias) if self.bias is not None else out


class Add(nn.Module):
    """Sum of several inputs: forward(*xs); ``inplace`` adds into the first (torch's ``x += y``)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out.add_(x) if self.inplace else out + x
        return out


class Concat(nn.Module):
    """Concatenation of several inputs along the channels: forward(*xs)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class Cat(nn.Module):
    """torch.cat(xs, dim) along any axis: forward(*xs)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)


class Stack(nn.Module):
    """torch.stack(xs, dim): forward(*xs)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.stack(xs, dim=self.dim)


class Mul(nn.Module):
    """Broadcast product of several inputs: forward(*xs)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Sub(nn.Module):
    """a - b, broadcast; ``inplace`` subtracts from a (torch's ``a -= b``)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a.sub_(b) if self.inplace else a - b


class Div(Sub):
    """a / b, broadcast; ``inplace`` divides a (torch's ``a /= b``)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a.div_(b) if self.inplace else a / b


class Scalar(nn.Module):
    """x op c with a Python number c: add, sub, rsub (c - x), mul, div or pow; ``inplace`` where torch has it."""

    def __init__(self, op: str, value: float, inplace: bool = False):
        super().__init__()
        self.op, self.value, self.inplace = op, value, inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == "rsub":
            return torch.rsub(x, self.value)
        return getattr(x, f"{self.op}_" if self.inplace else self.op)(self.value)


class Mean(nn.Module):
    """x.mean(dims, keepdim)."""

    def __init__(self, dims: tuple, keepdim: bool = False):
        super().__init__()
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(self.dims, keepdim=self.keepdim)


class Expand(nn.Module):
    """x.expand(N, *shape): size-1 axes repeated as a view."""

    def __init__(self, shape: tuple):
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor, *like: torch.Tensor) -> torch.Tensor:  # expand_as's other: its shape alone
        return x.expand(x.shape[0], *self.shape)


class Bias(nn.Module):
    """x + a learned tensor of ``shape``, broadcast."""

    def __init__(self, shape: tuple):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight


_CONST_OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
              "add_": operator.iadd, "sub_": operator.isub, "mul_": operator.imul, "div_": operator.itruediv,
              "rsub": lambda x, c: c - x, "rdiv": lambda x, c: c / x}


class ConstOp(nn.Module):
    """x op c with c a constant tensor of ``shape`` made in the forward (of ones: the values do not matter to a size),
    holding ``weights`` parameters and ``buffers`` buffers, as many as the model computes it from, and computing it
    with ``macs`` multiply-adds (a product of two matrices of ones of that cost, once per call) and ``sample_macs``
    per sample (a batch of such products)."""

    def __init__(self, op: str, shape: tuple, weights: int = 0, buffers: int = 0, macs: int = 0,
                 inplace: bool = False, sample_macs: int = 0):
        super().__init__()
        self.op, self.shape, self.inplace = op, tuple(shape), inplace
        self.counted = (weights, buffers, macs, sample_macs)  # what the model's constant is computed from
        self.weight = nn.Parameter(torch.zeros(weights)) if weights else None
        self.register_buffer("held", torch.zeros(buffers) if buffers else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = torch.ones(self.shape, dtype=x.dtype, device=x.device)
        if self.counted[2]:  # the constant's computation: (1 × macs) @ (macs × 1), added in as 0
            row = torch.ones(1, self.counted[2], dtype=x.dtype, device=x.device)
            c = c + (row @ row.T).sum() * 0
        if self.weight is not None and torch.is_grad_enabled():  # the constant requires grad, as the model's does
            c = c + self.weight.sum() * 0
        if self.counted[3]:  # for each sample: (B × 1 × macs) @ (B × macs × 1)
            rows = torch.ones(x.shape[0], 1, self.counted[3], dtype=x.dtype, device=x.device)
            c = c + (rows @ rows.transpose(1, 2)).sum() * 0
        # Python's operators, as model code writes them (ptflops patches Tensor.add and Tensor.mul, not these)
        return _CONST_OPS[self.op + ("_" if self.inplace else "")](x, c)


class Normalize(nn.Module):
    """F.normalize(x, p, dim, eps)."""

    def __init__(self, dim: int, p: float = 2.0, eps: float = 1e-12):
        super().__init__()
        self.dim, self.p, self.eps = dim, p, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, p=self.p, dim=self.dim, eps=self.eps)


class UnfoldAxis(nn.Module):
    """x.unfold(dim, size, step): windows along one axis, as a view."""

    def __init__(self, dim: int, size: int, step: int):
        super().__init__()
        self.dim, self.size, self.step = dim, size, step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unfold(self.dim, self.size, self.step)


class Pad(nn.Module):
    """F.pad of every per-sample axis: ``pad`` before and ``pad_end`` after each, the first axis first."""

    def __init__(self, pad: tuple, pad_end: tuple, value: float = 0.0):
        super().__init__()
        self.pad, self.pad_end, self.value = pad, pad_end, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = tuple(v for a, b in zip(reversed(self.pad), reversed(self.pad_end)) for v in (a, b))
        return F.pad(x, flat, value=self.value)


class Unary(nn.Module):
    """torch.<op>(x) of each value: rsqrt, sqrt, exp, log, abs, neg, reciprocal, cos, sin."""

    def __init__(self, op: str):
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(torch, self.op)(x)


class Reduce(nn.Module):
    """x.<op>(dims, keepdim): sum, var, std (with a correction), the 2-norm, amax, amin; max and min over one axis
    (their values)."""

    def __init__(self, op: str, dims: tuple, keepdim: bool = False, correction: int = 1):
        super().__init__()
        self.op, self.dims, self.keepdim, self.correction = op, dims, keepdim, correction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op in ("var", "std"):
            return getattr(x, self.op)(self.dims, correction=self.correction, keepdim=self.keepdim)
        if self.op == "norm":
            return x.norm(p=2, dim=self.dims, keepdim=self.keepdim)
        if self.op in ("max", "min"):  # the values of the (values, indices) pair
            return getattr(x, self.op)(self.dims[0], keepdim=self.keepdim)[0]
        return getattr(x, self.op)(self.dims, keepdim=self.keepdim)


class Slice(nn.Module):
    """x[..., start:end:step] along ``dim`` (a view)."""

    def __init__(self, dim: int, start: int, end: int | None, step: int = 1):
        super().__init__()
        self.dim, self.start, self.end, self.step = dim, start, end, step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[(slice(None),) * self.dim + (slice(self.start, self.end, self.step),)]


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of (N, C, *spatial), as ConvNeXt's LayerNorm2d (weights named as LayerNorm's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() <= 2:
            return super().forward(x)
        x = x.movedim(1, -1)
        return super().forward(x).movedim(-1, 1)


class Chunk(nn.Module):
    """One slice of x.chunk(chunks, dim)."""

    def __init__(self, chunks: int, index: int, dim: int = 1):
        super().__init__()
        self.chunks, self.index, self.dim = chunks, index, dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.chunk(self.chunks, dim=self.dim)[self.index]


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth without torchvision: drops a branch per sample (``row``) or per batch."""

    def __init__(self, p: float, mode: str):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.dim() - 1) if self.mode == "row" else [1] * x.dim()
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise


class LayerScale(nn.Module):
    """A learned scale per channel (``axis`` 0 of an image, shaped (C, 1, ...)) or per feature of the last axis."""

    def __init__(self, shape: tuple, init: float):
        super().__init__()
        self.init = init
        self.weight = nn.Parameter(torch.full(shape, init))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.fill_(self.init)  # ConvNeXt's 1e-6, as torchvision initializes it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x


class MatMul(nn.Module):
    """a @ b over the last two axes: forward(a, b)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


class PatchEmbed(nn.Module):
    """ViT's conv_proj and its reshape to tokens: conv (kernel = stride = patch), flatten(2), transpose(1, 2)."""

    def __init__(self, in_channels: int, dim: int, patch: tuple, bias: bool = True):
        super().__init__()
        conv: Any = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[len(patch)]
        self.proj = conv(in_channels, dim, patch, stride=patch, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class ClassToken(nn.Module):
    """ViT's class token (and register tokens: ``tokens`` in all), put before the tokens of every sample:
    [N, L, D] → [N, L + tokens, D]."""

    def __init__(self, dim: int, tokens: int = 1):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, tokens, dim))

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)  # as torchvision's VisionTransformer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.weight.expand(x.shape[0], -1, -1), x], dim=1)


class PosEmbed(nn.Module):
    """A learned position embedding of the per-sample shape, added to the input."""

    def __init__(self, shape: tuple):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(1, *shape))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=0.02)  # as torchvision's VisionTransformer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight


class Permute(nn.Module):
    """x.permute(0, *dims + 1): the per-sample axes reordered, the batch first."""

    def __init__(self, dims: tuple):
        super().__init__()
        self.dims = (0, *(d + 1 for d in dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)


class Reshape(nn.Module):
    """x.reshape(N, *shape)."""

    def __init__(self, shape: tuple):
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Contiguous(nn.Module):
    """x.contiguous(): a copy where the view's order differs from memory."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous()


class SelfAttention(nn.MultiheadAttention):
    """nn.MultiheadAttention (batch_first) called on one input as self-attention, without the averaged weights.

    It calls torch's own slow path, F.multi_head_attention_forward, as nn.MultiheadAttention does under autograd;
    at inference with the math kernel, so that FlopCounterMode sees QKᵀ and attention·V (the fused kernels have no
    FLOP formula on CPU), in training with the default kernel, whose saved tensors the memory model follows.
    """

    def __init__(self, dim: int, heads: int, bias: bool = True, dropout: float = 0.0):
        super().__init__(dim, heads, dropout=dropout, bias=bias, batch_first=True)
        # called with one input, it is handed (x, x, x) as nn.MultiheadAttention is in a model: every module hook
        # (torchscan's, thop's, ptflops' attention formulas read query, key and value) sees the call torchvision makes
        self.register_forward_pre_hook(_query_key_value)

    def forward(self, x: torch.Tensor, key: torch.Tensor | None = None,  # type: ignore[override]
                value: torch.Tensor | None = None) -> torch.Tensor:
        import contextlib

        from torch.nn.attention import SDPBackend, sdpa_kernel

        q = x.transpose(0, 1)
        kernel = sdpa_kernel(SDPBackend.MATH) if not torch.is_grad_enabled() else contextlib.nullcontext()
        with kernel:
            out, _ = F.multi_head_attention_forward(
                q, q, q, self.embed_dim, self.num_heads, self.in_proj_weight, self.in_proj_bias, None, None, False,
                self.dropout, self.out_proj.weight, self.out_proj.bias, training=self.training, need_weights=False)
        return out.transpose(0, 1)


def _query_key_value(module: nn.Module, args: tuple) -> tuple:
    return (args[0], args[0], args[0]) if len(args) == 1 else args


class Select(nn.Module):
    """x.select(dim, index): one entry of an axis, the axis dropped (a view)."""

    def __init__(self, dim: int, index: int):
        super().__init__()
        self.dim, self.index = dim, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.select(self.dim, self.index)


class SDPA(nn.Module):
    """F.scaled_dot_product_attention(q, k, v, mask); at inference with the math kernel, which FlopCounterMode counts,
    its output laid out as the fused kernels' (which training runs). A constant mask of ``mask_shape`` is made in
    the forward (zeros), with ``weights`` and ``buffers`` held as the model computes it from them and ``macs``
    multiply-adds spent on it (a product of ones, as ConstOp's)."""

    def __init__(self, mask_shape: tuple | None = None, weights: int = 0, buffers: int = 0, macs: int = 0,
                 causal: bool = False, scale: float | None = None, dropout: float = 0.0):
        super().__init__()
        self.mask_shape, self.macs, self.causal, self.scale, self.dropout = mask_shape, macs, causal, scale, dropout
        self.counted = (weights, buffers)
        self.weight = nn.Parameter(torch.zeros(weights)) if weights else None
        self.register_buffer("held", torch.zeros(buffers) if buffers else None)

    def settings(self) -> dict:
        return {"mask": None if self.mask_shape is None else list(self.mask_shape), "weights": self.counted[0],
                "buffers": self.counted[1], "macs": self.macs, "causal": self.causal, "scale": self.scale,
                "dropout": self.dropout}

    def attention(self, q, k, v, mask):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout,
                                              is_causal=self.causal, scale=self.scale)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        if self.mask_shape is not None:
            # at the queries' rank, leading 1s added, as models build it (a [1, heads, L, S] bias): the fused kernels
            # take such a mask
            mask = torch.zeros((1,) * (q.dim() - len(self.mask_shape)) + tuple(self.mask_shape), dtype=q.dtype,
                               device=q.device)
            if self.macs:
                row = torch.ones(1, self.macs, dtype=q.dtype, device=q.device)
                mask = mask + (row @ row.T).sum() * 0
        if torch.is_grad_enabled():
            return self.attention(q, k, v, mask)
        with sdpa_kernel(SDPBackend.MATH):
            out = self.attention(q, k, v, mask)
        # laid out as the fused kernels lay it out, (N, L, h, E): a transpose(1, 2) after it is in memory order
        return out.transpose(1, 2).contiguous().transpose(1, 2) if out.dim() == 4 else out


class Roll(nn.Module):
    """torch.roll over per-sample axes (a new tensor)."""

    def __init__(self, shifts: tuple, dims: tuple):
        super().__init__()
        self.shifts, self.dims = shifts, dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.roll(x, self.shifts, self.dims)


class WindowPartition(nn.Module):
    """Swin's window partition of (N, H, W, C): view, permute, reshape (a copy) to (N, windows, wh·ww, C)."""

    def __init__(self, window: tuple):
        super().__init__()
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c = x.shape
        wh, ww = self.window
        x = x.view(n, h // wh, wh, w // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(n, (h // wh) * (w // ww), wh * ww, c)


class WindowMerge(nn.Module):
    """Swin's window merge back to (N, H, W, C): view, permute, reshape (a copy)."""

    def __init__(self, window: tuple, size: tuple):
        super().__init__()
        self.window, self.size = window, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (wh, ww), (h, w) = self.window, self.size
        n, c = x.shape[0], x.shape[-1]
        x = x.view(n, h // wh, w // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(n, h, w, c)


class Anchors(nn.Module):
    """Ultralytics' make_anchors (ultralytics.utils.tal): each map's cell centres (or strides), tensor for tensor as
    it makes them, transposed to [2, A] (or [1, A]) and seen by every sample of the batch (a view, as the head's
    broadcast reads them): forward(*maps)."""

    def __init__(self, strides: tuple, points: bool, offset: float):
        super().__init__()
        self.strides, self.points, self.offset = strides, points, offset

    def forward(self, *maps: torch.Tensor) -> torch.Tensor:
        parts = []
        for x, stride in zip(maps, self.strides):
            h, w = x.shape[2:]
            if self.points:
                sx = torch.arange(w, device=x.device).type_as(x) + self.offset
                sy = torch.arange(h, device=x.device).type_as(x) + self.offset
                sy, sx = torch.meshgrid(sy, sx, indexing="ij")
                parts.append(torch.stack((sx, sy), -1).view(-1, 2))
            else:
                parts.append(x.new_full((h * w, 1), stride))
        out = torch.cat(parts).transpose(0, 1)
        return out.unsqueeze(0).expand(maps[0].shape[0], -1, -1)


class Detections(nn.Module):
    """A detection head's post-processing, built as a stand-in of its shape: the ``detections`` best (anchor, class)
    scores (sigmoid, or softmax over the classes) and their raw boxes, as [boxes, score, label] rows; no box decoding
    and no NMS (torchvision's need the anchors and the image sizes). Nothing here requires grad, as in a detector's
    inference. forward(scores [B, A, C], boxes [B, A, 4], *others read for their values' order only)."""

    def __init__(self, detections: int, candidates: int = 1000, score: float = 0.05, iou: float = 0.5,
                 softmax: bool = False):
        super().__init__()
        self.detections, self.candidates, self.score, self.iou, self.softmax = \
            detections, candidates, score, iou, softmax

    def forward(self, scores: torch.Tensor, boxes: torch.Tensor, *others: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            p = scores.softmax(-1) if self.softmax else scores.sigmoid()
            top, index = p.flatten(1).topk(min(self.detections, p.shape[1] * p.shape[2]), dim=1)
            anchor = torch.div(index, p.shape[2], rounding_mode="floor")
            picked = boxes[..., :4].gather(1, anchor.unsqueeze(-1).expand(-1, -1, 4))
            label = (index % p.shape[2]).unsqueeze(-1).to(boxes.dtype)
            return torch.cat([picked, top.unsqueeze(-1), label], -1)


class RoIAlign(nn.Module):
    """torchvision's MultiScaleRoIAlign built as a stand-in of its shape (torchvision is not needed here): every
    map's first pixel, joined (so that each map is read, as RoIAlign reads them), the first one's spread over
    [B, P, C, output, output] for the ``boxes`` [B, P, ≥4]; no sampling, nothing a counting tool counts.
    forward(boxes, *maps)."""

    def __init__(self, output: int, sampling: int = 2):
        super().__init__()
        self.output, self.sampling = output, sampling

    def forward(self, boxes: torch.Tensor, *maps: torch.Tensor) -> torch.Tensor:
        corners = torch.cat([m[:, :, :1, :1] for m in maps], 3)  # [B, C, 1, L]
        size = (boxes.shape[0], boxes.shape[1], corners.shape[1], self.output, self.output)
        return corners[..., :1].unsqueeze(1).expand(size).contiguous()


class Constant(nn.Module):
    """A tensor that depends on no input, seen by every sample of the batch (a view): held (``value``, a plain
    attribute outside the state dict, as YOLO-World's text features are; set it to the model's own), or made in each
    forward (torch.full, as YOLOE's torch.zeros). forward(x) reads x for its device, dtype and batch."""

    def __init__(self, shape: tuple, held: bool, value: float = 0.0):
        super().__init__()
        self.shape, self.held, self.fill = tuple(shape), held, value
        self.value = torch.full((1, *self.shape), value) if held else None

    def _apply(self, fn, recurse=True):  # the held tensor goes where the module goes (to, to_empty, half), as a buffer
        out = super()._apply(fn, recurse)
        if self.value is not None:
            self.value = fn(self.value)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.value is None:
            c = torch.full((1, *self.shape), self.fill, dtype=x.dtype, device=x.device)
        else:
            c = self.value
            if c.device != x.device or c.dtype != x.dtype:
                c = self.value = c.to(x.device, x.dtype)
        return c.expand(x.shape[0], *self.shape)


class Contrastive(nn.Module):
    """Ultralytics' ContrastiveHead (bn false) and BNContrastiveHead (bn true), their parameters named as there:
    forward(x [B, E, H, W], text [B, N, E])."""

    def __init__(self, embed: int, bn: bool):
        super().__init__()
        self.norm = nn.BatchNorm2d(embed) if bn else None
        self.bias = nn.Parameter(torch.tensor([-10.0]))
        self.logit_scale = nn.Parameter(-1.0 * torch.ones([]) if bn else torch.ones([]) * torch.tensor(1 / 0.07).log())

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        x = self.norm(x) if self.norm is not None else F.normalize(x, dim=1, p=2)
        w = F.normalize(text, dim=-1, p=2)
        x = (w @ x.flatten(2)).view(-1, w.shape[1], *x.shape[2:])
        return x * self.logit_scale.exp() + self.bias
