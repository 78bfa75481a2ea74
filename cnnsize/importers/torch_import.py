"""From torch to a spec: trace an ``nn.Module`` with torch.fx and write the equivalent cnnsize spec.

Every traced operation maps to one cnnsize layer kind, or the import stops with an error naming the
operation and where it sits (fx node and module path): nothing is dropped silently. Shapes follow
torch's own rules (``fit: floor``), so any model that runs in torch and is made of supported layers
imports. Each imported layer's output shape is checked against the shape torch computes, so a
mapping that would change the network's meaning is caught too. torch is imported here only.
"""

from __future__ import annotations

import copy
import operator
import sys
import types
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..core.errors import CnnsizeError, SpecError, Unrepresentable, unknown_name
from ..core.graph import tensor_part
from ..core.numeric import no_gc
from ..core.optional import require_torch
from ..layers.base import IN_PLACE, OPAQUE_KIND, PASS_KIND, PASS_THROUGH, REGISTRY, UNUSED_KIND, TensorArg, TorchCall
from ..spec.write import layer_entry, to_yaml, written_settings  # noqa: F401 - re-exported
from . import ImportedSpec, analyze_spec
from .torch_inputs import Feed, bind, read_shapes


class _Registry:
    """The torch each layer kind declares it stands for, resolved once per import: module class -> kinds,
    function/method/operator name -> kinds, in registration order."""

    def __init__(self, torch):
        import importlib


        self.modules: dict[type, list] = {}
        self.functions: dict[str, list] = {}
        for kind in REGISTRY.values():
            for name in kind.torch_modules:
                path, dot, attr = name.rpartition(".")
                if dot and path.split(".")[0] != "cnnsize" and path.split(".")[0] not in sys.modules:
                    continue  # a model holding this class has imported its package (torchvision's): no import here
                try:
                    owner = importlib.import_module(path) if dot else torch.nn
                except ImportError:  # pragma: no cover - a module of a newer torch
                    continue
                cls = getattr(owner, attr, None)
                if isinstance(cls, type):
                    self.modules.setdefault(cls, []).append(kind)
            for name in kind.torch_functions:
                self.functions.setdefault(name, []).append(kind)

    def leaves(self) -> tuple:
        return tuple(self.modules)


def _leaves(value, label: Any = None) -> list[tuple[Any, Any]]:
    """(label, value) of each output in a forward's result: a tensor, or tuples, namedtuples, lists, dicts of them."""
    target = getattr(value, "target", None)
    if getattr(value, "op", None) == "call_function" and isinstance(target, type) and issubclass(target, tuple):
        fields = getattr(target, "_fields", None) or [label] * len(value.args)  # a namedtuple built in forward
        items = [*zip(fields, value.args), *value.kwargs.items()]
        return [leaf for key, v in items for leaf in _leaves(v, key)]
    if isinstance(value, dict):
        return [leaf for key, v in value.items() for leaf in _leaves(v, key)]
    if isinstance(value, (tuple, list)):
        fields = getattr(value, "_fields", None) or [label] * len(value)
        return [leaf for key, v in zip(fields, value) for leaf in _leaves(v, key)]
    return [] if value is None else [(label, value)]


class _Batch(NamedTuple):
    """Where a traced tensor holds the batch: torch's ``axis``, and the per-sample values ``merged`` into it with
    the batch outermost (1: the axis is the batch alone; 49: a Swin window attention's B·49 windows)."""

    axis: int
    merged: int


_STANDARD = _Batch(0, 1)  # the batch alone in front, as cnnsize's per-sample shapes leave it out
_NO_BATCH = _Batch(-1, 1)  # a tensor that does not grow with the batch
_MIXED = _Batch(-1, 0)  # one that grows otherwise (samples mixed)


def _batch_text(b: _Batch) -> str:
    if b.axis < 0:
        return "mixed with the per-sample axes" if b == _MIXED else "nowhere"
    if b.merged == 1:
        return f"in torch's axis {b.axis}"
    return f"merged with {b.merged} per-sample values in torch's axis {b.axis}"


class _Meta(NamedTuple):
    """A traced tensor's shape, dtype and strides (the ``tensor_meta`` of its fx node)."""

    shape: tuple
    dtype: Any
    stride: tuple


@dataclass
class _Traced:
    """The traced graph and the module its nodes call into: what fx's GraphModule holds, without the copy of the
    module tree and the generated code it makes (a quarter of a large model's import)."""

    root: Any  # the copy of the model that was traced (meta tensors)
    graph: Any
    source: Any = None  # the model itself (read, never run or changed)
    originals: dict = field(default_factory=dict)  # id of a meta stand-in in root -> the model's own tensor

    def get_submodule(self, target: str):
        return self.root.get_submodule(target)


def _copy_tree(root, tensor):
    """A copy of the module tree under ``root`` to trace and run instead of the user's model, which an import must
    never change. Each module object is copied once (a module registered under two names stays one module, so a
    second call of it is still seen as one); its registered parameters and buffers become ``tensor(t)`` (one
    replacement per tensor: tied weights stay tied); its other attributes are shared, but containers (hooks,
    caches, lists of layers) are new ones, and wherever they or attributes name a module of the tree (or a hook
    bound to one) they name its copy. Nothing of the original is written, whatever the copy's forward does to
    itself (training flags, attributes set in forward, reparametrizations)."""
    copies: dict[int, Any] = {}
    tensors: dict[int, Any] = {}
    originals = list(root.modules(remove_duplicate=True))
    for m in originals:
        copies[id(m)] = type(m).__new__(type(m))
    for m in originals:
        state = {key: _remap(value, copies) for key, value in m.__dict__.items()
                 if key not in ("_parameters", "_buffers", "_modules")}
        for key in ("_parameters", "_buffers"):
            registered = dict(m.__dict__[key])
            for name, t in registered.items():
                if t is not None and id(t) not in tensors:
                    tensors[id(t)] = tensor(t)
                registered[name] = None if t is None else tensors[id(t)]
            state[key] = registered
        state["_modules"] = {name: None if sub is None else copies[id(sub)] for name, sub in m._modules.items()}
        object.__setattr__(copies[id(m)], "__dict__", state)
    return copies[id(root)]


_PLAIN = frozenset((bool, int, float, str, bytes, type(None)))  # most of a module's attributes: kept as they are


