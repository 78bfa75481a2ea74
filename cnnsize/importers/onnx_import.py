"""From ONNX to a spec: read a model with the ``onnx`` package and write the equivalent cnnsize spec.

The file is read without its weights' external data (only shapes are needed), ONNX shape inference gives every
tensor's shape, and each node maps onto one layer kind through the registry: every kind names the operators it
stands for (``onnx_ops``) and reads its settings back from a node (``from_onnx``), as for torch. Nodes computed
from initializers alone (weights transposed or cast, shape arithmetic) are constants, not layers. Every layer's
output shape is checked against shape inference's, and its parameters against the initializers the node reads,
so a mapping that changes the network's meaning is caught. onnx is imported here only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import CnnsizeError, LimitExceeded, Location, SpecError, Unrepresentable
from ..core.numeric import no_gc
from ..core.optional import require_onnx
from ..core.safe import printable
from ..engine.walk import analyze_graph
from ..layers.base import OPAQUE_KIND, PASS_KIND, PASS_THROUGH, REGISTRY, Fused, OnnxCall, OnnxValue
from ..spec import sources as spec_sources
from ..spec.expand import expand
from ..spec.write import layer_entry, to_yaml
from . import ImportedSpec, analyze_spec
from .onnx_wire import MAX_DEPTH, Malformed, Pruner, TooManyNodes, count_nodes

PROBE = 224  # the size a dynamic axis is imported at when it is to be a symbol
MAX_VALUE = 4096  # elements of a constant whose value is read (shapes, scales, pads); weights keep only a shape
FLOAT_TYPES = (1, 10, 11, 16)  # TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16: weights (not indices or shapes)


@dataclass
class OnnxImport(ImportedSpec):
    """An imported ONNX model: ``spec`` and ``yaml`` as from_torch gives them, and ``values``, the ONNX value each
    layer's output is (what validate compares under ONNX Runtime)."""

    values: dict = field(default_factory=dict)
    symbolic_input: tuple | None = None  # the input with the model's dynamic axes as symbols, where it has any
    graph: Any = field(default=None, repr=False, compare=False)  # the spec's Graph, as the import checked it

    @property
    def yaml(self) -> str:
        if self._yaml is None:  # written when first asked for (a report of the file never needs it)
            self._yaml = to_yaml(self.spec).replace(
                "Imported from torch by cnnsize.from_torch; shapes follow torch's rounding",
                "Imported from ONNX by cnnsize.from_onnx; shapes follow ONNX's rounding")
        return self._yaml

    def analyze(self, **kwargs: Any):
        """The analysis of the imported spec; with dynamic axes, in their symbols unless ``input_shape`` is given."""
        if self.symbolic_input is not None:
            kwargs.setdefault("input_shape", self.symbolic_input)
        return analyze_spec(self.spec, **kwargs)


def supported() -> dict[str, tuple]:
    """Each layer kind's ONNX operators, as it declares them (what from_onnx imports)."""

    return {name: kind.onnx_ops for name, kind in REGISTRY.items() if kind.onnx_ops}


MAX_FILE = (2 << 30) - 1  # bytes: protobuf parses no message of 2 GiB or more, so a larger file is refused unread
EXTERNAL = 1  # TensorProto.EXTERNAL: the tensor's data sits in another file, which cnnsize never opens here
# bytes of data a tensor read from a file keeps: a value cnnsize reads has at most MAX_VALUE elements of at most 16
# bytes (complex128; an int64 written as a varint takes at most 10); a longer tensor keeps its shape, not its data
PAYLOAD_LIMIT = 16 * MAX_VALUE


def max_nodes() -> int:
    """The most nodes a model may hold (the command line lowers it to 30,000: 15 s and 1 GiB)."""
    return spec_sources.DEFAULT_MAX_ONNX_NODES


def walk(model):
    """Every tensor the model holds (initializers, sparse ones, node attributes in subgraphs and functions) and
    the number of nodes, walked without recursion."""
    tensors: list = []
    nodes = 0
    stack: list = [model.graph]
    node_lists: list = [f.node for f in model.functions]
    while stack or node_lists:
        if stack:
            g = stack.pop()
            tensors.extend(g.initializer)
            for sp in g.sparse_initializer:
                tensors.extend((sp.values, sp.indices))
            node_lists.append(g.node)
            continue
        for node in node_lists.pop():
            nodes += 1
            for a in node.attribute:
                if a.HasField("t"):
                    tensors.append(a.t)
                tensors.extend(a.tensors)
                if a.HasField("sparse_tensor"):
                    tensors.extend((a.sparse_tensor.values, a.sparse_tensor.indices))
                for sp in a.sparse_tensors:
                    tensors.extend((sp.values, sp.indices))
                if a.HasField("g"):
                    stack.append(a.g)
                stack.extend(a.graphs)
    return tensors, nodes


def external_tensors(model) -> list:
    """The tensors whose data the file places in another file (``external_data``)."""
    tensors, _ = walk(model)
    return [t for t in tensors if t.data_location == EXTERNAL or len(t.external_data)]


def _drop_external(tensors) -> None:
    """Forget where external data sits: such a tensor keeps its name, type and shape, and no data, so that nothing
    (onnx's shape inference, its reference evaluator, numpy_helper) can open a file the model names."""
    for t in tensors:
        if t.data_location == EXTERNAL or len(t.external_data):
            del t.external_data[:]
            t.data_location = 0  # DEFAULT: the data is what the file holds, here none
            t.ClearField("raw_data")


NOT_ONNX_HINT = "give a .onnx file written by torch.onnx.export or onnx.save; is it truncated?"


def _too_many_nodes(shown: str, limit: int) -> LimitExceeded:
    return LimitExceeded(f"'{shown}' holds more than {limit:,} ONNX nodes, the most cnnsize sizes",
                         hint="the command line sizes up to 30,000 ONNX nodes (15 s and 1 GiB); "
                              "cnnsize.from_onnx(..., max_nodes=N) takes more")


def _file_bytes(path: str, shown: str, limit: int, payload_limit: int | None) -> bytes:
    """The file's bytes; with ``payload_limit``, those of a copy without the data of any tensor holding more (see
    onnx_wire): the file is mapped and walked, never read whole."""
    import mmap

    try:
        with open(path, "rb") as fh:
            if payload_limit is None or os.fstat(fh.fileno()).st_size == 0:  # an empty file cannot be mapped
                return fh.read()
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return Pruner(buf, payload_limit, limit).run()
    except OSError as exc:
        raise SpecError(f"cannot read '{shown}': {exc.strerror}") from None
    except Malformed as exc:
        raise SpecError(f"'{shown}' is not an ONNX model (not protobuf: {exc})", hint=NOT_ONNX_HINT) from None
    except TooManyNodes:
        raise _too_many_nodes(shown, limit) from None


