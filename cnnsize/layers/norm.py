"""Normalization: ``bn`` (batch norm), ``layernorm`` and ``lrn`` (AlexNet's local response normalization)."""

from __future__ import annotations

from ..numeric import prod
from .base import Counts, LayerKind, Param, Saved, register, require_spatial


@register("bn")
class BatchNorm(LayerKind):
    """Batch normalization: a scale and a shift per channel, plus running statistics as buffers.

    Buffers are running_mean and running_var (C each) and num_batches_tracked (1), as torch keeps them.
    """

    cause = "normalization"
    params = {"eps": Param("float", 1e-5), "momentum": Param("float", 0.1), "affine": Param("bool", True)}

    def counts(self, ins, out):
        c = ins[0][0]
        return Counts(weights=c if self.affine else 0, biases=c if self.affine else 0, buffers=2 * c + 1)

    def saved(self, ins, out, trainable, device):
        c = ins[0][0]  # the input, and the batch mean and inverse std per channel (float32)
        return [Saved("input"), Saved("new", c, itemsize=4, per_sample=False),
                Saved("new", c, itemsize=4, per_sample=False)]

    def build(self, ins, out):
        import torch.nn as nn

        cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm1d, 3: nn.BatchNorm2d, 4: nn.BatchNorm3d}[len(ins[0])]
        return cls(ins[0][0], eps=self.eps, momentum=self.momentum, affine=self.affine)


@register("lrn")
class LRN(LayerKind):
    """Local response normalization across ``size`` neighbouring channels (AlexNet's NORM)."""

    cause = "normalization"
    params = {"size": Param("int", 5), "alpha": Param("float", 1e-4), "beta": Param("float", 0.75),
              "k": Param("float", 2.0, doc="AlexNet's k = 2 (PyTorch's default is 1)")}

    def output_shape(self, ins, ctx):
        require_spatial(self.kind, ins[0])  # torch's LocalResponseNorm refuses a flat (N, C) input too
        return ins[0]

    def counts(self, ins, out):
        return Counts(connections=prod(out) * self.size)

    def saved(self, ins, out, trainable, device):
        # torch's local_response_norm: the input, the channel-padded squares (C + size − 1 maps),
        # and two C-map intermediates (before and after the power)
        c, rest = ins[0][0], prod(ins[0][1:])
        return [Saved("input"), Saved("new", (c + self.size - 1) * rest), Saved("new", 2 * c * rest)]

    def build(self, ins, out):
        import torch.nn as nn

        return nn.LocalResponseNorm(self.size, alpha=self.alpha, beta=self.beta, k=self.k)


@register("layernorm")
class LayerNorm(LayerKind):
    """Layer normalization over the channels at each position (ConvNeXt's LayerNorm2d); over the features if flat."""

    cause = "normalization"
    params = {"eps": Param("float", 1e-6, doc="ConvNeXt's 1e-6 (PyTorch's default is 1e-5)"),
              "affine": Param("bool", True)}

    def counts(self, ins, out):
        c = ins[0][0]
        return Counts(weights=c if self.affine else 0, biases=c if self.affine else 0)

    def saved(self, ins, out, trainable, device):
        positions = prod(ins[0][1:]) if len(ins[0]) > 1 else 1  # the input, and a mean and 1/std per position
        return [Saved("input"), Saved("new", positions, itemsize=4), Saved("new", positions, itemsize=4)]

    def build(self, ins, out):
        from ..executor.modules import ChannelLayerNorm

        return ChannelLayerNorm(ins[0][0], eps=self.eps, elementwise_affine=self.affine)
