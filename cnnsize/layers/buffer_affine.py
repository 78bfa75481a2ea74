"""buffer_affine: ``x · a + b`` with ``a`` and ``b`` buffers the module holds (not learned), under the names the model
gives them: a calibration applied at inference, such as YOLO26's Depth head's ``exp(cal_a · log d + cal_b)``
(cnnsize.importers.yolo). No other kind multiplies and adds by held tensors that a state dict loads."""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from ..core.numeric import Dim, is_int, prod
from .base import PROMOTE, Counts, LayerKind, Param, Shape, register


@register("buffer_affine")
class BufferAffine(LayerKind):
    """``x · a + b`` with ``a`` and ``b`` buffers of ``shape`` (held, not learned; aligned with the input's last axes
    and broadcast as torch broadcasts), named in the module ``scale`` and ``shift`` (YOLO26's Depth head's
    ``cal_a`` and ``cal_b``): torch makes the product, then the sum; the product is scratch."""
    tools_checked = True  # its example runs through every tool (tests/test_conventions_zoo.py)
    onnx_none = "not mapped: an ONNX export holds the buffers as constants of a Mul and an Add"
    autocast = {"cpu": PROMOTE, "cuda": PROMOTE}  # float32 buffers: a 16-bit input is promoted
    learns = False
    cause = "elementwise"
    params = {"shape": Param("size", 1, doc="the buffers' shape, aligned with the input's last axes"),
              "scale": Param("str", "scale", doc="the multiplier's name in the module (its state dict key)"),
              "shift": Param("str", "shift", doc="the addend's name in the module (its state dict key)")}
    examples: ClassVar[dict] = {
        "buffer_affine": ([1, 4, 6], [{"conv": {"filters": 1, "kernel": 1}}, {"buffer_affine": {}}]),
    }

    def _shape(self) -> tuple:
        return self.shape if isinstance(self.shape, tuple) else (self.shape,)

    def output_shape(self, ins, ctx):
        x, shape = ins[0], self._shape()
        if len(shape) > len(x) or any(is_int(a) and is_int(b) and a not in (1, b) for a, b in zip(shape[::-1],
                                                                                                 x[::-1])):
            raise SpecError(f"buffer_affine of shape {list(shape)} does not broadcast to the input {list(x)}",
                            hint="each axis of the buffers is 1 or the input's, aligned with the input's last axes")
        if not self.scale.isidentifier() or not self.shift.isidentifier() or self.scale == self.shift:
            raise SpecError(f"buffer_affine's buffer names must be two different identifiers, got "
                            f"'{self.scale}' and '{self.shift}'")
        return x

    def counts(self, ins, out):
        return Counts(buffers=2 * prod(self._shape()), connections=2 * prod(out))

    def scratch(self, ins: list[Shape], out: Shape, batch: Dim) -> Dim:
        """The product x · a, which the sum reads."""
        return prod(out) * batch

    def transient(self, ins: list[Shape], out: Shape, batch: Dim, training: bool) -> Dim:
        """The product, alive while the sum is made."""
        return prod(out) * batch

    def receptive(self, rfs, ins, out):
        return rfs[0]

    def build(self, ins, out):
        return _module()(self._shape(), self.scale, self.shift)


_MODULE: list = []


def _module():
    """The torch module of a ``buffer_affine`` layer (made once, when torch is there)."""
    if not _MODULE:
        import torch
        from torch import nn

        class BufferAffine(nn.Module):
            def __init__(self, shape: tuple, scale: str, shift: str):
                super().__init__()
                self.names = (scale, shift)
                self.register_buffer(scale, torch.ones(shape))
                self.register_buffer(shift, torch.zeros(shape))

            def forward(self, x):
                return getattr(self, self.names[0]) * x + getattr(self, self.names[1])

        _MODULE.append(BufferAffine)
    return _MODULE[0]


__all__ = ["BufferAffine"]