def _remap(value, copies: dict, depth: int = 0):
    """``value`` with the modules of the tree (and methods bound to them) it holds replaced by their copies, in new
    containers (dicts, lists, sets, tuples, a few levels deep); anything else is the same object."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    found = copies.get(id(value))
    if found is not None:
        return found
    if kind is types.MethodType and id(value.__self__) in copies:
        return types.MethodType(value.__func__, copies[id(value.__self__)])
    if depth > 4 or not isinstance(value, (dict, list, set, tuple)):
        return value
    if isinstance(value, dict):
        new = value.copy() if kind is dict or kind is OrderedDict else copy.copy(value)  # the hooks: OrderedDicts
        for key in new:
            new[key] = _remap(new[key], copies, depth + 1)
        return new
    items = [_remap(v, copies, depth + 1) for v in value]
    if isinstance(value, tuple):
        if all(a is b for a, b in zip(items, value)):
            return value
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    found = copy.copy(value)
    found.clear()
    (found.extend if isinstance(found, list) else found.update)(items)
    return found


def _meta_tensor(t):
    """A tensor's stand-in on the meta device: same shape, strides, dtype, class (Parameter or not) and
    requires_grad, no memory."""
    nn = require_torch().nn
    meta = require_torch().empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta")
    return nn.Parameter(meta, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else meta


def _real_copy(module, originals: dict):
    """A copy of ``module`` (of the traced copy) with tensors of its own holding the values of the user's
    (``originals``: meta stand-in's id -> the user's tensor): what runs for real (an untraceable submodule on zeros),
    so that whatever its forward writes (buffers updated in place) stays in the copy."""
    torch = require_torch()
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    def clone(t):
        value = originals.get(id(t), t).detach().clone()
        return torch.nn.Parameter(value, requires_grad=t.requires_grad) if isinstance(t, torch.nn.Parameter) \
            else value

    with unset_fake_temporarily():
        return _copy_tree(module, clone).eval()


def _shape_of_other(graph) -> None:
    """``a.reshape_as(b)`` and ``a.view_as(b)`` written as ``a.reshape(b.size())``: ``b`` gives a shape alone (LeViT's
    ``bn(x.flatten(0, 1)).reshape_as(x)``, whose ``x`` holds the batch elsewhere than ``a``), which the reshape reads as
    a size, not as a tensor."""
    for n in list(graph.nodes):
        if n.op == "call_method" and n.target in ("reshape_as", "view_as") and len(n.args) == 2 and not n.kwargs:
            with graph.inserting_before(n):
                size = graph.call_method("size", (n.args[1],))
            size.meta.update({k: v for k, v in n.args[1].meta.items() if k == "nn_module_stack"})
            n.target = "reshape" if n.target == "reshape_as" else "view"
            n.args = (n.args[0], size)


def _propagate(gm: _Traced, input_shape: Any, real: tuple = (), count: bool = False, batch: int = 1) -> None:
    """Every node's output shape (``tensor_meta``) and FLOPs, from one run on the meta device: torch's own shape
    rules with no values computed and no memory for activations, whatever the input size (FLOPs with ``count``,
    which opaque layers need: FlopCounterMode decomposes some operations, slowly). ``gm.root`` is a copy of the
    model whose parameters and buffers are meta tensors; a model that mixes devices on its own is run on fake
    tensors instead (slower), as a copy of the model sharing its real tensors, which fake tensors never write.
    Untraceable submodules (``real``) run for real on copies of their own. The user's model is never run. A
    ``batch`` above 1 notes each node's shape at that batch only (``batch_meta``): where the batch axis went.
    ``input_shape``: the one input's shape, or each input's by its placeholder's target (several inputs)."""
    torch = require_torch()
    _shape_of_other(gm.graph)

    tensors = [*gm.source.parameters(), *gm.source.buffers()]
    param = next(iter(tensors), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    def on_meta():
        with torch.no_grad(), torch.device("meta"):  # tensors built in the forward (torch.arange(n)) on meta too
            _run(gm, gm.root, _given(gm.graph, input_shape, lambda s: torch.zeros(batch, *s, dtype=dtype,
                                                                                   device="meta")), real, None, count)

    def on_fake():
        from torch._subclasses.fake_tensor import FakeTensorMode

        shared = _copy_tree(gm.root, lambda t: gm.originals.get(id(t), t)).eval()  # as traced (fx's constants)
        fake = FakeTensorMode(allow_non_fake_inputs=True)
        with fake, torch.no_grad():
            device = param.device if param is not None else "cpu"
            x = _given(gm.graph, input_shape, lambda s: torch.zeros(batch, *s, dtype=dtype, device=device))
            _run(gm, shared, x, real, fake, count)

    # FLOPs on fake tensors first, which keep the model's device: torch picks the kernels (einsum's) it would; a
    # submodule traced again holds constants made on the meta device, which only the meta run takes
    first, second = (on_fake, on_meta) if count else (on_meta, on_fake)
    try:
        first()
    except (RuntimeError, NotImplementedError, TypeError):
        second()


_SAME_SHAPE = {"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "ReLU", "ReLU6", "SiLU", "GELU", "Hardswish",
               "Hardsigmoid", "Sigmoid", "Tanh", "LeakyReLU", "ELU", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
               "Identity", "GroupNorm", "LocalResponseNorm", "PReLU", "Softmax", "LogSoftmax", "Hardtanh",
               "ChannelLayerNorm", "LayerScale", "StochasticDepth"}  # output: the input's shape and dtype


def _shape_at_once(torch, module, x):
    """The output of a module whose shape torch's rules give at once (a torch or cnnsize class), else None: no
    need to run it (meta kernels written in Python, such as empty_like's, are slow)."""
    name = type(module).__name__
    if not type(module).__module__.startswith(("torch.nn.", "torchvision.", "cnnsize.")):
        return None  # a class of the model's own, whatever its name: run it
    if name == "LayerNorm" and tuple(x.shape[-len(module.normalized_shape):]) == module.normalized_shape:
        return x.new_empty(x.shape)  # a contiguous result, as torch's layer norm gives
    if name in _SAME_SHAPE:
        if getattr(module, "inplace", False):
            return x
        return x.new_empty(x.shape) if x.is_contiguous() else torch.empty_like(x)
    if name == "Linear" and x.dim() and x.shape[-1] == module.in_features:
        return x.new_empty((*x.shape[:-1], module.out_features))
    return None


def _run_for_real(torch, gm, target: str, args, kwargs, fake):
    """A submodule fx could not trace into (control flow on values), run for real on zeros of its inputs' shapes,
    on a copy of its own; its outputs go back as meta (or fake) tensors."""
    from torch._subclasses.fake_tensor import unset_fake_temporarily
    from torch.fx.node import map_aggregate

    def zeros(v):
        return torch.zeros(v.shape, dtype=v.dtype) if isinstance(v, torch.Tensor) else v

    def back(v):
        if not isinstance(v, torch.Tensor):
            return v
        return fake.from_tensor(v) if fake is not None else torch.empty_like(v, device="meta")

    with unset_fake_temporarily(), torch.device("cpu"):
        own = _real_copy(gm.root.get_submodule(target), gm.originals)
        out = own(*map_aggregate(args, zeros), **map_aggregate(kwargs, zeros))
    return map_aggregate(out, back)


def _note_result(torch, n, result, batch: int = 1) -> None:
    """Keep what the import reads of a node's result: its tensors' shapes, dtypes and strides (``tensor_meta``),
    whether it is a view, or the plain number a size computation gives (``val``); at a batch above 1, its shape
    alone (``batch_meta``)."""
    from torch.fx.node import map_aggregate

    if batch != 1:
        if isinstance(result, torch.Tensor):
            n.meta["batch_meta"] = tuple(result.shape)
        return

    found = []

    def meta(obj):
        if isinstance(obj, torch.Tensor):
            found.append(obj)
            return _Meta(obj.shape, obj.dtype, obj.stride())  # fx's own metadata asks for far more
        return obj

    value = map_aggregate(result, meta)
    if found:
        n.meta["tensor_meta"] = value
        if isinstance(result, torch.Tensor):
            n.meta["view"] = result._base is not None  # reshape is a view only where the strides allow
    elif isinstance(result, (int, float, tuple)):
        n.meta["val"] = result  # a size or a number computed from sizes (x / x.shape[-1] ** 0.5, MViT's thw)


def _given(graph, shapes: Any, make) -> list:
    """The values of the graph's placeholders for a run: a tensor of each input's shape (``make(shape)``), the
    others' defaults (kwargs' values, which tracing fixed)."""
    if not isinstance(shapes, dict):  # one input: the first placeholder without a default
        first = next((n.target for n in graph.nodes if n.op == "placeholder" and not n.args), None)
        shapes = {first: shapes}
    return [make(shapes[n.target]) if n.target in shapes else n.args[0] if n.args else None
            for n in graph.nodes if n.op == "placeholder" and not str(n.target).startswith("*")]  # *args: none


def _run(gm, root, xs: list, real: tuple, fake, count: bool) -> None:
    batch = next(x.shape[0] for x in xs if hasattr(x, "shape"))
    torch = require_torch()
    import torch.fx as fx
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)

    class Propagate(fx.Interpreter):
        def call_module(self, target, args, kwargs):
            module = self.fetch_attr(target)
            if not count and len(args) == 1 and not kwargs and isinstance(args[0], torch.Tensor):
                out = _shape_at_once(torch, module, args[0])
                if out is not None:
                    return out
            if type(module) not in real:
                return super().call_module(target, args, kwargs)
            return _run_for_real(torch, gm, target, args, kwargs, fake)

        def run_node(self, n):
            before = counter.get_total_flops() if count else 0
            result = super().run_node(n)
            if count:
                n.meta["flops"] = counter.get_total_flops() - before  # what an opaque layer carries
            if n.op == "call_function" and n.target is torch.nn.functional.scaled_dot_product_attention and \
                    isinstance(result, torch.Tensor) and result.dim() == 4:
                # CPU's fused kernel (CUDA's too) lays its (B, h, L, E) output out as (B, L, h, E), so that the usual
                # transpose(1, 2).reshape(B, L, h·E) after it is a view; the meta kernel's is contiguous
                result = result.transpose(1, 2).contiguous().transpose(1, 2)
            _note_result(torch, n, result, batch)
            return result

    if count:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        # attention inside a measured call counted as the sdpa kind counts it (the math path, which the meta device
        # takes): FlopCounterMode has no formula for CPU's fused kernel, and would count none of its products
        with counter, sdpa_kernel(SDPBackend.MATH):
            Propagate(root, graph=gm.graph).run(*xs)
    else:
        Propagate(root, graph=gm.graph).run(*xs)


def _proxy_class():
    """fx's Proxy, with the in-place operators and iteration fx's own gets wrong for the import."""
    import torch.fx as fx

    class Proxy(fx.Proxy):  # fx's own Proxy records x += y as x + y: the in-place form is lost
        def __iadd__(self, other):
            return self.tracer.create_proxy("call_function", operator.iadd, (self, other), {})

        def __imul__(self, other):
            return self.tracer.create_proxy("call_function", operator.imul, (self, other), {})

        def __isub__(self, other):
            return self.tracer.create_proxy("call_function", operator.isub, (self, other), {})

        def __itruediv__(self, other):
            return self.tracer.create_proxy("call_function", operator.itruediv, (self, other), {})

        def __iter__(self):  # fx iterates only what is unpacked at once; sum(x.chunk(2, 1)) iterates too
            parts = _parts(self.node)
            if parts is not None:
                return iter([self[i] for i in range(parts)])
            import dis
            import inspect
            from bisect import bisect_left

            frame = inspect.currentframe().f_back  # fx's own rule, which reads the caller's bytecode
            code = list(dis.get_instructions(frame.f_code))
            at = bisect_left(code, frame.f_lasti, key=lambda i: i.offset) if sys.version_info >= (3, 11) \
                else frame.f_lasti // 2
            if code[at].opname == "UNPACK_SEQUENCE":  # a, b = x.shape
                return (self[i] for i in range(code[at].argval))
            return self.tracer.iter(self)

    return Proxy


def _shape_proxy_class(torch, proxy_class):
    """The shape tracer's proxy: a size asked of a traced tensor answers from the value recorded on its node."""

    class ShapeProxy(proxy_class):
        """A proxy that knows its tensor's shape: size(), dim(), shape and numel() are plain numbers, but for a size
        that differs at batch 2 (where the tracer runs both): that one is traced, so that the batch stays a variable
        of the graph (reshape(B, N, 3, h, d)) rather than the number 1."""

        def _meta(self):
            v = self.node.meta.get("shape_value")
            if not isinstance(v, torch.Tensor):
                raise RuntimeError("no shape")
            return v

        def _sizes(self) -> tuple:
            v, twice = self._meta(), self.node.meta.get("shape_value2")
            if not isinstance(twice, torch.Tensor) or twice.dim() != v.dim():
                return tuple(v.shape)
            traced = proxy_class.__getattr__(self, "size")  # fx's x.size, whose call is recorded
            return tuple(n if n == m else traced(i) for i, (n, m) in enumerate(zip(v.shape, twice.shape)))

        def size(self, dim=None):
            sizes = self._sizes()
            return torch.Size(sizes) if dim is None and all(isinstance(n, int) for n in sizes) else \
                sizes if dim is None else sizes[dim]

        def dim(self):
            return self._meta().dim()

        def numel(self):
            sizes = self._sizes()
            if all(isinstance(n, int) for n in sizes):
                return self._meta().numel()
            return proxy_class.__getattr__(self, "numel")()

        @property
        def shape(self):
            return self.size()

        @property
        def ndim(self):
            return self._meta().dim()

    return ShapeProxy


def _attr(root, target: str):
    """The tensor (or other attribute) a get_attr reads: a parameter, a buffer, or a constant fx made."""
    path, _, name = target.rpartition(".")
    return getattr(root.get_submodule(path) if path else root, name, None)