def read_model(source, shown: str | None = None, limit: int | None = None, payload_limit: int | None = None):
    """The ModelProto of a path, external data untouched (never opened), after the limits: the file's size, and
    the number of nodes counted in its bytes, before protobuf parses them. With ``payload_limit``, a tensor holding
    more bytes of data than that is read without it, marked as external data (its name, type and shape kept)."""
    onnx = require_onnx()
    if not isinstance(source, (str, os.PathLike)):
        raise SpecError(f"from_onnx takes a path or an onnx.ModelProto, got {type(source).__name__}")
    path = os.fspath(source)
    shown = shown or path
    if os.path.isdir(path):
        raise SpecError(f"'{shown}' is a folder, not an ONNX file")
    if not os.path.isfile(path):
        raise SpecError(f"no ONNX file '{shown}'")
    size = os.path.getsize(path)
    if size > MAX_FILE:
        raise LimitExceeded(f"'{shown}' holds {size:,} bytes, more than the {MAX_FILE:,} protobuf can parse",
                            hint="save the weights as external data (onnx.save(..., save_as_external_data=True))")
    limit = max_nodes() if limit is None else limit
    data = _file_bytes(path, shown, limit, payload_limit)
    nodes = count_nodes(data, limit)
    if nodes is not None and nodes > limit:
        raise _too_many_nodes(shown, limit)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise SpecError(f"'{shown}' is not an ONNX model (protobuf cannot parse it: {type(exc).__name__})",
                        hint=NOT_ONNX_HINT) from None
    del data
    if not model.graph.node or not model.graph.input or model.ir_version <= 0:
        raise SpecError(f"'{shown}' is not an ONNX model (no graph in it)", hint=NOT_ONNX_HINT)
    return model


def load_model(source, shown: str | None = None, limit: int | None = None, payload_limit: int | None = None):
    """The ModelProto of a path or of a ModelProto (copied, never changed), with external data forgotten: only
    shapes are needed, and nothing a model file names is ever opened. A file's tensors holding more than
    ``payload_limit`` bytes of data (PAYLOAD_LIMIT by default) are read without it, as if it were external: so a
    file of 1.9 GB costs its structure's memory, not its size. One clear error otherwise."""
    onnx = require_onnx()
    limit = max_nodes() if limit is None else limit
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
    else:
        model = read_model(source, shown, limit, PAYLOAD_LIMIT if payload_limit is None else payload_limit)
    tensors, nodes = walk(model)
    if nodes > limit:
        raise LimitExceeded(f"the ONNX model holds {nodes:,} nodes, more than the {limit:,} cnnsize sizes",
                            hint="the command line sizes up to 30,000 ONNX nodes (15 s and 1 GiB); "
                                 "cnnsize.from_onnx(..., max_nodes=N) takes more")
    _drop_external(tensors)
    _inline_ifs(onnx, model)
    return model


def _refuse_unread(model, text: str) -> None:
    """Shape inference failing for want of a tensor's value that cnnsize did not read (external data, or more data
    than PAYLOAD_LIMIT written in the file) is said as such, not as onnx's "data size mismatch"."""
    found = re.search(r"Tensor: (\S+) expected num elements", text)
    if found is None:
        return
    tensors, _ = walk(model)
    for t in tensors:
        if t.name == found.group(1) and not _has_data(t):
            raise SpecError(f"ONNX shape inference needs the value of '{printable(t.name)[:100]}', whose data "
                            f"cnnsize does not read (external data, or more than {PAYLOAD_LIMIT:,} bytes written "
                            "in the file)", hint="write the values that shapes depend on into the file")


def _literal_conditions(onnx, graph) -> dict:
    """The values that are one boolean or number written in the file (an initializer or a Constant node's)."""
    from onnx import numpy_helper

    tensors = [(t.name, t) for t in graph.initializer]
    tensors += [(n.output[0], n.attribute[0].t) for n in graph.node if n.op_type == "Constant" and n.output
                and len(n.attribute) == 1 and n.attribute[0].HasField("t")]
    found = {}
    for name, t in tensors:
        if _elements(t.dims) == 1 and _has_data(t):
            try:
                found[name] = bool(numpy_helper.to_array(t).reshape(-1)[0])
            except Exception:  # noqa: BLE001 - a type that is no condition
                pass
    return found


def _inline_ifs(onnx, model) -> None:
    """Replace each If whose condition is written in the file by the branch it takes (its nodes and initializers,
    an Identity per output), so that the branch is sized as any other part of the graph; an If whose condition
    is computed, or whose branch's names clash with the graph's, stays (an operator no kind stands for)."""
    graph = model.graph
    for _ in range(MAX_DEPTH + 1):  # each pass lifts one level of nesting
        conditions = _literal_conditions(onnx, graph)
        defined = {t.name for t in graph.initializer} | {i.name for i in graph.input}
        defined |= {o for n in graph.node for o in n.output}
        nodes, changed = [], False
        for node in graph.node:
            branch = _taken_branch(node, conditions)
            lifted = _lift(onnx, graph, node, branch, defined) if branch is not None else None
            if lifted is None:
                nodes.append(node)
            else:
                nodes.extend(lifted)
                changed = True
        if not changed:
            return
        kept = [onnx.NodeProto() for _ in nodes]
        for k, n in zip(kept, nodes):
            k.CopyFrom(n)
        del graph.node[:]
        graph.node.extend(kept)


def _taken_branch(node, conditions: dict):
    if node.op_type != "If" or node.domain not in ("", "ai.onnx") or not node.input or node.input[0] not in conditions:
        return None
    want = "then_branch" if conditions[node.input[0]] else "else_branch"
    return next((a.g for a in node.attribute if a.name == want and a.HasField("g")), None)


def _lift(onnx, graph, node, branch, defined: set) -> list | None:
    """The nodes standing for ``node`` (an If) with ``branch`` taken; the branch's own names renamed where they
    clash with the graph's (a file need not keep them apart); None for a malformed If."""
    if len(branch.output) != len(node.output):
        return None
    copy = onnx.GraphProto()
    copy.CopyFrom(branch)
    inner = {t.name for t in copy.initializer} | {o for n in copy.node for o in n.output if o}
    if inner & defined:
        mapping = {}
        for name in sorted(inner):
            fresh, k = f"{node.name or 'If'}/{name}", 1
            while fresh in defined or fresh in inner:
                k += 1
                fresh = f"{node.name or 'If'}/{name}_{k}"
            mapping[name] = fresh
            defined.add(fresh)
        _rename(copy, mapping, own=True)
        inner = set(mapping.values())
    graph.initializer.extend(copy.initializer)
    defined |= inner
    out = list(copy.node)
    for b, o in zip(copy.output, node.output):
        if o:
            out.append(onnx.helper.make_node("Identity", [b.name], [o], name=f"{node.name or 'If'}/{o}"))
    return out


def _rename(graph, mapping: dict, own: bool = False, depth: int = 0) -> None:
    """Rename values in a graph: its own definitions too (``own``), else only what it reads from outside (a name
    it defines itself shadows the outer one)."""
    if depth > MAX_DEPTH:
        raise LimitExceeded(f"the ONNX model nests subgraphs more than {MAX_DEPTH} deep")
    if not own:
        local = {t.name for t in graph.initializer} | {i.name for i in graph.input}
        local |= {o for n in graph.node for o in n.output}
        mapping = {k: v for k, v in mapping.items() if k not in local}
        if not mapping:
            return
    for t in graph.initializer:
        t.name = mapping.get(t.name, t.name)
    for n in graph.node:
        n.input[:] = [mapping.get(i, i) for i in n.input]
        if own:
            n.output[:] = [mapping.get(o, o) for o in n.output]
        for attr in n.attribute:
            for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _rename(g, mapping, depth=depth + 1)
    for o in graph.output:
        o.name = mapping.get(o.name, o.name)


