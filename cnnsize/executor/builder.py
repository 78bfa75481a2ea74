"""Build an analysed spec as a torch network: one submodule per layer, named as in the spec."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..core.errors import CnnsizeError, SpecError, unknown_name
from ..core.graph import INPUT, tensor_part
from ..core.numeric import is_int
from ..engine.result import Analysis
from ..engine.walk import analyze_graph
from ..spec.sources import load_graph

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
                "float64": torch.float64}


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype for a cnnsize dtype name (int8 sizes memory but cannot run)."""
    if name not in TORCH_DTYPES:
        if name == "int8":
            raise SpecError("int8 can be sized but not run", hint="run with --dtype float32, float16 or bfloat16")
        raise unknown_name("dtype", name, TORCH_DTYPES)
    return TORCH_DTYPES[name]


def resolve_device(device: str | None) -> torch.device:
    """'auto' is CUDA when available, else CPU; a CUDA request without a GPU is a user error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise SpecError(f"unknown device '{device}'", hint="use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpecError("--device cuda was asked for, but torch sees no CUDA GPU",
                        hint="use --device cpu (or auto), or install a CUDA build of torch")
    if dev.type not in ("cpu", "cuda"):
        raise SpecError(f"device '{device}' is not supported", hint="use auto, cpu, cuda or cuda:N")
    return dev


class _Scope(nn.Module):
    """A plain container holding the layers whose dotted names share a prefix (``layer3.2.*``)."""


class GraphModule(nn.Module):
    """The spec's graph as a torch network.

    Layers are registered under their spec names, nested on the dots, so parameters read
    ``layer3.2.conv1.weight``. ``forward`` runs the nodes in spec order and frees each tensor
    after its last reader, as the analysis' inference peak assumes.
    """

    def __init__(self, nodes: list[tuple[str, list[str], nn.Module]], analysis: Analysis):
        super().__init__()
        self.order = [(name, list(inputs)) for name, inputs, _ in nodes]
        self.analysis = analysis
        self.layer_modules: dict[str, nn.Module] = {}
        for name, _, module in nodes:
            self._place(name, module)
        graph = analysis.graph
        first = graph.input_name if graph is not None else INPUT
        self.input_names = list(analysis.inputs)  # the first input's name, then the others' (a spec's inputs:)
        self.output_name = self.order[-1][0] if self.order else first
        readers: dict[str, int] = {first: 0}
        for name, inputs in self.order:
            readers.setdefault(name, 0)
            for src in inputs:
                readers[src] = readers.get(src, 0) + 1
        self.readers = readers

    def _place(self, name: str, module: nn.Module) -> None:
        parts = name.split(".")
        if any(not p for p in parts):
            raise SpecError(f"layer name '{name}' has an empty part between dots", hint="rename the layer")
        parent: nn.Module = self
        for part in parts[:-1]:
            child = parent._modules.get(part)
            if child is None:
                child = _Scope()
                parent._modules[part] = child
            parent = child
        leaf = parts[-1]
        old = parent._modules.get(leaf)
        if isinstance(old, _Scope):  # 'a.b' came before 'a': keep 'a.b' under the layer 'a'
            for key, sub in old._modules.items():
                module._modules[key] = sub
        # Written directly (not add_module) so that names such as 'train' or 'float' stay usable.
        parent._modules[leaf] = module
        self.layer_modules[name] = module

    def layer(self, name: str) -> nn.Module:
        """The module of one layer, by its spec name."""
        if name not in self.layer_modules:
            raise unknown_name("layer", name, self.layer_modules)
        return self.layer_modules[name]

    def own_tensors(self, name: str) -> tuple[list[tuple[str, torch.Tensor]], list[torch.Tensor]]:
        """(named parameters, buffers) of one layer, leaving out layers nested under its name; none for a layer
        that shares another's module (its parameters are that layer's)."""
        node = next((n for n in self.analysis.graph.nodes if n.name == name), None)
        if node is not None and node.shares is not None:
            return [], []
        tied = {tensor for tensor, _ in node.ties} if node is not None else set()
        others = {id(m) for n, m in self.layer_modules.items() if n != name}
        params: list[tuple[str, torch.Tensor]] = []
        buffers: list[torch.Tensor] = []

        def walk(mod: nn.Module) -> None:
            params.extend(mod.named_parameters(recurse=False))
            buffers.extend(mod.buffers(recurse=False))
            for sub in mod._modules.values():
                if sub is not None and id(sub) not in others:
                    walk(sub)

        walk(self.layer_modules[name])
        return [(n, p) for n, p in params if tensor_part(n) not in tied], buffers

    def forward(self, x: Any, *others: torch.Tensor) -> torch.Tensor:
        """The network on its input; with several inputs, each in the spec's order (``model(image, mask)``), or one
        tuple of them (as make_inputs gives), or a dict of them by name."""
        return self.run(self.given(x, others), heads=False)

    def with_heads(self, x: Any, *others: torch.Tensor) -> tuple:
        """The last layer's output and every other output nothing reads (auxiliary heads), for a training
        loss over all of them."""
        return self.run(self.given(x, others), heads=True)

    def given(self, x: Any, others: tuple = ()) -> dict[str, torch.Tensor]:
        """Each input tensor by its name: one per input the spec declares, in its order."""
        if len(self.input_names) == 1:  # (others untouched: fx traces a forward of one input without unpacking it)
            return {self.input_names[0]: x}
        names = self.input_names
        if isinstance(x, dict) and set(x) == set(names):  # by name (from_torch traces it so, keeping the names)
            return {name: x[name] for name in names}
        if isinstance(x, (tuple, list)) and len(x) == len(names):  # one tuple (others untouched, as above)
            return dict(zip(names, x))
        tensors = (*x, *others) if isinstance(x, (tuple, list)) else (x, *others)
        if len(tensors) != len(self.input_names):
            raise SpecError(f"the network takes {len(self.input_names)} input"
                            f"{'' if len(self.input_names) == 1 else 's'} ({', '.join(self.input_names)}), "
                            f"got {len(tensors)}", hint="give one tensor per input, in the spec's order")
        return dict(zip(self.input_names, tensors))

    def run(self, given: dict[str, torch.Tensor], heads: bool):
        first, *_ = given
        values: dict[str, torch.Tensor] = {first: given[first]}
        left = dict(self.readers)
        kept = []
        for name, inputs in self.order:
            if inputs or name not in given:
                out = self.layer_modules[name](*(values[src] for src in inputs))
            else:  # an input beside the first, as given
                out = given[name]
            values[name] = out
            for src in inputs:
                left[src] -= 1
                if left[src] == 0 and src != self.output_name:
                    del values[src]
            if left[name] == 0 and name != self.output_name:
                if heads:
                    kept.append(out)
                del values[name]  # a dead-end branch: nothing reads it
        return (values[self.output_name], *kept) if heads else values[self.output_name]


def make_inputs(analysis: Analysis, batch: int, device: Any, dtype: torch.dtype, fill: Any = None) -> Any:
    """The network's input tensor (``fill``: torch.zeros by default), or with several inputs a tuple of them in the
    spec's order, which GraphModule takes as it takes one."""
    make = torch.zeros if fill is None else fill
    xs = tuple(make((batch, *shape), device=device, dtype=dtype) for shape in analysis.inputs.values())
    return xs[0] if len(xs) == 1 else xs