def _call_node(root, kind: str, target, a: tuple, k: dict):
    """What a recorded call returns, run on the values ``a`` and ``k`` of its arguments."""
    from torch.fx._symbolic_trace import _orig_module_call

    if kind == "call_function":
        return target(*a, **k)
    if kind == "call_method":
        return getattr(a[0], target)(*a[1:], **k)
    if kind == "call_module":
        return _orig_module_call(root.get_submodule(target), *a, **k)  # fx's own call
    return _attr(root, target) if kind == "get_attr" else None


def _erase_after(graph, last) -> None:
    """Erase what running a call recorded after ``last``: a module run on fake tensors with fx's proxies of its
    parameters (EfficientViT-MSRA's ConvNorm, inlined) records its own operations on the fake tensors, which are no
    part of the model's graph (and would run on a fake tensor the meta run cannot take)."""
    for n in reversed(graph.nodes):
        if n is last:
            break
        graph.erase_node(n)


def _shape_tracer_class(torch, fake, tracer_class, proxy_class):
    """The import's tracer, whose proxies know their tensors' shapes: each traced operation is run on fake tensors
    as it is recorded, so size(), dim(), shape and numel() are plain numbers and control flow on shapes takes its
    branch. An operation that does not run leaves no value: a shape asked of it fails the trace. Given inputs at
    batch 2 too (``inputs2``), each operation runs at both batches, and a size that differs is traced."""
    from torch.fx.node import map_aggregate

    ShapeProxy = _shape_proxy_class(torch, proxy_class)

    class ShapeTracer(tracer_class):
        evaluating = False  # while a recorded call runs on fake tensors: its parameters are tensors, not proxies
        inputs2: list | None = None
        inlining = False  # a submodule traced again (its calls keep fx's proxies, whatever inputs2 says)
        running = False  # while evaluate runs a call

        def proxy(self, node):
            return ShapeProxy(node, self)

        def getattr(self, attr, attr_val, parameter_proxy_cache):
            return attr_val if self.evaluating else super().getattr(attr, attr_val, parameter_proxy_cache)

        def call_module(self, m, forward, args, kwargs):
            return forward(*args, **kwargs) if self.evaluating else super().call_module(m, forward, args, kwargs)

        def create_proxy(self, kind, target, args, kwargs, *rest, **more):
            proxy = super().create_proxy(kind, target, args, kwargs, *rest, **more)
            node = proxy.node
            if kind == "placeholder":
                node.meta["shape_value"] = self.inputs.pop(0) if self.inputs else None
                if self.inputs2 is not None:
                    node.meta["shape_value2"] = self.inputs2.pop(0) if self.inputs2 else None
                return proxy
            if self.running:  # recorded while a call runs (its module's own operations on fx's proxies): undone
                return proxy
            for key in ("shape_value", "shape_value2") if self.inputs2 is not None else ("shape_value",):
                node.meta[key] = self.evaluate(kind, target, node, key)
            return proxy

        def evaluate(self, kind, target, node, key):
            """The call's result on fake tensors, from its arguments' values (``key``: at batch 1 or 2)."""
            def value(a):
                return a.meta.get(key) if hasattr(a, "meta") else a

            a, k = map_aggregate(node.args, value), map_aggregate(node.kwargs, value)
            # the model's own forward traced at two batches reads parameters as tensors while a call runs; a submodule
            # inlined (one batch) keeps fx's proxies, so that a call whose batch its sizes fix stays measured whole
            self.evaluating = self.inputs2 is not None and not self.inlining
            last = next(iter(reversed(self.graph.nodes)))
            self.running = True
            try:
                with fake, torch.no_grad():
                    return _call_node(self.root, kind, target, a, k)
            except Exception:  # noqa: BLE001 - no value: a shape asked of it fails the trace
                return None
            finally:
                self.evaluating = self.running = False
                _erase_after(self.graph, last)

    return ShapeTracer


def _inline_call(gm, node, tracer, fake, twice: bool = False) -> bool:
    """Trace one call of an untraceable submodule with ``tracer`` (a shape tracer) on fake inputs of the call's
    shapes and put its operations in the graph in its place, under the submodule's path; whether it traced.
    ``twice``: on its inputs at batch 2 too (their ``batch_meta``), so that a size that grows with the batch is traced
    (EfficientViT-MSRA's windows, ``x.reshape(B * nH * nW, ws, ws, C)``), not fixed at batch 1's."""
    torch = require_torch()
    module = gm.get_submodule(node.target)
    # fake inputs on the module's own device: torch's fake kernels (2.14's conv) refuse a meta input beside
    # a real weight; made inside the fake mode, they take no memory
    own = next(iter([*module.parameters(), *module.buffers()]), None)
    device = own.device if own is not None else torch.device("cpu")
    with fake:
        tracer.inputs = [torch.empty(a.meta["tensor_meta"].shape, dtype=a.meta["tensor_meta"].dtype,
                                     device=device) for a in node.args]
        if twice:
            tracer.inputs2 = [torch.empty(a.meta["batch_meta"], dtype=a.meta["tensor_meta"].dtype, device=device)
                              for a in node.args]
            tracer.inlining = True
    try:
        sub = tracer.trace(module)
    except Exception:  # noqa: BLE001 - control flow on values: it stays one measured call
        return False
    places = [n for n in sub.nodes if n.op == "placeholder"]
    if len(places) != len(node.args):
        return False
    for n in sub.nodes:
        n.meta.pop("shape_value", None)
        n.meta.pop("shape_value2", None)
        if n.op in ("get_attr", "call_module"):
            n.target = f"{node.target}.{n.target}"
        stack = n.meta.get("nn_module_stack")
        if stack:
            n.meta["nn_module_stack"] = {f"{node.target}.{k}": (f"{node.target}.{path}", t)
                                         for k, (path, t) in stack.items()}
    copied = dict(zip(places, node.args))
    with gm.graph.inserting_before(node):
        out = gm.graph.graph_copy(sub, copied)
    for m in module.modules():  # a constant the forward built and keeps as a buffer (stored_in_buffer)
        for b in m._buffers.values():
            if isinstance(b, torch.fx.Proxy) and copied.get(b.node) is not None:
                copied[b.node].meta["stored_buffer"] = True
    node.replace_all_uses_with(out)
    gm.graph.erase_node(node)
    return True


def _constants_on_meta(root, graph, stand_in) -> None:
    """The tensors fx keeps as constants of the graph (``_tensor_constant0``: torch.ones(4) or torch.arange(5) built in
    the forward from numbers alone, which the tracer computes at once) as meta stand-ins, as the parameters are: the
    meta run then takes them. fx sets them on the traced copy, never on the user's model."""
    torch = require_torch()
    registered = {name for name, _ in root.named_parameters(remove_duplicate=False)} | \
        {name for name, _ in root.named_buffers(remove_duplicate=False)}
    for n in graph.nodes:
        if n.op != "get_attr" or n.target in registered or "." in n.target:
            continue
        t = getattr(root, n.target, None)
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            setattr(root, n.target, stand_in(t))


def _first_answer(call: TorchCall, kinds: list) -> tuple[Any, Any, Unrepresentable | None]:
    """(kind, answer, None) for the first kind that stands for the call, else (None, None, the first refusal):
    a kind's reason for refusing says more than that no kind answered."""
    refusal = None
    for kind in kinds:
        try:
            answer = kind.from_torch(call)
        except Unrepresentable as exc:
            refusal = refusal or exc
            continue
        if answer is not None:
            return kind, answer, None
    return None, None, refusal


def _layer_class():
    nn = require_torch().nn

    class Layer(nn.Module):
        """A bare layer given as the model, held under its class name so the fx graph has one call of it."""

        def __init__(self, layer):
            super().__init__()
            self.held = type(layer).__name__.lower()
            self.add_module(self.held, layer)

        def forward(self, x):
            return getattr(self, self.held)(x)

    return Layer


def _Layer(layer):  # noqa: N802 - a class made when torch is there
    return _layer_class()(layer)


def supported() -> dict[str, tuple]:
    """Each layer kind's torch modules and functions, as it declares them (what from_torch imports)."""

    return {name: (*kind.torch_modules, *kind.torch_functions) for name, kind in REGISTRY.items()
            if kind.torch_modules or kind.torch_functions}


