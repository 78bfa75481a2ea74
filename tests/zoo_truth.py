"""torch's own figures for a model, the truth the import zoo test checks from_torch against.

Measured on torch's meta device (shapes, aliasing and FLOP counting without computing values, so a
vit_h_14 costs seconds): parameters and buffers as torch lists them, MACs as FlopCounterMode's total / 2,
and activations as the elements of the distinct floating-point storages one no-grad forward creates, the
input's included, that something reads (a later operation, or the caller): in-place results share their
input's storage, views are free, integer tensors such as pooling indices are not activations, and results
nobody reads (layer norm's mean and 1/std, batch norm's saved statistics) are not either, as in
tests/torch_storages.py. Every output is kept alive until the end, so no storage is reused;
test_meta_truth_is_the_cpu_truth checks the meta device's figures are a CPU forward's.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode


class _Storages(TorchDispatchMode):
    def __init__(self, resident: set):
        super().__init__()
        self.resident, self.seen, self.keep, self.read = resident, {}, [], set()
        self.devices: set = set()  # where the forward's floating-point results are (a meta model's: meta alone?)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        for t in tree_flatten((args, kwargs or {}))[0]:
            if isinstance(t, torch.Tensor):
                self.read.add(t.untyped_storage()._cdata)
        out = func(*args, **(kwargs or {}))
        self.keep.append(out)
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                self.devices.add(t.device.type)
                storage = t.untyped_storage()
                key = storage._cdata
                if key not in self.resident:
                    self.seen[key] = max(self.seen.get(key, 0), storage.nbytes() // t.element_size())
        return out


def torch_figures(model: torch.nn.Module, input_shape: tuple, devices: set | None = None) -> dict:
    """params, trainable_params, buffers, macs and activations of one eval-mode forward at batch 1. ``devices``
    (a set) receives the device types of the floating-point tensors the forward made: a forward on the meta
    device that makes some elsewhere (MViT's torch.arange, on the CPU whatever the model's device) runs other
    kernels than a real one could, so its figures are to be measured on a real forward."""
    model = model.eval()
    device = next(iter(model.parameters())).device
    x = torch.empty(1, *input_shape, device=device).normal_() if device.type != "meta" else \
        torch.empty(1, *input_shape, device=device)
    resident = {t.untyped_storage()._cdata for t in [*model.parameters(), *model.buffers(), x]}
    storages = _Storages(resident)
    with torch.no_grad(), FlopCounterMode(display=False) as counter, storages:
        out = model(x)
    if devices is not None:
        devices.update(storages.devices)
    storages.read.update(t.untyped_storage()._cdata for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))
    return {"params": sum(p.numel() for p in model.parameters()),
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "buffers": sum(b.numel() for b in model.buffers()),
            "macs": counter.get_total_flops() // 2,
            "activations": x.numel() + sum(n for key, n in storages.seen.items() if key in storages.read)}


def assert_imports_as_torch(model: torch.nn.Module, shape: tuple, truth: dict) -> None:
    """``from_torch(model, shape)`` has torch's figures (``truth``: torch_figures', adjusted by the caller), torch's
    output shape and no opaque layer, leaves the model's state as it was, and validates when cnnsize builds it."""
    import copy

    import cnnsize

    before = copy.deepcopy(model.state_dict())
    imported = cnnsize.from_torch(model, shape)
    a = imported.analyze()
    assert {k: a.totals[k] for k in truth} == truth
    with torch.no_grad():
        out = model(torch.randn(1, *shape))
    assert a.layers[-1].output_shape == tuple(out.shape[1:])
    assert "opaque" not in {r.type for r in a.layers}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model is not changed
    v = cnnsize.validate(imported.spec, device="cpu", runs=0)  # built by cnnsize and run: the same figures
    assert v.ok, v.mismatches()
