"""Merging layers with several inputs: ``add`` (residual), ``concat`` (channels) and ``mul`` (gates).

Their torch modules take the inputs as separate arguments: ``forward(*xs)``.
"""

from __future__ import annotations

from ..errors import SpecError
from ..numeric import prod
from .base import RF, Counts, LayerKind, Param, Saved, register


def _text(shape) -> str:
    return "×".join(str(v) for v in shape)


def merged_rf(rfs: list) -> RF | None:
    """The field of a merge: the union over the inputs that still have spatial extent."""
    fields = [f for f in rfs if f is not None]
    return RF.union(fields) if fields else None


class _Merge(LayerKind):
    params = {}
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

    params = {"inplace": Param("bool", False, doc="add into the first input's storage (torch's x += y)")}
    torch_modules = ("cnnsize.executor.modules.Add",)
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
    def output_shape(self, ins, ctx):
        for x in ins[1:]:
            if tuple(x) != tuple(ins[0]):
                raise SpecError(f"add needs inputs of one shape, got {_text(ins[0])} and {_text(x)}",
                                hint="match them, e.g. with a 1x1 conv of the right filters and stride on the shortcut")
        return tuple(ins[0])

    def counts(self, ins, out):
        return Counts(connections=prod(out) * len(ins))

    def build(self, ins, out):
        from ..executor.modules import Add as AddModule

        return AddModule(inplace=self.inplace)


@register("concat")
class Concat(_Merge):
    """Concatenation along the channels; the spatial sizes must agree. Of one input, a copy (torch.cat([x]))."""

    min_inputs = 1

    torch_modules = ("cnnsize.executor.modules.Concat",)
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
        from ..executor.modules import Concat as ConcatModule

        return ConcatModule()


@register("mul")
class Mul(_Merge):
    """Elementwise product with broadcasting (a squeeze-and-excitation gate scaling the channels)."""

    cause = "elementwise"
    torch_modules = ("cnnsize.executor.modules.Mul",)
    torch_functions = ("mul", "mul_", "imul", "__mul__", "__imul__", "__rmul__")
    onnx_ops = ("Mul",)

    @classmethod
    def from_onnx(cls, call):
        args = [a for a in call.args if a is not None]
        if any(a.constant for a in args) or len(args) != 2 or len(args[0].shape) != len(args[1].shape):
            return None  # a scale by a weight (layer_scale) or a constant
        return {}

    def output_shape(self, ins, ctx):
        out = list(ins[0])
        for x in ins[1:]:
            if len(x) != len(out):
                raise SpecError(f"mul needs inputs with the same number of axes, got {_text(ins[0])} and {_text(x)}")
            for axis, (a, b) in enumerate(zip(out, x)):
                if a == b or b == 1:
                    continue
                if a == 1:
                    out[axis] = b
                    continue
                raise SpecError(f"mul cannot broadcast {_text(ins[0])} and {_text(x)}",
                                hint="each size must agree or be 1 (a gate is C×1×1)")
        return tuple(out)

    def counts(self, ins, out):
        return Counts(connections=prod(out) * len(ins))

    def saved(self, ins, out, trainable, device):
        return [Saved("input", index=i) for i in range(len(ins))]  # each factor's grad needs the others

    def build(self, ins, out):
        from ..executor.modules import Mul as MulModule

        return MulModule()
