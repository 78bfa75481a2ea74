"""Elementwise layers: activations, dropout and identity. No parameters, no connections, no MACs."""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from ..core.numeric import prod
from .base import (
    FLOAT32,
    LOWER,
    PASS_THROUGH,
    VIEW,
    Counts,
    LayerKind,
    Param,
    Saved,
    register,
    require_spatial,
)

INPLACE = Param("bool", False, doc="overwrite the input instead of making a new tensor")


class _Elementwise(LayerKind):
    cause = "activations"
    batch_anywhere = True  # value by value: wherever the batch is
    torch_name = ""
    params = {"inplace": INPLACE}
    saves = "output"  # relu, sigmoid, tanh and softmax differentiate through their result
    inplace_keeps_result = False  # in place, torch differentiates through the result (no copy needed)
    inplace_position = 1  # where the functional form takes ``inplace`` (F.relu(x, True))
    # the one number the functional form takes after x (F.leaky_relu(x, 0.2): "negative_slope"), and the ONNX
    # attribute that holds it ("alpha"); the module's own attribute of that name otherwise
    number: ClassVar[str | None] = None
    onnx_number: ClassVar[str | None] = None

    @classmethod
    def from_torch(cls, call):
        settings = super().from_torch(call)
        if "inplace" in cls.params and call.module is None:
            settings["inplace"] = call.inplace or bool(call.arg(cls.inplace_position, "inplace", False))
        if cls.number is not None and call.module is None:
            settings[cls.number] = float(call.arg(1, cls.number, cls.params[cls.number].default))
        return settings

    @classmethod
    def from_onnx(cls, call):
        if cls.number is None or cls.onnx_number is None:
            return super().from_onnx(call)
        return {cls.number: float(call.attr(cls.onnx_number, cls.params[cls.number].default))}

    def saved(self, ins, out, trainable, device):
        if self.saves == "input" and getattr(self, "inplace", False) and not self.inplace_keeps_result:

            return [Saved("new", prod(ins[0]))]  # autograd keeps a copy of the input the op overwrites
        return [Saved(self.saves)]

    def build(self, ins, out):
        import torch.nn as nn

        kwargs = {k: getattr(self, k) for k in self.params}
        return getattr(nn, self.torch_name)(**kwargs)


@register("relu")
class ReLU(_Elementwise):
    """max(0, x)."""
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "ptflops": "2*inp",
        "torchscan-flops": "inp",
        "torchscan-dmas": "inp + (1 - inplace)*out",
    }

    torch_name = "ReLU"
    torch_modules = ("ReLU",)
    torch_functions = ("relu", "relu_")
    onnx_ops = ("Relu",)


@register("leaky_relu")
class LeakyReLU(_Elementwise):
    """max(slope·x, x)."""
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "ptflops": "out",
        "torchscan-flops": "4*inp",
        "torchscan-dmas": "inp + 1 + (1 - inplace)*out",
    }

    torch_name = "LeakyReLU"
    saves = "input"
    inplace_keeps_result = True
    params = {"negative_slope": Param("float", 0.01), "inplace": INPLACE}
    torch_modules = ("LeakyReLU",)
    torch_functions = ("leaky_relu", "leaky_relu_")
    inplace_position = 2
    onnx_ops = ("LeakyRelu",)
    number, onnx_number = "negative_slope", "alpha"


@register("sigmoid")
class Sigmoid(_Elementwise):
    """1 / (1 + e^-x)."""
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "torchscan-flops": "4*inp",
        "torchscan-dmas": "inp + out",
    }

    torch_name = "Sigmoid"
    params = {}
    torch_modules = ("Sigmoid",)
    torch_functions = ("sigmoid",)
    onnx_ops = ("Sigmoid",)


@register("tanh")
class Tanh(_Elementwise):
    """Hyperbolic tangent."""
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "torchscan-flops": "6*inp",
        "torchscan-dmas": "2*inp + out",
    }

    torch_name = "Tanh"
    params = {}
    torch_modules = ("Tanh",)
    torch_functions = ("tanh",)
    onnx_ops = ("Tanh",)


AXIS = Param("count", 0, doc="the per-sample axis, from 0 (the channels of an image, the last of [L, D] tokens is 1)")


