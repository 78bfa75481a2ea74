"""Small hostile ONNX graphs from hypothesis (issue 22): random operators, attributes, shapes, constant inputs
(some of gigabytes, some naming external data inside and outside the model's folder), subgraphs (If, Loop) and
custom domains.

The property: cnnsize.from_onnx (with and without --opaque) gives a result whose per-layer figures add up to its
totals, or one CnnsizeError with a location, on one line; `cnnsize report` on the file exits 0, or 2 with one
line naming the file; never another exception; each example within 15 s and the whole run within 1 GiB of peak
memory; no file opened under the model's folder but the model itself (an audit hook sees every Python open).
The default run keeps 40 examples; the slow set runs 400, and CNNSIZE_FUZZ_EXAMPLES=N runs N.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import need

pytestmark = pytest.mark.zoo

LONG = int(os.environ.get("CNNSIZE_FUZZ_EXAMPLES", "0"))
FAST = settings(max_examples=LONG or 40, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=max(LONG, 400), deadline=None, suppress_health_check=list(HealthCheck))

OPS = ["Relu", "Sigmoid", "Add", "Mul", "Sub", "Div", "Conv", "MaxPool", "AveragePool", "GlobalAveragePool",
       "Reshape", "Flatten", "Transpose", "Concat", "Gather", "Slice", "Split", "Squeeze", "Unsqueeze", "Pad",
       "Resize", "Softmax", "MatMul", "Gemm", "BatchNormalization", "ConstantOfShape", "Range", "Expand", "Tile",
       "Shape", "Size", "Cast", "ReduceSum", "ReduceMean", "Einsum", "NonZero", "TopK", "Loop", "If", "Identity",
       "Constant", "Where", "Equal", "LeakyRelu", "Clip", "NoSuchOp"]
ATTRS = {"kernel_shape": [[3, 3], [1, 1], [0, 0], [30, 30], [2], [-1, -1]],
         "strides": [[1, 1], [2, 2], [0, 0], [10**6, 1]], "pads": [[0, 0, 0, 0], [1, 1, 1, 1], [-2, -2, -2, -2]],
         "dilations": [[1, 1], [2, 2], [0, 0]], "group": [1, 0, 3, -1], "axis": [0, 1, -1, 99, 10**12],
         "perm": [[0, 1, 2, 3], [0, 2, 3, 1], [3, 3, 3, 3], [0]], "alpha": [0.1, float("nan"), float("inf")],
         "to": [1, 7, 9, 8], "keepdims": [0, 1], "equation": ["ij,jk->ik", "ij,kl,mn->", "bad"],
         "mode": ["nearest", "linear", "constant", "reflect", "nonsense"], "epsilon": [1e-5, -1.0],
         "transB": [0, 1]}
EXTERNAL = ["weights.bin", "../forbidden.bin", "/tmp/forbidden_abs.bin", "link_forbidden.bin", "forbidden.bin",
            "sub/../../forbidden.bin", ""]


@st.composite
def constants(draw, name: str):
    """An initializer: small values, a shape of gigabytes with no data, or data placed in another file."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    kind = draw(st.sampled_from(["ints", "floats", "huge", "external", "bool"]))
    if kind == "ints":
        values = draw(st.lists(st.integers(-(2**40), 2**40) | st.sampled_from([0, 1, -1, 3, 8, 2**62]),
                               min_size=0, max_size=5))
        return numpy_helper.from_array(np.array(values if len(values) != 1 else values[0], np.int64), name)
    if kind == "floats":
        dims = draw(st.sampled_from([(), (1,), (3,), (1, 3, 1, 1), (4, 3, 3, 3), (8, 8), (3, 1, 1)]))
        return numpy_helper.from_array(np.full(dims, draw(st.sampled_from([0.0, 1.0, -2.5, float("nan")])),
                                               np.float32), name)
    if kind == "bool":
        return numpy_helper.from_array(np.array(draw(st.booleans())), name)
    dims = draw(st.sampled_from([[30000, 30000], [16, 8000, 8000], [2**40], [4, 3, 3, 3], [3]]))
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
    if kind == "external":
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", draw(st.sampled_from(EXTERNAL))), ("offset", "0"),
                           ("length", draw(st.sampled_from(["16", "-1", "x", "999999999999"])))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
    return t


