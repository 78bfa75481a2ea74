"""``contrastive``: the region-text similarity of an open-vocabulary detector's class branch (Ultralytics'
ContrastiveHead and BNContrastiveHead, in YOLO-World's and YOLOE's heads): each cell's embedding against each class's
text embedding, scaled by a learned temperature and shifted by a learned bias. The text embeddings are normalized
and the product taken in every call, as torch runs it."""

from __future__ import annotations

from typing import ClassVar

from ..core.errors import SpecError
from .base import Counts, LayerKind, Param, Saved, TorchModule, register
from .norm import _stat_width

NORMS = ("l2", "bn")


@register("contrastive")
class Contrastive(LayerKind):
    """Two inputs: a map of embeddings ``[E, H, W]`` and the classes' embeddings ``[N, E]``; output ``[N, H, W]``:
    ``(normalize(text) @ f(x).flatten) · exp(logit_scale) + bias`` with ``f`` the L2 normalization over the
    embedding axis (``norm: l2``, ContrastiveHead) or a BatchNorm2d (``norm: bn``, BNContrastiveHead). Parameters:
    ``bias`` and ``logit_scale`` (one each), and the batch norm's. Multiply-adds: N·E per cell (the product);
    the normalizations, the exponential and the affine shift are elementwise, which FlopCounterMode does not count."""

    tools_checked = False
    onnx_none = "not mapped: exporters write it as ReduceL2, Div, MatMul, Exp, Mul and Add"
    min_inputs = max_inputs = 2
    cause = "attention"
    params = {"norm": Param("choice", "l2", doc="l2: F.normalize of the embeddings (ContrastiveHead); bn: a "
                                                "BatchNorm2d of them (BNContrastiveHead)", choices=NORMS)}
    # thop (and so ultralytics' get_flops) counts the product, which its function mode sees, and BNContrastiveHead's
    # batch norm by its module rule (checked by tests/test_yolo_zoo.py's --count ultralytics); other tools not yet
    count_rules: ClassVar[dict] = {"thop": "macs", "thop.bn": {"attention": "macs", "normalization": "4*inp"}}
    examples: ClassVar[dict] = {
        "contrastive_l2": ([3, 4, 5], [{"conv": {"filters": 6, "kernel": 1}},
                                       {"const_tensor": {"shape": [7, 6], "held": False, "from": "input"}},
                                       {"contrastive": {"from": ["conv1", "const_tensor1"]}}]),
        "contrastive_bn": ([3, 4, 5], [{"conv": {"filters": 6, "kernel": 1}},
                                       {"const_tensor": {"shape": [7, 6], "held": False, "from": "input"}},
                                       {"contrastive": {"norm": "bn", "from": ["conv1", "const_tensor1"]}}]),
    }

    def count_variant(self, out):
        return "bn" if self.norm == "bn" else None

    def output_shape(self, ins, ctx):
        x, text = ins
        if len(x) != 3 or len(text) != 2:
            raise SpecError(f"contrastive reads a map [E, H, W] and text embeddings [N, E], got "
                            f"{'×'.join(map(str, x))} and {'×'.join(map(str, text))}")
        if x[0] != text[1]:
            raise SpecError(f"contrastive: the map's {x[0]} channels are not the text embeddings' {text[1]}")
        return (text[0], x[1], x[2])

    def counts(self, ins, out):
        (e, h, w), (n, _) = ins
        bn = self.norm == "bn"
        # logit_scale a weight, bias a bias (as torch names them), and the batch norm's scale and shift
        return Counts(weights=1 + (e if bn else 0), biases=1 + (e if bn else 0), buffers=2 * e + 1 if bn else 0,
                      connections=n * e * h * w, macs=n * e * h * w)

    def backward_macs(self, ins, out, batch, grads, trains):
        """The product's two gradients, each its forward's products, for the map where it requires grad and for the
        text where it does (a constant's does not); the parameters' gradients are elementwise, but a training batch
        norm's (``norm: bn``) need the product's gradient for the normed map even where the map needs none."""
        macs = self.forward_macs(ins, out, batch)
        for_norm = self.norm == "bn" and trains and not grads[0]
        return macs * (int(grads[0]) + int(grads[1])), macs if for_norm else 0

    def module_tree(self, ins, out):
        """The head holds bias and logit_scale; BNContrastiveHead's batch norm is its child module."""
        if self.norm != "bn":
            return super().module_tree(ins, out)
        e = ins[0][0]
        return [TorchModule(2, leaf=False), TorchModule(2 * e, 2 * e, 1)]

    def int_buffers(self, ins, out):
        return 1 if self.norm == "bn" else 0  # the batch norm's num_batches_tracked

    def scratch(self, ins, out, batch):
        """The tensors made on the way, as torch makes them: the normalized map (l2: the norm and the clamped norm
        of each cell too) or the batch-normed map; the text's norm, clamped norm and normalized copy; the product;
        exp(logit_scale) (one, per call); the scaled product. The output is the shifted one."""
        (e, h, w), (n, _) = ins
        cells = h * w
        x = e * cells + (2 * cells if self.norm == "l2" else 0)
        text = 2 * n + n * e
        return batch * (x + text + 2 * n * cells) + 1

    def saved(self, ins, out, trainable, device):
        """What autograd keeps, the text requiring no grad: the map (the norm's and the division's input, or the
        batch norm's) with l2's norm and clamped norm per cell or the batch norm's mean and 1/std per channel; the
        normalized text (the product's other operand); exp(logit_scale) (the scaling's, once per call); the product
        where logit_scale trains."""
        (e, h, w), (n, _) = ins
        stats = [Saved("new", h * w), Saved("new", h * w)] if self.norm == "l2" else \
            [Saved("new", e, itemsize=_stat_width(device), per_sample=False)] * 2
        kept = [Saved("input"), *stats, Saved("new", n * e), Saved("new", 1, itemsize="params", per_sample=False)]
        return kept + ([Saved("new", n * h * w)] if trainable else [])

    def receptive(self, rfs, ins, out):
        return rfs[0] if rfs else None

    def summary(self) -> str:
        return f"text · {'L2-normalized' if self.norm == 'l2' else 'batch-normed'} map, scaled, shifted"

    def build(self, ins, out):
        from .nn.modules import Contrastive as Module

        return Module(ins[0][0], self.norm == "bn")


__all__ = ["Contrastive"]
