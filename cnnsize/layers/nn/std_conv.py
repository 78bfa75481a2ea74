"""The torch module of the ``std_conv`` kind (cnnsize/layers/std_conv.py): torch imported here only."""

from __future__ import annotations

from ...core.errors import MissingDependency

try:
    import torch
    from torch import nn
    from torch.nn import functional as F  # noqa: N812
except ImportError as exc:  # pragma: no cover - exercised without torch
    raise MissingDependency("the executor needs torch",
                            hint="pip install 'cnnsize[torch]'") from exc


class StdConv(nn.Module):
    """timm's ScaledStdConv2d on ``conv``'s geometry: the weight standardized per filter, scaled by a gain, in every
    forward (``F.batch_norm`` over each filter's values), then the convolution."""

    def __init__(self, conv: nn.Conv1d | nn.Conv2d | nn.Conv3d, eps: float = 1e-6):
        super().__init__()
        self.conv, self.eps = conv, eps
        self.gain = nn.Parameter(torch.ones(conv.out_channels, *[1] * (conv.weight.dim() - 1)))
        self.scale = conv.weight[0].numel() ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.conv.weight
        w = F.batch_norm(w.reshape(1, w.shape[0], -1), None, None, weight=(self.gain * self.scale).view(-1),
                         training=True, momentum=0.0, eps=self.eps).reshape_as(w)
        return self.conv._conv_forward(x, w, self.conv.bias)
