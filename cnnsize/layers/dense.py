"""Fully connected layers and flattening."""

from __future__ import annotations

from ..calc import fc_params
from ..numeric import factor_text, fmt_num, prod
from .base import Counts, LayerKind, Param, Saved, register


@register("fc")
class FC(LayerKind):
    """Fully connected (linear) layer; flattens a spatial input first, as the slides' FC layers do."""

    cause = "macs"
    weight_layer = True
    params = {"units": Param("int", doc="output units"), "bias": Param("bool", True)}

    def output_shape(self, ins, ctx):
        return (self.units,)

    def counts(self, ins, out):
        fan_in = prod(ins[0])
        return Counts(weights=fan_in * self.units, biases=self.units if self.bias else 0,
                      connections=fan_in * self.units, macs=fan_in * self.units)

    def explain(self, ins, out, ctx):
        steps = []
        fan_in = prod(ins[0])
        if len(ins[0]) > 1:
            steps.append(f"inputs: {'·'.join(factor_text(v) for v in ins[0])} = {fmt_num(fan_in)}")
        steps.append(f"params: {fc_params(fan_in, self.units, self.bias, explain=True).steps[0]}")
        total = fmt_num(fan_in * self.units)
        steps.append(f"connections = MACs: {factor_text(fan_in)}·{factor_text(self.units)} = {total}")
        return steps

    def receptive(self, rfs, ins, out):
        return None

    def saved(self, ins, out, trainable, device):
        return [Saved("input")] if trainable else []  # the matmul keeps its input only for the weight's grad

    def build(self, ins, out):
        from ..executor.modules import FlattenLinear

        return FlattenLinear(prod(ins[0]), self.units, bias=self.bias)


@register("flatten")
class Flatten(LayerKind):
    """Reshape (C, H, W) to (C·H·W,): a view, so it materializes nothing."""

    cause = "views"
    params = {}

    @property
    def materializes(self) -> bool:
        return False

    def output_shape(self, ins, ctx):
        return (prod(ins[0]),)

    def receptive(self, rfs, ins, out):
        return None

    def build(self, ins, out):
        import torch.nn as nn

        return nn.Flatten()