def check_axis(kind: str, axis, shape) -> None:
    if axis >= len(shape):
        raise SpecError(f"{kind} axis {axis} is out of range for the {len(shape)}-axis input {list(shape)}",
                        hint=f"count per-sample axes from 0 (the batch is not one): 0 to {len(shape) - 1}")


@register("softmax")
class Softmax(_Elementwise):
    """Softmax over one axis (the channels by default: class scores)."""
    autocast = {"cuda": FLOAT32}  # CUDA's float32 list; the CPU runs it in its input's type
    tools_checked = True

    cause = "softmax"
    torch_name = "Softmax"
    params = {"axis": AXIS}

    def count_facts(self, ins, out, batch):
        return {"axis": ins[0][self.axis]}

    def output_shape(self, ins, ctx):
        check_axis(self.kind, self.axis, ins[0])
        return ins[0]
    torch_modules = ("Softmax",)
    torch_functions = ("softmax",)
    onnx_ops = ("Softmax",)

    @classmethod
    def from_onnx(cls, call):
        axis = call.attr("axis", -1 if call.opset >= 13 else 1)
        if call.opset < 13 and axis % call.rank != call.rank - 1:
            raise call.refuse(f"{call.op} of opset {call.opset} over axis {axis} (before opset 13 it flattens "
                              "the axes from there on)")
        if axis % call.rank == 0:
            raise call.refuse(f"{call.op} over the batch axis")
        return {"axis": axis % call.rank - 1}

    @classmethod
    def from_torch(cls, call):
        dim = call.module.dim if call.module is not None else call.arg(1, "dim")
        axis = None if dim is None else call.axis(dim)
        if axis is None:
            raise call.refuse(f"{call.function} over dim {dim} (over the batch axis, or an implicit dim)")
        return {"axis": axis}

    def build(self, ins, out):
        import torch.nn as nn

        return getattr(nn, self.torch_name)(dim=self.axis + 1)


@register("log_softmax")
class LogSoftmax(Softmax):
    """log(softmax(x)) over one axis, computed stably in one kernel (torch keeps its result for backward)."""
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "ptflops": "0",
        "thop": "3*inp",
    }

    torch_name = "LogSoftmax"
    torch_modules = ("LogSoftmax",)
    torch_functions = ("log_softmax",)
    onnx_ops = ("LogSoftmax",)


@register("elu")
class ELU(_Elementwise):
    """x where x > 0, alpha·(e^x − 1) elsewhere."""
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "ptflops": "2*inp",
        "torchscan-flops": "6*inp",
        "torchscan-dmas": "inp + 1 + (1 - inplace)*out",
    }

    torch_name = "ELU"
    saves = "input"
    inplace_keeps_result = True  # elu_ differentiates through its result
    params = {"alpha": Param("float", 1.0), "inplace": INPLACE}
    torch_modules = ("ELU",)
    torch_functions = ("elu", "elu_")
    inplace_position = 2
    onnx_ops = ("Elu",)
    number, onnx_number = "alpha", "alpha"


@register("prelu")
class PReLU(_Elementwise):
    """Leaky ReLU with a learned slope: one shared (``per_channel: false``) or one per channel."""
    autocast = {"cpu": LOWER, "cuda": LOWER}  # in autocast's 16-bit list on both devices
    batch_anywhere = False  # per channel, or per sample: the batch in front
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "ptflops": "2*inp",
        "thop": "inp",
    }

    torch_name = "PReLU"
    saves = "input"
    params = {"per_channel": Param("bool", False, doc="one slope per channel (torch's num_parameters = C)"),
              "init": Param("float", 0.25, doc="the slopes' initial value")}
    torch_modules = ("PReLU",)
    torch_functions = ("prelu",)
    onnx_ops = ("PRelu",)

    @classmethod
    def from_onnx(cls, call):
        slope = call.weight(1)
        if slope is None:
            raise call.refuse("PRelu with a slope computed in the graph")
        return {"per_channel": prod(slope) > 1}

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {"per_channel": call.module.num_parameters > 1, "init": float(call.module.init)}
        weight = call.arg(1, "weight")
        return {"per_channel": bool(getattr(weight, "shape", (1,)) and prod(weight.shape) > 1)}

    def counts(self, ins, out):
        return Counts(weights=ins[0][0] if self.per_channel else 1)

    def build(self, ins, out):
        import torch.nn as nn

        return nn.PReLU(ins[0][0] if self.per_channel else 1, init=self.init)