def _float(v: float) -> float:
    """A float32 attribute as the number it was written as (0.8999999761581421 -> 0.9)."""
    return float(f"{v:.7g}")


def _attr(onnx, a) -> Any:
    value = onnx.helper.get_attribute_value(a)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, (list, tuple)) and len(value) > MAX_VALUE:  # a weight written as an attribute
        return None
    if isinstance(value, list) and value and isinstance(value[0], float):
        return [_float(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
    if isinstance(value, onnx.TensorProto):
        return _tensor_value(onnx, value)
    return value


def _tensor_value(onnx, t) -> Any:
    """A small tensor's value as nested lists (None for a large one or one whose data is not in the file)."""
    from onnx import numpy_helper

    n = 1
    for d in t.dims:
        n *= d
    if n > MAX_VALUE or t.data_location == onnx.TensorProto.EXTERNAL:
        return None
    try:
        return numpy_helper.to_array(t).tolist()
    except Exception:  # noqa: BLE001 - an odd dtype: the value stays unknown
        return None


def _dims(type_proto) -> tuple | None:
    t = type_proto.tensor_type
    if not t.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim)


def _layer_name(node, index: int) -> str:
    """A readable layer name from an exporter's node name (/layer1/layer1.0/conv1/Conv -> layer1.0.conv1)."""
    parts = [p for p in (node.name or "").split("/") if p]
    if parts and parts[-1].split("_")[0] == node.op_type:
        parts = parts[:-1] or parts
    kept: list[str] = []
    for p in parts:  # the torch exporter repeats each scope's parents: layer1 / layer1.0 / conv1
        if kept and p.startswith(kept[-1] + "."):
            kept[-1] = p
        else:
            kept.append(p)
    name = ".".join(kept) or f"{node.op_type.lower()}_{index}"
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)
    return name[:200]


# Operators whose value is computed when their inputs are known constants of at most MAX_VALUE elements and shape
# inference gives each output at most MAX_VALUE elements: the work is then about the output's size (MatMul's at
# most MAX_VALUE ** 1.5). Nothing else is run: no loop, no subgraph, no operator whose work the sizes do not bound.
FOLD_OPS = frozenset({
    "Identity", "Cast", "CastLike", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split",
    "Slice", "Gather", "GatherElements", "Expand", "Tile", "ConstantOfShape", "Range", "Pad", "Where", "Add", "Sub",
    "Mul", "Div", "Pow", "Mod", "Neg", "Abs", "Sqrt", "Reciprocal", "Exp", "Log", "Floor", "Ceil", "Round", "Sign",
    "Min", "Max", "Sum", "Mean", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or",
    "Xor", "Clip", "Relu", "Sigmoid", "Tanh", "Erf", "Sin", "Cos", "MatMul", "Gemm", "ReduceProd", "ReduceSum",
    "ReduceMean", "ReduceMax", "ReduceMin", "ArgMax", "ArgMin", "CumSum", "Constant", "Dropout"})


def _has_subgraph(node) -> bool:
    return any(a.type in (5, 10) or a.HasField("g") or len(a.graphs) for a in node.attribute)  # GRAPH, GRAPHS


def outer_reads(node, depth: int = 0) -> set[str]:
    """The values a node's subgraphs read from the scopes around them (an If branch reading a computed tensor)."""
    if depth > MAX_DEPTH:
        raise LimitExceeded(f"the ONNX model nests subgraphs more than {MAX_DEPTH} deep")
    found: set[str] = set()
    for a in node.attribute:
        for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            defined = {i.name for i in g.input} | {t.name for t in g.initializer}
            read: set[str] = set()
            for n in g.node:
                read.update(i for i in n.input if i)
                if _has_subgraph(n):
                    read |= outer_reads(n, depth + 1)
                defined.update(n.output)
            read.update(o.name for o in g.output)
            found |= read - defined
    return found


def reads(node) -> list[str]:
    """Every value a node reads: its inputs, then what its subgraphs read from outside them."""
    ins = [i for i in node.input if i]
    if node.attribute and _has_subgraph(node):
        ins += sorted(outer_reads(node) - set(ins))
    return ins


def live_outputs(graph) -> set[str]:
    """The values something reads on the way to the graph's outputs (nothing is folded for a value no one reads)."""
    live = {o.name for o in graph.output}
    for node in reversed(graph.node):
        if any(o in live for o in node.output if o):
            live.update(reads(node))
    return live


def _elements(shape) -> int | None:
    """The elements of a static shape (None for an unknown or symbolic one)."""
    if shape is None or not all(isinstance(d, int) and d >= 0 for d in shape):
        return None
    n = 1
    for d in shape:
        n *= d
    return n


def may_evaluate(node, out_shapes: list) -> bool:
    """Whether onnx's reference evaluator may compute this node: an operator of FOLD_OPS, no subgraph, and every
    output's size known from shape inference and small (checked before anything runs)."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in FOLD_OPS or _has_subgraph(node):
        return False
    sizes = [_elements(s) for s in out_shapes]
    return bool(sizes) and all(n is not None and n <= MAX_VALUE for n in sizes)


def run_node(node, feeds: dict) -> list | None:
    """The outputs of one small node under onnx's reference evaluator (None where it cannot compute them)."""
    import numpy as np

    try:
        from onnx.reference import ReferenceEvaluator

        outs = ReferenceEvaluator(node).run(None, feeds)
    except Exception:  # noqa: BLE001 - an operator or type the evaluator lacks: the value stays unknown
        return None
    if any(np.size(o) > MAX_VALUE for o in outs):
        return None
    return outs


def _light_copy(onnx, model):
    """The model without its large weights' data (shape inference needs their shapes only)."""
    copy = onnx.ModelProto(ir_version=model.ir_version)
    copy.opset_import.extend(model.opset_import)
    copy.functions.extend(model.functions)
    g, src = copy.graph, model.graph
    g.name = src.name
    g.node.extend(src.node)
    g.input.extend(src.input)
    g.output.extend(src.output)
    for t in src.initializer:
        if (_elements(t.dims) or 0) > MAX_VALUE or not _has_data(t):
            g.initializer.append(onnx.TensorProto(name=t.name, data_type=t.data_type, dims=t.dims))
        else:
            g.initializer.append(t)
    return copy


def _has_data(t) -> bool:
    return bool(t.HasField("raw_data") or t.float_data or t.int64_data or t.int32_data or t.double_data
                or t.uint64_data or t.string_data or _elements(t.dims) == 0)


def _fold_value(node, known: dict, shapes: dict, types: dict) -> list | None:
    """A live node's outputs where they are small constants computed within the limits, else None."""
    import numpy as np
    from onnx import helper

    ins = [i for i in node.input if i]
    if node.domain not in ("", "ai.onnx"):
        return None
    if node.op_type in ("Shape", "Size"):
        n = _elements(shapes.get(ins[0])) if ins else None
        shape = shapes.get(ins[0]) if ins else None
        if n is None or shape is None:
            return None
        if node.op_type == "Size":
            return [np.array(n, dtype=np.int64)]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        return [np.array(shape[attrs.get("start", 0):attrs.get("end", len(shape))], dtype=np.int64)]
    if node.op_type == "CastLike" and len(ins) == 2 and ins[0] in known and types.get(ins[1]):
        return [known[ins[0]].astype(helper.tensor_dtype_to_np_dtype(types[ins[1]]))]
    if not all(i in known for i in ins) or not may_evaluate(node, [shapes.get(o) for o in node.output if o]):
        return None
    return run_node(node, {i: known[i] for i in ins})


