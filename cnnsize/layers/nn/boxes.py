"""The torch module of the per-box kinds (cnnsize/layers/boxes.py): torch imported here only."""

from __future__ import annotations

from ...core.errors import MissingDependency

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised without torch
    raise MissingDependency("the executor needs torch",
                            hint="pip install 'cnnsize[torch]'") from exc


class PerBox(nn.Module):
    """Runs ``inner`` (a plain torch layer) on each box: [B, P, ...] as torchvision's RoI heads hold it, [B·P, ...],
    then back to [B, P, ...]; the counting tools' hooks on ``inner`` see what they see in torchvision."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.flatten(0, 1)).unflatten(0, x.shape[:2])
