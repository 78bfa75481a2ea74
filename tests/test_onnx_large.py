"""ONNX files holding their weights inline, up to protobuf's 2 GiB (issue 22): a report needs shapes and small
constants, never the weights' data, so the file is walked by its wire bytes and parsed without the data of large
tensors. The big file is written sparse: its header, then a seek past each weight's bytes (zeros never written),
then the graph's other fields; so a 1.9 GB file costs no disk and no time to make.

The truths: numpy's counts of the weights' shapes, the convolutions' MACs by their formula, and the same model
read whole (small files) or with its weights as external data, which the old path already sized without reading.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import need
from .test_onnx_hostile import observed

pytestmark = pytest.mark.zoo

BIG = (30_000, 3_000)  # conv1's and conv2's filters: 1.54 GB and 0.36 GB of float32 weights, 1.9 GB in all


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _graph(c1: int, c2: int, big_inline: bool):
    """x [1, 512, 8, 8] -> Conv (c1 filters of 5x5, bias) -> Relu -> Conv (c2 of 1x1) -> Reshape to [1, -1].

    The Reshape's shape is a small constant whose value the import needs. With ``big_inline`` the two convolution
    weights are left out (the caller writes them); else they are external data named 'weights.bin' (never read)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 512, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["a"], pads=[2, 2, 2, 2], name="conv1"),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2"], ["c"], name="conv2"),
             helper.make_node("Reshape", ["c", "shape"], ["y"], name="flat")]
    inits = [numpy_helper.from_array(np.zeros(c1, np.float32), "b1"),
             numpy_helper.from_array(np.array([1, -1], np.int64), "shape")]
    if not big_inline:
        for name, dims in _weights(c1, c2):
            t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
            t.data_location = TensorProto.EXTERNAL
            entry = t.external_data.add()
            entry.key, entry.value = "location", "weights.bin"
            inits.append(t)
    graph = helper.make_graph(nodes, "inline", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _weights(c1: int, c2: int) -> list:
    return [("w1", [c1, 512, 5, 5]), ("w2", [c2, c1, 1, 1])]


def write_inline(path: Path, c1: int, c2: int) -> int:
    """The model with its weights inline (raw_data of zeros), written sparse: the weights' bytes are seeked past,
    never written. The graph's fields follow the weights, so a reader must walk past them to find the nodes."""
    from onnx import TensorProto

    model = _graph(c1, c2, big_inline=True)
    rest = model.graph.SerializeToString()
    model.ClearField("graph")
    head = model.SerializeToString()
    parts = []
    for name, dims in _weights(c1, c2):
        n = 4 * dims[0] * dims[1] * dims[2] * dims[3]
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims).SerializeToString()
        tensor += _varint(9 << 3 | 2) + _varint(n)  # TensorProto.raw_data, then its n bytes
        parts.append((_varint(5 << 3 | 2) + _varint(len(tensor) + n) + tensor, n))  # GraphProto.initializer
    with open(path, "wb") as fh:
        fh.write(head + _varint(7 << 3 | 2) + _varint(sum(len(p) + n for p, n in parts) + len(rest)))
        for p, n in parts:
            fh.write(p)
            fh.seek(n, os.SEEK_CUR)
        fh.write(rest)
    return os.path.getsize(path)


def _truth(c1: int, c2: int) -> dict:
    """numpy's count of the weights, and the convolutions' MACs by their formula (8x8 outputs, 'same' padding)."""
    import numpy as np

    weights = sum(int(np.prod(dims)) for _, dims in _weights(c1, c2))
    return {"params": weights + c1, "macs": 64 * (c1 * 512 * 25 + c2 * c1)}


def _report(path: Path, tmp: Path) -> tuple[dict, dict, float]:
    r, seen, took = observed("report", str(path), "-f", "json", cwd=tmp, tmp=tmp)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout), seen, took


def test_inline_weights_of_1_9_gb_are_sized_within_15_s_and_1_gib(tmp_path):
    """The old path read the file whole and parsed it: 7.7 s and 3.7 GB of memory on this file."""
    need("onnx")
    path = tmp_path / "inline.onnx"
    size = write_inline(path, *BIG)
    assert 1.8e9 < size < 2**31 - 1
    got, seen, took = _report(path, tmp_path)
    assert took < 15 and seen["peak_kib"] < 1 << 20, (took, seen["peak_kib"])
    truth = _truth(*BIG)
    assert got["totals"]["params"] == truth["params"] and got["totals"]["macs"] == truth["macs"]
    external = tmp_path / "external.onnx"  # the same model, its weights external data (sized, never read)
    external.write_bytes(_graph(*BIG, big_inline=False).SerializeToString())
    same, _, _ = _report(external, tmp_path)
    assert got["totals"] == same["totals"] and got["layers"] == same["layers"]
    assert seen["opened"].count(str(path)) == 1