def _fold_known(onnx, model) -> bool:
    """Replace the live nodes computing small constants (shapes, axes, zero biases) by initializers, so that shape
    inference sees their values (it does not look through Reshape or Expand of constants); True if any."""
    import numpy as np
    from onnx import numpy_helper

    graph = model.graph
    shapes = {vi.name: _dims(vi.type) for vi in [*graph.value_info, *graph.input, *graph.output]}
    types = {vi.name: vi.type.tensor_type.elem_type for vi in [*graph.value_info, *graph.input, *graph.output]}
    known: dict = {}
    for t in graph.initializer:
        shapes[t.name] = tuple(t.dims)
        if _has_data(t) and (_elements(t.dims) or 0) <= MAX_VALUE:
            try:
                known[t.name] = numpy_helper.to_array(t)
            except Exception:  # noqa: BLE001 - an odd dtype
                pass
    inits = set(known)
    live = live_outputs(graph)
    folded = set()
    nodes = list(graph.node)
    for index, node in enumerate(nodes):
        if not any(o in live for o in node.output if o):
            continue
        value = _fold_value(node, known, shapes, types)
        if value is None or len(value) < len([o for o in node.output if o]):
            continue
        for o, v in zip(node.output, value):
            if o:
                known[o] = np.asarray(v)
        folded.add(index)
    if not folded:
        return False
    keep = [n for i, n in enumerate(nodes) if i not in folded]
    needed = {i for n in keep for i in reads(n)} | {o.name for o in graph.output}
    new = [numpy_helper.from_array(known[name], name) for name in needed if name in known and name not in inits]
    del graph.node[:]
    graph.node.extend(keep)
    graph.initializer.extend(new)
    return True


INT64_MAX = 2**63 - 1  # ONNX sizes are int64


def _checked_size(want: Any, axis: int, name: str) -> Any:
    """A size given for an input axis: a positive integer ONNX can hold (int64), or a name (a symbol)."""
    if isinstance(want, str) or (hasattr(want, "is_Symbol") and want.is_Symbol):
        return want
    if isinstance(want, bool) or not isinstance(want, int):
        raise SpecError(f"--input gives axis {axis} of the model's input '{name}' the size {str(want)[:40]!r}, "
                        "not an integer", hint="give positive integers (or names, for symbols)")
    if not 1 <= want <= INT64_MAX:
        shown = f"{want:,}" if abs(want) < 10**30 else f"a {len(str(abs(want))):,}-digit number"
        raise SpecError(f"--input gives axis {axis} of the model's input '{name}' the size {shown}; ONNX sizes "
                        f"are from 1 to {INT64_MAX:,}", hint="give a positive size ONNX can hold")
    return want


class _Again(Exception):  # noqa: N818 - not an error: run the opaque import again
    def __init__(self, roots: set):
        self.roots = roots


