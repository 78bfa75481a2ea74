"""``buffer_conv``: a convolution whose filter is a buffer of the model, not a parameter (a fixed filter nothing
trains: timm's BlurPool2d, ``F.conv2d(x, self.filt, stride=2, groups=C)``, the anti-aliasing of TResNet's
downsampling). The products are a convolution's; its filter counts as buffers, and it has no parameters."""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from .base import Counts, Param, TensorArg, register
from .conv import Conv


@register("buffer_conv")
class BufferConv(Conv):
    """``conv`` whose filter is a buffer (a fixed blur filter): the same settings and products, the filter's
    elements counted as buffers, no parameter (and no bias)."""
    weight_layer = False
    tools_checked = True  # its example runs through every tool (tests/test_conventions_zoo.py)
    onnx_none = "not mapped: ONNX holds every weight as an initializer, a buffer and a parameter alike"
    torch_modules: ClassVar[tuple[str, ...]] = ()  # type: ignore[assignment]
    onnx_ops: ClassVar[tuple[str, ...]] = ()  # type: ignore[assignment]
    torch_functions = ("conv1d", "conv2d", "conv3d")
    # the tools that count a convolution by its aten call count this one too; the module hooks see no Conv module
    count_rules: ClassVar[dict] = {"fvcore": "macs", "ptflops-aten": "macs"}
    examples: ClassVar[dict] = {
        "buffer_conv_blur": ([4, 8, 8], [{"conv": {"filters": 4, "kernel": 1}},
                                         {"buffer_conv": {"filters": 4, "kernel": 3, "stride": 2, "groups": 4,
                                                          "bias": False}}]),
    }

    params = {**Conv.params, "bias": Param("bool", False, doc="false: the filter alone is held (a learned filter "
                                                             "or a bias is conv's)")}

    def output_shape(self, ins, ctx):
        if self.bias:
            raise SpecError("buffer_conv holds its filter alone, as a buffer: no bias",
                            hint="bias: false, or conv for a learned filter with a bias")
        return super().output_shape(ins, ctx)

    @classmethod
    def from_torch(cls, call):
        weight = call.arg(1, "weight")
        if call.module is not None or not isinstance(weight, TensorArg) or weight.computed or \
                call.attrs_learned != [False] or call.const_counts[0][0] or isinstance(call.arg(2, "bias"), TensorArg):
            return None  # a parameter as its weight, or computed from one (conv's), or a bias beside the buffer
        return super().from_torch(call)

    def counts(self, ins, out):
        c = Conv.counts(self, ins, out)
        return Counts(buffers=c.weights + c.biases, connections=c.connections, macs=c.macs)

    def param_shapes(self, ins, out):
        return []

    def build(self, ins, out):
        from .nn.buffer_conv import BufferConv as Module

        return Module(Conv.build(self, ins, out))

    @classmethod
    def torch_examples(cls):
        """timm's BlurPool2d as it calls it: a depthwise convolution by a buffer, stride 2."""
        from .nn.buffer_conv import BufferConv as Module

        def make():
            from torch import nn

            return Module(nn.Conv2d(4, 4, 3, stride=2, groups=4, bias=False))

        return {"blur": (make, (4, 8, 8))}


__all__ = ["BufferConv"]