def _small(tmp_path) -> Path:
    """A small model with its weights inline (real data), then a MatMul by a Constant node's weight, and an If whose
    written condition picks a branch with a MatMul by a Constant of its own."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    model = _graph(6, 5, big_inline=False)
    del model.graph.initializer[2:]
    rng = np.random.default_rng(0)
    model.graph.initializer.extend([numpy_helper.from_array(rng.standard_normal(dims).astype(np.float32), name)
                                    for name, dims in _weights(6, 5)])
    g = model.graph
    g.node[3].output[0] = "y0"
    weight = numpy_helper.from_array(rng.standard_normal((320, 4)).astype(np.float32), "wv")
    branch_weight = numpy_helper.from_array(rng.standard_normal((4, 100)).astype(np.float32), "bv")
    out = [helper.make_tensor_value_info("b", TensorProto.FLOAT, None)]
    then = helper.make_graph([helper.make_node("Constant", [], ["bw"], value=branch_weight),
                              helper.make_node("MatMul", ["y1", "bw"], ["b"], name="branch_fc")], "then", [], out)
    other = helper.make_graph([helper.make_node("Identity", ["y1"], ["b"])], "else", [], out)
    g.node.extend([helper.make_node("Constant", [], ["w"], value=weight),
                   helper.make_node("MatMul", ["y0", "w"], ["y1"], name="fc"),
                   helper.make_node("If", ["cond"], ["y"], then_branch=then, else_branch=other, name="if")])
    g.initializer.append(numpy_helper.from_array(np.array(True), "cond"))
    path = tmp_path / "small.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def _figures(path: Path, payload_limit: int) -> tuple:
    from cnnsize.importers import onnx_import

    saved = onnx_import.PAYLOAD_LIMIT
    onnx_import.PAYLOAD_LIMIT = payload_limit
    try:
        a = onnx_import.from_onnx(path).analyze()
    finally:
        onnx_import.PAYLOAD_LIMIT = saved
    return [(r.name, tuple(r.output_shape), r.params, r.macs, r.activations) for r in a.layers], a.totals


@pytest.mark.parametrize("limit", [100, 2_000, 25_000])
def test_small_file_read_without_large_data_sizes_the_same(tmp_path, limit):
    """The same walk on a small file with the limit lowered: the tensors holding more data than the limit (the
    first convolution's weight; below 5,120 bytes the Constant node's weight, below 1,600 the one in the If's
    branch, below 120 the second convolution's) come back without it, marked as held elsewhere, the others (the
    Reshape's shape, the If's condition) with theirs; and every figure is that of the file read whole, and
    numpy's."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from cnnsize.importers.onnx_import import read_model, walk

    path = _small(tmp_path)
    whole = onnx.load(str(path))
    model = read_model(path, payload_limit=limit)
    assert model.ByteSize() < whole.ByteSize()
    before, _ = walk(whole)
    after, _ = walk(model)
    assert [(t.name, list(t.dims), t.data_type) for t in before] == [(t.name, list(t.dims), t.data_type) for t in after]
    for old, new in zip(before, after):
        data = numpy_helper.to_array(old)
        if data.nbytes > limit:  # marked as data held elsewhere: the import forgets it as it forgets external data
            assert new.data_location == onnx.TensorProto.EXTERNAL and not new.raw_data and not new.float_data
        else:
            assert np.array_equal(numpy_helper.to_array(new), data) and new.data_location == 0
    layers, totals = _figures(path, limit)
    assert (layers, totals) == _figures(path, 1 << 40)
    truth = _truth(6, 5)
    assert totals["params"] == truth["params"] + 320 * 4 + 4 * 100  # the Constant nodes' weights
    assert totals["macs"] == truth["macs"] + 320 * 4 + 4 * 100


def test_a_value_left_unread_is_said_in_one_line(tmp_path):
    """With the limit below the Reshape's 16 bytes of shape, the import needs a value it did not read: one line
    naming the tensor, not onnx's "data size mismatch" (the same line as for a shape held as external data)."""
    from cnnsize.core.errors import CnnsizeError

    with pytest.raises(CnnsizeError) as info:
        _figures(_small(tmp_path), 8)
    line = info.value.one_line()
    assert "\n" not in line and "small.onnx" in line
    assert "needs the value of 'shape', whose data cnnsize does not read" in line, line


# -- the walk against protobuf: every tensor, wherever a model may hold one -----------------------------------------
def every_tensor(message):
    """Every TensorProto in a message, found through protobuf's own descriptors (whatever field holds it)."""
    from onnx import TensorProto

    stack = [message]
    while stack:
        m = stack.pop()
        if isinstance(m, TensorProto):
            yield m
        for fd, value in m.ListFields():
            if fd.message_type is None:
                continue
            repeated = fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED
            stack.extend(value if repeated else [value])