class _Importer:
    def __init__(self, model, input_shape: tuple | None, name: str | None, opaque: bool, shown: str):
        self.onnx = require_onnx()
        self.model = model
        self.opaque = opaque
        self.shown = shown
        self.name = name or (model.graph.name or "onnx_model")
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.values: dict[str, OnnxValue] = {}
        self.sources: dict[str, frozenset] = {}  # constant value -> the initializers it is computed from
        self.sizes: dict[str, int] = {}  # initializer -> elements
        self.floats: set[str] = set()  # initializers of a floating dtype (weights, not indices)
        self.alias: dict[str, str] = {}  # value name -> the layer holding it
        self.layers: list[dict | None] = []
        self.layer_index: dict[str, int] = {}
        self.layer_node: dict[str, Any] = {}  # layer -> the node (call) whose output it is
        self.layer_inits: dict[str, frozenset] = {}  # layer -> initializers it counts as parameters
        self.held: set[str] = set()
        self.names: set[str] = {"input"}
        self.sources_of: dict[str, list[str]] = {}
        self.last = "input"
        self.graph: Any = None  # the spec's Graph, once checked
        self.notes: list[str] = []
        self.dynamic: dict[str, Any] = {}
        self.pending: dict[str, tuple] = {}  # value -> (the error, the index of the node no kind answered for)
        self.opaque_nodes: set[int] = set()  # indices of the nodes kept opaque (a second run of an opaque import)

        self.kinds_for: dict[str, list] = {}  # operator -> the kinds declaring it, in registration order
        for kind in REGISTRY.values():
            for op in kind.onnx_ops:
                self.kinds_for.setdefault(op, []).append(kind)
        self.input_shape = self.prepare(input_shape)

    # -- shapes --------------------------------------------------------------------------------------------------
    def prepare(self, input_shape: tuple | None) -> tuple:
        """Fix the input's dynamic axes (the batch to 1, the others from ``input_shape``), then infer shapes."""
        dims = self._input_dims()
        given = tuple(input_shape) if input_shape is not None else None
        if given is not None and len(given) != len(dims) - 1:
            raise SpecError(f"--input has {len(given)} sizes but the model's input '{self.input_name}' has "
                            f"{len(dims) - 1} per sample ({list(dims)})")
        fixed, symbols = [], []
        for i, d in enumerate(dims[1:]):
            want = _checked_size(given[i], i + 1, self.input_name) if given is not None else None
            size, symbol = self._axis_size(i + 1, d, want)
            fixed.append(size)
            symbols.append(symbol)
        self.symbolic = tuple(symbols) if any(not isinstance(v, int) for v in symbols) else None
        self._infer_shapes(fixed)
        return tuple(fixed)

    def _input_dims(self) -> tuple:
        """The shape of the model's one input tensor (initializers listed as inputs are not inputs)."""
        graph = self.model.graph
        inits = {t.name for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in inits]
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs) or "none"
            raise Unrepresentable(f"the ONNX model takes {len(inputs)} inputs ({names})",
                                  hint="from_onnx sizes a model of one input tensor")
        self.input_name = inputs[0].name
        dims = _dims(inputs[0].type)
        if dims is None or len(dims) < 2:
            raise Unrepresentable(f"the ONNX model's input '{inputs[0].name}' has no batch and channel axes "
                                  f"({'unknown rank' if dims is None else list(dims)})",
                                  hint="from_onnx sizes a model taking (N, C, ...) or (N, L, D)")
        return dims

    def _axis_size(self, axis: int, d: Any, want: Any) -> tuple[int, Any]:
        """One input axis: (the size imported at, the size it stands for: an int, or a symbol sized later).

        A fixed axis keeps its size; a dynamic one takes ``--input``'s size, else a symbol probed at PROBE.
        """
        if isinstance(d, int) and d > 0:
            if want is not None and want != d:
                raise SpecError(f"the model's input '{self.input_name}' has the fixed size {d} on axis {axis}, "
                                f"--input asks for {want}", hint=f"give {d} there, or leave --input out")
            return d, d
        if isinstance(want, int):
            self.dynamic[str(d or f"axis {axis}")] = want
            return want, want
        import sympy  # a symbolic size: imported at the probe size, then sized as a symbol (checked there)

        name = want if want is not None else re.sub(r"\W", "_", str(d or f"axis{axis}"))
        if not isinstance(name, sympy.Symbol):
            name = sympy.Symbol(name if name[:1].isalpha() else f"d_{name}", positive=True, integer=True)
        self.dynamic[str(d or f"axis {axis}")] = name
        return PROBE, name

    def _infer_shapes(self, fixed: list) -> None:
        """ONNX's shape inference on a copy whose input has the sizes ``fixed``: every value's shape, in ``shapes``."""
        onnx = self.onnx
        model = _light_copy(onnx, self.model)
        graph = model.graph
        for i in graph.input:
            if i.name == self.input_name:
                shape = i.type.tensor_type.shape
                for d, v in zip(shape.dim, [1, *fixed]):
                    d.Clear()
                    d.dim_value = v
        for o in graph.output:
            o.type.tensor_type.ClearField("shape")
        for _ in range(4):  # shape inference, then constants folded in where it could not see them, until settled
            del model.graph.value_info[:]  # each round from scratch: a guess of the last one would stay
            try:
                model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
            except Exception as exc:  # noqa: BLE001 - onnx raises InferenceError and others
                text = " ".join(str(exc).split())[:300]
                _refuse_unread(self.model, text)
                if self.symbolic is not None:
                    raise SpecError(f"ONNX shape inference fails with the dynamic axes at {PROBE}: {text}",
                                    hint="give the sizes the model takes with --input") from None
                raise SpecError(f"ONNX shape inference fails: {text}",
                                hint="check the file with onnx.checker.check_model") from None
            if not _fold_known(onnx, model):
                break
        self.inferred = model
        self.shapes: dict[str, tuple | None] = {}
        for vi in [*model.graph.value_info, *model.graph.output, *model.graph.input]:
            self.shapes[vi.name] = _dims(vi.type)
        for t in model.graph.initializer:
            self.shapes[t.name] = tuple(t.dims)

    # -- constants -----------------------------------------------------------------------------------------------
    def constants(self) -> None:
        onnx = self.onnx
        for t in self.model.graph.initializer:
            n = 1
            for d in t.dims:
                n *= d
            self.sizes[t.name] = n
            if t.data_type in FLOAT_TYPES:
                self.floats.add(t.name)
            self.sources[t.name] = frozenset([t.name])
            self.values[t.name] = OnnxValue(t.name, tuple(t.dims), _tensor_value(onnx, t), constant=True,
                                            learned=t.name in self.floats)
        self.values[self.input_name] = OnnxValue(self.input_name, (1, *self.input_shape))
        self.alias[self.input_name] = "input"

    def constant_nodes(self, nodes) -> set[int]:
        """The indices of the nodes computing constants (what fold will take): from initializers and literals
        alone, or from a static shape (Shape, Size; CastLike reads only its second input's type)."""
        known = {t.name for t in self.model.graph.initializer}
        found = set()
        for index, node in enumerate(nodes):
            ins = [i for i in node.input if i]
            if node.op_type in ("Shape", "Size"):
                shape = self.shapes.get(ins[0]) if ins else None
                ok = ins and (ins[0] in known or (shape is not None and all(isinstance(d, int) for d in shape)))
            else:
                read = ins[:1] if node.op_type == "CastLike" else reads(node)
                ok = all(i in known for i in read) and not node.op_type.startswith("Random") and \
                    node.domain in ("", "ai.onnx")
            if ok:
                found.add(index)
                known.update(o for o in node.output if o)
        return found

    def fold(self, node) -> bool:
        """Whether ``node`` computes constants only (from initializers, or from a static shape); if so, record them."""
        ins = [i for i in node.input if i]
        if node.op_type in ("Shape", "Size"):
            return self._fold_shape(node, ins)
        read = ins[:1] if node.op_type == "CastLike" else reads(node)  # CastLike reads its second input's type
        if not all(i in self.values and self.values[i].constant for i in read):
            return False
        ins = read
        if node.op_type in ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial"):
            return False
        sources = frozenset().union(*(self.sources.get(i, frozenset()) for i in ins)) if ins else frozenset()
        if node.op_type == "Identity" and len(sources) == 1 and next(iter(sources)) in self.floats:
            sources = self._copied_weight(node, next(iter(sources)))
        if node.op_type == "Constant":
            self._fold_literal(node, sources)
            return True
        values = None
        if node.op_type == "CastLike":  # the value as it is (only its type changes)
            values = [self.values[ins[0]].value]
        elif any(o in self.live for o in node.output if o) and all(self.values[i].value is not None for i in ins):
            values = self.evaluate(node, ins)
        for k, out in enumerate(node.output):
            if out:
                self.set_constant(out, values[k] if values is not None else None, sources)
        return True

    def _fold_shape(self, node, ins: list) -> bool:
        """Shape or Size of a tensor whose shape is static: a constant, from no initializer."""
        shape = (self.shapes.get(ins[0]) or (self.values[ins[0]].shape if ins[0] in self.values else None)) \
            if ins else None
        if shape is None or not all(isinstance(d, int) for d in shape):
            return False
        value: Any = list(shape)
        if node.op_type == "Size":
            value = 1
            for d in shape:
                value *= d
        else:
            attrs = {a.name: _attr(self.onnx, a) for a in node.attribute}
            value = value[attrs.get("start", 0):attrs.get("end", len(value))]
        self.set_constant(node.output[0], value, frozenset())
        return True

    def _copied_weight(self, node, src: str) -> frozenset:
        """An Identity of one weight: an exporter's deduplication of equal weights (two parameters, one stored
        copy), so a weight of its own; parameters really tied (one parameter read twice) are read directly by
        both nodes."""
        self.sizes[node.output[0]] = self.sizes[src]
        self.floats.add(node.output[0])
        return frozenset([node.output[0]])

    def _fold_literal(self, node, sources: frozenset) -> None:
        """A Constant node; a floating tensor of more than one element is a weight stored in the graph."""
        a = node.attribute[0] if node.attribute else None
        value = _attr(self.onnx, a) if a is not None else None
        if a is not None and a.type == self.onnx.AttributeProto.TENSOR:
            t = a.t
            n = 1
            for d in t.dims:
                n *= d
            if n > 1 and t.data_type in FLOAT_TYPES:
                self.sizes[node.output[0]] = n
                self.floats.add(node.output[0])
                sources = frozenset([node.output[0]])
        self.set_constant(node.output[0], value, sources)

    def set_constant(self, name: str, value: Any, sources: frozenset) -> None:
        shape = self.shapes.get(name)
        if shape is None and value is not None:
            import numpy as np

            shape = tuple(np.shape(value))
        self.values[name] = OnnxValue(name, shape, value, constant=True,
                                      learned=any(s in self.floats for s in sources))
        self.sources[name] = sources

    def evaluate(self, node, ins: list[str]) -> list | None:
        """A constant node's outputs, where its operator and sizes allow computing them (see may_evaluate)."""
        import numpy as np

        if not may_evaluate(node, [self.shapes.get(o) for o in node.output if o]):
            return None
        try:
            feeds = {i: np.array(self.values[i].value, dtype=self.dtype_of(i)) for i in ins}
        except Exception:  # noqa: BLE001 - a value numpy cannot hold at that type
            return None
        outs = run_node(node, feeds)
        return None if outs is None else [o.tolist() for o in outs]

    def dtype_of(self, name: str):
        """The numpy dtype of a value, from the initializers' and shape inference's types (looked up once)."""
        import numpy as np
        from onnx import helper

        if not hasattr(self, "_types"):
            self._types = {vi.name: vi.type.tensor_type.elem_type for vi in self.inferred.graph.value_info}
            self._types.update((t.name, t.data_type) for t in self.model.graph.initializer)
        if self._types.get(name):
            return helper.tensor_dtype_to_np_dtype(self._types[name])
        v = self.values[name].value
        return np.int64 if isinstance(v, int) or (isinstance(v, list) and v and isinstance(v[0], int)) \
            else np.float32

    # -- the walk ------------------------------------------------------------------------------------------------
    def run(self) -> dict:
        graph = self.model.graph
        self.constants()
        users: dict[str, int] = {}  # how many nodes computing tensors read each value (constant ones do not count)
        nodes = list(graph.node)
        constant = self.constant_nodes(nodes)
        for index, node in enumerate(nodes):
            if index not in constant:
                for i in reads(node):
                    users[i] = users.get(i, 0) + 1
        for o in graph.output:
            users[o.name] = users.get(o.name, 0) + 1
        self.users = users
        self.live = live_outputs(graph)
        for index, node in enumerate(nodes):
            if node.domain not in ("", "ai.onnx"):
                self.refuse_or_opaque(node, index, f"{node.domain}.{node.op_type}")
                continue
            if self.fold(node):
                continue
            self.visit(node, index)
        self.resolve()
        outputs = [o.name for o in graph.output]
        if not outputs or any(o not in self.alias for o in outputs):
            missing = next((o for o in outputs if o not in self.alias), None)
            if missing is not None and missing in self.values and self.values[missing].constant:
                raise Unrepresentable(f"the model's output '{missing}' is a constant (computed from weights alone)")
            raise Unrepresentable("the ONNX model has no output a layer computes")
        main = self.alias[outputs[0]]
        if main != self.last:
            self.add_layer(PASS_KIND, {}, [outputs[0]], f"{main}_out", None)
        spec: dict[str, Any] = {"name": self.name, "input": list(self.input_shape), "fit": "floor"}
        return spec

    def call_of(self, node, index: int, output: int) -> OnnxCall:
        args: list[OnnxValue | None] = []
        for i in [*node.input, *reads(node)[len([i for i in node.input if i]):]]:  # what subgraphs read, last
            if not i:
                args.append(None)
                continue
            v = self.values.get(i)
            if v is None:  # an output of a node not imported (an unused output)
                v = OnnxValue(i, self.shapes.get(i))
            args.append(v)
        call = OnnxCall(op=node.op_type, attrs={a.name: _attr(self.onnx, a) for a in node.attribute}, args=args,
                        outputs=[self.shapes.get(o) for o in node.output], node=node.name or f"#{index}",
                        index=output, opset=self.opset, users=self.users)
        call.proto = node
        return call

    def visit(self, node, index: int) -> None:
        """Map one node's used outputs onto layers. A node no kind answers for waits as pending: a later node may
        take it along (the Div, Erf and Add of a GELU, fused at its last Mul); one still pending at the end is
        the import's error (or, with opaque, an opaque layer)."""

        used = [k for k, o in enumerate(node.output) if o and self.users.get(o)]
        for k in used:
            call = self.call_of(node, index, k)
            out = node.output[k]
            self.values[out] = OnnxValue(out, self.shapes.get(out), producer=call)
            missing = [a.name for a in call.computed if a.name not in self.alias and a.name not in self.pending]
            if missing:
                raise Unrepresentable(f"ONNX node '{call.node}' ({node.op_type}) reads '{missing[0]}', which no "
                                      "layer computes")
            kinds = self.kinds_for.get(node.op_type, ())
            if not kinds and index not in self.opaque_nodes:  # said as such, whatever its shape
                self.pending[out] = (call.refuse(node.op_type), index)
                continue
            if call.output is None or not all(isinstance(d, int) for d in call.output):
                raise Unrepresentable(f"ONNX shape inference gives no static shape for the output '{out}' of "
                                      f"node '{call.node}' ({node.op_type})",
                                      hint="export with static sizes, or give --input")
            if index in self.opaque_nodes:
                self.keep_opaque(call, out)
                continue
            waiting = [a.name for a in call.computed if a.name in self.pending]
            refusal, plain_answer, fused_answer = None, None, None
            for kind in kinds:
                try:
                    answer = kind.from_onnx(call)
                except Unrepresentable as exc:
                    refusal = refusal or exc
                    continue
                if isinstance(answer, Fused):  # a kind taking the nodes feeding this one wins over one reading it
                    if self.can_fuse(answer, call):
                        fused_answer = (kind, answer)
                        break
                elif answer is not None and plain_answer is None and not waiting:
                    plain_answer = (kind, answer)
            chosen = fused_answer or plain_answer
            if chosen is None:
                if waiting:  # it reads a pending node: it waits too, with that node's reason
                    self.pending[out] = self.pending[waiting[0]]
                else:
                    self.pending[out] = (refusal or call.refuse(node.op_type), index)
                continue
            kind, answer = chosen
            self.apply(kind, answer, call, out)

    def can_fuse(self, fused: Fused, call: OnnxCall) -> bool:
        """The absorbed nodes' outputs must be read only inside the fused group, and its inputs be layers'."""
        inside: dict[str, int] = {}
        for c in [*fused.absorbed, call]:
            for i in c.proto.input:
                inside[i] = inside.get(i, 0) + 1
        for c in fused.absorbed:
            for o in c.proto.output:
                if o and self.users.get(o, 0) != inside.get(o, 0):
                    return False
        return all(v.name in self.alias for v in fused.inputs if not v.constant)

    def resolve(self) -> None:
        """Any node still pending is the import's error; with opaque, the import runs again keeping them opaque."""
        if not self.pending:
            return
        error, _ = next(iter(self.pending.values()))
        roots = {index for _, index in self.pending.values()}
        if self.opaque and not roots <= self.opaque_nodes:
            raise _Again(roots)
        raise error

    def apply(self, kind, answer, call: OnnxCall, out: str) -> None:
        computed = [a.name for a in call.args if a is not None and not a.constant]
        inits = self.initializers(call)
        if isinstance(answer, Fused):
            for c in answer.absorbed:
                for o in c.proto.output:
                    self.pending.pop(o, None)
                    layer = self.alias.pop(o, None)
                    if layer is not None and layer != "input" and self.layer_node.get(layer) is c.proto:
                        self.remove_layer(layer)
                inits |= {i for i in self.initializers(c) if self.sizes[i] > 1}  # a scalar there is a literal
            computed = [v.name for v in answer.inputs if not v.constant]
            kind_name = answer.kind or kind.kind
            answer = answer.settings
        else:
            kind_name = kind.kind
        if answer is PASS_THROUGH:
            self.alias[out] = self.alias[computed[0]]
            return
        if kind.max_inputs == 1 and len(set(computed)) == 1:
            computed = computed[:1]
        steps = answer if isinstance(answer, list) else [(kind_name, answer)]
        params = frozenset(inits)
        for s, (name, settings) in enumerate(steps):
            ins = computed if s == 0 else [out]
            layer = self.add_layer(name, settings, ins, None if s == 0 else f"{self.last}_{name}", call.proto)
            self.alias[out] = layer
            if s == 0:
                self.layer_inits[layer] = params

    def initializers(self, call: OnnxCall, buffers: bool = False) -> set:
        """The float initializers a node reads through its constant inputs: its parameters (weights, biases), or
        with ``buffers`` those of the inputs its kind marked as buffers (batch norm's statistics)."""
        found: set = set()
        for k, a in enumerate(call.args):
            if a is not None and a.constant and (k in call.buffer_inputs) == buffers:
                found |= {s for s in self.sources.get(a.name, ()) if s in self.floats}
        return found

    def keep_opaque(self, call: OnnxCall, out: str) -> None:
        computed = [a.name for a in call.args if a is not None and not a.constant]
        if not computed:
            raise call.refuse(f"{call.op} (it reads no tensor that a layer computed)")
        weights = 0
        for src in self.initializers(call):
            if src not in self.held:
                self.held.add(src)
                weights += self.sizes.get(src, 0)
        op = call.op if not call.proto.domain else f"{call.proto.domain}.{call.op}"
        if call.output is None or not all(isinstance(d, int) and d >= 0 for d in call.output):
            raise Unrepresentable(f"ONNX shape inference gives no static shape for the output '{out}' of node "
                                  f"'{call.node}' ({op}), which an opaque layer needs",
                                  hint="export with static sizes, or give --input")
        layer = self.add_layer(OPAQUE_KIND, {"op": f"ONNX {op}", "shape": list(call.output[1:]), "weights": weights,
                                          "macs": 0}, computed, None, call.proto)
        self.alias[out] = layer
        self.opaque_ops = getattr(self, "opaque_ops", set()) | {op}

    def refuse_or_opaque(self, node, index: int, what: str) -> None:
        call = self.call_of(node, index, 0)
        if not self.opaque:
            raise call.refuse(what)
        for k, o in enumerate(node.output):
            if o and self.users.get(o):
                c = self.call_of(node, index, k)
                self.values[o] = OnnxValue(o, self.shapes.get(o), producer=c)
                self.keep_opaque(c, o)

    def add_layer(self, kind: str, settings: dict, inputs: list[str], name: str | None, node,
                  shares: str | None = None) -> str:
        if name is None:
            name = _layer_name(node, len(self.layers)) if node is not None else f"{kind}_{len(self.layers)}"
        base, n = name, 1
        while name in self.names:
            n += 1
            name = f"{base}_{n}"
        sources = [self.alias[i] for i in inputs]
        self.sources_of[name] = sources
        self.layer_index[name] = len(self.layers)
        self.layers.append(layer_entry(kind, name, settings, sources, self.last, shares=shares))
        self.layer_node[name] = node
        self.names.add(name)
        self.last = name
        return name

    def remove_layer(self, name: str) -> None:
        """Drop a layer a fused node absorbed (nothing else reads it)."""
        i = self.layer_index.pop(name)
        self.layers[i] = None
        self.names.discard(name)
        self.layer_inits.pop(name, None)
        if self.last == name:
            self.last = next((next(iter(item.values()))["name"] for item in reversed(self.layers) if item),
                             "input")

    def finish(self, spec: dict) -> dict:
        """The layers in order (absorbed ones gone), each ``from`` that named the layer before made implicit."""
        layers, last = [], "input"
        for item in self.layers:
            if item is None:
                continue
            (kind, body), = item.items()
            sources = self.sources_of[body["name"]]
            body.pop("from", None)
            if sources != [last]:
                body["from"] = sources[0] if len(sources) == 1 else sources
            if "shares" in body:  # keep the key order readable: name, settings, from, shares
                body["shares"] = body.pop("shares")
            layers.append({kind: body})
            last = body["name"]
        spec["layers"] = layers
        return spec