def _template(draw, i: int, good: list, inits: list) -> tuple | None:
    """A well-formed node keeping the input's shape [1, 3, 8, 8] (so that the graph gets past shape inference and
    the import's deeper paths run), or an unused giant constant or loop: (op, inputs, attributes, keeps shape)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    v = draw(st.sampled_from(good))
    kind = draw(st.sampled_from(["act", "add", "conv", "scale", "dead", "if"]))
    if kind == "act":
        return draw(st.sampled_from(["Relu", "Sigmoid", "Tanh"])), [v], {}, True
    if kind == "add":
        return draw(st.sampled_from(["Add", "Mul"])), [v, draw(st.sampled_from(good))], {}, True
    if kind in ("conv", "scale"):
        name = f"w{i}"
        dims = (3, 3, 3, 3) if kind == "conv" else (3, 1, 1)
        if draw(st.booleans()):
            t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
            t.data_location = TensorProto.EXTERNAL
            for key, value in (("location", draw(st.sampled_from(EXTERNAL))), ("offset", "0"),
                               ("length", str(4 * int(np.prod(dims))))):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
            inits.append(t)
        else:
            inits.append(numpy_helper.from_array(np.ones(dims, np.float32), name))
        if kind == "conv":
            return "Conv", [v, name], {"pads": [1, 1, 1, 1]}, True
        return "Mul", [v, name], {}, True
    if kind == "if":
        cond = f"cond{i}"
        inits.append(numpy_helper.from_array(np.array(draw(st.booleans())), cond))
        out = [helper.make_tensor_value_info(f"o{i}", TensorProto.FLOAT, None)]
        then_g = helper.make_graph([helper.make_node("Relu", [v], [f"o{i}"])], "t", [], out)
        else_g = helper.make_graph([helper.make_node("Sigmoid", [v], [f"o{i}"])], "e", [], out)
        return "If", [cond], {"then_branch": then_g, "else_branch": else_g}, True
    dead = draw(st.sampled_from([("ConstantOfShape", [30000, 30000]), ("Range", None), ("Expand", [16, 8000, 8000])]))
    inits.append(numpy_helper.from_array(np.array(dead[1] or 300_000_000, np.int64), f"s{i}"))
    if dead[0] == "Range":
        inits.append(numpy_helper.from_array(np.array(0, np.int64), f"z{i}"))
        inits.append(numpy_helper.from_array(np.array(1, np.int64), f"d{i}"))
        return "Range", [f"z{i}", f"s{i}", f"d{i}"], {}, False
    if dead[0] == "Expand":
        inits.append(numpy_helper.from_array(np.ones(1, np.float32), f"one{i}"))
        return "Expand", [f"one{i}", f"s{i}"], {}, False
    return "ConstantOfShape", [f"s{i}"], {}, False


def _random_node(draw, i: int, pool: list, inits: list) -> tuple:
    """Any operator (or none that exists), any inputs, any attributes."""
    from onnx import TensorProto, helper

    op = draw(st.sampled_from(OPS))
    inputs = []
    for k in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            name = f"c{i}_{k}"
            inits.append(draw(constants(name)))
            inputs.append(name)
        else:
            inputs.append(draw(st.sampled_from(pool)))
    if op not in ("Constant", "Range", "ConstantOfShape") and "x" not in inputs and draw(st.booleans()):
        inputs.insert(0, draw(st.sampled_from(pool)))
    attrs = {key: draw(st.sampled_from(ATTRS[key])) for key in draw(st.sets(st.sampled_from(sorted(ATTRS)),
                                                                            max_size=3))}
    if op in ("If", "Loop"):  # a subgraph reading a computed value
        out = [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)]
        body = helper.make_graph([helper.make_node("Relu", [draw(st.sampled_from(pool))], ["o"])], "b", [], out)
        attrs = {"then_branch": body, "else_branch": body} if op == "If" else {"body": body}
    if op == "Constant":
        attrs = {"value": draw(constants(f"k{i}"))}
        inputs = []
    return op, inputs, attrs


@st.composite
def graphs(draw):
    """A model of one input [1, 3, 8, 8] (some axes dynamic) and 1 to 6 nodes, well-formed ones (see _template)
    and random ones mixed, the last writing 'y'."""
    from onnx import TensorProto, helper

    inits, nodes = [], []
    pool, good = ["x"], ["x"]
    n = draw(st.integers(1, 6))
    for i in range(n):
        out = "y" if i == n - 1 else f"v{i}"
        domain = ""
        made = _template(draw, i, good, inits) if draw(st.integers(0, 2)) else None
        if made is not None:
            op, inputs, attrs, keeps = made
            if keeps:
                good.append(out)
        else:
            op, inputs, attrs = _random_node(draw, i, pool, inits)
            domain = draw(st.sampled_from(["", "", "", "com.example"]))
        nodes.append(helper.make_node(op, inputs, [out], name=f"n{i}_{op}", domain=domain or None, **attrs))
        pool.append(out)
    dims = [1, 3, draw(st.sampled_from([8, "H"])), draw(st.sampled_from([8, "W"]))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "fuzz", [x], [y], inits)
    opset = draw(st.sampled_from([11, 13, 17, 18, 20]))
    imports = [helper.make_opsetid("", opset), helper.make_opsetid("com.example", 1)]
    return helper.make_model(graph, opset_imports=imports)


_OPENED: list[str] = []
_WATCHING: list[bool] = []


def _hook(event, args):
    if _WATCHING and event == "open" and args and isinstance(args[0], (str, bytes)):
        _OPENED.append(os.path.abspath(os.fsdecode(args[0])))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The model's folder, with a weight file beside it and secrets around it (never to be opened)."""
    need("onnx")
    root = tmp_path_factory.mktemp("onnx_fuzz")
    model_dir = root / "model"
    (model_dir / "sub").mkdir(parents=True)
    for where in (root / "forbidden.bin", model_dir / "weights.bin", model_dir / "forbidden.bin"):
        where.write_bytes(b"\0" * 64)
    os.symlink(root / "forbidden.bin", model_dir / "link_forbidden.bin")
    sys.addaudithook(_hook)  # once per process: it records only while _WATCHING holds an entry
    return model_dir


