"""The layer graph: nodes in execution order, each naming the nodes it reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import Location
from .layers.base import LayerKind

INPUT = "input"


@dataclass
class Node:
    """One layer of the network, as the spec describes it after expansion."""

    name: str
    kind: LayerKind
    inputs: list[str]
    loc: Location
    trainable: bool = True


@dataclass
class Graph:
    """A whole network: the input shape and the nodes in an order where inputs come first."""

    name: str
    input_shape: tuple
    nodes: list[Node]
    fit: str = "exact"
    source: str = "<spec>"
    notes: list[str] = field(default_factory=list)
    input_loc: Location | None = None
    variables: dict[str, Any] = field(default_factory=dict)

    def consumers(self) -> dict[str, list[str]]:
        """For each node (and the input), the nodes that read it."""
        out: dict[str, list[str]] = {INPUT: []}
        for node in self.nodes:
            out.setdefault(node.name, [])
            for src in node.inputs:
                out.setdefault(src, []).append(node.name)
        return out
