"""``normalize``: each vector along one axis divided by its p-norm (``F.normalize(x, dim=-1)``: cosine attention's
query and key in Swin V2, SwiftFormer's). No multiply-adds, as FlopCounterMode counts; a new tensor."""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from ..core.numeric import exact_div, prod
from .base import Counts, LayerKind, Param, Saved, register


@register("normalize")
class Normalize(LayerKind):
    """``x / max(‖x‖ₚ, eps)`` along the per-sample ``axis`` (torch's F.normalize, p = 2 by default): the input's
    shape, no parameters."""
    tools_checked = True
    onnx_none = "not mapped yet: exporters write ReduceL2, Clip or Max, Expand and Div, refused unless mapped"
    batch_anywhere = True  # along one per-sample axis (checked in from_torch)

    cause = "normalization"
    params = {"axis": Param("count", doc="the per-sample axis normalized, from 0"),
              "p": Param("positive", 2.0, doc="the norm's exponent"),
              "eps": Param("positive", 1e-12, doc="the smallest norm divided by")}
    torch_functions = ("normalize",)
    torch_modules = ("cnnsize.layers.nn.modules.Normalize",)
    examples: ClassVar[dict] = {
        "normalize_last": ([5, 6], [{"linear": {"units": 6}}, {"normalize": {"axis": 1}}, {"linear": {"units": 2}}]),
        "normalize_channels": ([3, 4, 5], [{"conv": {"filters": 4, "kernel": 1}},
                                           {"normalize": {"axis": 0, "p": 1.0, "eps": 1e-6}}]),
    }

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {"axis": call.module.dim - 1, "p": call.module.p, "eps": call.module.eps}
        p, dim, eps = call.arg(1, "p", 2.0), call.arg(2, "dim", 1), call.arg(3, "eps", 1e-12)
        if call.arg(4, "out") is not None:
            raise call.refuse("F.normalize with out=")
        axis = call.axis(dim)
        if axis is None or call.axis(dim, merged=True) != axis:
            raise call.refuse("F.normalize along the batch axis (cnnsize's axes are per sample)")
        return {"axis": axis, "p": float(p), "eps": float(eps)}

    def output_shape(self, ins, ctx):
        if self.axis >= len(ins[0]):
            raise SpecError(f"normalize along axis {self.axis} of an input with {len(ins[0])} axes",
                            hint="axis counts the per-sample axes from 0")
        return tuple(ins[0])

    def counts(self, ins, out):
        return Counts(connections=prod(ins[0]))

    def receptive(self, rfs, ins, out):
        return None

    def saved(self, ins, out, trainable, device):
        # torch computes x / norm(x).clamp_min(eps).expand_as(x): the norm keeps x and its result, clamp_min its
        # input, the division x and the clamped norm
        rows = exact_div(prod(ins[0]), ins[0][self.axis])
        return [Saved("input"), Saved("new", rows), Saved("new", rows)]

    def scratch(self, ins, out, batch):
        """The norm and the clamped norm (one per row along the axis), made on the way to the division."""
        return 2 * exact_div(prod(ins[0]), ins[0][self.axis]) * batch

    def summary(self) -> str:
        return f"x / ‖x‖{'' if self.p == 2 else self.p} along {self.axis}"

    def build(self, ins, out):
        from .nn.modules import Normalize as Module

        return Module(self.axis + 1, self.p, self.eps)

    @classmethod
    def torch_examples(cls):
        import torch.nn as nn
        import torch.nn.functional as F

        class CosineAttention(nn.Module):  # Swin V2's: normalized queries and keys
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(6, 6)

            def forward(self, x):
                q = F.normalize(self.fc(x), dim=-1)
                return q @ F.normalize(x, p=2.0, dim=-1, eps=1e-6).transpose(-2, -1)

        return {"cosine_attention": (CosineAttention, (5, 6))}


__all__ = ["Normalize"]
