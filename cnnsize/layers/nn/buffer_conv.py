"""The torch module of the ``buffer_conv`` kind (cnnsize/layers/buffer_conv.py): torch imported here only."""

from __future__ import annotations

from ...core.errors import MissingDependency

try:
    import torch
    from torch import nn
    from torch.nn import functional as F  # noqa: N812
except ImportError as exc:  # pragma: no cover - exercised without torch
    raise MissingDependency("the executor needs torch",
                            hint="pip install 'cnnsize[torch]'") from exc


class BufferConv(nn.Module):
    """A convolution by a filter held as a buffer (timm's BlurPool2d's ``filt``): ``conv``'s geometry and weight
    values, no parameter."""

    def __init__(self, conv: nn.Conv1d | nn.Conv2d | nn.Conv3d):
        super().__init__()
        self.register_buffer("filt", conv.weight.detach().clone())
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups
        self.nd = conv.weight.dim() - 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[self.nd]
        return fn(x, self.filt, None, self.stride, self.padding, self.dilation, self.groups)  # type: ignore[arg-type]
