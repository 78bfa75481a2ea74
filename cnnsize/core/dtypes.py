"""The element types a spec can be sized in, and their sizes in bytes."""

from __future__ import annotations

from .errors import unknown_name

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "float64": 8}
# torch's and numpy's other names (torch.half, torch.float, 'fp16'): suggested, not taken, so a spec says one thing
DTYPE_AKA = {"half": "float16", "fp16": "float16", "f16": "float16", "float": "float32", "fp32": "float32",
             "f32": "float32", "single": "float32", "double": "float64", "fp64": "float64", "f64": "float64",
             "bf16": "bfloat16", "qint8": "int8", "uint8": "int8"}


def parse_dtype(dtype: str) -> str:
    if dtype not in DTYPE_BYTES:
        raise unknown_name("dtype", dtype, DTYPE_BYTES, aka=DTYPE_AKA)
    return dtype
