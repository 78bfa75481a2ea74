"""Fully connected layers and flattening."""

from __future__ import annotations

from ..calc import fc_params
from ..core.errors import SpecError
from ..core.numeric import factor_text, fmt_num, prod
from .base import LOWER, VIEW, Counts, LayerKind, Param, Saved, TensorArg, register
from .conv import WEIGHT_RULES, weight_of


def matmul_weight(call):
    """(units, bias) of a node computing x·W (+ b) with W a weight: Gemm, MatMul, or the Add of a bias to a
    MatMul's result (which takes the MatMul along: ``("Add", matmul_call)``); None for another node."""
    if call.op == "Gemm":
        if call.attr("transA", 0) or call.attr("alpha", 1.0) != 1.0 or call.attr("beta", 1.0) != 1.0:
            raise call.refuse("Gemm with transA, alpha or beta (only x·Wᵀ + b is a layer)")
        w = call.weight(1)
        if w is None or len(call.computed) != 1:
            return None
        units = w[0] if call.attr("transB", 0) else w[1]
        c = call.weight(2)
        if c is not None and tuple(c) not in ((units,), (1, units)):
            raise call.refuse(f"Gemm with a bias of shape {list(c)} (a layer's bias has one value per unit)")
        return units, call.has_bias(2), None
    if call.op == "MatMul":
        w = call.weight(1)
        if w is None or len(w) != 2 or len(call.computed) != 1:
            return None
        return w[1], False, None
    if call.op == "Add" and len(call.computed) == 1:
        x = call.computed[0]
        b = next((a for a in call.args if a is not None and a.constant), None)
        m = x.producer
        if m is None or m.op != "MatMul" or b is None or not b.learned or not call.used_once(x):
            return None
        w = m.weight(1)
        if w is None or len(w) != 2 or len(m.computed) != 1 or tuple(b.shape) != (w[1],):
            return None
        return w[1], True, m
    return None


@register("fc")
class FC(LayerKind):
    """Fully connected (linear) layer; flattens a spatial input first, as the slides' FC layers do."""
    autocast = {"cpu": LOWER, "cuda": LOWER}  # in autocast's 16-bit list on both devices
    tools_checked = True
    count_rules = {**WEIGHT_RULES, "torchscan-dmas": "inp + params + out"}

    cause = "macs"
    weight_layer = True
    params = {"units": Param("int", doc="output units"), "bias": Param("bool", True)}
    torch_modules = ("Linear", "cnnsize.layers.nn.modules.FlattenLinear")
    torch_functions = ("linear",)
    onnx_ops = ("Gemm", "MatMul", "Add")

    @classmethod
    def from_onnx(cls, call):
        found = matmul_weight(call)
        if found is None:
            return None
        units, bias, matmul = found
        x = matmul.computed[0] if matmul is not None else call.computed[0]
        if len(x.shape) != 2:
            return None  # on more axes: linear's
        settings = {"units": units, "bias": bias}
        return call.fuse(settings, [x], [matmul]) if matmul is not None else settings

    @classmethod
    def from_torch(cls, call):
        flattens = type(call.module).__name__ == "FlattenLinear"
        if call.rank != 2 and not flattens:
            raise call.refuse(f"{'nn.Linear' if call.module is not None else call.function} on a rank-{call.rank} "
                              "tensor (it acts on the last axis only; flatten first)")
        if call.module is not None:
            return {"units": call.module.out_features, "bias": call.module.bias is not None}

        return {"units": weight_of(call, 1, call.function).shape[0],
                "bias": isinstance(call.arg(2, "bias"), TensorArg)}

    def output_shape(self, ins, ctx):
        return (self.units,)

    def counts(self, ins, out):
        fan_in = prod(ins[0])
        return Counts(weights=fan_in * self.units, biases=self.units if self.bias else 0,
                      connections=fan_in * self.units, macs=fan_in * self.units)

    def param_shapes(self, ins, out):  # nn.Linear's (units, fan_in)
        return [(self.units, prod(ins[0])), *([(self.units,)] if self.bias else [])]

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
        from .nn.modules import FlattenLinear

        return FlattenLinear(prod(ins[0]), self.units, bias=self.bias)


@register("flatten")
class Flatten(LayerKind):
    """Reshape (C, H, W) to (C·H·W,), or merge the per-sample axes ``start`` to ``end`` only ((C, H, W) → (C, H·W)
    with start 1): a view, so it materializes nothing."""
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "torchscan-dmas": "2*inp",
    }
    makes = VIEW

    cause = "views"
    params = {"start": Param("count", 0, doc="first per-sample axis merged, from 0"),
              "end": Param("count", None, doc="last per-sample axis merged (the last axis)")}
    torch_modules = ("Flatten",)
    torch_functions = ("flatten", "view", "reshape")
    onnx_ops = ("Flatten", "Reshape")

    @classmethod
    def from_onnx(cls, call):
        x, out = call.inputs[0], call.output
        if call.op == "Reshape":  # the Reshape that flattens: (N, ...) -> (N, features)
            return {} if len(out) == 2 and out[0] == x[0] and len(x) > 2 else None
        axis = call.attr("axis", 1) % max(len(x), 1)
        if axis != 1:
            raise call.refuse(f"Flatten with axis {axis} (it merges the batch axis; cnnsize's axes are per sample)")
        return {}

    @classmethod
    def from_torch(cls, call):
        settings = cls._settings(call)
        known = call.view is not None and call.module is None  # _settings followed torch's own view-or-copy
        if isinstance(settings, dict) and not known and call.contiguous and not call.contiguous[0] \
                and call.out_contiguous:
            return [("contiguous", {}), ("flatten", settings)]  # a strided input (a permute's): torch copies it
        return settings

    @classmethod
    def _settings(cls, call):
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

    def output_axes(self, axes, ins, out):
        if len(out) == 1 or axes is None:
            return ("D",) if len(out) == 1 else None
        a, b = self.span(ins[0])
        return (*axes[:a], "·".join(axes[a:b + 1]), *axes[b + 1:])  # (C, H·W): the merged axes, named

    def receptive(self, rfs, ins, out):
        return None

    def build(self, ins, out):
        import torch.nn as nn

        a, b = self.span(ins[0])
        return nn.Flatten(a + 1, b + 1)