@register("dropout")
class Dropout(_Elementwise):
    """Zeroes units at random while training; the identity at inference, so it materializes nothing there."""
    tools_checked = True
    makes = VIEW

    cause = "dropout"
    params = {"p": Param("probability", 0.5, doc="probability of zeroing a unit"), "inplace": INPLACE}
    torch_modules: ClassVar[tuple[str, ...]] = ("Dropout",)
    torch_functions: ClassVar[tuple[str, ...]] = ("dropout",)
    inplace_position = 3
    onnx_ops: ClassVar[tuple[str, ...]] = ("Dropout",)
    number = "p"

    @classmethod
    def from_onnx(cls, call):
        if call.index != 0:
            raise call.refuse("Dropout's mask output (it is not a layer)")
        if call.const(2, False) not in (False, 0):
            raise call.refuse("Dropout in training mode")
        ratio = call.const(1, call.attr("ratio", 0.5))
        return {"p": float(ratio)}

    @property
    def materializes_training(self) -> bool:
        return not self.inplace and self.p != 0  # torch returns the input itself for p = 0

    def saved(self, ins, out, trainable, device):

        if self.p == 0:
            return []
        # CUDA's fused kernel keeps a bool mask; the CPU path multiplies by a scaled noise tensor of the input's dtype
        return [Saved("new", prod(out), itemsize=1 if device == "cuda" else None)]

    def build(self, ins, out):
        import torch.nn as nn

        return nn.Dropout(p=self.p, inplace=self.inplace)


# ptflops and torchscan count nothing for channel dropout and stochastic depth (checked against both tools)
RANDOM_ZEROING_RULES: dict = {"ptflops": "0", "torchscan-flops": "0", "torchscan-dmas": "0"}


@register("channel_dropout")
class ChannelDropout(Dropout):
    """Zeroes whole channels at random while training (torch's Dropout1d/2d/3d by the input's rank); the identity
    at inference."""
    batch_anywhere = False  # per channel, or per sample: the batch in front
    onnx_ops: ClassVar[tuple[str, ...]] = ()
    onnx_none = "ONNX Dropout imports as dropout (at inference every dropout is its input's value)"
    tools_checked = True
    count_rules = RANDOM_ZEROING_RULES

    torch_modules = ("Dropout1d", "Dropout2d", "Dropout3d")
    torch_functions = ("dropout1d", "dropout2d", "dropout3d")

    def output_shape(self, ins, ctx):
        require_spatial(self.kind, ins[0])
        return ins[0]

    def saved(self, ins, out, trainable, device):
        if self.p == 0:
            return []
        return [Saved("new", ins[0][0])]  # one scaled noise value per channel and sample, on CPU and CUDA alike

    def build(self, ins, out):
        import torch.nn as nn

        cls = {2: nn.Dropout1d, 3: nn.Dropout2d, 4: nn.Dropout3d}[len(ins[0])]
        return cls(p=self.p, inplace=self.inplace)


@register("stochastic_depth")
class StochasticDepth(Dropout):
    """Drops a whole residual branch per sample while training (torchvision's StochasticDepth, timm's DropPath);
    the identity at inference."""
    batch_anywhere = False  # per channel, or per sample: the batch in front
    onnx_ops: ClassVar[tuple[str, ...]] = ()
    onnx_none = "ONNX Dropout imports as dropout (at inference every dropout is its input's value)"
    tools_checked = True
    count_rules = RANDOM_ZEROING_RULES

    params = {"p": Param("probability", 0.5, doc="probability of dropping the branch"),
              "mode": Param("choice", "row", choices=("row", "batch"),
                            doc="row: per sample; batch: one draw for the whole batch")}
    inplace = False
    torch_modules = ("torchvision.ops.StochasticDepth", "cnnsize.layers.nn.modules.StochasticDepth")
    torch_functions = ("stochastic_depth",)

    @classmethod
    def from_torch(cls, call):
        m = call.module
        p, mode = (m.p, m.mode) if m is not None else (call.arg(1, "p"), call.arg(2, "mode", "row"))
        return {"p": float(p), "mode": mode}

    @property
    def materializes_training(self) -> bool:
        return self.p != 0  # p = 0 (the first block of a linear schedule) is the identity in training too

    def saved(self, ins, out, trainable, device):
        if self.p == 0:
            return []
        return [Saved("new", 1, per_sample=self.mode == "row")]  # the scaled noise, one value per sample

    def build(self, ins, out):
        from .nn.modules import StochasticDepth as Module

        return Module(self.p, self.mode)


