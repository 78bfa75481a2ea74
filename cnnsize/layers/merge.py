"""Merging layers with several inputs: ``add`` (residual), ``concat`` (channels), ``mul`` (gates), ``sub`` and ``div``;
and ``scalar``, an elementwise operation with a constant.

Their torch modules take the inputs as separate arguments: ``forward(*xs)``.
"""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from ..core.numeric import is_int, prod
from .base import RF, Counts, LayerKind, Param, Saved, TensorArg, register


def _text(shape) -> str:
    return "×".join(str(v) for v in shape)


def merged_rf(rfs: list) -> RF | None:
    """The field of a merge: the union over the inputs that still have spatial extent."""
    fields = [f for f in rfs if f is not None]
    return RF.union(fields) if fields else None


def broadcast(kind: str, ins: list) -> tuple:
    """The shape of an elementwise operation on inputs of one rank, each size equal or 1 (torch's broadcasting)."""
    out = list(ins[0])
    for x in ins[1:]:
        if len(x) != len(out):
            raise SpecError(f"{kind} needs inputs with the same number of axes, got {_text(ins[0])} and {_text(x)}")
        for axis, (a, b) in enumerate(zip(out, x)):
            if a == b or b == 1:
                continue
            if a == 1:
                out[axis] = b
                continue
            raise SpecError(f"{kind} cannot broadcast {_text(ins[0])} and {_text(x)}",
                            hint="each size must agree or be 1 (a gate is C×1×1)")
    return tuple(out)


def aligned(x: tuple, c: tuple, kind: str = "const_op") -> tuple:
    """The shape of ``x op c``, torch's broadcasting with ``c`` aligned with ``x``'s last axes."""
    if len(c) > len(x):
        raise SpecError(f"{kind}'s constant of shape {_text(c)} has more axes than the input {_text(x)}",
                        hint="give the constant's shape aligned with the input's last axes, leading 1s left out")
    out = list(x)
    for i, b in enumerate(c, start=len(x) - len(c)):
        a = out[i]
        if b == 1 or a == b:
            continue
        if a == 1:
            out[i] = b
        elif is_int(a) and is_int(b):
            raise SpecError(f"{kind} cannot broadcast the input {_text(x)} with a constant of shape {_text(c)}",
                            hint="each axis of the constant is 1 or the input's, aligned with the input's last axes")
    return tuple(out)


def constant_shape(call, torch_shape: tuple) -> tuple | None:
    """The constant's shape as a per-sample tensor sees it: aligned with the computed input's torch axes, the
    batch's axis left out (it must be 1 there), leading 1s dropped. None where it does not broadcast so."""
    x = tuple(call.torch_inputs[0]) if call.batch else tuple(call.inputs[0])
    at, merged = call.batch[0] if call.batch else (0, 1)
    if len(torch_shape) > len(x):
        return None
    full = (1,) * (len(x) - len(torch_shape)) + tuple(torch_shape)
    if merged == 1:
        if full[at] != 1:
            return None  # it would grow with the batch
        full = full[:at] + full[at + 1:]
    while len(full) > 1 and full[0] == 1:
        full = full[1:]
    return full


class _Merge(LayerKind):
    params = {}
    batch_anywhere = True  # value by value (the importer checks both inputs hold the batch alike)
    min_inputs = 2
    max_inputs = 64

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {}
        if len(call.inputs) != 2 or call.kwargs.get("alpha", 1) != 1:
            raise call.refuse(f"{call.function} with a constant or alpha (only tensor + tensor and tensor * tensor "
                              "are merge layers)")
        return {}

    def receptive(self, rfs, ins, out):
        return merged_rf(rfs)


@register("add")
class Add(_Merge):
    """Elementwise sum of inputs of one shape (a residual connection). ``inplace: true`` adds into the first input
    (torchvision's ``out += identity``): no new tensor."""
    tools_checked = True

    params = {"inplace": Param("bool", False, doc="add into the first input's storage (torch's x += y)")}
    torch_modules = ("cnnsize.layers.nn.modules.Add",)
    torch_functions = ("add", "add_", "iadd", "__add__", "__iadd__", "__radd__")
    onnx_ops = ("Add", "Sum")

    @classmethod
    def from_onnx(cls, call):
        args = [a for a in call.args if a is not None]
        if any(a.constant for a in args) or len({tuple(a.shape) for a in args}) != 1:
            return None  # a bias or a position embedding (another kind's), or a broadcast
        return {}

    @classmethod
    def from_torch(cls, call):
        settings = super().from_torch(call)
        return {"inplace": call.inplace or bool(getattr(call.module, "inplace", False))} \
            if isinstance(settings, dict) else settings

    cause = "elementwise"

    def autocast_width(self, ins, widths, device):
        """In place (``x += y``) the sum keeps the first input's type, whatever the others'."""
        return widths[0] if self.inplace else super().autocast_width(ins, widths, device)

    def output_shape(self, ins, ctx):
        for x in ins[1:]:
            if tuple(x) != tuple(ins[0]):
                raise SpecError(f"add needs inputs of one shape, got {_text(ins[0])} and {_text(x)}",
                                hint="match them, e.g. with a 1x1 conv of the right filters and stride on the shortcut")
        return tuple(ins[0])

    def counts(self, ins, out):
        return Counts(connections=prod(out) * len(ins))

    def build(self, ins, out):
        from .nn.modules import Add as AddModule

        return AddModule(inplace=self.inplace)


