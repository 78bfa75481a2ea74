"""The activations of a real torch forward pass, as an independent truth for the zoo tests.

Counts the elements of the distinct floating-point storages that the operations of one no-grad forward create and
that something reads (a later operation, or the caller as the output), plus the input. In-place operations write
into an existing storage and views share one, so both count nothing; integer tensors (max pooling's indices) and
results nobody reads (layer norm's mean and 1/std, which only its backward would use) are not activations.
Every created tensor is held until the end, so that a freed storage's address is never reused.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class _Storages(TorchDispatchMode):
    def __init__(self, known: set[int]):
        super().__init__()
        self.known = known  # parameters, buffers and the input
        self.created: dict[int, int] = {}
        self.read: set[int] = set()
        self.held: list[torch.Tensor] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        for t in tree_flatten((args, kwargs))[0]:
            if isinstance(t, torch.Tensor):
                self.read.add(t.untyped_storage().data_ptr())
        out = func(*args, **kwargs)
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel():
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key not in self.known and key not in self.created:
                    self.created[key] = storage.nbytes() // t.element_size()
                    self.held.append(t)
        return out


def forward_activations(model: torch.nn.Module, x, *more, **named) -> int:
    """Elements of the floating-point storages a no-grad forward ``model(x, *more, **named)`` creates and reads, with
    every input tensor's (``x`` may be a tuple, list or dict of tensors: a forward taking them packed)."""
    given = [t for t in tree_flatten((x, more, named))[0] if isinstance(t, torch.Tensor)]
    known = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers(), *given]}
    mode = _Storages(known)
    with torch.no_grad(), mode:
        out = model(x, *more, **named)
    for t in tree_flatten(out)[0]:
        if isinstance(t, torch.Tensor):
            mode.read.add(t.untyped_storage().data_ptr())
    return sum(t.numel() for t in given) + sum(n for key, n in mode.created.items() if key in mode.read)