PAYLOAD_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "raw_data", "double_data", "uint64_data")


def without_large_data(model, limit: int):
    """What the walk should give, computed on the parsed model: each tensor whose data fields take more than
    ``limit`` bytes loses them and is marked EXTERNAL (data held elsewhere); everything else stays."""
    from onnx import ModelProto, TensorProto

    expected = ModelProto()
    expected.CopyFrom(model)
    for t in every_tensor(expected):
        payload = TensorProto()
        for name in PAYLOAD_FIELDS:
            if name == "raw_data":
                if t.HasField("raw_data"):
                    payload.raw_data = t.raw_data
            else:
                getattr(payload, name).extend(getattr(t, name))
        if payload.ByteSize() > limit:
            for name in PAYLOAD_FIELDS:
                t.ClearField(name)
            t.data_location = TensorProto.EXTERNAL
    return expected


def walked(data: bytes, limit: int):
    from onnx import ModelProto

    from cnnsize.importers.onnx_wire import Pruner

    return ModelProto.FromString(Pruner(data, limit, 10**6).run())


def _everywhere():
    """A model holding tensors in every place ONNX allows one: initializers, sparse ones, node attributes (t,
    tensors, sparse_tensor, sparse_tensors), an If's branches (g) and a Scan-like node's graphs, a function's nodes
    and its attributes' defaults, and training information's two graphs; of every data field."""
    import numpy as np
    from onnx import AttributeProto, TensorProto, helper, numpy_helper

    def t(name, n, dtype=np.float32):
        return numpy_helper.from_array(np.arange(n).astype(dtype), name)

    def sparse(name, n):
        return helper.make_sparse_tensor(t(name + "_v", n), t(name + "_i", n, np.int64), [n])

    strings = helper.make_tensor("strings", TensorProto.STRING, [3], [b"a" * 300, b"b", b"c"])
    floats = helper.make_tensor("floats", TensorProto.FLOAT, [400], list(range(400)))  # float_data, not raw
    ints = helper.make_tensor("ints", TensorProto.INT64, [300], list(range(300)))
    doubles = helper.make_tensor("doubles", TensorProto.DOUBLE, [300], [0.5] * 300)
    small = t("small", 2)
    branch = helper.make_graph([helper.make_node("Constant", [], ["o"], value=t("in_branch", 200))], "b", [],
                               [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)], [t("branch_init", 300)])
    node = helper.make_node("Custom", ["x"], ["y"], domain="custom", t=t("attr_t", 500), tensors=[floats, small],
                            g=branch, graphs=[branch, branch])
    node.attribute.extend([helper.make_attribute("sp", sparse("attr_sparse", 300)),
                           helper.make_attribute("sps", [sparse("attr_sparses", 100), sparse("tiny", 1)])])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [t("init", 1000), ints, doubles, strings, small],
                              sparse_initializer=[sparse("sparse_init", 400)])
    default = AttributeProto(name="w", type=AttributeProto.TENSOR, t=t("fn_default", 600))
    function = helper.make_function("custom", "Fn", ["a"], ["b"],
                                    [helper.make_node("Constant", [], ["b"], value=t("fn_const", 700))],
                                    [helper.make_opsetid("", 17)], attribute_protos=[default])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)],
                              functions=[function])
    info = model.training_info.add()
    info.initialization.CopyFrom(helper.make_graph([], "init", [], [], [t("train_init", 800)]))
    info.algorithm.CopyFrom(helper.make_graph([], "algo", [], [], [t("train_algo", 900)]))
    return model


@pytest.mark.parametrize("limit", [0, 8, 300, 10**9])
def test_the_walk_drops_large_data_wherever_a_tensor_sits(limit):
    """protobuf's descriptors find each tensor; the walk must leave out the data of exactly those over the limit,
    and keep every other byte's meaning (parsed, the models compare equal). A message kind the walk does not
    enter (a new place ONNX puts tensors) fails here."""
    need("onnx")
    model = _everywhere()
    data = model.SerializeToString()
    got = walked(data, limit)
    want = without_large_data(model, limit)
    assert got == want
    places = {"init", "sparse_init_v", "sparse_init_i", "attr_t", "floats", "attr_sparse_v", "attr_sparses_i",
              "in_branch", "branch_init", "ints", "doubles", "strings", "fn_default", "fn_const", "train_init",
              "train_algo"}
    dropped = {t.name for t in every_tensor(got) if t.data_location == 1}
    assert places <= {t.name for t in every_tensor(got)}
    if limit <= 8:
        assert places <= dropped
    elif limit == 300:
        assert {"init", "fn_const", "train_algo", "floats", "strings"} <= dropped and "small" not in dropped
    else:
        assert not dropped
    if limit == 10**9:
        from cnnsize.importers.onnx_wire import Pruner

        assert Pruner(data, limit, 10**6).run() == data  # nothing over the limit: the very bytes