@register("concat")
class Concat(_Merge):
    """Concatenation along the channels; the spatial sizes must agree. Of one input, a copy (torch.cat([x]))."""
    batch_anywhere = False  # along the channels: the batch in front
    tools_checked = True

    min_inputs = 1

    torch_modules = ("cnnsize.layers.nn.modules.Concat",)
    torch_functions = ("cat", "concat")
    onnx_ops = ("Concat",)

    @classmethod
    def from_onnx(cls, call):
        if any(a is not None and a.constant for a in call.args):
            return None  # a constant joined to the tokens: a class token
        axis = call.attr("axis", 1)
        if axis % call.rank != 1:
            raise call.refuse(f"Concat along axis {axis} (cnnsize concatenates channels, axis 1)")
        return {}

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {}
        if call.attrs:
            return None  # a parameter joined to the tokens: a class token
        dim = call.arg(1, "dim", 0)
        if dim % call.rank != 1:
            raise call.refuse(f"torch.cat along dim {dim} (cnnsize concatenates channels, dim 1)")
        return {}  # torch.cat of one tensor is a copy of it: a new storage, as a concat of several

    cause = "views"
    def output_shape(self, ins, ctx):
        for x in ins[1:]:
            if len(x) != len(ins[0]) or tuple(x[1:]) != tuple(ins[0][1:]):
                raise SpecError(f"concat needs inputs of one spatial size, got {_text(ins[0])} and {_text(x)}",
                                hint="only the channels may differ; pad or pool the branches to one size")
        return (sum(x[0] for x in ins), *ins[0][1:])

    def build(self, ins, out):
        from .nn.modules import Concat as ConcatModule

        return ConcatModule()


@register("mul")
class Mul(_Merge):
    """Elementwise product with broadcasting (a squeeze-and-excitation gate scaling the channels)."""
    tools_checked = True

    cause = "elementwise"
    torch_modules = ("cnnsize.layers.nn.modules.Mul",)
    torch_functions = ("mul", "mul_", "imul", "__mul__", "__imul__", "__rmul__")
    onnx_ops = ("Mul",)

    @classmethod
    def from_onnx(cls, call):
        args = [a for a in call.args if a is not None]
        if any(a.constant for a in args) or len(args) != 2 or len(args[0].shape) != len(args[1].shape):
            return None  # a scale by a weight (layer_scale) or a constant
        return {}

    def output_shape(self, ins, ctx):
        return broadcast(self.kind, ins)

    def counts(self, ins, out):
        return Counts(connections=prod(out) * len(ins))

    def saved(self, ins, out, trainable, device):
        # each factor's grad needs the others: torch keeps a factor only where another requires grad
        return [Saved("input", index=i, for_inputs=tuple(j for j in range(len(ins)) if j != i))
                for i in range(len(ins))]

    def build(self, ins, out):
        from .nn.modules import Mul as MulModule

        return MulModule()


@register("sub")
class Sub(_Merge):
    """The difference of two inputs, the first minus the second, broadcast as ``mul`` (``x - x.mean(1, keepdim=True)``).
    ``inplace: true`` subtracts in the first input's storage (torch's ``x -= y``)."""
    onnx_none = "not mapped yet: ONNX Sub of two computed tensors is refused (or kept whole with --opaque)"
    tools_checked = True

    cause = "elementwise"
    min_inputs = max_inputs = 2
    params = {"inplace": Param("bool", False, doc="write into the first input's storage (torch's x -= y)")}
    torch_modules = ("cnnsize.layers.nn.modules.Sub",)
    torch_functions: ClassVar[tuple[str, ...]] = ("sub", "sub_", "isub", "__sub__", "__isub__")
    module = "Sub"

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {"inplace": bool(call.module.inplace)}
        if len(call.inputs) != 2 or any(k in call.kwargs for k in ("alpha", "rounding_mode")):
            raise call.refuse(f"{call.function} with a constant, alpha or rounding mode (a {cls.kind} layer takes two "
                              "tensors)")
        if call.inplace and tuple(call.output) != tuple(call.inputs[0]):
            raise call.refuse(f"in-place {call.function} broadcasting its first input")
        return {"inplace": call.inplace}

    def output_shape(self, ins, ctx):
        out = broadcast(self.kind, ins)
        if self.inplace and tuple(out) != tuple(ins[0]):
            raise SpecError(f"in-place {self.kind} must keep its first input's shape {_text(ins[0])}, broadcasting "
                            f"gives {_text(out)}", hint="write inplace: false")
        return out

    def counts(self, ins, out):
        return Counts(connections=prod(out) * len(ins))

    def build(self, ins, out):
        from .nn import modules

        return getattr(modules, self.module)(inplace=self.inplace)