def first_input(x: Any) -> torch.Tensor:
    """The first input tensor of what make_inputs gives."""
    return x[0] if isinstance(x, tuple) else x


def input_bytes(x: Any) -> int:
    """Bytes of every input tensor of what make_inputs gives."""
    return sum(t.numel() * t.element_size() for t in (x if isinstance(x, tuple) else (x,)))


def as_analysis(spec: Any, *, input_shape: tuple | None = None, fit: str | None = None, batch: int = 1,
                dtype: str = "float32") -> Analysis:
    """An Analysis of the spec with numeric shapes (one that can be built), reusing a given Analysis."""
    if isinstance(spec, Analysis):
        analysis = spec
        other_input = input_shape is not None and (isinstance(input_shape, dict)
                                                   or tuple(input_shape) != tuple(spec.input_shape))
        if other_input or fit is not None or batch != spec.batch or dtype != spec.dtype:
            analysis = analyze_graph(spec.graph, input_shape=input_shape or spec.input_shape, batch=batch,
                                     dtype=dtype, fit=fit)
    else:
        analysis = analyze_graph(load_graph(spec), input_shape=input_shape, batch=batch, dtype=dtype, fit=fit)
    for row in analysis.layers:
        if not all(is_int(v) for v in row.output_shape):
            raise SpecError(f"layer '{row.name}' has the symbolic shape {list(row.output_shape)}; "
                            "a network can only be built for numbers",
                            hint="give a numeric input shape, e.g. --input 3x224x224")
    return analysis


