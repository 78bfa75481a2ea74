"""Joins along any per-sample axis: ``cat`` (torch.cat along the tokens or the last axis: MambaOut's split
convolution, a sequence of tokens joined) and ``stack`` (torch.stack on a new axis: a selective-kernel's branches).
torch.cat along the channels is ``concat`` (cnnsize/layers/merge.py). A new tensor each, no arithmetic."""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from .base import Counts, LayerKind, Param, register


def _text(shape) -> str:
    return "×".join(str(v) for v in shape)


class _Join(LayerKind):
    batch_anywhere = True  # checked in from_torch: the axis joined along is no batch's
    min_inputs = 1
    max_inputs = 64

    cause = "views"
    params = {"axis": Param("count", doc="the per-sample axis, from 0")}

    def counts(self, ins, out):
        return Counts()

    def receptive(self, rfs, ins, out):
        return None

    def saved(self, ins, out, trainable, device):
        return []  # a join's gradient is slices of the output's


@register("cat")
class Cat(_Join):
    """Concatenation along any per-sample ``axis`` (torch.cat(xs, dim)); the other axes must agree."""
    tools_checked = True
    onnx_none = "not mapped yet: ONNX Concat along an axis other than the channels is refused"

    torch_modules = ("cnnsize.layers.nn.modules.Cat",)
    torch_functions = ("cat", "concat")
    examples: ClassVar[dict] = {
        "cat_last_axis": ([5, 6], [{"linear": {"units": 4}}, {"linear": {"units": 3, "from": "input"}},
                                   {"cat": {"axis": 1, "from": ["linear1", "linear2"]}}, {"linear": {"units": 2}}]),
        "cat_tokens": ([5, 6], [{"linear": {"units": 6}}, {"cat": {"axis": 0, "from": ["input", "linear1"]}}]),
    }

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {"axis": call.module.dim - 1}
        if call.attrs:
            return None  # a parameter joined to the tokens: a class token
        dim = call.arg(1, "dim", 0)
        axes = {call.axis(dim, i) for i in range(len(call.inputs))}
        merged = {call.axis(dim, i, merged=True) for i in range(len(call.inputs))}
        if len(axes) != 1 or None in axes or merged != axes:
            raise call.refuse(f"torch.cat along dim {dim}, the batch's or an axis merged with it")
        return {"axis": axes.pop()}

    def output_shape(self, ins, ctx):
        x = ins[0]
        if self.axis >= len(x):
            raise SpecError(f"cat axis {self.axis} is out of range for {_text(x)}",
                            hint=f"count the per-sample axes from 0: 0 to {len(x) - 1}")
        for y in ins[1:]:
            if len(y) != len(x) or any(a != b for i, (a, b) in enumerate(zip(x, y)) if i != self.axis):
                raise SpecError(f"cat along axis {self.axis} needs inputs equal on the other axes, got {_text(x)} "
                                f"and {_text(y)}")
        return (*x[:self.axis], sum(y[self.axis] for y in ins), *x[self.axis + 1:])

    def build(self, ins, out):
        from .nn.modules import Cat as Module

        return Module(self.axis + 1)

    @classmethod
    def torch_examples(cls):
        import torch
        import torch.nn as nn

        class SplitConv(nn.Module):  # timm's MambaOut: a convolution on part of the channels-last features
            def __init__(self):
                super().__init__()
                self.fc, self.conv = nn.Linear(6, 8), nn.Conv2d(3, 3, 3, padding=1)

            def forward(self, x):
                y = self.fc(x)
                a, b = torch.split(y, [5, 3], dim=-1)
                b = self.conv(b.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
                return torch.cat((a, b), dim=-1)

        return {"split_conv": (SplitConv, (4, 5, 6))}


@register("stack")
class Stack(_Join):
    """Inputs of one shape stacked on a new per-sample ``axis`` (torch.stack(xs, dim))."""
    tools_checked = True
    onnx_none = "not mapped yet: exporters write Unsqueeze and Concat"

    torch_modules = ("cnnsize.layers.nn.modules.Stack",)
    torch_functions = ("stack",)
    examples: ClassVar[dict] = {
        "stack_branches": ([3, 4, 4], [{"conv": {"filters": 4, "kernel": 3, "pad": 1}},
                                       {"conv": {"filters": 4, "kernel": 1, "from": "input"}},
                                       {"stack": {"axis": 0, "from": ["conv1", "conv2"]}}]),
    }

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {"axis": call.module.dim - 1}
        if call.attrs:
            raise call.refuse("torch.stack of a parameter")
        rank = len(call.torch_inputs[0]) if call.batch else call.rank
        dim = call.arg(1, "dim", 0) % (rank + 1)
        at, merged = call.out_batch if call.batch else (0, 1)
        if at < 0 or dim == at:
            raise call.refuse(f"torch.stack along dim {dim}, where the batch is")
        # the new axis as a per-sample axis: the batch's axis (alone) left out before it (logits stacked in front
        # of the batch, torch.stack(xs).sum(0), stack along per-sample axis 0)
        return {"axis": dim - 1 if dim > at and merged == 1 else dim}

    def output_shape(self, ins, ctx):
        x = ins[0]
        if self.axis > len(x):
            raise SpecError(f"stack axis {self.axis} is out of range for {_text(x)}",
                            hint=f"count the per-sample axes from 0: 0 to {len(x)}")
        for y in ins[1:]:
            if tuple(y) != tuple(x):
                raise SpecError(f"stack needs inputs of one shape, got {_text(x)} and {_text(y)}")
        return (*x[:self.axis], len(ins), *x[self.axis:])

    def build(self, ins, out):
        from .nn.modules import Stack as Module

        return Module(self.axis + 1)

    @classmethod
    def torch_examples(cls):
        import torch
        import torch.nn as nn

        class SelectiveKernel(nn.Module):  # timm's SelectiveKernel: branches stacked, summed, then weighted
            def __init__(self):
                super().__init__()
                self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 1)

            def forward(self, x):
                paths = torch.stack([self.a(x), self.b(x)], dim=1)
                return (paths * torch.sigmoid(paths.mean((3, 4), keepdim=True))).sum(1)

        class Heads(nn.Module):  # timm's EfficientViM: heads' logits weighted, stacked in front of the batch, summed
            def __init__(self):
                super().__init__()
                self.heads = nn.ModuleList([nn.Linear(6, 3), nn.Linear(6, 3)])
                self.weights = nn.Parameter(torch.ones(2))

            def forward(self, x):
                w = self.weights.softmax(-1)
                return torch.stack([w[i] * head(x) for i, head in enumerate(self.heads)]).sum(0)

        return {"selective_kernel": (SelectiveKernel, (3, 5, 5)), "heads_in_front": (Heads, (6,))}


__all__ = ["Cat", "Stack"]
