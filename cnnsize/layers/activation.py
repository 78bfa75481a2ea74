"""Elementwise layers: activations, dropout and identity. No parameters, no connections, no MACs."""

from __future__ import annotations

from .base import LayerKind, Param, Saved, register

INPLACE = Param("bool", False, doc="overwrite the input instead of making a new tensor")


class _Elementwise(LayerKind):
    cause = "activations"
    torch_name = ""
    params = {"inplace": INPLACE}
    saves = "output"  # relu, sigmoid, tanh and softmax differentiate through their result
    inplace_keeps_result = False  # in place, torch differentiates through the result (no copy needed)

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


@register("leaky_relu")
class LeakyReLU(_Elementwise):
    """max(slope·x, x)."""

    torch_name = "LeakyReLU"
    saves = "input"
    inplace_keeps_result = True
    params = {"negative_slope": Param("float", 0.01), "inplace": INPLACE}


@register("sigmoid")
class Sigmoid(_Elementwise):
    """1 / (1 + e^-x)."""

    torch_name = "Sigmoid"
    params = {}


@register("tanh")
class Tanh(_Elementwise):
    """Hyperbolic tangent."""

    torch_name = "Tanh"
    params = {}


@register("softmax")
class Softmax(_Elementwise):
    """Softmax over the channels (class scores)."""

    cause = "softmax"
    torch_name = "Softmax"
    params = {}

    def build(self, ins, out):
        import torch.nn as nn

        return nn.Softmax(dim=1)


@register("dropout")
class Dropout(_Elementwise):
    """Zeroes units at random while training; the identity at inference, so it materializes nothing there."""

    cause = "dropout"
    params = {"p": Param("float", 0.5, doc="probability of zeroing a unit"), "inplace": INPLACE}

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


@register("hardswish")
class Hardswish(_Elementwise):
    """x · relu6(x + 3) / 6 (MobileNetV3)."""

    torch_name = "Hardswish"
    saves = "input"


@register("hardsigmoid")
class Hardsigmoid(_Elementwise):
    """relu6(x + 3) / 6 (MobileNetV3's squeeze-and-excitation gate)."""

    torch_name = "Hardsigmoid"
    saves = "input"


@register("silu")
class SiLU(_Elementwise):
    """x · sigmoid(x), also called swish (EfficientNet)."""

    torch_name = "SiLU"
    saves = "input"


@register("gelu")
class GELU(_Elementwise):
    """x · Φ(x) (ConvNeXt); ``approximate: tanh`` for the tanh form."""

    torch_name = "GELU"
    saves = "input"
    params = {"approximate": Param("choice", "none", choices=("none", "tanh"))}


@register("identity")
class Identity(_Elementwise):
    """Passes its input through unchanged (a placeholder, e.g. stochastic depth at inference): a view."""

    cause = "views"
    torch_name = "Identity"
    params = {}

    def saved(self, ins, out, trainable, device):
        return []

    @property
    def materializes(self) -> bool:
        return False
