"""``im2col`` (nn.Unfold, F.unfold) and ``col2im`` (nn.Fold, F.fold): a channels-first map's sliding
windows laid out as columns, and back (transformer-in-transformer's pixel embedding, VOLO's outlook attention).
im2col's output is a real tensor, k·k times the input where the windows overlap that much: the memory it costs is
why it matters. FlopCounterMode counts no multiply-adds for either (a copy; col2im's sums of overlaps included)."""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from ..core.numeric import prod
from .base import Counts, LayerKind, Param, per_axis, plain, register


def _text(shape) -> str:
    return "×".join(str(v) for v in shape)


class _Windows(LayerKind):
    """What im2col and col2im share: a 2-D window of ``kernel`` with ``stride``, ``pad`` and ``dilation``."""

    cause = "views"
    params = {"kernel": Param("ints", doc="the window, per spatial axis"),
              "stride": Param("ints", 1, doc="the step between windows"),
              "pad": Param("ints_or_zero", 0, doc="zeros around the map, per spatial axis"),
              "dilation": Param("ints", 1, doc="the spacing of a window's taps")}

    @classmethod
    def window_settings(cls, m) -> dict:
        return {"kernel": plain(m.kernel_size), "stride": plain(m.stride), "pad": plain(m.padding),
                "dilation": plain(m.dilation)}

    @classmethod
    def function_settings(cls, call) -> dict:
        return {"kernel": plain(call.arg(1 + cls.first, "kernel_size")),
                "dilation": plain(call.arg(2 + cls.first, "dilation", 1)),
                "pad": plain(call.arg(3 + cls.first, "padding", 0)),
                "stride": plain(call.arg(4 + cls.first, "stride", 1))}

    first = 0  # fold's output_size comes first

    def positions(self, spatial_size: tuple) -> tuple:
        """Windows per spatial axis over a map of ``spatial_size``."""
        k, s = per_axis(self.kernel, 2, "kernel"), per_axis(self.stride, 2, "stride")
        p, d = per_axis(self.pad, 2, "pad"), per_axis(self.dilation, 2, "dilation")
        found = tuple((n + 2 * pi - di * (ki - 1) - 1) // si + 1 for n, ki, si, pi, di in zip(spatial_size, k, s, p, d))
        if any(v < 1 for v in found):
            raise SpecError(f"{self.kind}: a {'×'.join(map(str, k))} window does not fit a {_text(spatial_size)} map "
                            f"padded by {'×'.join(map(str, p))}", hint="pad more or take a smaller kernel")
        return found

    def window(self) -> int:
        return prod(per_axis(self.kernel, 2, "kernel"))

    def counts(self, ins, out):
        return Counts(connections=prod(out))

    def receptive(self, rfs, ins, out):
        return None

    def saved(self, ins, out, trainable, device):
        return []  # each one's gradient is the other applied to the output's gradient: shapes only


@register("im2col")
class Unfold(_Windows):
    """im2col: each ``kernel`` window of a C×H×W map as a column, C·kh·kw values by L windows (nn.Unfold, F.unfold):
    a new tensor."""
    tools_checked = True
    onnx_none = "not mapped yet: ONNX has no im2col operator (exporters write Gather or a convolution)"
    torch_modules = ("Unfold",)
    torch_functions = ("unfold",)
    examples: ClassVar[dict] = {
        "im2col_patches": ([3, 8, 8], [{"conv": {"filters": 4, "kernel": 1}},
                                       {"im2col": {"kernel": 3, "stride": 2, "pad": 1}}]),
        "im2col_col2im": ([3, 6, 6], [{"im2col": {"kernel": 2, "stride": 1, "dilation": 2}},
                                    {"col2im": {"output": [6, 6], "kernel": 2, "stride": 1, "dilation": 2}}]),
    }

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return cls.window_settings(call.module)
        if call.arg(1, "kernel_size") is None or (len(call.args) == 4 and "kernel_size" not in call.kwargs):
            return None  # Tensor.unfold(dim, size, step): unfold_axis's
        if call.batch or call.rank != 4:
            raise call.refuse("F.unfold of a tensor that is not N×C×H×W with the batch in front")
        return cls.function_settings(call)

    def output_shape(self, ins, ctx):
        x = ins[0]
        if len(x) != 3:
            raise SpecError(f"im2col takes a C×H×W map, got {_text(x)}")
        return (x[0] * self.window(), prod(self.positions(tuple(x[1:]))))

    def summary(self) -> str:
        return f"im2col {plain(self.kernel)}"

    def build(self, ins, out):
        import torch.nn as nn

        return nn.Unfold(self.kernel, self.dilation, self.pad, self.stride)

    @classmethod
    def torch_examples(cls):
        import torch.nn as nn
        import torch.nn.functional as F

        class PixelEmbed(nn.Module):  # timm's TNT: a convolution's map cut into 4×4 patches of pixels
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 1)
                self.unfold = nn.Unfold(kernel_size=4, stride=4)

            def forward(self, x):
                y = self.conv(x)
                return self.unfold(y) + F.unfold(y, kernel_size=(4, 4), padding=(2, 0), stride=(6, 4))

        return {"pixel_embed": (PixelEmbed, (3, 8, 8))}


@register("col2im")
class Fold(_Windows):
    """col2im: C·kh·kw by L columns summed back into a C×H×W map of ``output`` (nn.Fold, F.fold), overlaps added:
    a new tensor."""
    tools_checked = True
    onnx_none = "not mapped yet: ONNX has no col2im operator before opset 18's Col2Im"
    params = {"output": Param("size", doc="the map's spatial size"), **_Windows.params}
    torch_modules = ("Fold",)
    torch_functions = ("fold",)
    first = 1
    examples: ClassVar[dict] = {
        "col2im_back": ([12, 9], [{"linear": {"units": 9}}, {"col2im": {"output": [4, 4], "kernel": 2, "stride": 1}}]),
    }

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {"output": plain(call.module.output_size), **cls.window_settings(call.module)}
        if call.batch or call.rank != 3:
            raise call.refuse("F.fold of a tensor that is not N×(C·k·k)×L with the batch in front")
        return {"output": plain(call.arg(1, "output_size")), **cls.function_settings(call)}

    def output_shape(self, ins, ctx):
        x = ins[0]
        size = per_axis(self.output, 2, "output")
        if len(x) != 2 or x[0] % self.window() or prod(self.positions(size)) != x[1]:
            raise SpecError(f"col2im to {_text(size)} with a {plain(self.kernel)} window needs (C·{self.window()})×"
                            f"{prod(self.positions(size))} columns, got {_text(x)}")
        return (x[0] // self.window(), *size)

    def summary(self) -> str:
        return f"col2im {plain(self.kernel)}"

    def build(self, ins, out):
        import torch.nn as nn

        return nn.Fold(self.output, self.kernel, self.dilation, self.pad, self.stride)

    @classmethod
    def torch_examples(cls):
        import torch.nn as nn
        import torch.nn.functional as F

        class Outlook(nn.Module):  # timm's VOLO: windows unfolded, weighted, folded back (overlaps summed)
            def __init__(self):
                super().__init__()
                self.v = nn.Conv2d(3, 4, 1)
                self.unfold = nn.Unfold(kernel_size=3, padding=1, stride=2)
                self.fold = nn.Fold(output_size=(6, 6), kernel_size=3, padding=1, stride=2)

            def forward(self, x):
                cols = self.unfold(self.v(x))
                return self.fold(cols) + F.fold(cols, (6, 6), 3, 1, 1, 2)

        return {"outlook": (Outlook, (3, 6, 6))}


__all__ = ["Fold", "Unfold"]