def build_module(spec: Any, *, input_shape: tuple | None = None, fit: str | None = None, device: Any = "cpu",
                 dtype: str = "float32", init: bool = False, analysis: Analysis | None = None) -> GraphModule:
    """Build on the meta device (no allocation, no initialization), then allocate on ``device``.

    Without ``init`` the parameters are zero-filled (a memset, far cheaper than random
    initialization of VGG's 138M parameters, and free of NaN or denormal values that would
    distort CPU timings); running statistics get their defaults either way.
    """
    if analysis is None:
        analysis = as_analysis(spec, input_shape=input_shape, fit=fit, dtype=dtype if dtype != "int8" else "float32")
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    tdtype = torch_dtype(dtype)
    shapes = {row.name: tuple(row.output_shape) for row in analysis.layers}
    built = []
    with torch.device("meta"):
        for node in analysis.graph.nodes:
            ins = [shapes[src] for src in node.inputs]
            try:
                _takes(node.kind.values, tdtype, node.kind.unbounded)
                module = node.kind.build(ins, shapes[node.name])
            except CnnsizeError as exc:
                raise exc.at(node.loc, node.name) from None
            except (ValueError, RuntimeError, TypeError) as exc:
                raise SpecError(f"torch cannot build this layer: {exc}").at(node.loc, node.name) from None
            for pname, p in module.named_parameters():
                p.requires_grad_(node.trainable if isinstance(node.trainable, bool)
                                 else pname.rsplit(".", 1)[-1] in node.trainable)
            built.append((node.name, node.inputs, module))
    model = GraphModule(built, analysis)
    model.to(dtype=tdtype)  # still on meta: free
    # to_empty's empty_like of a meta tensor runs torch's Python reference (importing sympy and the symbolic-shape
    # machinery: 2 s of a small network's validation); the same sizes and strides, allocated directly:
    model._apply(lambda t: torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device=dev))
    with torch.no_grad():
        if init:
            for m in model.modules():
                reset = getattr(m, "reset_parameters", None)
                if callable(reset):
                    reset()
        else:
            for p in model.parameters():
                p.zero_()
            for b in model.buffers():
                b.zero_()
            for m in model.modules():
                reset = getattr(m, "reset_running_stats", None)
                if callable(reset):
                    reset()
    _tie(model, analysis)
    return model.eval()


INT64_MAX = 2**63 - 1


def _takes(values: dict, tdtype: torch.dtype, unbounded: tuple = ()) -> None:
    """Refuse a setting torch cannot take (the report sizes it exactly, but torch's int64 and float arguments end
    there): an integer beyond 2^63 − 1 (a stride of 10^23), a number beyond the dtype's largest (an ELU alpha of
    1e300 in float32); ``unbounded``: the settings the kind's build brings into range itself (roll's shifts)."""
    largest = torch.finfo(tdtype).max
    for key, value in values.items():
        if key in unbounded:
            continue
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, bool):
                continue
            if isinstance(v, int) and abs(v) > INT64_MAX:
                raise SpecError(f"{key} {v:.3g} is beyond the 2^63 − 1 torch takes: the report sizes it, but torch "
                                "cannot build it", hint="give a smaller number")
            if isinstance(v, float) and abs(v) > largest and not math.isinf(v):  # ±inf: a pad's fill (-inf)
                raise SpecError(f"{key} {v:g} is beyond the largest {str(tdtype).replace('torch.', '')} "
                                f"({largest:.3g}): torch cannot compute with it", hint="give a smaller number")


def _tie(model: GraphModule, analysis: Analysis) -> None:
    """A layer that ``shares`` another's parameters gets the very same tensors (torch counts them once), in a
    module of its own, so hooks and FLOP counts still see each call as its layer."""
    for node in analysis.graph.nodes:
        module = model.layer_modules[node.name]
        for tensor, layer in node.ties:  # only its weight (or bias) is the other layer's
            found = [(path, t) for path, t in _own_named(model, layer, buffers=False) if tensor_part(path) == tensor]
            _set_tensors(node.name, module, layer, found)
        if node.shares is not None:
            _set_tensors(node.name, module, node.shares, _own_named(model, node.shares, buffers=True))


def _own_named(model: GraphModule, layer: str, buffers: bool) -> list[tuple[str, torch.Tensor]]:
    """(path, tensor) of the parameters (and ``buffers``) layer ``layer``'s module holds, leaving out the layers
    nested under its name (``a.inner`` lives inside ``a``'s module but is a layer of its own)."""
    others = {id(m) for n, m in model.layer_modules.items() if n != layer}
    found: list[tuple[str, torch.Tensor]] = []

    def walk(module: nn.Module, prefix: str) -> None:
        found.extend((prefix + n, t) for n, t in module.named_parameters(recurse=False))
        if buffers:
            found.extend((prefix + n, t) for n, t in module.named_buffers(recurse=False))
        for key, sub in module._modules.items():
            if sub is not None and id(sub) not in others:
                walk(sub, prefix + key + ".")

    walk(model.layer_modules[layer], "")
    return found


def _set_tensors(name: str, module: nn.Module, owner: str, tensors: list) -> None:
    """Each (path, tensor) of layer ``owner`` set on ``module`` (layer ``name``) at the same path: the very tensor,
    held by both."""
    for path, tensor in tensors:
        *parents, leaf = path.split(".")
        try:
            target = module.get_submodule(".".join(parents)) if parents else module
        except AttributeError:
            target = None
        if target is None or not hasattr(target, leaf):
            raise SpecError(f"'{name}' shares '{owner}''s tensor '{path}', which its own module does not hold",
                            hint="a tied tensor joins two layers whose torch modules hold it under one name",
                            layer=name)
        setattr(target, leaf, tensor)
