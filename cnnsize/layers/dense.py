"""Fully connected layers and flattening."""

from __future__ import annotations

from ..calc import fc_params
from ..errors import SpecError
from ..numeric import factor_text, fmt_num, prod
from .base import Counts, LayerKind, Param, Saved, TensorArg, register


@register("fc")
class FC(LayerKind):
    """Fully connected (linear) layer; flattens a spatial input first, as the slides' FC layers do."""

    cause = "macs"
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
    """Reshape (C, H, W) to (C·H·W,), or merge the per-sample axes ``start`` to ``end`` only ((C, H, W) → (C, H·W)
    with start 1): a view, so it materializes nothing."""

    cause = "views"
    params = {"start": Param("count", 0, doc="first per-sample axis merged, from 0"),
              "end": Param("count", None, doc="last per-sample axis merged (the last axis)")}
    torch_modules = ("Flatten",)
    torch_functions = ("flatten", "view", "reshape")

    @classmethod
    def from_torch(cls, call):
        if call.function in ("view", "reshape"):
            out = call.output
            if len(out) == 2 and out[0] == call.inputs[0][0]:
                return [("contiguous", {}), ("flatten", {})] if call.view is False else {}  # torch copied
            return None  # another shape: the reshape kind's
        m = call.module
        start, end = (m.start_dim, m.end_dim) if m is not None else (call.arg(1, "start_dim", 0),
                                                                     call.arg(2, "end_dim", -1))
        start, end = start % call.rank, end % call.rank
        if start == 0:
            what = f"nn.Flatten({start}, {end})" if m is not None else f"flatten({start}, {end})"
            raise call.refuse(f"{what} (it merges the batch axis; cnnsize's axes are per sample)")
        settings = {} if end == call.rank - 1 and start == 1 else {"start": start - 1, "end": end - 1}
        return [("contiguous", {}), ("flatten", settings)] if call.view is False and m is None else settings

    @property
    def materializes(self) -> bool:
        return False

    def span(self, x) -> tuple[int, int]:
        end = len(x) - 1 if self.end is None else self.end
        if not self.start <= end < len(x):
            raise SpecError(f"flatten start {self.start} and end {end} must satisfy start <= end <= {len(x) - 1} "
                            f"for the input {list(x)}", hint="count the per-sample axes from 0 (the batch is not one)")
        return self.start, end

    def output_shape(self, ins, ctx):
        a, b = self.span(ins[0])
        x = ins[0]
        return (*x[:a], prod(x[a:b + 1]), *x[b + 1:])

    def receptive(self, rfs, ins, out):
        return None

    def build(self, ins, out):
        import torch.nn as nn

        a, b = self.span(ins[0])
        return nn.Flatten(a + 1, b + 1)
