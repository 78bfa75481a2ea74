"""Arithmetic that model libraries write out: ``unary`` (rsqrt, sqrt, exp, log, abs, neg, reciprocal of a tensor),
``reduce`` (sum, var, std, norm, amax, amin over per-sample axes) and ``rmsnorm`` (F.rms_norm, nn.RMSNorm). No
multiply-adds as FlopCounterMode counts (it counts matrix products and convolutions only); each makes a new tensor."""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from ..core.numeric import exact_div, is_int, prod
from .activation import _Elementwise
from .base import PROMOTE, Counts, LayerKind, Param, Saved, TensorArg, plain, register
from .pool import reduced_shape, reduction_axes

# what autograd keeps for each unary operation's gradient: its result (d rsqrt = -rsqrt³/2), its input, or nothing
UNARY_SAVES = {"rsqrt": "output", "sqrt": "output", "exp": "output", "reciprocal": "output", "log": "input",
               "abs": "input", "neg": None, "cos": "input", "sin": "input"}


@register("unary")
class Unary(_Elementwise):
    """A function of each value alone: ``op`` one of rsqrt, sqrt, exp, log, abs, neg, reciprocal, cos, sin
    (``torch.rsqrt(v + eps)`` in a norm written out, ``x.abs()``, a YOLO OBB head's angle): a new tensor of the
    input's shape."""
    tools_checked = True
    onnx_none = "not mapped yet: ONNX Sqrt, Exp, Log, Abs, Neg and Reciprocal are refused (or kept whole with --opaque)"

    params = {"op": Param("choice", doc="the function", choices=tuple(UNARY_SAVES))}
    torch_modules = ("cnnsize.layers.nn.modules.Unary",)
    torch_functions = tuple(UNARY_SAVES)
    examples = {
        "unary_rsqrt": ([3, 4, 4], [{"conv": {"filters": 3, "kernel": 1}}, {"scalar": {"op": "pow", "value": 2.0}},
                                    {"unary": {"op": "rsqrt"}}, {"conv": {"filters": 2, "kernel": 1}}]),
        "unary_log_abs": ([5, 6], [{"linear": {"units": 6}}, {"unary": {"op": "abs"}}, {"unary": {"op": "log"}},
                                   {"unary": {"op": "neg"}}, {"linear": {"units": 2}}]),
        "unary_exp_sqrt": ([5, 6], [{"linear": {"units": 6}}, {"unary": {"op": "exp"}}, {"unary": {"op": "sqrt"}},
                                    {"unary": {"op": "reciprocal"}}, {"linear": {"units": 2}}]),
        "unary_cos_sin": ([5, 6], [{"linear": {"units": 6}}, {"unary": {"op": "cos"}}, {"unary": {"op": "sin"}},
                                   {"linear": {"units": 2}}]),
    }

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {"op": call.module.op}
        if call.inplace:
            raise call.refuse(f"{call.function} in place (the unary kind makes a new tensor)")
        return {"op": call.function}

    def saved(self, ins, out, trainable, device):
        saves = UNARY_SAVES[self.op]
        return [] if saves is None else [Saved(saves)]

    def summary(self) -> str:
        return f"{self.op}(x)"

    def build(self, ins, out):
        from .nn.modules import Unary as Module

        return Module(self.op)

    @classmethod
    def torch_examples(cls):
        import torch
        import torch.nn as nn

        class RmsWrittenOut(nn.Module):  # timm's rms_norm2d: x * rsqrt(mean(x²) + eps)
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 1)

            def forward(self, x):
                x = self.conv(x)
                v = x.pow(2).mean(1, keepdim=True)
                return x * torch.rsqrt(v + 1e-5)

        class Functions(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(6, 6)

            def forward(self, x):
                y = self.fc(x)
                return torch.exp(y.abs().neg()) + y.sqrt().reciprocal() + torch.log(y.abs() + 1)

        return {"rms_written_out": (RmsWrittenOut, (3, 4, 5)), "functions": (Functions, (5, 6))}


REDUCTIONS = ("sum", "var", "std", "norm", "amax", "amin", "max", "min")


@register("reduce")
class Reduce(LayerKind):
    """A reduction over some per-sample ``axes`` (``x.sum(1)``, ``torch.var(x, dim=1, keepdim=True)``, ``x.norm(p=2,
    dim=(1, 2), keepdim=True)`` in a global response norm, ``x.amax(-1)``), those axes kept as 1 with ``keepdim`` or
    dropped; ``correction`` is var's and std's (1: unbiased, torch's default). ``max`` and ``min`` are the values of
    ``x.max(dim)`` (a pair of values and indices, the indices not taken: ``x.max(1)[0]``), which keep the indices for
    the gradient where amax keeps its input and result. A new tensor; the mean is ``mean``."""
    tools_checked = True
    onnx_none = "not mapped yet: ONNX ReduceSum, ReduceMax and ReduceL2 are refused (or kept whole with --opaque)"
    batch_anywhere = True  # axes counted as torch holds them (TorchCall.axis)

    cause = "pooling"
    params = {"op": Param("choice", doc="the reduction", choices=REDUCTIONS),
              "axes": Param("ints_or_zero", doc="the per-sample axes reduced, from 0"),
              "keepdim": Param("bool", False, doc="keep them as axes of size 1"),
              "correction": Param("count", 1, doc="var and std: divide by n - correction (1: unbiased)")}
    torch_modules = ("cnnsize.layers.nn.modules.Reduce",)
    torch_functions = REDUCTIONS
    examples = {
        "reduce_sum_var": ([3, 4, 5], [{"conv": {"filters": 4, "kernel": 1}},
                                       {"reduce": {"op": "var", "axes": 0, "keepdim": True}},
                                       {"reduce": {"op": "sum", "axes": [1, 2]}}]),
        "reduce_norm": ([3, 4, 5], [{"conv": {"filters": 4, "kernel": 1}},
                                    {"reduce": {"op": "norm", "axes": [1, 2], "keepdim": True}},
                                    {"conv": {"filters": 2, "kernel": 1}}]),
        "reduce_amax_std": ([5, 6], [{"linear": {"units": 6}}, {"reduce": {"op": "std", "axes": 1, "correction": 0}},
                                     {"reduce": {"op": "amax", "axes": 0, "keepdim": True}}]),
        "reduce_max_values": ([5, 6], [{"linear": {"units": 6}}, {"reduce": {"op": "max", "axes": 0}},
                                       {"linear": {"units": 3}}, {"reduce": {"op": "min", "axes": 0,
                                                                             "keepdim": True}}]),
    }

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            m = call.module
            return {"op": m.op, "axes": plain([d - 1 for d in m.dims]), "keepdim": m.keepdim,
                    "correction": m.correction}
        f = call.function
        if f in ("max", "min") and not cls.values_of(call):
            return None  # torch.max(a, b) of two tensors, or the whole pair: not a reduction's values
        dims = call.arg(2 if f == "norm" else 1, "dim")
        if f == "norm" and call.arg(1, "p", "fro") not in (2, 2.0, "fro"):
            raise call.refuse(f"norm with p={call.arg(1, 'p', 'fro')} (the reduce kind's norm is the 2-norm)")
        if dims is None or dims in ([], ()) or call.kwargs.get("dtype") is not None:
            raise call.refuse(f"{f} of the whole tensor, batch included (cnnsize's axes are per sample)")
        axes = [call.axis(d) for d in (dims if isinstance(dims, (list, tuple)) else [dims])]
        keep = bool(call.arg(3 if f == "norm" else 2, "keepdim", False)) if f not in ("var", "std") else \
            bool(call.kwargs.get("keepdim", call.arg(3, "keepdim", False)))
        if None in axes:
            raise call.refuse(f"{f} over the batch axis (cnnsize's axes are per sample)")
        settings = {"op": f, "axes": plain(sorted(set(axes))) if len(axes) > 1 else axes[0], "keepdim": keep}
        if f in ("var", "std"):
            settings["correction"] = cls.correction_of(call)
        return settings

    @staticmethod
    def values_of(call) -> bool:
        """Whether a max or min call is the values of a reduction over one axis (``x.max(1)[0]``): its indices
        (``[1]``) are not values cnnsize sizes, and ``x.max()`` of the whole tensor mixes the batch."""
        if call.index != 0:
            if call.index == 1:
                raise call.refuse(f"the indices of {call.function}(dim) (an index tensor; the values, [0], import)")
            return False
        return isinstance(call.arg(1, "dim"), int)

    @staticmethod
    def correction_of(call) -> int:
        """torch's var and std: ``correction=``, or ``unbiased=`` (positional after dim), 1 by default."""
        if call.kwargs.get("correction") is not None:
            return int(call.kwargs["correction"])
        unbiased = call.kwargs.get("unbiased", call.arg(2, "unbiased", True))
        return 1 if unbiased in (True, None) else 0

    def axes_of(self, x) -> tuple:
        axes = self.axes if isinstance(self.axes, tuple) else (self.axes,)
        if self.op in ("max", "min") and len(axes) != 1:
            raise SpecError(f"reduce {self.op} runs over one axis, got {list(axes)}",
                            hint="amax and amin reduce over several")
        return reduction_axes(x, axes, self.keepdim, "reduce", self.op)

    def output_shape(self, ins, ctx):
        return reduced_shape(ins[0], self.axes_of(ins[0]), self.keepdim)

    def counts(self, ins, out):
        return Counts(connections=prod(ins[0]))

    def receptive(self, rfs, ins, out):
        return None

    def saved(self, ins, out, trainable, device):
        if self.op == "sum":
            return []  # its gradient is the output's, spread
        if self.op == "var":
            return [Saved("input")]
        if self.op in ("max", "min"):
            return [Saved("new", prod(out), itemsize=8)]  # the indices (int64) of the values picked
        return [Saved("input"), Saved("output")]  # std, norm, amax, amin: the input and the result

    def summary(self) -> str:
        return f"{self.op} over {list(self.axes) if isinstance(self.axes, tuple) else self.axes}"

    def build(self, ins, out):
        from .nn.modules import Reduce as Module

        return Module(self.op, tuple(a + 1 for a in self.axes_of(ins[0])), self.keepdim, self.correction)

    @classmethod
    def torch_examples(cls):
        import torch
        import torch.nn as nn

        class GlobalResponseNorm(nn.Module):  # ConvNeXt V2's, channels last (timm's GlobalResponseNorm)
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 4)

            def forward(self, x):
                x = self.fc(x)
                g = x.norm(p=2, dim=(1, 2), keepdim=True)
                return x * (g / (g.mean(dim=-1, keepdim=True) + 1e-6))

        class Statistics(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 1)

            def forward(self, x):
                x = self.conv(x)
                v = torch.var(x, dim=1, keepdim=True, unbiased=False)
                return (x.sum((2, 3)) + x.std(-1).amax(-1)) * v.amin((2, 3))

        class TokenMax(nn.Module):  # VOLO's token-labelling head: the best token's score beside the class token's
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 4)

            def forward(self, x):
                y = self.fc(x)
                return y[:, 0] + 0.5 * y[:, 1:].max(1)[0] - torch.min(y, dim=1)[0]

        return {"global_response_norm": (GlobalResponseNorm, (4, 5, 3)), "statistics": (Statistics, (3, 4, 5)),
                "token_max": (TokenMax, (5, 3))}


