"""pixel_shuffle: sub-pixel upsampling, C·r² channels to C channels at r times the height and width."""

from __future__ import annotations

from ..core.errors import SpecError
from ..core.numeric import divides, exact_div
from .base import RF, LayerKind, Param, register


@register("pixel_shuffle")
class PixelShuffle(LayerKind):
    """Sub-pixel convolution's rearrangement (ESPCN, super-resolution): each group of r² channels becomes an r×r
    block of pixels, C·r² × H × W to C × rH × rW (torch's PixelShuffle, ONNX DepthToSpace in CRD mode). Values move,
    nothing is computed; the output is a new tensor."""

    tools_checked = True  # every tool counts nothing for it, as for every view (its cause): the nine run its examples
    cause = "views"
    params = {"factor": Param("int", doc="the upscale factor r (PyTorch's upscale_factor)")}
    torch_modules = ("PixelShuffle",)
    torch_functions = ("pixel_shuffle",)
    onnx_ops = ("DepthToSpace",)
    examples = {
        "pixel_shuffle": ([8, 3, 5], [{"pixel_shuffle": {"factor": 2}}]),
        "pixel_shuffle_espcn": ([1, 6, 6], [{"conv": {"filters": 9, "kernel": 3, "pad": 1}},
                                            {"pixel_shuffle": {"factor": 3}}, {"conv": {"filters": 2, "kernel": 1}}]),
    }

    @classmethod
    def setting_hint(cls, key):
        if key == "upscale_factor":
            return "PyTorch's upscale_factor is cnnsize's 'factor'"
        return super().setting_hint(key)

    def output_shape(self, ins, ctx):
        x = ins[0]
        if len(x) != 3:
            raise SpecError(f"pixel_shuffle rearranges an image (C, H, W), got the shape {list(x)}",
                            hint="torch's pixel_shuffle takes (N, C, H, W)")
        block = self.factor * self.factor
        if divides(block, x[0]) is False:
            raise SpecError(f"channels ({x[0]}) must be divisible by factor² ({block})",
                            hint=f"make the layer before it give a multiple of {block} channels")
        return (exact_div(x[0], block), x[1] * self.factor, x[2] * self.factor)

    def receptive(self, rfs, ins, out):
        rf = rfs[0]
        if rf is None:
            return None
        return RF(rf.size, tuple(exact_div(j, self.factor) for j in rf.stride), rf.start)  # as nearest upsampling

    def build(self, ins, out):
        import torch.nn as nn

        return nn.PixelShuffle(self.factor)

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {"factor": int(call.module.upscale_factor)}
        return {"factor": int(call.arg(1, "upscale_factor"))}

    @classmethod
    def from_onnx(cls, call):
        mode = call.attr("mode", "DCR")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode != "CRD":
            raise call.refuse(f"DepthToSpace in {mode} mode (only CRD, torch's pixel_shuffle, is a layer)")
        return {"factor": int(call.attr("blocksize"))}

    @classmethod
    def torch_examples(cls):
        import torch.nn as nn
        import torch.nn.functional as F

        class Functional(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 12, 3, padding=1)

            def forward(self, x):
                return F.pixel_shuffle(self.conv(x), 2)

        return {"module": (lambda: nn.Sequential(nn.Conv2d(3, 27, 1), nn.PixelShuffle(3)), (3, 4, 5)),
                "function": (Functional, (3, 4, 4))}

    @classmethod
    def onnx_examples(cls):
        return [("DepthToSpace_CRD", [1, 8, 3, 4], [("DepthToSpace", ["x"], {"blocksize": 2, "mode": "CRD"})], {},
                 ["pixel_shuffle"], ("PixelShuffle", (2,), {}))]
