"""From torch to a spec: trace an ``nn.Module`` with torch.fx and write the equivalent cnnsize spec.

Every traced operation maps to one cnnsize layer kind, or the import stops with an error naming the
operation and where it sits (fx node and module path): nothing is dropped silently. Shapes follow
torch's own rules (``fit: floor``), so any model that runs in torch and is made of supported layers
imports. Each imported layer's output shape is checked against the shape torch computes, so a
mapping that would change the network's meaning is caught too. torch is imported here only.
"""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass
from typing import Any

from .errors import CnnsizeError, SpecError
from .executor import require_torch


@dataclass
class ImportedSpec:
    """An imported model: ``spec`` (a dict cnnsize.analyze takes) and ``yaml`` (the same, as spec text)."""

    spec: dict
    yaml: str

    def analyze(self, **kwargs: Any):
        """The analysis of the imported spec (keyword arguments as for cnnsize.analyze)."""
        from . import analyze

        return analyze(self.spec, **kwargs)


class _Unsupported(CnnsizeError):
    pass


def _one(value: Any) -> Any:
    """(3, 3) -> 3; (1, 7) -> [1, 7]; 3 -> 3."""
    if isinstance(value, (tuple, list)):
        values = [int(v) for v in value]
        return values[0] if len(set(values)) == 1 else values
    return value


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, float) else value


