"""``opaque``: an operation no kind stands for, kept by ``from_torch(..., opaque=True)`` with what torch measured.

It carries the output shape, the parameters and buffers of the module it was, and the multiply-adds torch's
FlopCounterMode counted for that call at import, so the totals stay whole; every report names its kind,
``opaque``, and the executor refuses to build it (there is nothing to build it from).
"""

from __future__ import annotations

from ..core.errors import CnnsizeError, SpecError
from .base import VIEW, Counts, LayerKind, Param, register


@register("opaque")
class Opaque(LayerKind):
    """What torch measured for an operation cnnsize cannot represent: output shape, parameters, buffers, MACs."""
    onnx_none = "the importers write it for an operator no kind represents (--opaque); no operator maps to it"
    measured = True  # only what torch measured at import: no tool's module to count

    params = {"op": Param("str", doc="the torch operation it stands for, as the importer named it"),
              "shape": Param("ints", doc="the output shape per sample, as torch computed it"),
              "weights": Param("count", 0, doc="parameters of the module, as torch counts them"),
              "buffers": Param("count", 0, doc="buffers of the module"),
              "macs": Param("count", 0, doc="multiply-adds per sample: FlopCounterMode's count / 2"),
              "frozen": Param("count", 0, doc="of the weights, those frozen in the module (requires_grad False) "
                                              "while the others train")}
    min_inputs = 1
    max_inputs = 64

    def output_shape(self, ins, ctx):
        if self.frozen > self.weights:
            raise SpecError(f"opaque: frozen {self.frozen} is more than its {self.weights} weights",
                            hint="frozen counts the weights that do not train")
        return tuple(self.shape) if isinstance(self.shape, tuple) else (self.shape,)

    def counts(self, ins, out):
        return Counts(weights=self.weights, buffers=self.buffers, macs=self.macs, connections=self.macs,
                      frozen=self.frozen)

    def receptive(self, rfs, ins, out):
        return None  # unknown: the field stops here

    def backward_macs(self, ins, out, batch, grads, trains):
        """Unknown (None) where it does products: torch measured its forward only."""
        return (None, None) if self.macs else (0, 0)

    def summary(self) -> str:
        return f"opaque: {self.op}"

    def build(self, ins, out):
        raise CnnsizeError(f"layer kind 'opaque' ({self.op}) holds only the figures torch measured at import; "
                           "it cannot be built, run or validated",
                           hint="import without --opaque to see why the operation is not representable, or "
                                "replace it in the spec with layers cnnsize has")



@register("unused")
class Unused(LayerKind):
    """Parameters and buffers a model holds that its forward never calls (unused aux heads, a ModuleDict's other
    choices): they count in params and memory, as torch and the tools that list a module's parameters count
    them, and do nothing else (no MACs, no activations). The layer passes its input on untouched (a view), so
    it can sit anywhere; from_torch writes them first, reading the input."""
    onnx_none = "parameters no forward uses: an ONNX file holds only what its graph computes"
    tools_checked = True

    params = {"module": Param("str", "", doc="the torch module that holds them, as the importer named it"),
              "weights": Param("count", 0, doc="parameters never used by the forward"),
              "buffers": Param("count", 0, doc="buffers never used by the forward")}
    cause = "views"
    makes = VIEW
    learns = False
    called = False

    def counts(self, ins, out):
        return Counts(weights=self.weights, buffers=self.buffers)

    def summary(self) -> str:
        return f"never called: {self.module}" if self.module else "never called"

    def saved(self, ins, out, trainable, device):
        return []

    def build(self, ins, out):
        return _unused_module()(self.weights, self.buffers)


_UNUSED_MODULE: list = []


def _unused_module():
    """The torch module of an ``unused`` layer (made once, when torch is there): it holds the parameters and
    buffers and returns its input."""
    if not _UNUSED_MODULE:
        import torch
        from torch import nn

        class UnusedParameters(nn.Module):
            def __init__(self, weights: int, buffers: int):
                super().__init__()
                self.weight = nn.Parameter(torch.zeros(weights)) if weights else None
                self.register_buffer("held", torch.zeros(buffers) if buffers else None)

            def forward(self, x):
                return x

        _UNUSED_MODULE.append(UnusedParameters)
    return _UNUSED_MODULE[0]
