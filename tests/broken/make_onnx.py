"""Write the hostile ONNX files of the broken corpus (tests/broken/*.onnx), small graphs built with onnx.helper.

Each file is a model a user could be handed: a loop of 10^12 iterations, constants of gigabytes that nothing or
something reads, settings no layer can take, operators no kind stands for, subgraphs nested too deep. Each must
end in one located line (exit 2) within 15 s and 1 GiB; tests/test_onnx_hostile.py runs them against their
.expected lines. Regenerate (the files are small and deterministic) with:
    python tests/broken/make_onnx.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)


def ints(value, name: str):
    return numpy_helper.from_array(np.array(value, np.int64), name)


def floats(value, name: str):
    return numpy_helper.from_array(np.array(value, np.float32), name)


def model(name: str, nodes: list, inits=(), output=Y, opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, [X], [output], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def read_by_add(source: list, inits: list, name: str) -> onnx.ModelProto:
    """``source`` computes the constant 'big'; its sum is added to the input (a bias add no kind stands for)."""
    nodes = [*source, helper.make_node("ReduceSum", ["big"], ["total"], name="sum", keepdims=0),
             helper.make_node("Add", ["x", "total"], ["y"], name="add")]
    return model(name, nodes, inits)


def loop_body(reads_input: bool) -> onnx.GraphProto:
    shape = [1, 3, 8, 8] if reads_input else [1]
    ins = [helper.make_tensor_value_info("i", TensorProto.INT64, []),
           helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
           helper.make_tensor_value_info("v", TensorProto.FLOAT, shape)]
    outs = [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, shape)]
    step = helper.make_node("Add", ["v", "x" if reads_input else "v"], ["v_out"])
    return helper.make_graph([helper.make_node("Identity", ["cond"], ["cond_out"]), step], "body", ins, outs)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def nested_ifs_bytes(depth: int) -> bytes:
    """A model whose If nests an If in its branch ``depth`` deep, written byte by byte (onnx.helper cannot: protobuf
    refuses to build messages nested about 33 graphs deep)."""
    graph = _field(1, _field(1, "r") + _field(2, "o") + _field(4, "Relu")) + _field(2, "leaf")
    for level in range(depth):  # NodeProto: input 1, output 2, name 3, op_type 4, attribute 5 (g 6, type 20 GRAPH)
        attribute = _field(1, "then_branch") + _field(6, graph) + _varint(20 << 3) + _varint(5)
        node = _field(1, "c") + _field(2, "o") + _field(3, f"if{level}") + _field(4, "If") + _field(5, attribute)
        graph = _field(1, node) + _field(2, f"level{level}")
    top = model("onnx_nested_ifs_45", [helper.make_node("Relu", ["x"], ["r"], name="relu0")])
    top.graph.node[0].output[0] = "y"
    return top.SerializeToString() + _field(7, graph)  # a second graph field: protobuf merges it into the first


def cases() -> dict[str, onnx.ModelProto]:
    weight = floats(np.ones((4, 3, 3, 3)), "W")
    return {
        "onnx_loop_huge_used": read_by_add(
            [helper.make_node("Loop", ["M", "C", "V"], ["big"], body=loop_body(False), name="loop")],
            [ints(10**12, "M"), numpy_helper.from_array(np.array(True), "C"), floats([1.0], "V")],
            "onnx_loop_huge_used"),
        "onnx_loop_reads_input": model("onnx_loop_reads_input", [
            helper.make_node("Loop", ["M", "C", "x"], ["y"], body=loop_body(True), name="loop")],
            [ints(10**12, "M"), numpy_helper.from_array(np.array(True), "C")]),
        "onnx_constant_of_shape_used": read_by_add(
            [helper.make_node("ConstantOfShape", ["s"], ["big"], name="fill")], [ints([30000, 30000], "s")],
            "onnx_constant_of_shape_used"),
        "onnx_range_used": read_by_add(
            [helper.make_node("Range", ["a", "b", "d"], ["big"], name="range")],
            [ints(0, "a"), ints(300_000_000, "b"), ints(1, "d")], "onnx_range_used"),
        "onnx_expand_used": read_by_add(
            [helper.make_node("Expand", ["one", "s"], ["big"], name="expand")],
            [floats([1.0], "one"), ints([16, 8000, 8000], "s")], "onnx_expand_used"),
        "onnx_conv_groups_0": model("onnx_conv_groups_0", [
            helper.make_node("Conv", ["x", "W"], ["y"], name="the_conv", group=0)], [weight]),
        "onnx_pool_window_too_large": model("onnx_pool_window_too_large", [
            helper.make_node("MaxPool", ["x"], ["y"], name="the_pool", kernel_shape=[30, 30])]),
        "onnx_leaky_relu_nan": model("onnx_leaky_relu_nan", [
            helper.make_node("LeakyRelu", ["x"], ["y"], name="the_act", alpha=float("nan"))]),
        "onnx_resize_negative_scale": model("onnx_resize_negative_scale", [
            helper.make_node("Resize", ["x", "", "sc"], ["y"], name="the_resize", mode="nearest")],
            [floats([1, 1, -2, 2], "sc")]),
        "onnx_unsupported_no_static_shape": model("onnx_unsupported_no_static_shape", [
            helper.make_node("Relu", ["x"], ["r"], name="relu0"), helper.make_node("NonZero", ["r"], ["y"], name="nz")],
            output=helper.make_tensor_value_info("y", TensorProto.INT64, None)),
    }


def main() -> int:
    for name, m in cases().items():
        (HERE / f"{name}.onnx").write_bytes(m.SerializeToString())
    (HERE / "onnx_nested_ifs_45.onnx").write_bytes(nested_ifs_bytes(45))
    return 0


if __name__ == "__main__":
    sys.exit(main())