def _analyze_located(spec: dict, importer: _Importer, graph: Any = None, **kwargs: Any):
    """The imported spec's analysis (its graph kept for the report, which need not expand it again); an error in
    it names the ONNX file and the node the layer stands for (a setting the file gives that no layer can take: a
    zero kernel, a stride of -1), not the spec as a dict."""

    try:
        with no_gc():
            if graph is None:
                graph = importer.graph = expand(spec, importer.shown, spec_sources.DEFAULT_MAX_LAYERS)
            return analyze_graph(graph, layout=None, **kwargs)
    except CnnsizeError as exc:
        node = importer.layer_node.get(exc.layer) if exc.layer else None
        where = f"ONNX node '{node.name or '(unnamed)'}' ({node.op_type}): " if node is not None else ""
        raise type(exc)(f"{where}{exc.message}", hint=exc.hint, location=Location(importer.shown),
                        layer=exc.layer) from None


def _check(spec: dict, importer: _Importer) -> Any:
    """Every layer's output shape must be shape inference's, and its parameters the initializers its node reads.

    A layer counting parameters holds the float initializers its node reads (following Identity, Transpose or
    Cast of them back to the initializer); a second layer reading the same ones shares them (tied weights).
    The constants a layer without parameters reads (Clip's bounds, Resize's scales, a GELU's ½) are settings.
    """
    a = _analyze_located(spec, importer)
    bodies = {next(iter(item.values()))["name"]: next(iter(item.values())) for item in spec["layers"]}
    owner: dict[frozenset, str] = {}
    for row in a.layers[1:]:
        inits = importer.layer_inits.get(row.name)
        if inits and row.weights + row.biases and not row.kind.measured:
            if inits in owner:
                bodies[row.name]["shares"] = owner[inits]
            else:
                owner[inits] = row.name
    if any("shares" in body for body in bodies.values()):
        a = _analyze_located(spec, importer)
    for row in a.layers[1:]:
        node = importer.layer_node.get(row.name)
        if node is None:
            continue
        out = next((o for o in node.output if importer.alias.get(o) == row.name), None)
        want = importer.shapes.get(out) if out is not None else None
        if want is not None and tuple(row.output_shape) != tuple(want[1:]):
            raise CnnsizeError(f"imported layer '{row.name}' ({row.type}) gives {list(row.output_shape)}, "
                               f"ONNX shape inference gives {list(want[1:])} (node '{node.name}', {node.op_type})",
                               hint="this operator means something else in ONNX; please report it")
        inits = importer.layer_inits.get(row.name) or frozenset()
        counted = row.weights + row.biases
        if row.kind.measured or "shares" in bodies.get(row.name, {}) or (not counted and not row.weight_layer):
            continue
        held = sum(importer.sizes[i] for i in inits)
        if held != counted:
            raise CnnsizeError(f"imported layer '{row.name}' ({row.type}) counts {counted:,} parameters, its "
                               f"ONNX node '{node.name}' reads {held:,} in initializers",
                               hint="this operator's weights mean something else; please report it")
    return a


