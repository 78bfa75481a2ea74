"""torch modules that torch.nn lacks, used by the layer builders (torch imported here only)."""

from __future__ import annotations

from ..errors import MissingDependency

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
    """Sum of several inputs: forward(*xs)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Concat(nn.Module):
    """Concatenation of several inputs along the channels: forward(*xs)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class Mul(nn.Module):
    """Broadcast product of several inputs: forward(*xs)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of (N, C, *spatial), as ConvNeXt's LayerNorm2d (weights named as LayerNorm's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() <= 2:
            return super().forward(x)
        x = x.movedim(1, -1)
        return super().forward(x).movedim(-1, 1)


class Chunk(nn.Module):
    """One slice of x.chunk(chunks, dim=1)."""

    def __init__(self, chunks: int, index: int):
        super().__init__()
        self.chunks, self.index = chunks, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.chunk(self.chunks, dim=1)[self.index]
