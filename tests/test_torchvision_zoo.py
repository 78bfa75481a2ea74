"""Bundled specs against the real torchvision models (weights=None): params, buffers, MACs and activations.

The truths: ``sum(p.numel())`` over the model's parameters and buffers, FlopCounterMode's total / 2 of one
no-grad eval forward, and the elements of the distinct floating-point storages that forward creates and reads
(tests/torch_storages.py: in-place operations once, views free). Needs torchvision (the zoo set).
"""

from __future__ import annotations

import pytest

import cnnsize

from .conftest import need

pytestmark = pytest.mark.zoo

# spec name: (torchvision builder keyword arguments, spec variables that build the same model)
MODELS = {
    "resnet18": ({}, None),
    "resnet34": ({}, None),
    "resnet50": ({}, None),
    "resnet101": ({}, None),
    "resnet152": ({}, None),
    "resnext50_32x4d": ({}, None),
    "wide_resnet50_2": ({}, None),
    "mobilenet_v3_large": ({}, None),
    "efficientnet_b0": ({}, None),
    "shufflenet_v2_x1_0": ({}, None),
    "convnext_tiny": ({}, None),
    "efficientnet_v2_s": ({}, None),
    "r3d_18": ({}, None),
    "vit_b_16": ({}, None),
    "swin_t": ({}, None),
    "fcn_resnet50": ({"weights_backbone": None}, {"aux": False}),
    "fcn_resnet50_aux": ({"weights_backbone": None, "aux_loss": True}, {"aux": True}),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_spec_equals_torchvision(name):
    torch = need("torch")
    torchvision = need("torchvision")
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from .torch_storages import forward_activations

    kwargs, variables = MODELS[name]
    spec = name.removesuffix("_aux")
    a = cnnsize.analyze(spec, variables=variables)
    model = torchvision.models.get_model(spec, weights=None, **kwargs).eval()
    x = torch.zeros(1, *a.input_shape)
    # nn.MultiheadAttention's fused inference path and CPU flash attention have no FLOP formula: count the MACs on
    # the path autograd takes, with the math kernel (the same arithmetic); without attention this changes nothing
    with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x)
    assert a.totals["params"] == sum(p.numel() for p in model.parameters())
    assert a.totals["buffers"] == sum(b.numel() for b in model.buffers())
    assert a.totals["macs"] == counter.get_total_flops() // 2
    assert a.totals["activations"] == forward_activations(model, x)
