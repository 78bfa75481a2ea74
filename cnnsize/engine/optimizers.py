"""What each optimizer keeps per parameter tensor, and what its step allocates on the way, as the implementations
people train with allocate it.

- ``sgd``, ``momentum``, ``adam``, ``adamw`` (torch.optim): 0, 1, 2, 2 tensors the size of each parameter.
- ``adafactor`` (torch.optim.Adafactor, torch 2.5 on): for a parameter of two or more axes a row factor (its shape with
  the last axis 1) and a column factor (its shape with the next-to-last axis 1): a convolution's weight
  (O, I, kh, kw) keeps O·I·kh and O·I·kw values, a linear one (O, I) keeps O and I; a vector keeps a full second
  moment. The step's default is the single-tensor loop (``foreach=None`` is not taken as foreach), on every device.
- ``adam8bit``, ``adamw8bit`` (bitsandbytes' Adam8bit/AdamW8bit, ``bitsandbytes/optim/optimizer.py``,
  Optimizer2State.init_state, bitsandbytes 0.44 to 0.50.2): a parameter of fewer than ``min_8bit_size`` (4096)
  elements keeps two float32 states; a larger one two uint8 states, and per block of 256 elements (the block size
  since 0.44, 2048 before) two float32 absolute maxima; the two quantization maps (256 float32 each) once per
  optimizer. Its CUDA kernel updates in place: no temporaries.

The step counter each optimizer keeps per tensor (torch: a float32 scalar in host memory unless capturable or fused;
bitsandbytes: a Python int) is not counted, for any optimizer.
"""

from __future__ import annotations

from math import prod
from typing import Any

from ..core.errors import SpecError
from ..core.numeric import all_int

PER_ELEMENT = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}  # tensors the size of each parameter
EIGHT_BIT = ("adam8bit", "adamw8bit")
OPTIMIZERS = (*PER_ELEMENT, "adafactor", *EIGHT_BIT)
BNB_BLOCK = 256  # bitsandbytes' block of the blockwise 8-bit states (since 0.44)
BNB_MIN_8BIT = 4096  # min_8bit_size: smaller tensors keep float32 states
BNB_QMAPS = 2 * 256 * 4  # the signed and unsigned dynamic quantization maps, float32, once per optimizer


def _adafactor_tensor(shape: tuple) -> Any:
    """Elements Adafactor keeps for one parameter: the row and column factors, or a vector's full variance."""
    n = prod(shape)
    if len(shape) < 2:
        return n
    return n // shape[-1] + n // shape[-2]


def _eight_bit_tensor(n: Any) -> Any:
    """Bytes bitsandbytes' 8-bit Adam keeps for a parameter of ``n`` elements (its quantization maps apart)."""
    if n < BNB_MIN_8BIT:
        return 2 * 4 * n
    return 2 * n + 2 * 4 * -(-n // BNB_BLOCK)


def _numeric(optimizer: str, shapes: list[tuple]) -> None:
    if not all(all_int(shape) for shape in shapes):
        raise SpecError(f"the {optimizer} optimizer's state depends on each tensor's shape, and these are formulas",
                        hint="give the input's sizes as numbers")


def state_bytes(optimizer: str, shapes: Any, elements: Any, master: int) -> Any:
    """Bytes of optimizer state for the trained parameter tensors: ``shapes`` (called only for the optimizers whose
    state is not a multiple of the parameters), ``elements`` their total, ``master`` bytes per value."""
    if optimizer in PER_ELEMENT:
        return elements * master * PER_ELEMENT[optimizer]
    tensors = shapes()
    _numeric(optimizer, tensors)
    if optimizer == "adafactor":
        return sum((_adafactor_tensor(shape) for shape in tensors), 0) * master
    quantized = [prod(shape) for shape in tensors]
    return sum(map(_eight_bit_tensor, quantized), 0) + (BNB_QMAPS if any(n >= BNB_MIN_8BIT for n in quantized) else 0)


def flat_state_bytes(optimizer: str, elements: list, master: int) -> Any:
    """Bytes of optimizer state for flat one-axis parameters of these sizes (FSDP's and ZeRO's shards: Adafactor
    does not factor a vector)."""
    return state_bytes(optimizer, lambda: [(n,) for n in elements if n], sum(elements, 0), master)


def adafactor_temporaries(shapes: list[tuple]) -> Any:
    """Elements Adafactor's single-tensor step holds at its worst beyond the gradients. Per parameter, in order, it
    makes the row mean (row factor's size), the column mean, then the variance estimate (the parameter's size,
    the update) and the row factor's mean over its next-to-last axis (a convolution's O·I); for a vector its
    gradient squared and a copy of its variance. Each name keeps the previous parameter's tensor until the new one
    is made, as Python does."""
    row = col = est = squared = 0  # what the names hold from earlier parameters
    worst: Any = 0
    for shape in shapes:
        n = prod(shape)
        if not n:
            continue
        if len(shape) >= 2:
            rows, cols = n // shape[-1], n // shape[-2]
            worst = max(worst, row + rows + col + est + squared, rows + col + cols + est + squared,
                        rows + cols + est + n + squared, rows + cols + n + squared + rows // shape[-2])
            row, col, est = rows, cols, n
        else:
            worst = max(worst, row + col + est + squared + n, row + col + est + n + n)
            squared, est = n, n
    return worst


def temporaries(optimizer: str, shapes: Any, master: int) -> Any:
    """Bytes Adafactor's and the 8-bit optimizers' steps allocate beyond the gradients (Adam's: memory.py)."""
    if optimizer == "adafactor":
        tensors = shapes()
        _numeric(optimizer, tensors)
        return adafactor_temporaries(tensors) * master
    return 0