@register("relu6")
class ReLU6(_Elementwise):
    """min(max(0, x), 6), as MobileNet uses it."""
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "ptflops": "out",
        "torchscan-flops": "2*inp",
        "torchscan-dmas": "inp + (1 - inplace)*out",
    }

    torch_name = "ReLU6"
    saves = "input"
    torch_modules = ("ReLU6", "Hardtanh")
    torch_functions = ("relu6", "hardtanh", "hardtanh_")
    onnx_ops = ("Clip",)

    @classmethod
    def from_onnx(cls, call):  # Clip(x, min, max): inputs from opset 11, attributes before
        if call.opset >= 11:
            low, high = call.arg(1), call.arg(2)
            low = None if low is None else low.scalar
            high = None if high is None else high.scalar
        else:
            low, high = call.attr("min"), call.attr("max")
        if (low, high) != (0.0, 6.0):
            raise call.refuse(f"Clip({low}, {high}) (only Clip(0, 6), relu6, is a layer)")
        return {}

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if call.function in ("hardtanh", "hardtanh_", "Hardtanh"):
            low, high = (m.min_val, m.max_val) if m is not None else (call.arg(1, "min_val", -1.0),
                                                                      call.arg(2, "max_val", 1.0))
            if (low, high) != (0.0, 6.0):
                raise call.refuse(f"hardtanh({low}, {high}) (only hardtanh(0, 6), relu6, is a layer)")
            return {"inplace": call.inplace or bool(call.arg(3, "inplace", False))}
        return super().from_torch(call)


@register("hardswish")
class Hardswish(_Elementwise):
    """x · relu6(x + 3) / 6 (MobileNetV3)."""
    tools_checked = True

    torch_name = "Hardswish"
    saves = "input"
    torch_modules = ("Hardswish",)
    torch_functions = ("hardswish", "hardswish_")
    onnx_ops = ("HardSwish",)


@register("hardsigmoid")
class Hardsigmoid(_Elementwise):
    """relu6(x + 3) / 6 (MobileNetV3's squeeze-and-excitation gate)."""
    tools_checked = True

    torch_name = "Hardsigmoid"
    saves = "input"
    torch_modules = ("Hardsigmoid",)
    torch_functions = ("hardsigmoid", "hardsigmoid_")
    onnx_ops = ("HardSigmoid",)

    @classmethod
    def from_onnx(cls, call):
        alpha, beta = call.attr("alpha", 0.2), call.attr("beta", 0.5)
        if abs(alpha - 1 / 6) > 1e-6 or beta != 0.5:
            raise call.refuse(f"HardSigmoid(alpha={alpha}, beta={beta}) (only alpha 1/6 and beta 1/2, torch's, is "
                              "a layer)")
        return {}


@register("silu")
class SiLU(_Elementwise):
    """x · sigmoid(x), also called swish (EfficientNet)."""
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "ptflops": "inp",
    }

    torch_name = "SiLU"
    saves = "input"
    torch_modules = ("SiLU",)
    torch_functions = ("silu", "silu_")
    onnx_ops = ("Mul",)

    @classmethod
    def from_onnx(cls, call):  # x · Sigmoid(x), as both torch exporters write SiLU
        if len(call.computed) != 2:
            return None
        a, b = call.computed
        for x, s in ((a, b), (b, a)):
            gate = s.producer
            if gate is not None and gate.op == "Sigmoid" and gate.computed and gate.computed[0].name == x.name:
                return call.fuse({}, [x], [gate])
        return None


