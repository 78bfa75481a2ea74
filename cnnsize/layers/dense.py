"""Fully connected layers and flattening."""

from __future__ import annotations

from ..calc import fc_params
from ..numeric import factor_text, fmt_num, prod
from .base import Counts, LayerKind, Param, Saved, TensorArg, register


@register("fc")
class FC(LayerKind):
    """Fully connected (linear) layer; flattens a spatial input first, as the slides' FC layers do."""

    weight_layer = True
    params = {"units": Param("int", doc="output units"), "bias": Param("bool", True)}
    torch_modules = ("Linear", "cnnsize.executor.modules.FlattenLinear")
    torch_functions = ("linear",)

    @classmethod
    def from_torch(cls, call):
        flattens = type(call.module).__name__ == "FlattenLinear"
        if call.rank != 2 and not flattens:
            raise call.refuse(f"{'nn.Linear' if call.module is not None else call.function} on a rank-{call.rank} "
                              "tensor (it acts on the last axis only; flatten first)")
        if call.module is not None:
            return {"units": call.module.out_features, "bias": call.module.bias is not None}
        from .conv import weight_of

        return {"units": weight_of(call, 1, call.function).shape[0],
                "bias": isinstance(call.arg(2, "bias"), TensorArg)}

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

    params = {}
    torch_modules = ("Flatten",)
    torch_functions = ("flatten", "view", "reshape")

    @classmethod
    def from_torch(cls, call):
        if call.function in ("view", "reshape"):
            out = call.output
            if len(out) == 2 and out[0] == call.inputs[0][0]:
                return {}
            raise call.refuse(f"{call.function} to {list(out)} (only a flatten to (N, features) is a layer)")
        m = call.module
        start, end = (m.start_dim, m.end_dim) if m is not None else (call.arg(1, "start_dim", 0),
                                                                     call.arg(2, "end_dim", -1))
        if start != 1 or end % call.rank != call.rank - 1:
            what = f"nn.Flatten({start}, {end})" if m is not None else f"flatten({start}, {end})"
            raise call.refuse(f"{what} (only flatten(x, 1) keeps the batch)")
        return {}

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