def _check_result(a) -> None:
    from cnnsize.core.numeric import is_int
    from cnnsize.engine.result import COUNT_FIELDS

    for key in COUNT_FIELDS:
        values = [getattr(r, key) for r in a.layers]
        if all(map(is_int, values)):
            assert sum(values) == a.totals[key], key


def _api(model, opaque: bool) -> None:
    import cnnsize
    from cnnsize.core.errors import CnnsizeError

    try:
        imported = cnnsize.from_onnx(model, opaque=opaque)
        a = imported.analyze(input_shape=tuple(imported.spec["input"]))
    except CnnsizeError as exc:
        line = exc.one_line()
        assert exc.location is not None and "\n" not in line, line
        return
    _check_result(a)


def _cli(path) -> None:
    from cnnsize.cli import main
    from cnnsize.spec import sources

    saved = sources.DEFAULT_MAX_LAYERS, sources.DEFAULT_MAX_ONNX_NODES
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["report", str(path)])
    finally:
        sources.DEFAULT_MAX_LAYERS, sources.DEFAULT_MAX_ONNX_NODES = saved
    if code == 0:
        return
    assert code == 2, err.getvalue()
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "\x1b" not in lines[0], lines


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _peak_since() -> tuple[str, int]:
    """Start measuring this example's peak memory: Linux resets the process's peak RSS (VmHWM) on writing 5 to
    /proc/self/clear_refs, so the peak is the example's, not that of the tests this process ran before (the zoo
    set validates whole networks first); elsewhere, the lifetime peak (ru_maxrss) is all there is."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return "VmHWM", _status_kib("VmRSS")
    except OSError:
        return "ru_maxrss", 0


def _peak_kib(how: str) -> int:
    return _status_kib("VmHWM") if how == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def check_graph(folder, model) -> None:
    path = folder / "fuzz.onnx"
    path.write_bytes(model.SerializeToString())
    how, base_kib = _peak_since()
    start = time.perf_counter()
    _OPENED.clear()
    _WATCHING.append(True)
    here = os.getcwd()
    os.chdir(folder)  # a relative name the model gives would be opened here (the old bug: from the working folder)
    try:
        for opaque in (False, True):
            _api(model, opaque)
        _cli(path)
    finally:
        os.chdir(here)
        _WATCHING.clear()
    took = time.perf_counter() - start
    assert took < 15, f"{took:.1f} s"
    inside = {p for p in _OPENED if p.startswith(str(folder.parent)) or "forbidden" in p or "weights.bin" in p}
    assert inside <= {str(path)}, inside
    grew_mib = (_peak_kib(how) - base_kib) / 1024
    assert grew_mib < 1024, f"the example's peak is {grew_mib:.0f} MiB above the memory held before it ({how})"


@FAST
@given(model=graphs())
def test_hostile_onnx_graphs(folder, model):
    check_graph(folder, model)


@pytest.mark.slow
@SLOW
@given(model=graphs())
def test_hostile_onnx_graphs_long(folder, model):
    check_graph(folder, model)


# -- the wire walk (the file read without large tensors' data, before protobuf parses it) ----------------------------
INSERTS = [b"\xff" * 11, b"\x3a\xff\xff\xff\xff\x0f", b"\x3a\x80", b"\x0b", b"\x0c", b"\x00", b"\x3e",
           b"\x2a\x05\x4a\x03", b"\x3a\x00", b"\x0a\x02\x3a\x00" * 8, b"\x70\x01"]


@st.composite
def mutated(draw):
    """A graph's bytes with a few mutations: bytes changed, cut, inserted (bad numbers, lengths past the end,
    groups and wire types ONNX never writes, empty or nested messages), ranges repeated, the end truncated."""
    data = bytearray(draw(graphs()).SerializeToString())
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["set", "cut", "insert", "repeat", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if how == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif how == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        elif how == "insert":
            data[at:at] = draw(st.sampled_from(INSERTS) | st.binary(min_size=1, max_size=12))
        elif how == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 200))]
        else:
            del data[at:]
    return bytes(data)


def check_walk(data: bytes, limit: int) -> None:
    """The walk ends in a copy, in 'not protobuf' only where protobuf cannot parse the bytes either (or they hold
    a group, which protobuf keeps as an unknown field and ONNX never writes), or in a limit; a copy is never longer
    than the bytes but for the lengths rewritten and the marks added."""
    from onnx import ModelProto

    from cnnsize.core.errors import LimitExceeded
    from cnnsize.importers.onnx_wire import Malformed, Pruner

    try:
        ModelProto.FromString(data)
        parses = True
    except Exception:  # noqa: BLE001 - protobuf's DecodeError
        parses = False
    walk = Pruner(data, limit, 10**6)
    try:
        copy = walk.run()
    except Malformed as exc:
        assert not parses or "wire type 3" in str(exc) or "wire type 4" in str(exc), str(exc)
        return
    except LimitExceeded:
        return
    assert len(copy) <= len(data) + 12 * walk.tensors + 64, (len(copy), len(data))


def check_bytes(folder, data: bytes) -> None:
    path = folder / "fuzz.onnx"
    path.write_bytes(data)
    start = time.perf_counter()
    _cli(path)
    assert time.perf_counter() - start < 15


@FAST
@given(data=mutated(), limit=st.sampled_from([0, 8, 100, 1 << 16]))
def test_mutated_onnx_bytes(folder, data, limit):
    """Mutated files: the walk's property, then `cnnsize report` on the file: a result or one line naming it."""
    check_walk(data, limit)
    check_bytes(folder, data)


@FAST
@given(model=graphs(), limit=st.integers(0, 600))
def test_wire_walk_keeps_all_but_large_data(model, limit):
    """On well-formed graphs, the copy parses to the model with exactly the tensors holding more than ``limit``
    bytes of data left without it and marked as held elsewhere (found through protobuf's own descriptors)."""
    from .test_onnx_large import walked, without_large_data

    assert walked(model.SerializeToString(), limit) == without_large_data(model, limit)


@pytest.mark.slow
@SLOW
@given(data=mutated(), limit=st.sampled_from([0, 8, 100, 1 << 16]))
def test_mutated_onnx_bytes_long(folder, data, limit):
    check_walk(data, limit)
    check_bytes(folder, data)