class _Importer:
    def __init__(self, module, input_shape: tuple, name: str):
        self.torch = require_torch()
        self.root = module
        self.input_shape = tuple(int(v) for v in input_shape)
        self.name = name
        self.layers: list[dict] = []
        self.names: set[str] = {"input"}
        self.alias: dict[Any, str] = {}  # fx node -> the layer name holding its value
        self.last = "input"

    # -- tracing -------------------------------------------------------------------------------------------------
    def trace(self):
        torch = self.torch
        import torch.fx as fx
        from torch.fx.passes.shape_prop import ShapeProp

        custom = _custom_modules()

        class Tracer(fx.Tracer):
            def is_leaf_module(self, m, qualname):  # cnnsize's own modules are single layers
                return isinstance(m, custom) or super().is_leaf_module(m, qualname)

        tracer = Tracer()
        try:
            graph = tracer.trace(self.root)
        except Exception as exc:  # fx raises many kinds for data-dependent control flow
            raise SpecError(f"torch.fx cannot trace this module: {type(exc).__name__}: {exc}".split("\n")[0],
                            hint="from_torch needs a forward without data-dependent Python control flow") from None
        gm = fx.GraphModule(self.root, graph)
        param = next(iter(self.root.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        was_training = self.root.training
        self.root.eval()
        try:
            with torch.no_grad():
                ShapeProp(gm).propagate(torch.zeros(1, *self.input_shape, device=device, dtype=dtype))
        except Exception as exc:
            raise SpecError(f"the module does not run on a 1×{'×'.join(map(str, self.input_shape))} input: "
                            f"{type(exc).__name__}: {exc}".split("\n")[0],
                            hint="give the input shape the model expects (C x H x W)") from None
        finally:
            self.root.train(was_training)
        return gm

    # -- the walk -------------------------------------------------------------------------------------------------
    def run(self) -> dict:
        gm = self.trace()
        modules = dict(gm.named_modules())
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                if self.alias:
                    raise _Unsupported(f"a second input '{node.name}'", hint="from_torch takes one input tensor")
                self.alias[node] = "input"
            elif node.op == "get_attr":
                raise self.unsupported(node, f"reading the tensor '{node.target}' directly")
            elif node.op == "output":
                self.output(node)
            elif not _is_tensor(node):
                continue  # sizes and shapes: values for views, not layers
            elif node.op == "call_module":
                self.module(node, modules[node.target])
            else:
                self.function(node)
        layers = self.layers
        return {"name": self.name, "input": list(self.input_shape), "fit": "floor", "layers": layers}

    def output(self, node) -> None:
        out = node.args[0]
        if not hasattr(out, "op"):
            raise self.unsupported(node, "returning several tensors (a tuple or dict)")
        name = self.alias[out]
        if name != self.last:  # the result is not the last layer: make it so
            self.add(node, "identity", {}, [out], name=f"{name}_out")

    def unsupported(self, node, what: str | None = None) -> CnnsizeError:
        where = f"fx node '{node.name}'"
        stack = node.meta.get("nn_module_stack") or {}
        if node.op == "call_module":
            where += f", module '{node.target}' ({type(self.root.get_submodule(node.target)).__name__})"
        elif stack:
            path = list(stack.values())[-1][0]
            where += f", inside module '{path}'"
        op = what or _op_name(node)
        return _Unsupported(f"cannot import {op} ({where})",
                            hint="from_torch supports the layers cnnsize sizes; see cnnsize.torch_import.SUPPORTED")

    def add(self, node, kind: str, settings: dict, inputs: list, name: str | None = None,
            trainable: bool = True) -> str:
        from .layers.base import REGISTRY

        if kind not in REGISTRY:
            raise self.unsupported(node, f"{_op_name(node)} (this version of cnnsize has no '{kind}' layer kind)")
        name = name or (node.target if node.op == "call_module" else node.name)
        if name in self.names:
            name = node.name if node.name not in self.names else f"{node.name}_{len(self.names)}"
        params = REGISTRY[kind].params
        body: dict[str, Any] = {"name": name}
        for key, value in settings.items():
            default = params[key].default
            if isinstance(default, tuple):
                default = _one(default)
            if value != default or params[key].required:
                body[key] = value
        sources = [self.alias[i] for i in inputs]
        if sources != [self.last]:
            body["from"] = sources[0] if len(sources) == 1 else sources
        if not trainable:
            body["trainable"] = False
        self.layers.append({kind: body})
        self.names.add(name)
        self.alias[node] = name
        self.last = name
        return name

    def inputs(self, node) -> list:
        found: list = []

        def visit(arg):
            if hasattr(arg, "op"):
                if _is_tensor(arg):
                    found.append(arg)
            elif isinstance(arg, (list, tuple)):
                for a in arg:
                    visit(a)

        for arg in node.args:
            visit(arg)
        for arg in node.kwargs.values():
            visit(arg)
        return found

    # -- modules ----------------------------------------------------------------------------------------------
    def module(self, node, mod) -> None:
        nn = self.torch.nn
        ins = self.inputs(node)
        trainable = all(p.requires_grad for p in mod.parameters(recurse=False)) or not any(
            True for _ in mod.parameters(recurse=False))
        custom = _custom_classes()
        t = type(mod)
        rank = _rank(ins[0]) if ins else 0

        def add(kind, settings=None):
            return self.add(node, kind, settings or {}, ins, trainable=trainable)

        if t in (nn.Conv1d, nn.Conv2d, nn.Conv3d):
            if mod.padding_mode != "zeros":
                raise self.unsupported(node, f"{t.__name__} with padding_mode='{mod.padding_mode}'")
            pad = mod.padding if isinstance(mod.padding, str) else _one(mod.padding)
            add("conv", {"filters": mod.out_channels, "kernel": _one(mod.kernel_size), "stride": _one(mod.stride),
                         "pad": pad, "dilation": _one(mod.dilation), "groups": mod.groups,
                         "bias": mod.bias is not None})
        elif t in (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d):
            add("deconv", {"filters": mod.out_channels, "kernel": _one(mod.kernel_size), "stride": _one(mod.stride),
                           "pad": _one(mod.padding), "output_pad": _one(mod.output_padding),
                           "dilation": _one(mod.dilation), "groups": mod.groups, "bias": mod.bias is not None})
        elif t is custom.get("FlattenLinear") or (t is nn.Linear and rank == 2):
            add("fc", {"units": mod.out_features, "bias": mod.bias is not None})
        elif t is nn.Linear:
            raise self.unsupported(node, f"nn.Linear on a rank-{rank} tensor (it acts on the last axis only; "
                                         "flatten first)")
        elif t in (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d):
            self.pool(node, "maxpool", mod.kernel_size, mod.stride, mod.padding, mod.ceil_mode, ins,
                      dilation=mod.dilation, return_indices=mod.return_indices)
        elif t in (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d):
            if getattr(mod, "divisor_override", None) is not None:
                raise self.unsupported(node, f"{t.__name__} with divisor_override")
            self.pool(node, "avgpool", mod.kernel_size, mod.stride, mod.padding, mod.ceil_mode, ins,
                      count_include_pad=mod.count_include_pad)
        elif t in (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d):
            self.adaptive(node, "avg", mod.output_size, ins)
        elif t in (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d):
            if mod.return_indices:
                raise self.unsupported(node, f"{t.__name__} with return_indices")
            self.adaptive(node, "max", mod.output_size, ins)
        elif t in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d):
            if not mod.track_running_stats or mod.momentum is None:
                raise self.unsupported(node, f"{t.__name__} without running statistics or with momentum=None")
            add("bn", {"eps": float(mod.eps), "momentum": float(mod.momentum), "affine": mod.affine})
        elif t is custom.get("ChannelLayerNorm") or (t is nn.LayerNorm and rank == 2):
            self.layernorm(node, mod, ins, trainable)
        elif t is nn.LocalResponseNorm:
            add("lrn", {"size": mod.size, "alpha": float(mod.alpha), "beta": float(mod.beta), "k": float(mod.k)})
        elif t in _ELEMENTWISE_MODULES(nn):
            kind = _ELEMENTWISE_MODULES(nn)[t]
            settings = {"inplace": bool(getattr(mod, "inplace", False))} if hasattr(mod, "inplace") else {}
            if t is nn.LeakyReLU:
                settings["negative_slope"] = float(mod.negative_slope)
            if t is nn.GELU:
                settings = {"approximate": mod.approximate}
            if t is nn.Dropout:
                settings["p"] = float(mod.p)
            add(kind, settings)
        elif t is nn.Softmax:
            self.softmax(node, mod.dim, ins)
        elif t is nn.Flatten:
            if (mod.start_dim, mod.end_dim) != (1, -1):
                raise self.unsupported(node, f"nn.Flatten({mod.start_dim}, {mod.end_dim})")
            add("flatten")
        elif t is nn.Identity:
            add("identity")
        elif t in (nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d):
            flat = list(mod.padding)
            lo, hi = flat[0::2][::-1], flat[1::2][::-1]  # torch lists the last axis first
            add("zeropad", {"pad": _one(lo), "pad_end": None if lo == hi else _one(hi)})
        elif t is nn.Upsample:
            self.upsample(node, mod.scale_factor, mod.size, mod.mode, mod.align_corners, ins)
        elif t is nn.ChannelShuffle:
            add("channel_shuffle", {"groups": mod.groups})
        elif t is custom.get("LocallyConnected2d"):
            (top, bottom), (left, right) = mod.pads
            if top != bottom or left != right:
                raise self.unsupported(node, "LocallyConnected2d with uneven padding")
            add("locally_connected", {"filters": mod.weight.shape[2], "kernel": _one(mod.kernel),
                                      "stride": _one(mod.stride), "pad": _one((top, left)),
                                      "bias": mod.bias is not None})
        elif t in (custom.get("Add"), custom.get("Concat"), custom.get("Mul")):
            add(t.__name__.lower())
        elif t is custom.get("Chunk"):
            add("chunk", {"chunks": mod.chunks, "index": mod.index})
        else:
            raise self.unsupported(node, f"module type {t.__module__}.{t.__qualname__}")

    def pool(self, node, kind, kernel, stride, padding, ceil_mode, ins, dilation=1, return_indices=False,
             count_include_pad=True) -> None:
        if return_indices:
            raise self.unsupported(node, "max pooling with return_indices")
        nd = _rank(ins[0]) - 2
        kernel = _one(_tuple(kernel, nd))
        stride = _one(_tuple(stride, nd)) if stride not in (None, [], ()) else kernel
        settings = {"kernel": kernel, "stride": None if stride == kernel else stride,
                    "pad": _one(_tuple(padding, nd)), "ceil_mode": bool(ceil_mode)}
        if kind == "maxpool":
            settings["dilation"] = _one(_tuple(dilation, nd))
        else:
            settings["count_include_pad"] = bool(count_include_pad)
        self.add(node, kind, settings, ins)

    def adaptive(self, node, how: str, output_size, ins) -> None:
        nd = _rank(ins[0]) - 2
        size = _tuple(output_size, nd)
        spatial = _shape(ins[0])[2:]
        size = tuple(s if s is not None else n for s, n in zip(size, spatial))  # None keeps the input's size
        if all(s == 1 for s in size):
            self.add(node, f"global_{how}pool", {}, ins)
        else:
            self.add(node, f"adaptive_{how}pool", {"output": _one(size)}, ins)

    def layernorm(self, node, mod, ins, trainable) -> None:
        from .layers.base import REGISTRY

        params = REGISTRY["layernorm"].params
        settings: dict[str, Any] = {"eps": float(mod.eps)}
        affine_key = next((k for k in ("affine", "elementwise_affine") if k in params), None)
        if affine_key:
            settings[affine_key] = bool(mod.elementwise_affine)
        if "bias" in params:
            settings["bias"] = mod.bias is not None
        self.add(node, "layernorm", settings, ins, trainable=trainable)

    def softmax(self, node, dim, ins) -> None:
        rank = _rank(ins[0])
        if dim is None or dim % rank != 1:
            raise self.unsupported(node, f"softmax over dim {dim} (cnnsize's softmax is over the channels, dim 1)")
        self.add(node, "softmax", {}, ins)

    def upsample(self, node, scale, size, mode, align_corners, ins) -> None:
        nd = _rank(ins[0]) - 2
        if scale is None:
            spatial_in, spatial_out = _shape(ins[0])[2:], _shape(node)[2:]
            if any(o % i for i, o in zip(spatial_in, spatial_out)):
                raise self.unsupported(node, "upsampling to a size that is not an integer multiple")
            scale = tuple(o // i for i, o in zip(spatial_in, spatial_out))
        factors = _tuple(scale, nd)
        if any(float(f) != int(f) for f in factors):
            raise self.unsupported(node, f"upsampling by the non-integer factor {scale}")
        settings = {"scale": _one(tuple(int(f) for f in factors)), "mode": mode}
        if mode != "nearest":
            settings["align_corners"] = bool(align_corners)
        self.add(node, "upsample", settings, ins)

    # -- functions and methods ---------------------------------------------------------------------------------
    def function(self, node) -> None:
        target = node.target
        ins = self.inputs(node)
        name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
        args, kwargs = node.args, node.kwargs

        def arg(i, key, default=None):
            return args[i] if len(args) > i else kwargs.get(key, default)

        if name in _PASS_THROUGH and len(ins) == 1:
            self.alias[node] = self.alias[ins[0]]
            return
        if name in ("add", "iadd", "add_", "__add__", "__iadd__", "mul", "imul", "mul_", "__mul__"):
            if len(ins) != 2 or kwargs.get("alpha", 1) != 1:
                raise self.unsupported(node, f"{_op_name(node)} with a constant or alpha (only tensor + tensor "
                                             "and tensor * tensor are layers)")
            self.add(node, "add" if "add" in name else "mul", {}, ins)
            return
        if name == "cat" or name == "concat":
            dim = arg(1, "dim", 0)
            rank = _rank(ins[0])
            if dim % rank != 1:
                raise self.unsupported(node, f"torch.cat along dim {dim} (cnnsize concatenates channels, dim 1)")
            if len(ins) == 1:
                self.alias[node] = self.alias[ins[0]]
                return
            self.add(node, "concat", {}, ins)
            return
        if name == "flatten":
            start, end = arg(1, "start_dim", 0), arg(2, "end_dim", -1)
            if start != 1 or end != -1:
                raise self.unsupported(node, f"flatten({start}, {end}) (only flatten(x, 1) keeps the batch)")
            self.add(node, "flatten", {}, ins)
            return
        if name in ("view", "reshape") and len(ins) == 1:
            out = _shape(node)
            if len(out) == 2 and out[0] == _shape(ins[0])[0]:
                self.add(node, "flatten", {}, ins)
                return
            raise self.unsupported(node, f"{name} to {list(out)} (only a flatten to (N, features) is a layer)")
        if name in _ELEMENTWISE_FUNCTIONS and len(ins) == 1:
            kind = _ELEMENTWISE_FUNCTIONS[name]
            settings: dict[str, Any] = {}
            if kind in ("relu", "relu6", "hardswish", "hardsigmoid", "silu") and name != "hardtanh":
                settings["inplace"] = name.endswith("_") or bool(arg(1, "inplace", False))
            if kind == "leaky_relu":
                settings["negative_slope"] = float(arg(1, "negative_slope", 0.01))
                settings["inplace"] = name.endswith("_") or bool(arg(2, "inplace", False))
            if kind == "gelu":
                settings["approximate"] = kwargs.get("approximate", "none")
            if name == "hardtanh":
                if (arg(1, "min_val", -1.0), arg(2, "max_val", 1.0)) != (0.0, 6.0):
                    raise self.unsupported(node, "hardtanh other than relu6")
                settings["inplace"] = bool(arg(3, "inplace", False))
            self.add(node, kind, settings, ins)
            return
        if name == "dropout" and len(ins) == 1:
            self.add(node, "dropout", {"p": float(arg(1, "p", 0.5)), "inplace": bool(arg(3, "inplace", False))}, ins)
            return
        if name == "softmax":
            self.softmax(node, arg(1, "dim"), ins)
            return
        if name in ("max_pool1d", "max_pool2d", "max_pool3d"):
            kernel = arg(1, "kernel_size")
            self.pool(node, "maxpool", kernel, arg(2, "stride"), arg(3, "padding", 0), arg(5, "ceil_mode", False),
                      ins, dilation=arg(4, "dilation", 1), return_indices=arg(6, "return_indices", False))
            return
        if name in ("avg_pool1d", "avg_pool2d", "avg_pool3d"):
            if arg(6, "divisor_override") is not None:
                raise self.unsupported(node, f"{name} with divisor_override")
            self.pool(node, "avgpool", arg(1, "kernel_size"), arg(2, "stride"), arg(3, "padding", 0),
                      arg(4, "ceil_mode", False), ins, count_include_pad=arg(5, "count_include_pad", True))
            return
        if name.startswith("adaptive_avg_pool") or name.startswith("adaptive_max_pool"):
            if "max" in name and arg(2, "return_indices", False):
                raise self.unsupported(node, f"{name} with return_indices")
            self.adaptive(node, "max" if "max" in name else "avg", arg(1, "output_size"), ins)
            return
        if name == "mean" and len(ins) == 1:
            rank = _rank(ins[0])
            dims = arg(1, "dim")
            dims = tuple(sorted(d % rank for d in (dims if isinstance(dims, (list, tuple)) else [dims]))) \
                if dims is not None else None
            if dims != tuple(range(2, rank)):
                raise self.unsupported(node, f"mean over dims {dims} (only the mean over all spatial axes is "
                                             "a global average pool)")
            layer = self.add(node, "global_avgpool", {}, ins, name=f"{node.name}")
            if not arg(2, "keepdim", False):
                self.alias[node] = layer
                self.add(node, "flatten", {}, [node], name=f"{node.name}_flatten")
            return
        if name in ("interpolate", "upsample"):
            self.upsample(node, arg(2, "scale_factor"), arg(1, "size"), arg(3, "mode", "nearest"),
                          arg(4, "align_corners", None), ins)
            return
        if name == "chunk" and len(ins) == 1:
            return  # the slices become layers where they are read (getitem)
        if target is operator.getitem and ins == [] and hasattr(args[0], "op"):
            src = args[0]
            sname = src.target if isinstance(src.target, str) else getattr(src.target, "__name__", "")
            sources = self.inputs(src)
            if sname != "chunk" or len(sources) != 1:
                raise self.unsupported(src)  # the operation whose result is indexed
            chunks = src.args[1] if len(src.args) > 1 else src.kwargs.get("chunks")
            dim = src.args[2] if len(src.args) > 2 else src.kwargs.get("dim", 0)
            if dim % _rank(sources[0]) != 1 or _shape(sources[0])[1] % chunks:
                raise self.unsupported(src, f"chunk into {chunks} along dim {dim} (cnnsize slices the channels, "
                                            "dim 1, into equal parts)")
            self.add(node, "chunk", {"chunks": chunks, "index": args[1]}, sources)
            return
        raise self.unsupported(node)


_PASS_THROUGH = ("contiguous", "detach", "float", "clone")

_ELEMENTWISE_FUNCTIONS = {
    "relu": "relu", "relu_": "relu", "relu6": "relu6", "hardtanh": "relu6", "leaky_relu": "leaky_relu",
    "leaky_relu_": "leaky_relu", "sigmoid": "sigmoid", "tanh": "tanh", "silu": "silu", "hardswish": "hardswish",
    "hardsigmoid": "hardsigmoid", "gelu": "gelu",
}


def _ELEMENTWISE_MODULES(nn) -> dict:  # noqa: N802 - a table, built when torch is there
    return {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.LeakyReLU: "leaky_relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh",
            nn.SiLU: "silu", nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid", nn.GELU: "gelu",
            nn.Dropout: "dropout"}


SUPPORTED = ("nn.Conv1d/2d/3d", "nn.ConvTranspose1d/2d/3d", "nn.Linear (on flat inputs)", "nn.MaxPool/AvgPool",
             "nn.AdaptiveAvgPool/AdaptiveMaxPool", "nn.BatchNorm1d/2d/3d", "nn.LocalResponseNorm", "nn.ReLU/ReLU6/"
             "LeakyReLU/Sigmoid/Tanh/SiLU/Hardswish/Hardsigmoid/GELU/Softmax(dim=1)", "nn.Dropout", "nn.Flatten",
             "nn.Identity", "nn.ZeroPad", "nn.Upsample", "nn.ChannelShuffle", "+ and torch.add", "* and torch.mul",
             "torch.cat(dim=1)", "torch.flatten(x, 1)", "x.view/reshape(N, -1)", "x.mean(spatial axes)",
             "x.chunk(n, 1)[i]", "the functional forms of the activations and pools")


def _custom_modules() -> tuple:
    return tuple(c for c in _custom_classes().values())


def _custom_classes() -> dict:
    from .executor import modules

    names = ("FlattenLinear", "LocallyConnected2d", "Add", "Concat", "Mul", "Chunk", "ChannelLayerNorm")
    return {n: getattr(modules, n) for n in names if hasattr(modules, n)}


def _is_tensor(node) -> bool:
    """Whether the node's value is one tensor (a tuple of them, or a size, is not a layer's output)."""
    return hasattr(node.meta.get("tensor_meta"), "shape")


def _shape(node) -> tuple:
    return tuple(int(v) for v in node.meta["tensor_meta"].shape)


def _rank(node) -> int:
    return len(node.meta["tensor_meta"].shape)


def _tuple(value, nd: int) -> tuple:
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (value,) * nd


def _op_name(node) -> str:
    if node.op == "call_method":
        return f"the method .{node.target}()"
    if node.op == "call_function":
        target = node.target
        mod = getattr(target, "__module__", None) or ""
        return f"{mod + '.' if mod and mod != 'builtins' else ''}{getattr(target, '__name__', str(target))}"
    return f"{node.op} {node.target}"


# -- YAML text ---------------------------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exp = text.split("e")
            text = f"{mantissa}.0e{exp}"  # PyYAML reads 1e-05 as a string, 1.0e-05 as a number
        return text
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_yaml_value(k)}: {_yaml_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)


def to_yaml(spec: dict) -> str:
    """The spec as YAML text: one flow-style line per layer."""
    lines = ["# Imported from torch by cnnsize.from_torch; shapes follow torch's rounding (fit: floor).",
             f"name: {_yaml_value(spec['name'])}", f"input: {_yaml_value(spec['input'])}",
             f"fit: {spec['fit']}", "layers:"]
    for layer in spec["layers"]:
        (kind, body), = layer.items()
        lines.append(f"  - {kind}: {_yaml_value(body)}")
    return "\n".join(lines) + "\n"


def _check(spec: dict, importer: _Importer, gm_shapes: dict[str, tuple]) -> None:
    """Every imported layer's output shape must be the one torch computed."""
    from . import analyze

    a = analyze(spec)
    for row in a.layers[1:]:
        want = gm_shapes.get(row.name)
        if want is not None and tuple(row.output_shape) != want:
            raise CnnsizeError(f"imported layer '{row.name}' ({row.type}) gives {list(row.output_shape)}, "
                               f"torch gives {list(want)}",
                               hint="this operation means something else in torch; please report it")


def from_torch(module, input_shape: tuple, *, name: str | None = None) -> ImportedSpec:
    """Trace ``module`` (an ``nn.Module``) with torch.fx for one input of ``input_shape`` (C, H, W) and return the
    equivalent spec, as a dict and as YAML text.

    An operation cnnsize cannot represent raises CnnsizeError naming it and its fx node and module path.
    Modules built by cnnsize.build (including its own FlattenLinear, LocallyConnected2d and merge modules)
    map back to their layer kinds and names.
    """
    importer = _Importer(module, tuple(input_shape), name or type(module).__name__)
    spec = importer.run()
    shapes = {}
    for node, layer in importer.alias.items():
        meta = node.meta.get("tensor_meta")
        if layer != "input" and hasattr(meta, "shape"):
            shapes.setdefault(layer, tuple(int(v) for v in meta.shape[1:]))
    _check(spec, importer, shapes)
    return ImportedSpec(spec=spec, yaml=to_yaml(spec))