@register("rmsnorm")
class RMSNorm(LayerKind):
    """Root-mean-square normalization over the last axis (F.rms_norm(x, (D,), weight, eps), nn.RMSNorm): x divided by
    the root of its mean square, times a learned weight per feature (``affine``); no mean taken away, no bias."""
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "thop": "2*inp*(1 + affine)",  # thop's count_normalization, which it registers for nn.RMSNorm
    }
    onnx_none = "not mapped yet: ONNX RMSNormalization (opset 23) is refused (or kept whole with --opaque)"
    batch_anywhere = True  # over the last axis

    cause = "normalization"
    features_axis = -1
    params = {"eps": Param("positive", None, doc="added to the mean square (torch's default: the dtype's eps)"),
              "affine": Param("bool", True, doc="a learned weight per feature")}
    torch_modules = ("RMSNorm",)
    torch_functions = ("rms_norm",)
    examples: ClassVar[dict] = {
        "rmsnorm_tokens": ([5, 6], [{"linear": {"units": 8}}, {"rmsnorm": {"eps": 1e-6}}, {"linear": {"units": 2}}]),
        "rmsnorm_plain": ([5, 6], [{"linear": {"units": 6}}, {"rmsnorm": {"affine": False}}]),
    }

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if m is not None:
            shape, eps, affine = tuple(m.normalized_shape), m.eps, m.elementwise_affine
        else:  # F.rms_norm(x, normalized_shape, weight, eps)
            given, eps = call.arg(1, "normalized_shape"), call.arg(3, "eps")
            shape = tuple(given) if isinstance(given, (list, tuple)) else (given,)
            affine = isinstance(call.arg(2, "weight"), TensorArg)
        if len(shape) != 1 or call.axis(-1) is None:
            raise call.refuse(f"RMS norm over the last {len(shape)} axes (cnnsize's rmsnorm is over the last)")
        return {"eps": None if eps is None else float(eps), "affine": bool(affine)}

    def counts(self, ins, out):
        d = ins[0][-1]
        return Counts(weights=d if self.affine else 0)

    def receptive(self, rfs, ins, out):
        return None

    def saved(self, ins, out, trainable, device):
        # torch computes it as x · rsqrt(mean(x²) + eps) (· weight): the input, 1/rms per row and, for the weight's
        # gradient, the normalized x
        rows = exact_div(prod(ins[0]), ins[0][-1])
        return [Saved("input"), Saved("new", rows)] + ([Saved("new", prod(ins[0]))] if self.affine else [])

    def build(self, ins, out):
        import torch.nn as nn

        return nn.RMSNorm(ins[0][-1], eps=self.eps, elementwise_affine=self.affine)

    @classmethod
    def torch_examples(cls):
        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        class Functional(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(6, 8)
                self.weight = nn.Parameter(torch.rand(8))

            def forward(self, x):
                return F.rms_norm(self.fc(x), (8,), self.weight, 1e-6)

        return {"module": (lambda: nn.Sequential(nn.Linear(6, 8), nn.RMSNorm(8)), (5, 6)),
                "function": (Functional, (5, 6))}


@register("bias_add")
class Bias(LayerKind):
    """A learned tensor added to the input, broadcast as torch broadcasts it: ``shape`` is the parameter's, each axis
    1 or the input's, aligned with the input's last axes (StarReLU's learned offset of shape (1,), a per-channel
    bias (C, 1, 1)). One the input's whole shape is ``pos_embed``."""
    autocast = {"cpu": PROMOTE, "cuda": PROMOTE}  # adds a float32 parameter
    tools_checked = True
    onnx_none = "not mapped yet: ONNX Add of a weight that broadcasts is refused (or kept whole with --opaque)"
    batch_anywhere = True  # aligned with the last axes

    cause = "elementwise"
    params = {"shape": Param("size", doc="the parameter's shape, its leading 1s left out")}
    torch_modules = ("cnnsize.layers.nn.modules.Bias",)
    torch_functions = ("add", "__add__", "__radd__")
    examples: ClassVar[dict] = {
        "bias_number": ([3, 4, 5], [{"conv": {"filters": 3, "kernel": 1}}, {"bias_add": {"shape": 1}}]),
        "bias_channels": ([3, 4, 5], [{"conv": {"filters": 3, "kernel": 1}}, {"bias_add": {"shape": [3, 1, 1]}}]),
    }

    @classmethod
    def from_torch(cls, call):
        if call.module is not None:
            return {"shape": list(call.module.weight.shape)}
        if len(call.inputs) != 1 or len(call.attrs) != 1 or call.kwargs.get("alpha", 1) != 1 or \
                not all(call.attrs_learned):
            return None  # a buffer, or a tensor computed from the parameters (a relative position bias)
        x, shape = call.inputs[0][1:], tuple(call.attrs[0])
        while len(shape) > 1 and shape[0] == 1:
            shape = shape[1:]  # a 1 in front broadcasts (the batch's, or an axis of the input's)
        if len(shape) > len(x) or any(a not in (1, b) for a, b in zip(shape[::-1], x[::-1])) or shape == tuple(x):
            return None  # another shape (the input's whole: pos_embed's)
        return {"shape": list(shape)}

    def output_shape(self, ins, ctx):
        x = ins[0]
        shape = self.shape if isinstance(self.shape, tuple) else (self.shape,)
        if len(shape) > len(x) or any(is_int(a) and is_int(b) and a not in (1, b) for a, b in zip(shape[::-1],
                                                                                                 x[::-1])):
            raise SpecError(f"bias_add of shape {list(shape)} does not broadcast to the input {list(x)}",
                            hint="each axis of the bias is 1 or the input's, aligned with the input's last axes")
        return x

    def counts(self, ins, out):
        shape = self.shape if isinstance(self.shape, tuple) else (self.shape,)
        return Counts(weights=prod(shape), connections=prod(out))

    def saved(self, ins, out, trainable, device):
        return []  # a sum's gradients need neither operand

    def build(self, ins, out):
        from .nn.modules import Bias as Module

        return Module(self.shape if isinstance(self.shape, tuple) else (self.shape,))

    @classmethod
    def torch_examples(cls):
        import torch
        import torch.nn as nn

        class StarReLU(nn.Module):  # timm's: s · relu(x)² + b, s and b learned numbers of shape (1,)
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(6, 6)
                self.scale, self.bias = nn.Parameter(torch.ones(1)), nn.Parameter(torch.zeros(1))

            def forward(self, x):
                return self.scale * torch.relu(self.fc(x)) ** 2 + self.bias

        return {"star_relu": (StarReLU, (5, 6))}


__all__ = ["Bias", "RMSNorm", "Reduce", "Unary"]