class _Importer:
    def __init__(self, module, input_shape: Any, name: str, opaque: bool = False, kwargs: dict | None = None):
        self.opaque = opaque
        self.kwargs = dict(kwargs or {})
        self.torch = require_torch()
        self.registry = _Registry(self.torch)
        self.source = module  # the user's model: read, never run or changed
        self.root = module  # the copy that is traced (made in trace)
        self.given = input_shape  # one shape, a tuple or list of shapes, or a dict of names to shapes (torch_inputs)
        how, shapes = read_shapes(input_shape)
        self.input_shape: Any = shapes if how == "one" else None  # one input's; several: by placeholder (trace)
        self.feed: Feed | None = None  # how the shapes feed the forward's arguments (arguments)
        self.input_by_target: dict[str, str] = {}  # fx placeholder target -> the input it is (placeholders)
        self.first_input = "input"
        self.name = name
        self.layers: list[dict] = []
        self.names: set[str] = {"input"}
        self.alias: dict[Any, str] = {}  # fx node -> the layer name holding its value
        self.sources: dict[str, list[str]] = {}  # layer -> the layers it reads
        self.owners: dict[tuple, str] = {}  # the ids of a module's tensors -> the layer that holds them
        self.held: set[int] = set()  # ids of the tensors opaque layers count, and modules' that layers hold
        self.reads: dict[str, dict[str, tuple]] = {}  # layer -> the ids of the parameters it reads, by figure
        self.numel: dict[int, int] = {}  # id of a parameter read -> its elements
        self.constant: set = set()  # nodes of parameters and buffers, and of what is computed from them alone
        # of those, the ones built with the batch in their shape (torch.zeros(B, H, W)): the same for every sample, but
        # made (and computed on) once per sample
        self.per_sample: set = set()
        self.registered: dict | None = None  # id -> the traced copy's parameters and buffers (made when asked)
        self.stored: set | None = None  # nodes of constants the forward keeps as buffers (made when asked)
        self.counted_calls: set = set()  # calls computing constants whose MACs a layer counts (const_op's)
        self.untraceable: set[type] = set()  # module classes fx could not trace into: kept as measured
        self.last = "input"
        self.batch_run: bool | None = None  # whether the run at batch 2 (where the batch axes went) succeeded
        self.batch_tried = False  # whether that run was tried whatever the shapes (batch_of's force)
        self.outputs: list[tuple[Any, str]] = []
        self.main = "input"
        if how == "named":
            self.names.update(shapes)  # no layer takes an input's name

    # -- tracing -------------------------------------------------------------------------------------------------
    def trace(self):
        import torch.fx as fx

        leaves = self.registry.leaves()

        Proxy = _proxy_class()

        class Tracer(fx.Tracer):
            def is_leaf_module(self, m, qualname):  # modules a kind stands for are single layers
                return type(m) in leaves or super().is_leaf_module(m, qualname)

            def proxy(self, node):
                return Proxy(node, self)

            def call_module(self, m, forward, args, kwargs):
                """A submodule fx cannot trace into (Python control flow on values): one call, kept as measured."""
                if self.is_leaf_module(m, self.path_of_module(m)) or m is importer.root:
                    return super().call_module(m, forward, args, kwargs)
                last = next(iter(reversed(self.graph.nodes)), None)
                depth = len(self.module_stack)
                try:
                    return super().call_module(m, forward, args, kwargs)
                except Exception:  # noqa: BLE001 - fx raises many kinds
                    for n in reversed(list(self.graph.nodes)):  # undo what the failed trace added
                        if n is last:
                            break
                        self.graph.erase_node(n)
                    while len(self.module_stack) > depth:  # fx pops its module scope only when the call returns
                        self.module_stack.popitem(last=True)
                    importer.untraceable.add(type(m))
                    return self.create_proxy("call_module", self.path_of_module(m), args, kwargs)

        importer = self
        tracer = Tracer()
        if tracer.is_leaf_module(self.source, ""):  # a bare layer (nn.Conv2d, ...) as the model: one call of it
            self.source = _Layer(self.source)  # a new module holding the user's: neither is changed
        originals: dict[int, Any] = {}

        def stand_in(t):
            meta = _meta_tensor(t)
            originals[id(meta)] = t
            return meta

        self.root = _copy_tree(self.source, stand_in)  # what is traced and run: never the user's model
        graph = self.forward_graph(tracer)
        self.root.eval()
        _constants_on_meta(self.root, graph, stand_in)
        inputs = [n for n in graph.nodes if n.op == "placeholder" and not n.args  # args: a default
                  and not str(n.target).startswith("*")]  # *args given nothing
        self.placeholders(inputs)
        gm = _Traced(self.root, graph, self.source, originals)
        try:
            _propagate(gm, self.input_shape, tuple(self.untraceable))
            # a call that reads what an inlined call computes (the module called again) has its inputs' shapes
            # only once that is run: inline again until nothing changes (a bounded number of rounds)
            for _ in range(_INLINE_ROUNDS):
                if not (self.untraceable and self.inline_leaves(gm, Tracer, Proxy)):
                    break
                _propagate(gm, self.input_shape, tuple(self.untraceable))
        except Exception as exc:
            raise SpecError(f"the module does not run on {self.given_text()}: "
                            f"{type(exc).__name__}: {exc}".split("\n")[0],
                            hint="give the input shape the model expects (C x H x W)") from None
        return gm

    def placeholders(self, inputs: list) -> None:
        """Which input each tensor placeholder is (several inputs: ``input_shape`` becomes their shapes by target);
        a tensor argument left without a shape is refused, naming how to give it."""
        feed = self.feed
        assert feed is not None
        if feed.several:
            self.input_shape = {t: feed.shapes[name] for t, name in feed.placeholders.items()}
            self.input_by_target = dict(feed.placeholders)
        else:
            self.input_by_target = {inputs[0].target: "input"} if inputs else {}
        left = [n for n in inputs if n.target not in self.input_by_target]
        if left:
            takes = ", ".join(str(n.target) for n in inputs)
            raise Unrepresentable(f"a second input '{left[0].target}' (forward takes {takes}) with no shape given",
                                  hint=f"give a shape for each input by name, e.g. from_torch(model, "
                                       f"{{'{inputs[0].target}': (3, 224, 224), '{left[0].target}': ...}}) "
                                       f"(cnnsize import --input {left[0].target}=3x224x224, repeated), or a "
                                       "default in the forward")
        self.first_input = feed.names[0]
        self.last = self.main = self.first_input

    def given_text(self) -> str:
        """The input(s) as the error messages say them: a 1×3×224×224 input, or each by name."""
        if self.feed is None or not self.feed.several:
            return f"a 1×{'×'.join(map(str, self.input_shape))} input"
        return "inputs " + ", ".join(f"{name} 1×{'×'.join(map(str, shape))}" for name, shape in
                                     self.feed.shapes.items())

    def forward_graph(self, tracer):
        """The graph of the eval forward; in a model in training, of the training forward where that uses more of
        the parameters (aux heads only training uses). The parameters it leaves unused go in ``unused_held``."""
        graph = self.graph(tracer, training=False)
        unused = self.unused(graph)
        if unused and self.source.training:
            trained = self.graph(tracer, training=True)
            if _held(self.unused(trained)) < _held(unused):
                graph, unused = trained, self.unused(trained)
        self.unused_held = unused
        return graph

    def inline_leaves(self, gm, tracer_class, proxy_class) -> bool:
        """Trace each call of a submodule fx could not trace again, now that its inputs' shapes are known: Python
        control flow on shapes (timm's dynamic 'same' padding) then takes its branch, and the call's operations
        replace it in the graph as layers of their own. A call that still does not trace (control flow on values)
        stays one measured call. Whether any call was replaced."""
        from torch._subclasses.fake_tensor import FakeTensorMode

        fake = FakeTensorMode(allow_non_fake_inputs=True)
        shape_tracer = _shape_tracer_class(self.torch, fake, tracer_class, proxy_class)
        changed = False
        calls = [node for node in gm.graph.nodes if node.op == "call_module" and not node.kwargs and
                 type(gm.get_submodule(node.target)) in self.untraceable and
                 all(hasattr(a, "meta") and _is_tensor(a) for a in node.args)]
        if calls:  # each call's inputs at batch 2 too (batch_meta), where the forward runs at batch 2
            for node in gm.graph.nodes:
                node.meta.pop("batch_meta", None)
            try:
                _propagate(gm, self.input_shape, tuple(self.untraceable), batch=2)
            except Exception:  # noqa: BLE001 - a forward with the batch fixed: the calls traced at batch 1 alone
                pass
        for node in calls:
            if not all(_is_tensor(a) for a in node.args):
                continue  # reads what a call inlined just now computes: its shapes come with the next round
            twice = all("batch_meta" in a.meta for a in node.args)
            changed = (twice and _inline_call(gm, node, shape_tracer(), fake, twice=True)) or \
                _inline_call(gm, node, shape_tracer(), fake) or changed
        return changed

    def graph(self, tracer, training: bool):
        from torch.utils._pytree import tree_leaves

        self.root.train(training)
        fixed = self.arguments()
        try:
            graph = tracer.trace(self.root, concrete_args=fixed or None)
        except Exception as exc:  # fx raises many kinds for data-dependent control flow
            graph = self.trace_with_shapes(type(tracer), fixed)
            if graph is None:
                raise SpecError(f"torch.fx cannot trace this module: {type(exc).__name__}: {exc}".split("\n")[0],
                                hint="from_torch needs a forward without data-dependent Python control flow") from None
        for key in self.kwargs:  # fx makes a placeholder per value given (task_1): its value is its default
            for i, leaf in enumerate(tree_leaves(self.kwargs[key])):
                for n in graph.nodes:
                    if n.op == "placeholder" and n.target == f"{key}_{i + 1}":
                        n.args = (leaf,)
        return graph

    def trace_with_shapes(self, tracer_class, fixed: dict):
        """The graph of a forward whose own Python control flow reads the input's shapes (timm's ViT with a dynamic
        image size resampling its position embedding where the grid differs), traced again with proxies that know
        their shapes (as an untraceable submodule is, inline_leaves), on a fake input of the one shape given; None
        where that fails too (control flow on values), or for several inputs."""
        from torch._subclasses.fake_tensor import FakeTensorMode

        if self.feed is None or self.feed.several:
            return None
        torch = self.torch
        fake = FakeTensorMode(allow_non_fake_inputs=True)
        tracer = _shape_tracer_class(torch, fake, tracer_class, _proxy_class())()
        own = next(iter([*self.root.parameters(), *self.root.buffers()]), None)
        dtype = own.dtype if own is not None and own.is_floating_point() else torch.float32
        with fake:
            tracer.inputs = [torch.empty((1, *self.input_shape), dtype=dtype, device="meta")]
            tracer.inputs2 = [torch.empty((2, *self.input_shape), dtype=dtype, device="meta")]
        try:
            graph = tracer.trace(self.root, concrete_args=fixed or None)
        except Exception:  # noqa: BLE001 - control flow on values: the first trace's error says so
            return None
        for n in graph.nodes:
            n.meta.pop("shape_value", None)
            n.meta.pop("shape_value2", None)
        return graph

    def arguments(self) -> dict:
        """The forward's arguments beside the input tensor, fixed for the trace: those given (``kwargs``) and the
        others' defaults. One without a default and not given is an error saying how to give it."""
        import inspect

        try:
            params = list(inspect.signature(self.root.forward).parameters.values())[1:]
        except (TypeError, ValueError):  # pragma: no cover - a forward without a signature
            return dict(self.kwargs)
        named = {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        for key in self.kwargs:
            if key not in named and not any(p.kind is p.VAR_KEYWORD for p in params):

                raise unknown_name(f"argument of {type(self.source).__name__}.forward", key,
                                   named or ["(forward takes only the input tensor)"])
        fixed = {p.name: p.default for p in params if p.default is not p.empty}  # optional ones at their defaults
        fixed.update(self.kwargs)
        every = list(inspect.signature(self.root.forward).parameters.values())
        self.feed = feed = bind(self.given, every, fixed, type(self.source).__name__)
        for name in feed.bound:
            fixed.pop(name, None)  # a tensor for it (forward(self, x, mask=None) given {"x": ..., "mask": ...})
        fixed.update(feed.concrete)
        missing = [p.name for p in params if p.name not in fixed and p.name not in feed.bound
                   and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if missing:
            takes = ", ".join(p.name for p in every)
            raise Unrepresentable(
                f"a second input '{missing[0]}' (forward takes {takes}) with no value given",
                hint=f"give a tensor's shape by name, from_torch(model, {{'{every[0].name}': (3, 224, 224), "
                     f"'{missing[0]}': ...}}) (cnnsize import --input {missing[0]}=3x224x224, repeated), or an "
                     f"argument that is not a tensor (a name, a flag) with kwargs={{'{missing[0]}': ...}} "
                     f"(cnnsize import --kwargs '{{\"{missing[0]}\": ...}}', JSON)")
        return fixed

    def unused(self, graph) -> list[tuple[str, int, int, int]]:
        """(module path, trainable parameters, frozen parameters, buffers) of each module holding tensors the graph
        never reads, by the outermost module nothing of which is read (an aux head as one)."""
        used = {n.target for n in graph.nodes if n.op == "call_module"}
        # a module whose forward reads some of its tensors (F.batch_norm with its statistics) uses them all: the
        # kind standing for the call counts what it does not read (num_batches_tracked)
        used |= {n.target.rpartition(".")[0] for n in graph.nodes if n.op == "get_attr"}
        prefixes = {".".join(t.split(".")[:i]) for t in used for i in range(1, t.count(".") + 2)}
        def read(tname: str) -> bool:
            parts = tname.split(".")  # its own module (the root's: ''), or a module holding that one, is called
            return ".".join(parts[:-1]) in used or any(".".join(parts[:i]) in used for i in range(1, len(parts)))

        # a tensor tied to a module that runs is read, whichever of its names torch lists first
        read_ids = {id(t) for tensors in (self.root.named_parameters(remove_duplicate=False),
                                          self.root.named_buffers(remove_duplicate=False))
                    for tname, t in tensors if read(tname)}
        # a buffer read through a view fx made at once (self.attn_mask.unsqueeze(1)), kept as a constant of the graph
        read_ids |= {id(getattr(getattr(self.root, n.target, None), "_base", None)) for n in graph.nodes
                     if n.op == "get_attr" and "." not in n.target}
        left: dict[str, list[int]] = {}
        for tensors, is_param in ((self.root.named_parameters(), True), (self.root.named_buffers(), False)):
            for tname, t in tensors:
                parts = tname.split(".")
                if read(tname) or id(t) in read_ids:
                    continue
                top = next((i for i in range(1, len(parts)) if ".".join(parts[:i]) not in prefixes), len(parts))
                counts = left.setdefault(".".join(parts[:top]), [0, 0, 0])
                counts[0 if is_param and t.requires_grad else 1 if is_param else 2] += t.numel()
        return [(path, *counts) for path, counts in left.items()]  # type: ignore[misc]

    def write_unused(self, layers: list[dict]) -> list[dict]:
        """The ``unused`` layers (parameters and buffers the forward never reads), first, reading the input; the
        first layer after them then names its input."""
        entries = []
        for path, trains, frozen, buffers in self.unused_held:
            parts = [(path, trains, True, buffers), (f"{path}.frozen", frozen, False, 0)] if trains and frozen \
                else [(path, trains or frozen, not frozen, buffers)]
            for name, weights, trainable, held in parts:
                settings = {"module": self.describe(path), "weights": weights, "buffers": held}
                entries.append(layer_entry(UNUSED_KIND, self.unique(name), settings, [self.first_input],
                                           self.first_input, trainable=trainable))
        if entries and layers:
            body = next(iter(layers[0].values())) if "if" not in layers[0] else {}
            if isinstance(body, dict) and "from" not in body:
                body["from"] = self.first_input
        return entries + layers

    def describe(self, path: str) -> str:
        """A module path with its class (aux1 (InceptionAux)); a tensor held directly, by its path alone."""
        try:
            return f"{path} ({type(self.root.get_submodule(path)).__name__})"
        except AttributeError:
            return path

    def unique(self, name: str) -> str:
        n = 1
        found = name
        while found in self.names:
            n += 1
            found = f"{name}_{n}"
        self.names.add(found)
        return found

    # -- the walk -------------------------------------------------------------------------------------------------
    def run(self) -> dict:
        self.gm = gm = self.trace()
        self.modules = dict(gm.root.named_modules())
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                if node.target in self.input_by_target:  # a tensor input; the others' args hold a default
                    self.alias[node] = self.input_by_target[node.target]
            elif node.op == "get_attr":
                self.constant.add(node)  # a parameter or buffer read directly: the call using it says what it is
            elif _is_tensor(node) and self.inputs(node) and all(n in self.constant for n in self.inputs(node)):
                self.constant.add(node)  # computed from parameters alone (a class token's expand): the same
                if any(n in self.per_sample for n in self.inputs(node)):
                    self.per_sample.add(node)
            elif node.op.startswith("call_") and not _is_tensor(node) and self.inputs(node) and \
                    all(n in self.constant for n in self.inputs(node)):
                self.constant.add(node)  # the parts of a constant (a rotary table's chunk(2, -1)): its items are
            elif self.built(node) or (_is_tensor(node) and _empty(node)):
                # built in the forward from numbers (torch.zeros, arange, a grid), or an empty tensor (q[:, :, :0], no
                # prefix tokens), which holds no values whatever the input: a cat leaves it out
                self.constant.add(node)
            elif node.op == "output":
                self.output(node)
            elif _is_tensor(node):
                self.call(node)
            # otherwise sizes, shapes and tuples: values for views and getitem, not layers
        self.mark_discarded()
        feed = self.feed
        assert feed is not None
        spec: dict[str, Any] = {"name": self.name}
        if feed.several:
            spec["inputs"] = {name: list(shape) for name, shape in feed.shapes.items()}
        else:
            spec["input"] = list(self.input_shape)
        spec["fit"] = "floor"
        aux = self.aux_only()
        if aux:
            spec["vars"] = {"aux": True}
        spec["layers"] = self.write_unused(self.grouped(aux))
        return spec

    def mark_discarded(self) -> None:
        """``discarded: true`` on each layer the forward computes and then drops (nothing reads it, it is not
        returned, it changes no tensor in place): tools that trace the graph (fvcore) drop it and what only it
        reads, as torch.jit's dead code elimination does."""
        read = {name for sources in self.sources.values() for name in sources}
        returned = {name for _, name in self.outputs} | {self.main}
        for layer in self.layers:
            (kind, body), = layer.items()
            if body["name"] not in read | returned and REGISTRY[kind].makes != IN_PLACE and not body.get("inplace"):
                body["discarded"] = True

    def aux_only(self) -> set[str]:
        """Layers that only the other outputs (aux heads) need: what the main output does not read."""
        def ancestors(names) -> set[str]:
            seen, todo = set(), list(names)
            while todo:
                n = todo.pop()
                if n not in seen:
                    seen.add(n)
                    todo.extend(self.sources.get(n, []))
            return seen

        others = [name for _, name in self.outputs if name != self.main and name not in ancestors([self.main])]
        return ancestors(others) - ancestors([self.main]) if others else set()

    def grouped(self, aux: set[str]) -> list[dict]:
        """The layers, each run of aux-only layers in an ``if: aux`` block (analyze with aux false to leave
        them out); a layer after such a block names its input, which the block would otherwise be."""
        out: list[dict] = []
        block: list[dict] = []
        for layer in self.layers:
            (kind, body), = layer.items()
            if body["name"] in aux:
                block.append(layer)
                continue
            if block:
                out.append({"if": "aux", "layers": block})
                block = []
                if "from" not in body:
                    body["from"] = self.sources[body["name"]][0]
            out.append(layer)
        if block:
            out.append({"if": "aux", "layers": block})
        return out

    def output(self, node) -> None:
        """The main output becomes the last layer; the others (aux heads) are kept, their own layers marked."""
        outputs = _leaves(node.args[0])
        for _, out in outputs:  # a call returning several values, returned whole: its kind says why not
            if getattr(out, "op", "").startswith("call_") and out not in self.alias:
                self.call(out)
        if not outputs or not all(hasattr(out, "op") and out in self.alias for _, out in outputs):
            what = "None" if node.args[0] is None else type(node.args[0]).__name__
            raise Unrepresentable(f"a forward returning {what} (fx node '{node.name}')",
                                  hint="from_torch sizes a forward that returns tensors (one, or a tuple, "
                                       "namedtuple or dict of them)")
        main = next((out for label, out in outputs if label == "out"), outputs[0][1])
        self.outputs = [(label, self.alias[out]) for label, out in outputs]
        name = self.alias[main]
        if name != self.last:  # the result is not the last layer: make it so
            self.add(node, PASS_KIND, {}, [main], name=f"{name}_out")
        self.main = self.last

    def own_module(self, node, kind) -> str | None:
        """The torch module class (nn.Conv3d) whose subclass' forward makes this function call, when that class
        stands for the same kind (F.conv3d inside torchvision's Conv3DSimple, F.layer_norm inside LayerNorm2d,
        modules the tracer enters): tools that hook subclasses see the module, tools matching exact types do not."""
        stack = node.meta.get("nn_module_stack") or {}
        if not stack:
            return None
        try:
            owner = self.root.get_submodule(list(stack.values())[-1][0])
        except AttributeError:
            return None
        for cls in type(owner).__mro__:
            if kind in self.registry.modules.get(cls, ()):
                return f"nn.{cls.__name__}" if cls.__module__.startswith("torch.nn") else cls.__qualname__
        return None

    def where(self, node) -> str:
        where = f"fx node '{node.name}'"
        stack = node.meta.get("nn_module_stack") or {}
        if node.op == "call_module":
            where += f", module '{node.target}' ({type(self.root.get_submodule(node.target)).__name__})"
        elif stack:
            path = list(stack.values())[-1][0]
            where += f", inside module '{path}'"
        return where

    def unsupported(self, node, what: str | None = None) -> CnnsizeError:
        return self.torch_call(node, None).refuse(what or _op_name(node))

    def torch_call(self, node, source) -> TorchCall:
        """What a kind sees of ``node`` (or of ``source``, the call returning the tuple ``node`` indexes)."""
        call_node = source or node
        module = self.modules[call_node.target] if call_node.op == "call_module" else None
        if module is not None:
            function = type(module).__name__
        elif call_node.op == "call_method":
            function = call_node.target
        else:
            target = call_node.target
            function = getattr(target, "__name__", str(target))

        def value(arg):
            if hasattr(arg, "op"):
                meta = arg.meta.get("tensor_meta")
                if hasattr(meta, "shape"):
                    return TensorArg(_shape(arg), computed=arg not in self.constant)
                return meta if meta is not None else arg.meta.get("val", arg)
            if isinstance(arg, (list, tuple)):  # torch.cat's tensors: an empty one adds nothing
                return type(arg)(value(a) for a in arg if not (hasattr(a, "op") and _is_tensor(a) and _empty(a)))
            if isinstance(arg, dict):
                return {k: value(v) for k, v in arg.items()}
            if isinstance(arg, slice):  # x[:, :H] with H a size read from a traced shape
                return slice(value(arg.start), value(arg.stop), value(arg.step))
            return arg

        args, kwargs = value(tuple(call_node.args)), value(dict(call_node.kwargs))
        computed = [n for n in self.inputs(call_node) if n not in self.constant]
        inputs = [self.sample_shape(n) for n in computed]
        contiguous = [_contiguous(n) for n in computed]
        consts = [n for n in self.inputs(call_node) if n in self.constant and not _empty(n)]
        attrs = [_shape(n) for n in consts]
        attrs_learned = [self.learned(n) for n in consts]
        const_counts = [self.sources_count(n) for n in consts]
        index = node.args[1] if source is not None else None
        results = source.meta.get("tensor_meta") if source is not None else None
        if isinstance(index, int) and index < 0 and isinstance(results, (tuple, list)):
            index += len(results)  # spx[-1] of x.chunk(4, 1): the last of the results
        layouts = [self.batch_of(n) for n in computed]
        out_batch = self.batch_of(node) if _is_tensor(node) else _STANDARD
        moved = any(b != _STANDARD for b in [*layouts, out_batch])
        return TorchCall(module=module, function=function, args=args, kwargs=kwargs, inputs=inputs,
                         output=self.sample_shape(node) if _is_tensor(node) else (), attrs=attrs,
                         attrs_learned=attrs_learned, index=index, const_counts=const_counts,
                         contiguous=contiguous, out_contiguous=_is_tensor(node) and _contiguous(node),
                         view=node.meta.get("view"), where=self.where(call_node),
                         batch=layouts if moved else [], out_batch=out_batch,
                         torch_inputs=[_shape(n) for n in computed] if moved else [],
                         torch_output=_shape(node) if moved and _is_tensor(node) else (),
                         dtype_kept=not _is_tensor(node) or all(n.meta["tensor_meta"].dtype ==
                                                                node.meta["tensor_meta"].dtype for n in computed))

    # -- where the batch is -------------------------------------------------------------------------------------
    def batch_of(self, node, force: bool = False) -> Any:
        """Where ``node``'s tensor holds the batch: a _Batch, _NO_BATCH (it does not grow with the batch) or
        _MIXED (it grows otherwise: samples mixed). Found by comparing the node's shape at batch 1 with its shape at
        batch 2, run once, and only for a graph where some tensor does not hold its batch alone in front (or where
        ``force``d: a tensor built in the forward from sizes of the input); where that run fails (a forward that
        fixed the batch as a number), every batch is taken to be in front."""
        shape = _shape(node)
        if self.batch_run is None or (force and self.batch_run is False and not self.batch_tried):
            self.batch_run = False
            self.batch_tried = force
            if force or any(_is_tensor(n) and n not in self.constant and _shape(n)[:1] != (1,)
                            for n in self.gm.graph.nodes if n.op != "get_attr"):
                try:
                    _propagate(self.gm, self.input_shape, tuple(self.untraceable), batch=2)
                    self.batch_run = True
                except Exception:  # noqa: BLE001 - a forward with the batch fixed: each batch taken as in front
                    pass
        twice = node.meta.get("batch_meta")
        if not self.batch_run or twice is None:
            return _STANDARD
        if len(twice) != len(shape):
            return _MIXED
        grown = [i for i, (a, b) in enumerate(zip(shape, twice)) if a != b]
        if not grown:
            return _NO_BATCH
        if len(grown) == 1 and twice[grown[0]] == 2 * shape[grown[0]]:
            return _Batch(grown[0], shape[grown[0]])
        return _MIXED

    # -- constants -----------------------------------------------------------------------------------------------
    def built(self, node) -> bool:
        """Whether a call makes a tensor from numbers alone, the same for every input (torch.zeros(4, 4),
        torch.arange(n) with n a size of the input's that is not the batch's): a constant of the spec. One with the
        batch alone in front of its shape (EdgeNeXt's torch.zeros(B, H, W), from which a position encoding is
        computed) is the same for every sample, made once per sample (``per_sample``)."""
        if node.op not in ("call_function", "call_method") or not _is_tensor(node):
            return False
        if any(n not in self.constant for n in self.inputs(node)):
            return False
        if not self.reads_input(node):
            return True
        if any(n not in self.constant and "val" not in n.meta for n in node.all_input_nodes):
            return False  # an item of a call's several results (x.max(1)[0]): computed
        batch = self.batch_of(node, force=True)
        if batch == _STANDARD and self.batch_run:
            self.per_sample.add(node)
            return True
        return batch == _NO_BATCH

    def reads_input(self, node) -> bool:
        """Whether a node's value depends on the input (a size read from it included)."""
        seen, todo = set(), [node]
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            if n.op == "placeholder":
                return True
            if n in self.constant:
                continue
            todo.extend(n.all_input_nodes)
        return False

    def constant_sources(self, node) -> tuple[dict, dict, set]:
        """The parameters and buffers (id -> tensor) a constant node is computed from, those a layer counts already
        left out (a module's too: Swin V2's position-bias MLP run on a table of coordinates), and the calls
        computing it whose multiply-adds no layer counts yet."""
        params: dict[int, Any] = {}
        buffers: dict[int, Any] = {}
        calls: set = set()
        seen, todo = set(), [node]
        while todo:
            n = todo.pop()
            if n in seen or n not in self.constant:
                continue
            seen.add(n)
            if n in self.stored_in_buffer():  # a constant built in the forward that it keeps as a buffer
                buffers[id(n)] = self.torch.empty(_shape(n), device="meta")
            if n.op == "get_attr":
                tensors = self.attr_tensors(n.target)
            elif n.op == "call_module":
                module = self.modules[n.target]
                tensors = [*module.parameters(), *module.buffers()]
            else:
                tensors = []
            for t in tensors:
                if id(t) not in self.held:
                    (params if isinstance(t, self.torch.nn.Parameter) else buffers)[id(t)] = t
            if n.op.startswith("call_") and n not in self.counted_calls:
                calls.add(n)
            todo.extend(n.all_input_nodes)
        return params, buffers, calls

    def stored_in_buffer(self) -> set:
        """The nodes of constants the forward builds and keeps as buffers of the model (ConViT's
        ``self.rel_indices = self.get_rel_indices(N)``, traced again on shapes: the traced copy then holds fx's proxy
        of the call that computed it, _inline_call marks its node). The model holds them once it has run: buffers of
        their size."""
        if self.stored is None:
            self.stored = {n for n in self.gm.graph.nodes if n.meta.get("stored_buffer")}
        return self.stored

    def attr_tensors(self, target: str) -> list:
        """The parameter or buffer a get_attr reads: itself, or the one a constant fx made is a view of (fx runs
        ``self.index.view(-1)`` at once on a buffer, which it does not trace, and keeps the view as a constant of
        the graph); [] for other constants, which the model does not hold."""
        for get in (self.root.get_parameter, self.root.get_buffer):
            try:
                return [get(target)]
            except AttributeError:
                continue
        path, _, name = target.rpartition(".")
        t = getattr(self.root.get_submodule(path) if path else self.root, name, None)
        if self.registered is None:
            self.registered = {id(v): v for v in [*self.root.parameters(), *self.root.buffers()]}
        # the tensor a buffer holds once the forward set it (ConViT's ``self.rel_indices = self.get_rel_indices(N)``,
        # traced again on shapes: fx keeps the new tensor as a constant), or the one it is a view of
        return next(([v] for v in (t, getattr(t, "_base", None)) if v is not None and id(v) in self.registered), [])

    def sources_count(self, node) -> tuple[int, int, int, int]:
        """(parameters, buffers, multiply-adds once per call, multiply-adds per sample) a constant is computed from, as
        FlopCounterMode counts the MACs of its calls (run once more, counting, only where a call may have any: a
        module or a product); those on a constant built with the batch in its shape are per sample."""
        params, buffers, calls = self.constant_sources(node)
        macs = [0, 0]
        if any(n.op == "call_module" or _products(n) for n in calls):
            if any("flops" not in n.meta for n in calls):
                _propagate(self.gm, self.input_shape, tuple(self.untraceable), count=True)
            for n in calls:
                macs[n in self.per_sample] += n.meta.get("flops", 0)
        return (sum(t.numel() for t in params.values()), sum(t.numel() for t in buffers.values()), macs[0] // 2,
                macs[1] // 2)

    def sample_shape(self, node) -> tuple:
        """A tensor's shape as a layer kind sees it: the batch (of 1) in front, then the per-sample axes (an axis
        merging the batch with per-sample values holds those)."""
        shape = _shape(node)
        b = self.batch_of(node)
        if b == _STANDARD or not isinstance(b, _Batch) or b.axis < 0:
            return shape
        rest = shape[:b.axis] + shape[b.axis + 1:] if b.merged == 1 else shape
        return (1, *rest)

    def check_batch(self, call: TorchCall, kinds: list, what: str) -> list:
        """The kinds that may read a call whose batch moved (every kind where none did); a call that mixes the
        samples, or that no such kind stands for, is refused naming where its batch is."""
        if not call.batch:
            return kinds
        layouts = [*call.batch, call.out_batch]
        if _MIXED in layouts:
            raise call.refuse(f"{what} (it mixes the samples of a batch: no axis of its output grows with the batch "
                              "alone)")
        if call.out_batch == _NO_BATCH:
            raise call.refuse(f"{what} (its output does not grow with the batch: it reduces over the samples)")
        if len(set(call.batch)) > 1:
            raise call.refuse(f"{what} of tensors that hold the batch in different axes "
                              f"({', '.join(_batch_text(b) for b in call.batch)})")
        found = [k for k in kinds if k.batch_anywhere]
        if kinds and not found:
            b = next((b for b in layouts if b != _STANDARD), _STANDARD)
            raise call.refuse(f"{what} on a tensor whose batch is {_batch_text(b)}",
                              hint="cnnsize follows a batch axis that moves through views, elementwise and "
                                   "last-axis layers; move it back in front (alone) before this layer")
        return found

    def call(self, node) -> None:
        source = None
        if node.target is operator.getitem and hasattr(node.args[0], "op") and not _is_tensor(node.args[0]):
            source = node.args[0]  # an item of a call returning several values: x.chunk(2, 1)[1]
        call = self.torch_call(node, source)
        call_node = source or node
        kinds, what = self.kinds_for(call, call_node)
        kinds = self.check_batch(call, kinds, what)
        kind, answer, refusal = _first_answer(call, kinds)
        if kind is None:
            if self.opaque or (call.module is not None and type(call.module) in self.untraceable):
                self.keep_opaque(node, call_node, call, what)
                return
            raise refusal or call.refuse(what)
        ins = self.layer_inputs(call, call_node, kind, answer is PASS_THROUGH, what)
        self.count_constants(call_node, kind)
        if answer is PASS_THROUGH:
            self.alias[node] = self.alias[ins[0]]
            return
        steps = answer if isinstance(answer, list) else [(kind.kind, answer)]
        trainable: bool | list[str] = True
        shares = None
        key: tuple[int, ...] = ()  # the ids of the module's tensors: what a second call or a tied module shares
        function: str | None = None
        if call.module is None:
            function = _function_text(call_node)
            owner = self.own_module(call_node, kind)
            if owner is not None:  # F.conv3d as the forward of an nn.Conv3d subclass: "F.conv3d in nn.Conv3d"
                function += f" in {owner}"
        own = self.parameters_read(call, call_node)
        if own:
            trains = [n for n, p in own.items() if p.requires_grad]
            trainable = len(trains) == len(own) or (bool(trains) and trains)
            if isinstance(trainable, list) and call.module is None:  # F.linear(x, w, b) with w frozen
                trainable = sorted({tensor_part(n) for n in trains})
            if isinstance(trainable, list) and not set(trainable) <= {"weight", "bias"}:
                raise call.refuse(f"{type(call.module).__name__} with only {', '.join(trains)} trainable "
                                  "(a spec can freeze a layer's weight or its bias)")
        if call.module is not None:
            key = tuple(id(t) for t in [*own.values(), *call.module.buffers()])
            shares = self.owners.get(key)  # the module called again, or one holding the same (tied) tensors
        for i, (kind_name, settings) in enumerate(steps):
            # an item of a module's result (MViT's attention returns (x, thw)): named as the module
            name = call_node.target if source is not None and call_node.op == "call_module" else None
            if i:
                self.alias[node] = self.last
                ins, name = [node], f"{self.last}_{kind_name}"
            # a step the module's forward computes with a function (MViT's class token: torch.cat) says so
            settings = dict(settings)
            step_function = settings.pop("function", function)
            layer = self.add(node, kind_name, settings, ins, name=name, trainable=trainable,
                             shares=shares if i == 0 else None, function=step_function)
            if i == 0 and key and shares is None:
                self.owners[key] = layer
            if i == 0 and own and shares is None:
                self.read_by(layer, own, held=call.module is not None)

    def count_constants(self, call_node, kind) -> None:
        """Take the parameters, buffers and calls a call's constant inputs are computed from as counted where its kind
        counts them (``counts_constants``): no later layer counts them again."""
        if not kind.counts_constants:
            return
        for n in self.inputs(call_node):
            if n in self.constant:
                params, buffers, calls = self.constant_sources(n)
                self.held.update(params, buffers)
                self.counted_calls.update(calls)

    def parameters_read(self, call: TorchCall, call_node) -> dict:
        """The parameters a call reads, by name: its module's, or those a function is given (F.linear(x, self.w))."""
        if call.module is not None:
            return dict(call.module.named_parameters())
        found = {}
        for n in self.inputs(call_node):
            n = _viewed(n) if n in self.constant else n  # a parameter read through a view (cls_token.expand(B, ...))
            if n is not None and n.op == "get_attr":
                try:
                    found[n.target] = self.root.get_parameter(n.target)
                except AttributeError:  # a buffer
                    continue
        return found

    def read_by(self, layer: str, params: dict, held: bool) -> None:
        """Note the parameters a layer reads, by the figure they count in (weight or bias), for ``tie`` to find
        tensors two layers read; a module's (``held``) are its own, which no opaque layer counts again."""
        parts: dict[str, list] = {}
        for name, t in params.items():
            parts.setdefault(tensor_part(name), []).append(id(t))
            self.numel[id(t)] = t.numel()
            if held:
                self.held.add(id(t))
        self.reads[layer] = {part: tuple(ids) for part, ids in parts.items()}

    def layer_inputs(self, call: TorchCall, call_node, kind, passes: bool, what: str) -> list:
        """The nodes a call's layer reads: computed tensors only (parameters and constants are the kind's own),
        no more than the kind takes (a pass-through call reads the first)."""
        ins = [n for n in self.inputs(call_node) if n not in self.constant]
        if kind.max_inputs == 1 and len(set(ins)) == 1:
            ins = ins[:1]  # one tensor passed several times: self-attention's query, key and value
        elif len(ins) > kind.max_inputs and not passes:
            raise call.refuse(f"{what} of {len(ins)} different tensors ('{kind.kind}' takes at most "
                              f"{kind.max_inputs})")
        return ins

    def kinds_for(self, call: TorchCall, call_node) -> tuple[list, str]:
        """The kinds declaring a call's module type or function, in registration order, and how messages name it."""
        if call.module is not None:
            kinds = self.registry.modules.get(type(call.module), [])
            return kinds, f"module type {type(call.module).__module__}.{type(call.module).__qualname__}"
        return self.registry.functions.get(call.function, []), _op_name(call_node)

    def keep_opaque(self, node, call_node, call: TorchCall, what: str) -> None:
        """An ``opaque`` layer with what torch measured for this call: its output shape, the parameters and
        buffers of its module (those no earlier layer holds) and FlopCounterMode's count / 2."""
        if not _is_tensor(node):
            raise call.refuse(what)
        weights = buffers = frozen = 0
        if call.module is not None:
            for t in [*call.module.parameters(), *call.module.buffers()]:
                if id(t) not in self.held:
                    self.held.add(id(t))
                    if isinstance(t, self.torch.nn.Parameter):
                        weights += t.numel()
                        frozen += 0 if t.requires_grad else t.numel()
                    else:
                        buffers += t.numel()
        ins = [n for n in self.inputs(call_node) if n not in self.constant]
        if not ins:
            raise call.refuse(f"{what} (it reads no tensor that a layer computed)")
        shape = list(self.sample_shape(node)[1:])
        if "flops" not in call_node.meta:  # the first opaque layer: run once more, counting FLOPs per node
            _propagate(self.gm, self.input_shape, tuple(self.untraceable), count=True)
        flops = call_node.meta.get("flops", 0)
        settings = {"op": what, "shape": shape, "weights": weights, "buffers": buffers, "macs": flops // 2}
        if 0 < frozen < weights:
            settings["frozen"] = frozen  # some of its module's parameters frozen, the others trained
        self.add(node, OPAQUE_KIND, settings, ins, trainable=frozen < weights or not weights)

    def add(self, node, kind: str, settings: dict, inputs: list, name: str | None = None,
            trainable: bool | list[str] = True, shares: str | None = None, function: str | None = None) -> str:
        name = self.layer_name(node, name)
        sources = [self.alias[i] for i in inputs]
        self.sources[name] = sources
        self.layers.append(layer_entry(kind, name, settings, sources, self.last, trainable=trainable, shares=shares,
                                       function=function))
        self.names.add(name)
        self.alias[node] = name
        self.last = name
        return name

    def layer_name(self, node, name: str | None) -> str:
        """A new layer's name, nested like the module paths so that reports fold it (``--depth``) as a bundled
        spec's: a module call by its path (``layer1.0.conv1``), a function called in a module's forward by that
        module's path and the function (``layer1.0.add``), a second call by the first's name and a number
        (``layer1.0.relu_1``)."""
        if name is None and node.op == "call_module":
            name = node.target
        elif name is None:
            import re

            base = re.sub(r"_\d+$", "", node.name).rstrip("_") or "op"
            base = _IN_PLACE_OPERATORS.get(base, base)  # x += y is an add, as the bundled specs name it
            stack = node.meta.get("nn_module_stack") or {}
            scope = list(stack.values())[-1][0] if stack else ""
            name = f"{scope}.{base}" if scope else base
        found, n = name, 0
        while found in self.names or found == "input" or found in self.input_by_target.values():
            n += 1
            found = f"{name}_{n}"
        return found

    def learned(self, node) -> bool:
        """Whether a constant node is a parameter, or a view of one: what a kind may count as its own weights."""
        node = _viewed(node)
        if node is None:
            return False
        try:
            self.root.get_parameter(node.target)
        except AttributeError:
            return False  # a buffer
        return True

    def inputs(self, node) -> list:
        """The tensor-valued nodes among a call's arguments, in order (get_attr reads included)."""
        found: list = []

        def visit(arg):
            if hasattr(arg, "op"):
                if _is_tensor(arg):
                    found.append(arg)
            elif isinstance(arg, (list, tuple)):
                for a in arg:
                    visit(a)
            elif isinstance(arg, dict):
                for a in arg.values():
                    visit(a)

        for arg in node.args:
            visit(arg)
        for arg in node.kwargs.values():
            visit(arg)
        return found


_INLINE_ROUNDS = 16  # rounds of tracing untraceable submodules again (each inlines every call it can)
_IN_PLACE_OPERATORS = {"iadd": "add", "isub": "sub", "imul": "mul", "itruediv": "div"}


def _held(unused: list) -> int:
    """How many elements the unused modules hold in all."""
    return sum(sum(entry[1:]) for entry in unused)


def _parts(node) -> int | None:
    """How many tensors a traced chunk or split returns, where its arguments say (None where only shapes would)."""
    name = getattr(node.target, "__name__", node.target)
    args = {**dict(zip(("input", "n"), node.args)), **node.kwargs}
    n = args.get("n", args.get("chunks", args.get("split_size_or_sections", args.get("split_size"))))
    if name == "chunk" and isinstance(n, int):
        return n
    if name in ("split", "split_with_sizes") and isinstance(n, (list, tuple)):
        return len(n)
    return None


# calls that give a view of the same values (a parameter broadcast as gamma.view(1, -1, 1, 1))
_VIEWS_OF_A_PARAMETER = ("view", "reshape", "unsqueeze", "squeeze", "flatten", "expand", "permute", "transpose", "t",
                         "contiguous",
                         "to", "type", "type_as")


def _viewed(node):
    """The get_attr node a node is a view of (itself, or through view, expand...), else None."""
    while node.op != "get_attr":
        if str(getattr(node.target, "__name__", node.target)) not in _VIEWS_OF_A_PARAMETER or not node.args or \
                not hasattr(node.args[0], "op"):
            return None
        node = node.args[0]
    return node


def _products(node) -> bool:
    """Whether a call may do multiply-adds: it reads two floating-point tensors (a product, a convolution with its
    weight); a gather by an index, a view or a cast does not (FlopCounterMode is run again only for the first)."""
    floats = [n for n in node.all_input_nodes if _is_tensor(n) and n.meta["tensor_meta"].dtype.is_floating_point]
    return len(floats) >= 2


def _is_tensor(node) -> bool:
    """Whether the node's value is one tensor (a tuple of them, or a size, is not a layer's output)."""
    return hasattr(node.meta.get("tensor_meta"), "shape")


def _empty(node) -> bool:
    """Whether a traced tensor holds no values (an axis of size 0)."""
    return 0 in tuple(node.meta["tensor_meta"].shape)


def _contiguous(node) -> bool:
    meta = node.meta["tensor_meta"]
    shape, stride = tuple(meta.shape), tuple(meta.stride)
    expected, step = [], 1
    for n in reversed(shape):
        expected.append(step)
        step *= n
    return all(s == e or n == 1 for n, s, e in zip(shape, stride, reversed(expected)))


def _shape(node) -> tuple:
    return tuple(int(v) for v in node.meta["tensor_meta"].shape)


def _function_text(node) -> str:
    """A function or method call as the spec's ``function`` names it: F.relu, torch.flatten, operator.add, .mean."""
    import operator

    import torch

    if node.op == "call_method":
        return f".{node.target}"
    target, name = node.target, getattr(node.target, "__name__", str(node.target))
    for prefix, namespace in (("F", torch.nn.functional), ("torch", torch), ("operator", operator)):
        if getattr(namespace, name, None) is target:  # F.gelu is torch._C._nn.gelu: named as the user calls it
            return f"{prefix}.{name}"
    return f"{getattr(target, '__module__', None) or 'torch'}.{name}"


def _op_name(node) -> str:
    if node.op == "call_method":
        return f"the method .{node.target}()"
    if node.op == "call_function":
        target = node.target
        mod = getattr(target, "__module__", None) or ""
        return f"{mod + '.' if mod and mod != 'builtins' else ''}{getattr(target, '__name__', str(target))}"
    return f"{node.op} {node.target}"


# -- tied tensors ------------------------------------------------------------------------------------------------

def _tie(spec: dict, reads: dict[str, dict[str, tuple]], numel: dict[int, int]) -> dict:
    """``shares: {weight: a}`` on each layer whose weight (or bias) is tensors an earlier layer counts already
    (tied weights: nn.Linear b with b.weight = a.weight, or a.weight read again by F.linear), so that each tensor
    counts once, as torch's parameters() counts it. A layer counts a tensor where its kind's figure for that part
    has the tensors' size (a kind that reads a parameter without counting it holds nothing to share)."""
    seen: dict[int, int] = {}
    for parts in reads.values():
        for ids in parts.values():
            for i in ids:
                seen[i] = seen.get(i, 0) + 1
    if all(n == 1 for n in seen.values()):
        return spec  # no tensor read by two layers: nothing tied (the usual case, and no analysis more)
    rows = {r.name: r for r in analyze_spec(spec).layers}
    owners: dict[tuple, str] = {}  # (part, ids) -> the layer counting them
    claimed: dict[int, tuple] = {}
    ties: dict[str, dict[str, str]] = {}
    for layer, parts in reads.items():
        for part, ids in parts.items():
            counted = rows[layer].weights if part == "weight" else rows[layer].biases
            if counted != sum(numel[i] for i in ids) or not any(seen[i] > 1 for i in ids):
                continue
            owner = owners.get((part, ids))
            if owner is not None:
                ties.setdefault(layer, {})[part] = owner
            elif any(i in claimed for i in ids):
                raise Unrepresentable(f"'{layer}' reads some of the tensors of its {part} with another layer's and "
                                      "not the others", hint="a spec ties a layer's whole weight or whole bias "
                                                             "(shares: {weight: layer})")
            else:
                owners[(part, ids)] = layer
                claimed.update((i, (part, ids)) for i in ids)
    for body in _bodies(spec["layers"]):
        if body["name"] in ties:
            body["shares"] = ties[body["name"]]
            body["shares"] = body.pop("shares")  # after from: name, settings, from, shares, function
            if "function" in body:
                body["function"] = body.pop("function")
    return spec


def _bodies(layers: list) -> list[dict]:
    """Every layer's settings in an imported spec's layers, inside ``if`` blocks too."""
    found = []
    for item in layers:
        if "if" in item:
            found += _bodies(item["layers"])
        else:
            found.append(next(iter(item.values())))
    return found


def _check(spec: dict, importer: _Importer, gm_shapes: dict[str, tuple]):
    """Every imported layer's output shape must be the one torch computed; the analysis that says so."""
    a = analyze_spec(spec)
    for row in a.layers[1:]:
        want = gm_shapes.get(row.name)
        if want is not None and tuple(row.output_shape) != want:
            raise CnnsizeError(f"imported layer '{row.name}' ({row.type}) gives {list(row.output_shape)}, "
                               f"torch gives {list(want)}",
                               hint="this operation means something else in torch; please report it")
    return a


def _check_module(module, kwargs) -> None:
    """A clear error for what from_torch cannot trace at all: not an nn.Module, a TorchScript module, kwargs that
    are not a dict of names."""
    torch = require_torch()
    if isinstance(module, (torch.jit.ScriptModule, torch.jit.ScriptFunction)):
        raise SpecError(f"'{getattr(module, 'original_name', type(module).__name__)}' is a TorchScript module "
                        "(torch.jit.script or torch.jit.trace made it): torch.fx traces Python modules only",
                        hint="import the nn.Module it was made from, or export it to ONNX "
                             "(torch.onnx.export) and import the .onnx file")
    if not isinstance(module, torch.nn.Module):
        raise SpecError(f"from_torch imports an nn.Module, got {type(module).__name__}",
                        hint="pass the model object, e.g. torchvision.models.resnet18()")
    if kwargs is not None and (not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs)):
        raise SpecError(f"kwargs must be a dict of argument names to values, got {type(kwargs).__name__}",
                        hint="e.g. kwargs={'task': 'detect'}")
    tensors = [k for k, v in (kwargs or {}).items() if isinstance(v, torch.Tensor)]
    if tensors:
        raise SpecError(f"kwargs gives a tensor for '{tensors[0]}': kwargs are fixed for the trace, not inputs",
                        hint="give non-tensor arguments in kwargs; for a second tensor input, wrap the model")


def from_torch(module, input_shape: Any, *, name: str | None = None, opaque: bool = False,
               kwargs: dict | None = None) -> ImportedSpec:
    """Trace ``module`` (an ``nn.Module``) with torch.fx for one input of ``input_shape`` (C, H, W) and return the
    equivalent spec, as a dict and as YAML text (``.yaml``, written when first asked for).

    An operation cnnsize cannot represent raises CnnsizeError naming it and its fx node and module path; with
    ``opaque=True`` it becomes an ``opaque`` layer instead, carrying the output shape, parameters, buffers and
    MACs (FlopCounterMode's count / 2) torch measured for it. A submodule fx cannot trace into (Python control
    flow on values) is kept the same way, as one measured call. Modules built by cnnsize.build (its own
    FlattenLinear, LocallyConnected2d and merge modules too) map back to their layer kinds and names.
    ``kwargs`` gives the forward's other arguments (not tensors: a task name, a flag), fixed for the trace.
    The module itself is never changed, nor run: a copy of it is traced, on meta tensors.
    """
    _check_module(module, kwargs)
    from .detection import detector_core, is_detector  # loads torch

    if is_detector(module):  # torchvision's detectors: their resize and post-processing taken apart
        module, name = detector_core(module, input_shape), name or type(module).__name__
    with no_gc():  # the trace makes many small objects: the collector's full passes cost 0.2-0.4 s on resnet152
        importer = _Importer(module, input_shape, name or type(module).__name__, opaque=opaque, kwargs=kwargs)
        spec = _tie(importer.run(), importer.reads, importer.numel)
        shapes: dict[str, tuple] = {}
        for node, layer in importer.alias.items():
            meta = node.meta.get("tensor_meta")
            if layer not in importer.input_by_target.values() and hasattr(meta, "shape"):
                shapes.setdefault(layer, importer.sample_shape(node)[1:])
        checked = _check(spec, importer, shapes)
    return ImportedSpec(spec=spec, checked=checked, mode="train" if module.training else "eval")