@register("div")
class Div(Sub):
    """The quotient of two inputs, the first over the second, broadcast as ``mul``. ``inplace: true`` divides in the
    first input's storage (torch's ``x /= y``)."""
    onnx_none = "not mapped yet: ONNX Div of two computed tensors is refused (or kept whole with --opaque)"
    tools_checked = True

    torch_modules = ("cnnsize.layers.nn.modules.Div",)
    torch_functions = ("truediv", "div", "div_", "itruediv", "__truediv__", "__itruediv__")
    module = "Div"

    def saved(self, ins, out, trainable, device):
        # a / b: a's grad needs b, b's needs a and b
        return [Saved("input", index=0, for_inputs=(1,)), Saved("input", index=1, for_inputs=(0, 1))]


SCALAR_OPS = ("add", "sub", "rsub", "mul", "div", "pow")


@register("scalar")
class Scalar(LayerKind):
    """An elementwise operation with a constant number: ``x + c``, ``x - c``, ``c - x`` (rsub), ``x * c``, ``x / c``,
    ``x ** c`` (attention's scale, a normalization's mean and std written out). ``inplace: true`` for
    ``x.mul_(c)``, ``x *= c``."""
    batch_anywhere = True
    onnx_none = "not mapped yet: arithmetic with a constant is refused unless it is part of a mapped pattern (GELU's)"
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "ptflops.add": "(1 - inplace)*out",
        "ptflops.mul": "(1 - inplace)*out",
    }

    cause = "elementwise"
    params = {"op": Param("choice", doc="the operation, x op value", choices=SCALAR_OPS),
              "value": Param("float", doc="the constant"),
              "inplace": Param("bool", False, doc="write into the input's storage (x.mul_(c), x *= c)")}
    torch_modules = ("cnnsize.layers.nn.modules.Scalar",)
    torch_functions = ("add", "add_", "iadd", "__add__", "__iadd__", "__radd__", "sub", "sub_", "isub", "__sub__",
                       "__isub__", "__rsub__", "rsub", "mul", "mul_", "imul", "__mul__", "__imul__", "__rmul__",
                       "truediv", "div", "div_", "itruediv", "__truediv__", "__itruediv__", "pow", "pow_",
                       "__pow__", "__ipow__", "square", "square_")
    OPS = {"add": "add", "iadd": "add", "radd": "add", "sub": "sub", "isub": "sub", "rsub": "rsub", "mul": "mul",
           "imul": "mul", "rmul": "mul", "truediv": "div", "div": "div", "itruediv": "div", "pow": "pow",
           "ipow": "pow"}

    def count_variant(self, out):
        return self.op  # x.add(c), x.mul(c): ptflops patches these two methods only

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {"op": call.module.op, "value": call.module.value, "inplace": call.module.inplace}
        if call.function in ("square", "square_"):  # x.square(): x ** 2, as torch computes it
            return {"op": "pow", "value": 2.0, "inplace": call.inplace} if len(call.inputs) == 1 else None
        a, b = call.arg(0, "input"), call.arg(1, "other", call.kwargs.get("exponent"))
        number = (int, float)
        if len(call.inputs) != 1 or call.attrs or call.kwargs.get("alpha", 1) != 1 or \
                call.kwargs.get("rounding_mode") is not None:
            return None
        if isinstance(a, TensorArg) and isinstance(b, number) and not isinstance(b, bool):
            value, first = b, False
        elif isinstance(b, TensorArg) and isinstance(a, number) and not isinstance(a, bool):
            value, first = a, True  # the number first: 1 - x
        else:
            return None
        name = call.function
        name = name[2:-2] if name.startswith("__") and name.endswith("__") else name.rstrip("_")
        op = cls.OPS.get(name)
        if op is None:
            return None
        if first and op == "sub":
            op = "rsub"
        elif first and op in ("div", "pow"):
            raise call.refuse(f"{value} {'/' if op == 'div' else '**'} a tensor (torch computes it in two steps)")
        if call.function.startswith("__r") and op in ("sub",):
            op = "rsub"
        return {"op": op, "value": float(value), "inplace": call.inplace}

    def output_shape(self, ins, ctx):
        if self.inplace and self.op == "rsub":  # c - x makes a new tensor: torch has no rsub_
            raise SpecError("rsub (c - x) has no in-place form in torch", hint="drop inplace")
        return ins[0]

    def counts(self, ins, out):
        return Counts(connections=prod(out))

    def saved(self, ins, out, trainable, device):
        return [Saved("input")] if self.op == "pow" else []  # x ** c: its grad needs x; the others need nothing

    def summary(self) -> str:
        sign = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
        text = f"{self.value:g} - x" if self.op == "rsub" else f"x {sign[self.op]} {self.value:g}"
        return text + (", inplace" if self.inplace else "")

    def build(self, ins, out):
        from .nn.modules import Scalar as Module

        return Module(self.op, self.value, self.inplace)

    @classmethod
    def torch_examples(cls):
        import torch
        import torch.nn as nn

        class SquaredReLU(nn.Module):  # timm's metaformer head: relu(x).square(), torch.square
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(6, 6)

            def forward(self, x):
                return torch.square(torch.relu(self.fc(x)).square())

        return {"squared_relu": (SquaredReLU, (5, 6))}
