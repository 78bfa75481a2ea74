"""An ONNX file's protobuf wire bytes, walked without protobuf: its nodes counted, and a copy of it without the
tensors' large data, before anything is parsed.

protobuf parses a message whole: a file of 1.9 GB holding its weights inline costs its size read, and again
parsed (3.7 GB of memory for a report that needs only shapes). Here the file is mapped, not read, and walked by
its fields' lengths: the messages that may hold a tensor (graph, node, attribute, function, sparse tensor) are
entered where they are longer than the limit, and a tensor whose data (raw_data, float_data, ..., string_data)
is longer is copied without it, marked as data held elsewhere (data_location EXTERNAL), which the importer then
forgets as it forgets external data: the tensor keeps its name, type and shape. Only the pages the walk touches
are read, so memory follows what is kept, not the file's size. onnx is not needed here.
"""

from __future__ import annotations

from ..core.errors import LimitExceeded

BIG_NODE = 256  # bytes: a node this long may hold subgraphs (If, Loop, Scan), scanned for their nodes before parsing
MAX_DEPTH = 32  # subgraphs nested deeper than this are refused before parsing (protobuf's own limit is near 100)
# bytes of the file kept besides large tensors' data (nodes, names, shapes, small constants), per node allowed and
# at least: protobuf's parse costs about 9 times as much (64 MiB: under 600 MB)
KEPT_PER_NODE = 2 << 10
MIN_KEPT = 64 << 20
FIELDS_PER_NODE = 16  # fields the walk may step through per node allowed (value infos, initializers, attributes)
MIN_FIELDS = 1 << 20  # ... and at least this many, whatever the node limit

# The fields of each message that hold a message which may hold a tensor, and that message's kind.
_HOLDS: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},  # ModelProto.graph, .training_info, .functions
    "training": {1: "graph", 2: "graph"},  # TrainingInfoProto.initialization, .algorithm
    "graph": {1: "node", 5: "tensor", 15: "sparse"},  # GraphProto.node, .initializer, .sparse_initializer
    "function": {7: "node", 11: "attribute"},  # FunctionProto.node, .attribute_proto (default values)
    "node": {5: "attribute"},  # NodeProto.attribute
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},  # t, g, tensors,
    "sparse": {1: "tensor", 2: "tensor"},  # SparseTensorProto.values, .indices        graphs, sparse_tensor(s)
}
_NODE_FIELD = {"graph": 1, "function": 7}
# TensorProto's data: float_data, int32_data, string_data, int64_data, raw_data, double_data, uint64_data
PAYLOAD = frozenset({4, 5, 6, 7, 9, 10, 11})
_LOCATION = 14  # TensorProto.data_location
EXTERNAL_MARK = bytes([_LOCATION << 3, 1])  # data_location = EXTERNAL: the data is not in what was kept


class Malformed(Exception):
    """The bytes are no protobuf message; the text says where and why."""


class TooManyNodes(Exception):  # noqa: N818 - not an error of its own: the caller says it with the file's name
    """The walk met more nodes than the limit (counting stops there)."""