@register("gelu")
class GELU(_Elementwise):
    """x · Φ(x) (ConvNeXt); ``approximate: tanh`` for the tanh form."""
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "ptflops": "2*inp",
    }

    torch_name = "GELU"
    saves = "input"
    params = {"approximate": Param("choice", "none", choices=("none", "tanh"))}
    torch_modules = ("GELU",)
    torch_functions = ("gelu",)
    onnx_ops = ("Gelu", "Mul")

    @classmethod
    def from_onnx(cls, call):
        if call.op == "Gelu":
            return {"approximate": call.attr("approximate", "none")}
        return gelu_pattern(call)


_GELU_OPS = ("Mul", "Div", "Add", "Pow", "Erf", "Tanh", "Sqrt")


def gelu_pattern(call):
    """A GELU written out by an exporter, ending in this Mul: x·½·(1 + erf(x/√2)), or the tanh form
    x·½·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (x³ a Pow or two Muls), every other operand a constant. x is the
    nearest value the nodes between read more than once; those nodes are taken along."""
    group, todo = [], [call]
    while todo and len(group) < 16:  # the nodes feeding the Mul through the GELU's operators, nearest first
        c = todo.pop(0)
        if any(c is g for g in group):
            continue
        group.append(c)
        todo += [a.producer for a in c.computed if a.producer is not None and a.producer.op in _GELU_OPS]
    ops = {c.op for c in group}
    approximate = "none" if "Erf" in ops else "tanh" if "Tanh" in ops else None
    if approximate is None:
        return None
    candidates: list = []
    for c in group:
        candidates += [a for a in c.computed if all(a.name != b.name for b in candidates)]
    for x in candidates:
        kept = _gelu_group(call, x)
        if kept is None or not {"Erf", "Tanh"} & {c.op for c in kept} or len(kept) < 4:
            continue
        if sum(a.name == x.name for c in kept for a in c.computed) >= 2:
            return call.fuse({"approximate": approximate}, [x], [c for c in kept if c is not call])
    return None


def _gelu_group(call, x) -> list | None:
    """The nodes from this Mul back to x through the GELU's operators, or None if another tensor feeds them."""
    kept: list = []
    todo = [call]
    while todo:
        c = todo.pop()
        if any(c is k for k in kept):
            continue
        kept.append(c)
        if len(kept) > 16:
            return None
        for a in c.computed:
            if a.name == x.name:
                continue
            p = a.producer
            if p is None or p.op not in _GELU_OPS:
                return None
            todo.append(p)
    return kept


@register("identity")
class Identity(_Elementwise):
    """Passes its input through unchanged (a placeholder, e.g. stochastic depth at inference): a view."""
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "torchscan-dmas": "inp",
    }
    makes = VIEW

    cause = "views"
    torch_name = "Identity"
    params = {}
    torch_modules = ("Identity",)
    torch_functions = ("detach", "clone", "float", "to", "type_as")
    onnx_ops = ("Identity", "Gather")

    @classmethod
    def from_onnx(cls, call):
        if call.op == "Identity":
            return PASS_THROUGH
        # Gather(Reshape(x, [-1]), indices) with the indices 0, 1, 2, ... in x's shape: the dynamo exporter's
        # as_strided of a tensor already in that layout, the identity
        flat, index = call.computed[0] if call.computed else None, call.arg(1)
        reshape = flat.producer if flat is not None else None
        if reshape is None or reshape.op != "Reshape" or len(flat.shape) != 1 or index is None or \
                index.value is None or call.attr("axis", 0) != 0 or not reshape.computed:
            return None
        x = reshape.computed[0]
        values = index.value
        while values and isinstance(values[0], list):
            values = [v for row in values for v in row]
        if tuple(call.output) != tuple(x.shape) or values != list(range(prod(x.shape))):
            return None
        return call.fuse(PASS_THROUGH, [x], [reshape])

    @classmethod
    def from_torch(cls, call):
        if call.module is None and call.function in ("to", "type_as") and not call.dtype_kept:
            raise call.refuse(f".{call.function}() to another dtype (cnnsize sizes a network in one dtype: "
                              "--dtype gives it)")
        return {} if call.module is not None else PASS_THROUGH  # x.to(its own dtype) is x itself

    def saved(self, ins, out, trainable, device):
        return []