def _check_symbolic(spec: dict, importer: _Importer, numeric) -> None:
    """The spec in the dynamic axes' symbols must give, at the size it was imported at, every shape it gives
    there: no layer's settings may hold that size (a reshape to fixed sizes, a flatten before a fixed Gemm)."""
    assert importer.symbolic is not None  # called only for an import with dynamic axes
    symbols = [v for v in importer.symbolic if not isinstance(v, int)]
    where = ", ".join(str(v) for v in symbols)
    example = "x".join(str(v if isinstance(v, int) else PROBE) for v in importer.symbolic)
    hint = f"give numeric sizes with --input (e.g. --input {example})"
    try:
        a = _analyze_located(spec, importer, importer.graph, input_shape=importer.symbolic)
    except CnnsizeError as exc:
        raise SpecError(f"the model's dynamic axes ({where}) cannot stay symbols: {exc.message}", hint=hint) from None
    at = {v: PROBE for v in symbols}
    for row, want in zip(a.layers, numeric.layers):
        got = tuple(int(d.subs(at)) if hasattr(d, "subs") else d for d in row.output_shape)
        if got != tuple(want.output_shape):
            raise SpecError(f"the model's dynamic axes ({where}) cannot stay symbols: layer '{row.name}' holds "
                            f"sizes fixed at {PROBE}", hint=hint)