def varint(buf, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise Malformed(f"a number runs past the end at byte {i:,}" if i >= len(buf) else
                            f"a number of more than 10 bytes at byte {i:,}")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def _encode(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def wire_fields(buf, start: int, end: int):
    """(field number, wire type, field start, value start, field end) of each field of the message in
    ``buf[start:end]``, every length checked against the message's end."""
    i = start
    while i < end:
        at = i
        key = buf[i]  # a one-byte number is read inline (most keys and lengths): the walk's time is here
        key, i = (key, i + 1) if key < 0x80 else varint(buf, i)
        number, wire = key >> 3, key & 7
        value = i
        if wire == 2:
            n = buf[i] if i < end else 0x80
            n, value = (n, i + 1) if n < 0x80 else varint(buf, i)
            i = value + n
        elif wire == 0:
            _, i = varint(buf, i)
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise Malformed(f"field {number} has the wire type {wire} at byte {at:,}, which ONNX never writes")
        if number == 0:
            raise Malformed(f"a field numbered 0 at byte {at:,}")
        if i > end:
            raise Malformed(f"field {number} at byte {at:,} runs past the end of its message (byte {end:,})")
        yield number, wire, at, value, i


def _fields(buf, start: int, end: int):
    """(field number, start, end) of each length-delimited field of the message in ``buf[start:end]``."""
    for number, wire, _, value, stop in wire_fields(buf, start, end):
        if wire == 2:
            yield number, value, stop


def _count_nodes(buf, start: int, end: int, node_field: int, budget: int, depth: int) -> int:
    """The nodes of a graph (``node_field`` 1) or function (7) in the wire bytes, those of the subgraphs a long
    node holds included; counting stops once past ``budget``."""
    if depth > MAX_DEPTH:
        raise LimitExceeded(f"the ONNX model nests subgraphs more than {MAX_DEPTH} deep")
    count = 0
    for number, s, e in _fields(buf, start, end):
        if number != node_field:
            continue
        count += 1
        if e - s > BIG_NODE:  # NodeProto.attribute (5) -> AttributeProto.g (6) or .graphs (11)
            for f, a, b in _fields(buf, s, e):
                if f == 5:
                    for g, c, d in _fields(buf, a, b):
                        if g in (6, 11):
                            count += _count_nodes(buf, c, d, 1, budget - count, depth + 1)
        if count > budget:
            break
    return count


def count_nodes(data, budget: int) -> int | None:
    """The model's nodes (graph, subgraphs and functions), read from its wire bytes before protobuf parses them
    (a parse costs about ten times the file's size in memory); None if the bytes are no protobuf message."""
    try:
        count = 0
        for number, s, e in _fields(data, 0, len(data)):  # ModelProto.graph (7), .functions (25)
            if number in (7, 25):
                count += _count_nodes(data, s, e, 1 if number == 7 else 7, budget - count, 1)
                if count > budget:
                    break
        return count
    except Malformed:
        return None


class Pruner:
    """The walk making the copy: ``buf`` the file's bytes (a mmap), ``limit`` the most bytes of data a tensor keeps,
    ``nodes`` the most nodes (the walk stops past them; the most bytes kept and fields stepped through follow)."""

    def __init__(self, buf, limit: int, nodes: int):
        self.buf = buf
        self.limit = limit
        self.nodes_left = nodes
        self.max_kept = max(MIN_KEPT, KEPT_PER_NODE * nodes)
        self.max_fields = self.fields_left = max(MIN_FIELDS, FIELDS_PER_NODE * nodes)
        self.kept = 0
        self.dropped = 0  # bytes of tensor data left out
        self.tensors = 0  # tensors left without their data

    def run(self) -> bytes:
        chunks, _ = self.message(0, len(self.buf), "model", 0)
        return b"".join(chunks)

    def fields(self, start: int, end: int):
        for field in wire_fields(self.buf, start, end):
            self.fields_left -= 1
            if self.fields_left < 0:
                raise LimitExceeded(f"the ONNX file holds more than {self.max_fields:,} protobuf fields in its "
                                    "graphs, nodes and large tensors, more than its node limit allows",
                                    hint="is it an ONNX model? cnnsize.from_onnx(..., max_nodes=N) allows more")
            yield field

    def keep(self, n: int) -> None:
        self.kept += n
        if self.kept > self.max_kept:
            raise LimitExceeded(f"the ONNX file holds more than {self.max_kept >> 20:,} MiB besides its large "
                                "tensors' data (nodes, names, shapes, small constants), more than cnnsize reads",
                                hint="is it an ONNX model? onnx.save(..., save_as_external_data=True) moves "
                                     "weights out of the file")

    def message(self, start: int, end: int, kind: str, depth: int) -> tuple[list, int]:
        """The message's bytes, its long children that may hold tensors copied by their own walk: (chunks, length)."""
        if kind == "graph":
            depth += 1
            if depth > MAX_DEPTH:
                raise LimitExceeded(f"the ONNX model nests subgraphs more than {MAX_DEPTH} deep")
        holds, node_field = _HOLDS[kind], _NODE_FIELD.get(kind)
        chunks: list = []
        length = 0
        run = start  # the verbatim bytes not yet copied start here
        for number, wire, at, value, stop in self.fields(start, end):
            if number == node_field and wire == 2:
                self.nodes_left -= 1
                if self.nodes_left < 0:
                    raise TooManyNodes
            child = holds.get(number) if wire == 2 else None
            if child is None or stop - value <= self.limit:
                continue
            length += self._flush(chunks, run, at)
            inner, n = self.tensor(value, stop) if child == "tensor" else self.message(value, stop, child, depth)
            head = _encode(number << 3 | 2) + _encode(n)
            chunks.append(head)
            chunks.extend(inner)
            length += len(head) + n
            run = stop
        length += self._flush(chunks, run, end)
        return chunks, length

    def _flush(self, chunks: list, start: int, end: int) -> int:
        if end > start:
            self.keep(end - start)
            chunks.append(self.buf[start:end])
        return end - start

    def tensor(self, start: int, end: int) -> tuple[list, int]:
        """A tensor, without its data where that is longer than the limit (then marked as held elsewhere)."""
        payload = sum(stop - at for number, _, at, _, stop in self.fields(start, end) if number in PAYLOAD)
        if payload <= self.limit:
            return self._whole(start, end)
        chunks: list = []
        length = 0
        for number, _, at, _, stop in self.fields(start, end):
            if number not in PAYLOAD and number != _LOCATION:
                length += self._flush(chunks, at, stop)
        chunks.append(EXTERNAL_MARK)
        self.dropped += payload
        self.tensors += 1
        return chunks, length + len(EXTERNAL_MARK)

    def _whole(self, start: int, end: int) -> tuple[list, int]:
        chunks: list = []
        return chunks, self._flush(chunks, start, end)
