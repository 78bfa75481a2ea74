"""A minimal torch runner for analysed graphs, used by the tests as an independent check.

Builds every node with its layer kind's ``build(ins, out)`` and runs the graph in
order, passing several inputs to merging layers as ``forward(*xs)``.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnsize.engine.result import Analysis


class GraphModule(torch.nn.Module):
    def __init__(self, analysis: Analysis):
        super().__init__()
        shapes = {row.name: row.output_shape for row in analysis.layers}
        self.first = analysis.graph.input_name
        self.order = [(node.name, list(node.inputs)) for node in analysis.graph.nodes if not node.kind.is_input]
        self.mods = torch.nn.ModuleDict()
        for node in analysis.graph.nodes:
            if node.kind.is_input:  # an input beside the first: given to forward
                continue
            if node.shares is not None:  # the very module it shares: one set of parameters, called again
                module = self.mods[node.shares.replace(".", "__")]
            else:
                module = node.kind.build([shapes[s] for s in node.inputs], shapes[node.name])
            self.mods[node.name.replace(".", "__")] = module

    def forward(self, x: torch.Tensor, keep: bool = False, others: dict | None = None):
        values = {self.first: x, **(others or {})}
        for name, inputs in self.order:
            values[name] = self.mods[name.replace(".", "__")](*(values[s] for s in inputs))
        return values if keep else values[self.order[-1][0]]


def measure(analysis: Analysis, seed: int = 0, device: str = "cpu") -> dict:
    """Run the graph once in eval mode: every layer's output shape, the params and buffers, and the MACs.

    ``device="meta"`` runs torch's shape and FLOP logic without computing any values (fast for big nets).
    """
    torch.manual_seed(seed)
    with torch.device(device):
        model = GraphModule(analysis).eval()
        x = torch.randn(1, *analysis.input_shape)
        others = {name: torch.randn(1, *shape) for name, shape in list(analysis.inputs.items())[1:]}
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        values = model(x, keep=True, others=others)
    return {"shapes": {k: tuple(v.shape[1:]) for k, v in values.items()},
            "params": sum(p.numel() for p in model.parameters()),
            "buffers": sum(b.numel() for b in model.buffers()),
            "macs": counter.get_total_flops() // 2}
