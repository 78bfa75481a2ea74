"""``const_tensor``: a tensor whose values depend on no input, read by the layers after it as a layer's output: one the
model holds outside its parameters and buffers (YOLO-World's placeholder text features, ``WorldModel.txt_feats``:
a plain tensor attribute the forward reads), or one the forward makes from nothing (YOLOE's class embeddings when
no prompt is given, ``torch.zeros(1, 80, 512)``). Its input is read for nothing but its place in the graph (the
device and the batch). No parameters and no multiply-adds. Either is an activation: a tensor of the forward that
is neither a parameter, a buffer nor the input, in memory while the layers after it read it (torch's storages of a
forward count a held one where it is read through a view, as C2fAttn's Linear reads txt_feats)."""

from __future__ import annotations

from typing import ClassVar

from .base import Counts, LayerKind, Param, register


@register("const_tensor")
class Constant(LayerKind):
    """A tensor of ``shape`` that depends on no input (one per call whatever the batch, which sees it as a view):
    ``held`` by the model outside its parameters and buffers, or made by the forward (``held: false``, torch.zeros).
    ``value`` is every element's value, where the model's is known (zeros); a held tensor's own values (random
    placeholders) are set on the built module (``.value``)."""

    tools_checked = True
    onnx_none = "not mapped: an ONNX export holds such a tensor as an initializer"
    learns = False
    passes_gradient = False
    constant = True  # made from no value: it never requires grad, once per call
    cause = "views"
    params = {"shape": Param("size", doc="the tensor's shape (per sample)"),
              "held": Param("bool", True, doc="held by the model outside its state dict (the built module holds it "
                                              "as .value), or made by each forward (false)"),
              "value": Param("float", 0.0, doc="every element's value in the built module")}
    examples: ClassVar[dict] = {
        "const_tensor_held": ([3, 4, 5], [{"conv": {"filters": 6, "kernel": 1}},
                                      {"flatten": {"start": 1}},
                                      {"const_tensor": {"shape": [7, 6], "from": "input"}},
                                      {"matmul": {"from": ["const_tensor1", "flatten1"]}}]),
        "const_tensor_made": ([3, 4, 5], [{"const_tensor": {"shape": [7, 3], "held": False}},
                                      {"cat": {"axis": 0, "from": ["const_tensor1"]}},
                                      {"linear": {"units": 2}}]),
    }

    def _shape(self) -> tuple:
        return self.shape if isinstance(self.shape, tuple) else (self.shape,)

    def output_shape(self, ins, ctx):
        return self._shape()

    def counts(self, ins, out):
        return Counts()

    def receptive(self, rfs, ins, out):
        return None

    def summary(self) -> str:
        return ("held by the model" if self.held else "made by the forward") + f", {'×'.join(map(str, self._shape()))}"

    def build(self, ins, out):
        from .nn.modules import Constant as Module

        return Module(self._shape(), self.held, float(self.value))


__all__ = ["Constant"]
