"""``std_conv``: a convolution whose weight is standardized per filter in every forward and scaled by a learned gain
(weight standardization: timm's ScaledStdConv2d in NFNet, ``F.batch_norm(w.reshape(1, F, -1), None, None,
weight=(gain * scale).view(-1), training=True).reshape_as(w)``, then ``F.conv2d``). Its parameters are the weight,
the bias and one gain per filter; its products a convolution's (FlopCounterMode counts no normalization of the
weight); the scaled gain and the standardized weight are tensors made in every call (scratch)."""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from ..core.numeric import is_int, prod
from .base import Counts, Saved, TensorArg, TorchModule, register
from .conv import Conv


@register("std_conv")
class StdConv(Conv):
    """``conv`` with its weight standardized per filter and scaled by a gain (one per filter), in every forward."""
    tools_checked = True  # its example runs through every tool (tests/test_conventions_zoo.py)
    onnx_none = "not mapped: an exported standardized weight is a computed input of Conv"
    torch_modules: ClassVar[tuple[str, ...]] = ()  # type: ignore[assignment]
    onnx_ops: ClassVar[tuple[str, ...]] = ()  # type: ignore[assignment]
    torch_functions = ("conv1d", "conv2d", "conv3d")
    count_fact_names: ClassVar[dict[str, str]] = {"filter": "the weight's elements, standardized once per call"}
    # fvcore counts the convolution and the standardization's batch_norm (5 per element with a scale: its training
    # form); ptflops' aten counter the convolution and its bias; torchinfo's hooks see no Conv module's own weight
    count_rules: ClassVar[dict] = {"fvcore": "macs + 5*filter", "ptflops-aten": "macs + bias*out", "torchinfo": "0"}
    examples: ClassVar[dict] = {
        "std_conv_nf": ([4, 6, 6], [{"std_conv": {"filters": 5, "kernel": 3, "pad": 1}}, "relu",
                                    {"std_conv": {"filters": 3, "kernel": 1, "bias": False}}]),
    }

    @classmethod
    def from_torch(cls, call):
        weight = call.arg(1, "weight")
        if call.module is not None or not isinstance(weight, TensorArg) or weight.computed or \
                not call.const_counts or call.attrs_learned[:1] != [False]:
            return None
        params, buffers, once, per_sample = call.const_counts[0]
        if (params, buffers, once, per_sample) != (prod(weight.shape) + weight.shape[0], 0, 0, 0):
            return None  # not a weight and one gain per filter
        return super().from_torch(call)

    def output_shape(self, ins, ctx):
        out = super().output_shape(ins, ctx)
        fan = Conv.counts(self, ins, out).weights // self.filters if is_int(self.filters) else None
        if is_int(fan) and fan < 2:
            raise SpecError(f"std_conv standardizes each filter over its {fan} weight: one value has no spread "
                            "(torch's batch_norm refuses it in training)",
                            hint="a kernel or input channels that give each filter 2 weights or more, or conv")
        return out

    def count_facts(self, ins, out, batch):
        return {**Conv.count_facts(self, ins, out, batch), "filter": self.counts(ins, out).weights - self.filters}

    def counts(self, ins, out):
        c = Conv.counts(self, ins, out)
        return Counts(weights=c.weights + self.filters, biases=c.biases, connections=c.connections, macs=c.macs)

    def module_tree(self, ins, out):
        """The module holds the gains; the convolution (weight and bias) is its child."""
        c = Conv.counts(self, ins, out)
        return [TorchModule(self.filters, leaf=False), TorchModule(c.weights + c.biases)]

    def param_shapes(self, ins, out):
        weight, *bias = Conv.param_shapes(self, ins, out)
        return [weight, *bias, (self.filters, *[1] * (len(weight) - 1))]

    def saved(self, ins, out, trainable, device):
        """conv's, and the standardization's: the standardized weight (the convolution's), the gain times the scale,
        and the mean and inverse standard deviation per filter (batch_norm's)."""
        fan = self.counts(ins, out).weights - self.filters
        return [*Conv.saved(self, ins, out, trainable, device), Saved("new", fan, per_sample=False),
                *[Saved("new", self.filters, per_sample=False) for _ in range(3)]]

    def scratch(self, ins, out, batch):
        return self.counts(ins, out).weights  # once per call: the gain times the scale, and the standardized weight

    @classmethod
    def torch_examples(cls):
        """timm's ScaledStdConv2d as it computes: the weight standardized per filter, scaled by its gain."""
        from .nn.std_conv import StdConv as Module

        def make():
            from torch import nn

            return Module(nn.Conv2d(4, 5, 3, padding=1))

        return {"scaled_std": (make, (4, 6, 6))}

    def build(self, ins, out):
        from .nn.std_conv import StdConv as Module

        return Module(Conv.build(self, ins, out))


__all__ = ["StdConv"]
