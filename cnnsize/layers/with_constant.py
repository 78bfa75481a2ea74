"""``const_op``: elementwise arithmetic of a computed tensor with a constant tensor: one the forward computes from
parameters and buffers alone (a relative position bias gathered from its table, ``attention_biases[:, idx]``), a
buffer, or a tensor the forward builds from nothing (``torch.zeros``, ``arange``, a sin-cos grid). The parameters
and buffers the constant is computed from count as the layer's own (each once, by the first layer that reads it);
FlopCounterMode counts no multiply-adds for elementwise arithmetic, and neither does this kind."""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from ..core.numeric import prod
from .base import Counts, LayerKind, Param, Saved, TensorArg, register
from .merge import aligned, constant_shape

CONST_OPS = ("add", "sub", "rsub", "mul", "div", "rdiv")
_NAMES = {"add": "add", "iadd": "add", "radd": "add", "sub": "sub", "isub": "sub", "rsub": "rsub", "mul": "mul",
          "imul": "mul", "rmul": "mul", "truediv": "div", "div": "div", "itruediv": "div", "rtruediv": "rdiv"}
_SWAPPED = {"sub": "rsub", "rsub": "sub", "div": "rdiv", "add": "add", "mul": "mul"}


def _text(shape) -> str:
    return "×".join(str(v) for v in shape)


