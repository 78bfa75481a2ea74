"""Elementwise layers: activations, dropout and identity. No parameters, no connections, no MACs."""

from __future__ import annotations

from .base import PASS_THROUGH, LayerKind, Param, Saved, register

INPLACE = Param("bool", False, doc="overwrite the input instead of making a new tensor")


class _Elementwise(LayerKind):
    torch_name = ""
    params = {"inplace": INPLACE}
    saves = "output"  # relu, sigmoid, tanh and softmax differentiate through their result
    inplace_keeps_result = False  # in place, torch differentiates through the result (no copy needed)
    inplace_position = 1  # where the functional form takes ``inplace`` (F.relu(x, True))

    @classmethod
    def from_torch(cls, call):
        settings = super().from_torch(call)
        if "inplace" in cls.params and call.module is None:
            settings["inplace"] = call.inplace or bool(call.arg(cls.inplace_position, "inplace", False))
        return settings

    def saved(self, ins, out, trainable, device):
        if self.saves == "input" and getattr(self, "inplace", False) and not self.inplace_keeps_result:
            from ..numeric import prod

            return [Saved("new", prod(ins[0]))]  # autograd keeps a copy of the input the op overwrites
        return [Saved(self.saves)]

    def build(self, ins, out):
        import torch.nn as nn

        kwargs = {k: getattr(self, k) for k in self.params}
        return getattr(nn, self.torch_name)(**kwargs)


@register("relu")
class ReLU(_Elementwise):
    """max(0, x)."""

    torch_name = "ReLU"
    torch_modules = ("ReLU",)
    torch_functions = ("relu", "relu_")


@register("leaky_relu")
class LeakyReLU(_Elementwise):
    """max(slope·x, x)."""

    torch_name = "LeakyReLU"
    saves = "input"
    inplace_keeps_result = True
    params = {"negative_slope": Param("float", 0.01), "inplace": INPLACE}
    torch_modules = ("LeakyReLU",)
    torch_functions = ("leaky_relu", "leaky_relu_")
    inplace_position = 2

    @classmethod
    def from_torch(cls, call):
        settings = super().from_torch(call)
        if call.module is None:
            settings["negative_slope"] = float(call.arg(1, "negative_slope", 0.01))
        return settings


@register("sigmoid")
class Sigmoid(_Elementwise):
    """1 / (1 + e^-x)."""

    torch_name = "Sigmoid"
    params = {}
    torch_modules = ("Sigmoid",)
    torch_functions = ("sigmoid",)


@register("tanh")
class Tanh(_Elementwise):
    """Hyperbolic tangent."""

    torch_name = "Tanh"
    params = {}
    torch_modules = ("Tanh",)
    torch_functions = ("tanh",)


@register("softmax")
class Softmax(_Elementwise):
    """Softmax over the channels (class scores)."""

    torch_name = "Softmax"
    params = {}
    torch_modules = ("Softmax",)
    torch_functions = ("softmax",)

    @classmethod
    def from_torch(cls, call):
        dim = call.module.dim if call.module is not None else call.arg(1, "dim")
        if dim is None or dim % call.rank != 1:
            raise call.refuse(f"softmax over dim {dim} (cnnsize's softmax is over the channels, dim 1)")
        return {}

    def build(self, ins, out):
        import torch.nn as nn

        return nn.Softmax(dim=1)


@register("dropout")
class Dropout(_Elementwise):
    """Zeroes units at random while training; the identity at inference, so it materializes nothing there."""

    params = {"p": Param("float", 0.5, doc="probability of zeroing a unit"), "inplace": INPLACE}
    torch_modules = ("Dropout",)
    torch_functions = ("dropout",)
    inplace_position = 3

    @classmethod
    def from_torch(cls, call):
        settings = super().from_torch(call)
        if call.module is None:
            settings["p"] = float(call.arg(1, "p", 0.5))
        return settings

    @property
    def materializes(self) -> bool:
        return False

    @property
    def materializes_training(self) -> bool:
        return not self.inplace

    def saved(self, ins, out, trainable, device):
        from ..numeric import prod

        # CUDA's fused kernel keeps a bool mask; the CPU path multiplies by a scaled noise tensor of the input's dtype
        return [Saved("new", prod(out), itemsize=1 if device == "cuda" else None)]

    def build(self, ins, out):
        import torch.nn as nn

        return nn.Dropout(p=self.p, inplace=self.inplace)


@register("relu6")
class ReLU6(_Elementwise):
    """min(max(0, x), 6), as MobileNet uses it."""

    torch_name = "ReLU6"
    saves = "input"
    torch_modules = ("ReLU6", "Hardtanh")
    torch_functions = ("relu6", "hardtanh", "hardtanh_")

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

    torch_name = "Hardswish"
    saves = "input"
    torch_modules = ("Hardswish",)
    torch_functions = ("hardswish", "hardswish_")


@register("hardsigmoid")
class Hardsigmoid(_Elementwise):
    """relu6(x + 3) / 6 (MobileNetV3's squeeze-and-excitation gate)."""

    torch_name = "Hardsigmoid"
    saves = "input"
    torch_modules = ("Hardsigmoid",)
    torch_functions = ("hardsigmoid", "hardsigmoid_")


@register("silu")
class SiLU(_Elementwise):
    """x · sigmoid(x), also called swish (EfficientNet)."""

    torch_name = "SiLU"
    saves = "input"
    torch_modules = ("SiLU",)
    torch_functions = ("silu", "silu_")


@register("gelu")
class GELU(_Elementwise):
    """x · Φ(x) (ConvNeXt); ``approximate: tanh`` for the tanh form."""

    torch_name = "GELU"
    saves = "input"
    params = {"approximate": Param("choice", "none", choices=("none", "tanh"))}
    torch_modules = ("GELU",)
    torch_functions = ("gelu",)


@register("identity")
class Identity(_Elementwise):
    """Passes its input through unchanged (a placeholder, e.g. stochastic depth at inference): a view."""

    torch_name = "Identity"
    params = {}
    torch_modules = ("Identity",)
    torch_functions = ("contiguous", "detach", "clone", "float")

    @classmethod
    def from_torch(cls, call):
        return {} if call.module is not None else PASS_THROUGH

    def saved(self, ins, out, trainable, device):
        return []

    @property
    def materializes(self) -> bool:
        return False
