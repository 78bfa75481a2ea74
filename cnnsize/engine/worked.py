"""Worked arithmetic for every layer of a spec, written out as a lecture writes it.

Each layer's steps come from its own kind (``LayerKind.explain``, built on the
calculators in cnnsize.calc), followed by the activations and memory; the
figures are the analysis' own, so the steps and the report always agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..core.dtypes import DTYPE_BYTES, parse_dtype
from ..core.errors import CnnsizeError, unknown_name
from ..core.graph import Graph
from ..core.numeric import dim_text, factor_text, fmt_num, is_symbolic, prod
from ..layers.base import Ctx


@dataclass(frozen=True)
class LayerSteps:
    """The worked arithmetic of one layer."""

    name: str
    kind: str
    summary: str
    input_shape: tuple
    output_shape: tuple
    steps: tuple[str, ...]

    def __str__(self) -> str:
        head = f"{self.name}: {self.kind}" + (f" ({self.summary})" if self.summary else "")
        shapes = f"  {_shape(self.input_shape)} → {_shape(self.output_shape)}"
        return "\n".join([head, shapes, *(f"  {s}" for s in self.steps)])


@dataclass(frozen=True)
class Explanation:
    """Worked arithmetic for the layers of a network (all of them, or the one asked for)."""

    name: str
    input_shape: tuple
    layers: tuple[LayerSteps, ...]

    def __str__(self) -> str:
        return "\n\n".join(str(layer) for layer in self.layers) + "\n"

    def __repr__(self) -> str:
        return f"Explanation(name={self.name!r}, input={_shape(self.input_shape)}, layers={len(self.layers)})"

    def layer(self, name: str) -> LayerSteps:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise unknown_name("layer", name, [la.name for la in self.layers])


def _shape(shape: tuple) -> str:
    sep = " × " if any(is_symbolic(v) for v in shape) else "×"
    return sep.join(dim_text(v) if is_symbolic(v) else fmt_num(v) for v in shape)


def iter_steps(graph: Graph, input_shape: tuple | None = None, fit: str | None = None,
               dtype: str = "float32") -> Iterator[LayerSteps]:
    """Yield each layer's steps in order; a layer that does not fit raises DoesNotFit after the earlier ones."""
    size = DTYPE_BYTES[parse_dtype(dtype)]
    ctx = Ctx(fit=fit or graph.fit)
    shapes = {graph.input_name: tuple(input_shape) if input_shape is not None else graph.input_shape}
    for node in graph.nodes:
        kind = node.kind
        ins = [shapes[s] for s in node.inputs]
        try:
            out = kind.output_shape(ins, ctx)
            counts = kind.counts(ins, out)
            steps = list(kind.explain(ins, out, ctx))
        except CnnsizeError as exc:
            raise exc.at(node.loc, node.name)
        shapes[node.name] = out
        if node.shares is not None:  # a module called again: its parameters are the first call's
            steps = [s for s in steps if not s.startswith("params")]
            steps.append(f"params: none of its own (it shares those of {node.shares}, counted there)")
        elif not any(s.startswith("params") for s in steps) and counts.weights + counts.biases != 0:
            steps.append(f"params: {fmt_num(counts.weights)} + {fmt_num(counts.biases)} = "
                         f"{fmt_num(counts.weights + counts.biases)}")
        if not any(s.startswith("connections") for s in steps) and counts.connections != 0:
            steps.append(f"connections: {fmt_num(counts.connections)}")
        scratch = kind.scratch(ins, out, 1)  # a composite's intermediates (Swin's, MaxViT's, MViT's attention)
        if kind.materializes:
            units = prod(out)
            steps.append(f"activations: {'·'.join(factor_text(v) for v in out)} = {fmt_num(units)}"
                         if len(out) > 1 else f"activations: {fmt_num(units)}")
            if scratch:
                steps[-1] += f" output + {fmt_num(scratch)} made on the way = {fmt_num(units + scratch)}"
                units += scratch
        elif scratch:
            units = scratch
            steps.append(f"activations: the output in place or a view, {fmt_num(scratch)} made on the way")
        else:
            steps.append("activations: none (in place or a view)")
        if kind.materializes or scratch:
            steps.append(f"memory: {factor_text(units)}·{size} bytes = {fmt_num(units * size)} bytes")
        yield LayerSteps(node.name, kind.kind, kind.summary(), ins[0] if ins else (), out, tuple(steps))


def explain(graph: Graph, input_shape: tuple | None = None, layer: str | None = None, fit: str | None = None,
            dtype: str = "float32") -> Explanation:
    """The worked arithmetic of every layer (or only ``layer``) of a graph, per image (cnnsize.api.explain)."""
    if layer is not None and layer not in {n.name for n in graph.nodes}:
        raise unknown_name("layer", layer, [n.name for n in graph.nodes])
    out = []
    for steps in iter_steps(graph, input_shape, fit, dtype):
        if layer is None or steps.name == layer:
            out.append(steps)
        if steps.name == layer:
            break
    shape = tuple(input_shape) if input_shape is not None else graph.input_shape
    return Explanation(graph.name, shape, tuple(out))