@register("const_op")
class ConstOp(LayerKind):
    """``x op c`` with ``c`` a constant tensor of ``shape`` (aligned with the input's last axes, broadcast as torch
    broadcasts): ``op`` add, sub, rsub (c - x), mul, div or rdiv (c / x). ``weights`` and ``buffers`` count the
    parameters and buffers the constant is computed from (a relative position bias table and its index), ``inplace``
    writes into the input (``x.add_(c)``, ``x += c``). No multiply-adds, as FlopCounterMode counts, beyond those
    computing the constant (``macs`` once per call, ``sample_macs`` once per sample)."""
    tools_checked = True
    onnx_none = "not mapped yet: ONNX arithmetic with a constant tensor is refused (or kept whole with --opaque)"
    batch_anywhere = True  # value by value: the constant aligned with the torch axes (checked in from_torch)
    counts_constants = True

    cause = "elementwise"
    params = {"op": Param("choice", doc="the operation, x op c (rsub: c - x, rdiv: c / x)", choices=CONST_OPS),
              "shape": Param("size", doc="the constant's shape, aligned with the input's last axes"),
              "weights": Param("count", 0, doc="parameters the constant is computed from"),
              "buffers": Param("count", 0, doc="buffers the constant is computed from"),
              "macs": Param("count", 0, doc="multiply-adds computing the constant, once per call whatever the batch "
                                            "(Swin V2's position-bias MLP): FlopCounterMode's count / 2"),
              "sample_macs": Param("count", 0, doc="multiply-adds computing the constant for each sample, where it is "
                                                   "built with the batch in its shape (EdgeNeXt's position encoding of "
                                                   "torch.zeros(B, H, W)): FlopCounterMode's count / 2 at batch 1"),
              "inplace": Param("bool", False, doc="write into the input's storage (x.add_(c), x += c)")}
    torch_modules = ("cnnsize.layers.nn.modules.ConstOp",)
    torch_functions = ("add", "add_", "iadd", "__add__", "__iadd__", "__radd__", "sub", "sub_", "isub", "__sub__",
                       "__isub__", "__rsub__", "rsub", "mul", "mul_", "imul", "__mul__", "__imul__", "__rmul__",
                       "truediv", "div", "div_", "itruediv", "__truediv__", "__itruediv__", "__rtruediv__")
    examples: ClassVar[dict] = {
        "const_op_bias": ([4, 5, 6], [{"linear": {"units": 6}},
                                      {"const_op": {"op": "add", "shape": [5, 6], "weights": 12, "buffers": 30}}]),
        "const_op_grid": ([3, 4, 5], [{"conv": {"filters": 3, "kernel": 1}},
                                      {"const_op": {"op": "mul", "shape": [1, 4, 5]}},
                                      {"const_op": {"op": "rsub", "shape": [5], "inplace": False}},
                                      {"const_op": {"op": "div", "shape": [3, 1, 1], "inplace": True}}]),
    }

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            m = call.module
            return {"op": m.op, "shape": list(m.shape), "weights": m.counted[0], "buffers": m.counted[1],
                    "macs": m.counted[2], "sample_macs": m.counted[3], "inplace": m.inplace}
        if len(call.inputs) != 1 or len(call.attrs) != 1 or call.kwargs.get("rounding_mode") is not None:
            return None  # two computed tensors (a merge), or a number (scalar)
        name = call.function
        name = name[2:-2] if name.startswith("__") and name.endswith("__") else name.rstrip("_")
        op = _NAMES.get(name)
        if op is None:
            return None
        first = call.arg(0, "input")
        if isinstance(first, TensorArg) and not first.computed:
            if call.inplace:
                raise call.refuse(f"{call.function} into a constant tensor (it changes a parameter or buffer)")
            op = _SWAPPED.get(op, op)
        shape = constant_shape(call, tuple(call.attrs[0]))
        if shape is None:
            raise call.refuse(f"{call.function} with a constant of shape {list(call.attrs[0])} that does not "
                              "broadcast over the batch (its axis there is not 1)")
        weights, buffers, macs, sample_macs = call.const_counts[0]
        return {"op": op, "shape": [int(v) for v in shape], "weights": weights, "buffers": buffers, "macs": macs,
                "sample_macs": sample_macs, "inplace": call.inplace}

    def const_shape(self) -> tuple:
        return self.shape if isinstance(self.shape, tuple) else (self.shape,)

    def output_shape(self, ins, ctx):
        out = aligned(tuple(ins[0]), self.const_shape())
        if self.inplace and tuple(out) != tuple(ins[0]):
            raise SpecError(f"in-place const_op must keep its input's shape {_text(ins[0])}, broadcasting gives "
                            f"{_text(out)}", hint="write inplace: false")
        if self.inplace and self.op in ("rsub", "rdiv"):
            raise SpecError(f"{self.op} (c {'-' if self.op == 'rsub' else '/'} x) has no in-place form in torch",
                            hint="drop inplace")
        return out

    def counts(self, ins, out):
        return Counts(weights=self.weights, buffers=self.buffers, connections=prod(out), macs=self.sample_macs)

    def call_macs(self, ins, out):
        return self.macs

    def backward_macs(self, ins, out, batch, grads, trains):
        """None for the parameters' gradients where the constant is computed from trained parameters with products
        (``macs``: how many is known, not how they are done, so neither is their backward); the input's gradient of
        ``x op c`` does no products."""
        return 0, (None if (self.macs or self.sample_macs) and self.weights and trains else 0)

    def receptive(self, rfs, ins, out):
        return rfs[0] if rfs else None

    def saved(self, ins, out, trainable, device):
        const = Saved("new", prod(self.const_shape()), per_sample=False)  # one for the batch
        if self.op == "rdiv":
            return [Saved("input"), const]  # d(c/x) = -c/x²
        if self.op in ("mul", "div"):
            # x * c and x / c: the input's gradient needs the constant; a constant computed from trained parameters
            # needs the input for its own
            return [const, Saved("input")] if trainable and self.weights else [const]
        return []  # x + c, x - c

    def summary(self) -> str:
        sign = {"add": "x + c", "sub": "x - c", "rsub": "c - x", "mul": "x * c", "div": "x / c", "rdiv": "c / x"}
        return f"{sign[self.op]}, c {_text(self.const_shape())}" + (", inplace" if self.inplace else "")

    def build(self, ins, out):
        from .nn.modules import ConstOp as Module

        return Module(self.op, self.const_shape(), self.weights, self.buffers, self.macs, self.inplace,
                      self.sample_macs)

    @classmethod
    def torch_examples(cls):
        import torch
        import torch.nn as nn

        class RelativeBias(nn.Module):  # Swin's, EfficientFormer's: a bias gathered from a table by an index buffer
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(6, 6)
                self.table = nn.Parameter(torch.rand(9, 2))
                self.register_buffer("index", torch.randint(0, 9, (5 * 5,)))

            def forward(self, x):
                attn = self.fc(x).view(x.shape[0], 5, 2, 3).permute(0, 2, 1, 3) @ \
                    self.fc(x).view(x.shape[0], 5, 2, 3).permute(0, 2, 3, 1)
                bias = self.table[self.index].view(5, 5, 2).permute(2, 0, 1)
                attn = attn + bias.unsqueeze(0)
                attn.add_(bias)
                return 1.0 - (attn * self.index.view(5, 5).float()) / torch.ones(5)

        class Built(nn.Module):  # a grid and a constant built in the forward (zeros, arange, linspace)
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 1)

            def forward(self, x):
                y = self.conv(x)
                grid = torch.arange(5, dtype=torch.float32) * torch.linspace(0, 1, 4).view(4, 1)
                return (y + grid).add(torch.zeros(4, 1, 1), alpha=2.0) - torch.ones(1, 4, 5)

        return {"relative_bias": (RelativeBias, (5, 6)), "built": (Built, (3, 4, 5))}


__all__ = ["ConstOp"]
