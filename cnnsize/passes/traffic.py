"""Memory traffic per layer: the bytes each layer reads and writes at inference, and its arithmetic intensity.

The convention: a layer reads each of its inputs once, and its weights and biases once, and writes its
output once. A view (flatten, chunk, identity, dropout at inference) moves nothing; an in-place layer
reads and writes its tensor once, as any other elementwise layer does. Batch norm's running statistics
are not counted (they are buffers, neither weights nor biases). Arithmetic intensity is FLOPs
(2 × MACs) per byte moved. torchscan's "dmas" is another convention (``--count torchscan-dmas``).
"""

from __future__ import annotations

from typing import Any

from ..core.dtypes import DTYPE_BYTES
from ..core.numeric import human_bytes, is_int, prod
from ..engine.result import Column


def moves(row) -> bool:
    """Whether a layer moves data: views and the identity at inference do not."""
    return row.materialized or bool(getattr(row.kind, "inplace", False))


def intensity(flops: Any, moved: Any) -> Any:
    """FLOPs per byte, rounded to 4 decimals; None where nothing moves or the sizes are formulas."""
    if not (is_int(flops) and is_int(moved)) or not moved:
        return None
    return round(flops / moved, 4)


def apply(analysis):
    """Fill bytes_read, bytes_written and arithmetic_intensity in every row and the totals."""
    size = DTYPE_BYTES[analysis.dtype]
    shapes = {r.name: r.output_shape for r in analysis.layers}
    read_total = written_total = 0
    for r in analysis.layers:
        if r.kind is None or not moves(r):  # the input row, and views
            read, written = 0, 0
        else:
            inputs = sum((prod(shapes[s]) for s in r.inputs), 0) * analysis.batch
            read = (inputs + r.weights + r.biases) * size
            written = prod(r.output_shape) * analysis.batch * size
        r.add("bytes_read", read)
        r.add("bytes_written", written)
        r.add("arithmetic_intensity", intensity(r.flops, read + written))
        read_total += read
        written_total += written
    t = analysis.totals
    t["bytes_read"], t["bytes_written"] = read_total, written_total
    t["arithmetic_intensity"] = ai = intensity(t["flops"], read_total + written_total)
    analysis.traffic = True
    analysis.add_columns(COLUMNS, f"Memory traffic: {human_bytes(read_total)} read, {human_bytes(written_total)} "
                                  f"written" + (f"; {ai:,.2f} FLOPs per byte." if ai is not None else "."))
    return analysis


def _fold_intensity(key: str, members: list, row) -> Any:
    """A block's FLOPs per byte from its folded figures (not the mean of its layers')."""
    if row.get("bytes_read") is None:
        return None
    moved = row.bytes_read + (row.get("bytes_written") or 0)
    return row.flops / moved if moved and is_int(row.flops) else None


COLUMNS = [Column("bytes_read", "Bytes read"), Column("bytes_written", "Bytes written"),
           Column("arithmetic_intensity", "FLOP/byte", fold=_fold_intensity)]
