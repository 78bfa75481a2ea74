"""hardtanh: x clamped to a range (nn.Hardtanh, F.hardtanh, ONNX Clip)."""

from __future__ import annotations

from ..core.errors import SpecError
from .activation import INPLACE, _Elementwise
from .base import Param, register


@register("hardtanh")
class Hardtanh(_Elementwise):
    """min(max(x, min_val), max_val): torch's Hardtanh, a clamp to a range. A clamp to [0, 6] is relu6, the kind of
    its own that the importers write for it."""

    tools_checked = True  # no tool counts nn.Hardtanh (nor F.hardtanh): the nine run its examples
    torch_name = "Hardtanh"
    saves = "input"
    params = {"min_val": Param("float", -1.0, doc="the lower bound"),
              "max_val": Param("float", 1.0, doc="the upper bound, above min_val"), "inplace": INPLACE}
    inplace_position = 3  # F.hardtanh(x, min_val, max_val, inplace)
    torch_modules = ("Hardtanh",)
    torch_functions = ("hardtanh", "hardtanh_")
    onnx_ops = ("Clip",)
    examples = {
        "hardtanh": ([3, 4, 4], [{"hardtanh": {"min_val": -0.5, "max_val": 2.0}}, "hardtanh"]),
        "hardtanh_inplace": ([3, 4, 4], [{"conv": {"filters": 3, "kernel": 1}}, {"hardtanh": {"inplace": True}},
                                         {"conv": {"filters": 3, "kernel": 1}}]),
    }

    def output_shape(self, ins, ctx):
        if not self.min_val < self.max_val:
            raise SpecError(f"hardtanh's min_val ({self.min_val}) must be below its max_val ({self.max_val})",
                            hint="torch's Hardtanh takes max_val > min_val")
        return ins[0]

    @classmethod
    def from_torch(cls, call):
        settings = super().from_torch(call)
        if call.module is None:
            settings["min_val"] = float(call.arg(1, "min_val", -1.0))
            settings["max_val"] = float(call.arg(2, "max_val", 1.0))
        return settings

    @classmethod
    def from_onnx(cls, call):  # Clip(x, min, max): the bounds are inputs from opset 11, attributes before
        if call.opset >= 11:
            low, high = (None if a is None else a.scalar for a in (call.arg(1), call.arg(2)))
        else:
            low, high = call.attr("min"), call.attr("max")
        if low is None or high is None:
            raise call.refuse("Clip with one bound or a computed bound (hardtanh clamps to two constants)")
        return {"min_val": float(low), "max_val": float(high)}

    @classmethod
    def torch_examples(cls):
        import torch.nn as nn
        import torch.nn.functional as F

        class Functional(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 1)

            def forward(self, x):
                return F.hardtanh(self.conv(x), -0.5, 2.0, True)

        return {"module": (lambda: nn.Sequential(nn.Conv2d(3, 3, 1), nn.Hardtanh(-2.0, 3.0)), (3, 4, 4)),
                "function": (Functional, (3, 4, 4))}

    @classmethod
    def onnx_examples(cls):
        import numpy as np

        bounds = {"lo": np.array(-0.5, dtype=np.float32), "hi": np.array(2.0, dtype=np.float32)}
        return [("Clip_hardtanh", [1, 3, 4, 4], [("Clip", ["x", "lo", "hi"], {})], bounds, ["hardtanh"],
                 ("Hardtanh", (-0.5, 2.0), {}))]