def _folding_note(spec: dict, analysis) -> str | None:
    """The note for a graph whose batch norms were folded into its convolutions at export, if that is evident: no
    normalization is left, and every convolution has a bias (what folding gives) or none has (an exporter's
    optimizer drops a bias that is all zero, as an untrained network's folded batch norm gives: torch's dynamo
    exporter does). The count with batch norm supposes one after each convolution over more than one position
    (a squeeze-and-excitation's convolutions of pooled features have none), and no bias in those."""

    rows = {row.name: row for row in analysis.layers}
    kinds = [REGISTRY[next(iter(item))] for item in spec["layers"]]
    bodies = [next(iter(item.values())) for item in spec["layers"]]
    convs = [b for k, b in zip(kinds, bodies) if {"filters", "kernel", "bias"} <= set(k.params)]  # convolutions
    if not convs or any(k.cause == "normalization" for k in kinds):
        return None
    biased = [b.get("bias", True) for b in convs]
    if any(biased) and not all(biased):
        return None
    spread = [b for b in convs if any(n != 1 for n in rows[b["name"]].output_shape[1:])]
    if not spread:
        return None
    filters = sum(b["filters"] for b in spread)
    params, buffers = analysis.totals["params"], analysis.totals["buffers"]
    if all(biased):
        why = ("every convolution has a bias and no normalization is left, as both torch exporters leave a model "
               "exported in eval mode")
        more = filters  # each folded bias gives way to the batch norm's weight and bias
    else:
        why = ("no normalization is left and no convolution has a bias: an exporter folded each batch norm into the "
               "convolution before it, and its optimizer dropped the biases that folding left all zero, as an "
               "untrained network's batch norms give (torch's dynamo exporter does)")
        more = 2 * filters  # the batch norms' weights and biases
    return (f"Batch norm looks folded into the convolutions ({why}): the {params:,} params are the file's. With a "
            f"batch norm after each of the {len(spread)} convolutions over more than one position, and no bias in "
            f"those, as such a network trains, it has {params + more:,} params and "
            f"{buffers + 2 * filters + len(spread):,} buffers.")


def _shared_note(spec: dict, importer: _Importer) -> str | None:
    """The note for layers reading the very initializers another layer reads: counted once, as tied weights are,
    though an exporter also merges parameters that are merely equal (zero biases, ones of an untrained network)."""
    shared = [next(iter(item.values())) for item in spec["layers"] if "shares" in next(iter(item.values()))]
    if not shared:
        return None
    held = sum(importer.sizes[i] for body in shared for i in importer.layer_inits.get(body["name"], ()))
    return (f"{len(shared)} layer{'s' if len(shared) > 1 else ''} read the same weights as another layer (shares:) and "
            f"count them once, as tied weights are; where the exporter merged parameters that were only equal "
            f"(deduplicated constants, such as an untrained network's zero biases), the module holds {held:,} more "
            f"params.")


def from_onnx(model, *, input_shape: tuple | None = None, name: str | None = None, opaque: bool = False,
              shown: str | None = None, max_nodes: int | None = None) -> OnnxImport:
    """Read an ONNX model (a path or an ``onnx.ModelProto``) and return the equivalent spec, as from_torch does.

    Nothing the file names is ever opened: the weights' external data is not loaded (only shapes are needed).
    ``max_nodes`` bounds the nodes read (the layer limit by default), counted before the file is parsed. Dynamic
    axes other than the batch take their sizes from ``input_shape`` (C, H, W). An operator no layer kind stands
    for raises CnnsizeError naming it and its node; with ``opaque=True`` it becomes an ``opaque`` layer with
    shape inference's output shape and the parameters it reads (its MACs unknown: 0). When batch norm was
    evidently folded into the convolutions at export, the spec's notes say so, with the count the network has
    with its batch norms.
    """
    if isinstance(model, (str, os.PathLike)):
        shown = shown or os.fspath(model)
        default_name = os.path.splitext(os.path.basename(os.fspath(model)))[0]
    else:
        shown = shown or "<ModelProto>"
        default_name = None
    try:
        return _from_onnx(load_model(model, shown, max_nodes), input_shape, name, opaque, shown, default_name)
    except CnnsizeError as exc:
        if exc.location is None and not exc.message.startswith(("no ONNX", "'")):
            exc.location = Location(shown)
        raise


def _from_onnx(proto, input_shape, name, opaque, shown, default_name) -> OnnxImport:
    keep: set = set()
    while True:
        importer = _Importer(proto, input_shape, name or default_name, opaque, shown)
        importer.opaque_nodes = keep
        try:
            spec = importer.finish(importer.run())
            break
        except _Again as again:
            keep = keep | again.roots
    notes = []
    sized = {k: v for k, v in importer.dynamic.items() if isinstance(v, int)}
    symbols = {k: v for k, v in importer.dynamic.items() if not isinstance(v, int)}
    if sized:
        notes.append("Imported at " + ", ".join(f"{k} = {v}" for k, v in sized.items()) +
                     " (dynamic axes of the ONNX model, sized by --input).")
    if symbols:
        notes.append("The ONNX model's dynamic axes " + ", ".join(k if k == str(v) else f"{k} ({v})"
                                                                for k, v in symbols.items()) +
                     f" are symbols: the spec holds the size {PROBE} they were imported at; cnnsize report on the "
                     "ONNX file (or --input with names) gives every figure as a formula in them.")
    if getattr(importer, "opaque_ops", None):
        notes.append(f"Opaque layers ({', '.join(sorted(importer.opaque_ops))}) carry shape inference's output "
                     "shape and the parameters they read; ONNX gives no count of their MACs (0 here).")
    if notes:
        spec["notes"] = notes
    analysis = _check(spec, importer)
    if importer.symbolic is not None:
        _check_symbolic(spec, importer, analysis)
    extra = [n for n in (_folding_note(spec, analysis), _shared_note(spec, importer)) if n]
    if extra:  # what the file's parameters leave out of the module's count, where the graph shows it
        spec["notes"] = [*spec.get("notes", []), *extra]
    order = ["name", "input", "fit", "notes", "layers"]
    spec = {k: spec[k] for k in order if k in spec}
    names = {next(iter(item.values()))["name"] for item in spec["layers"]}
    values = {}
    for value, layer in importer.alias.items():
        node = importer.layer_node.get(layer)
        if layer in names and node is not None and value in node.output:
            values[layer] = value
    return OnnxImport(values=values, spec=spec, symbolic_input=importer.symbolic, graph=importer.graph)
