"""The layer graph: nodes in execution order, each naming the nodes it reads."""

from __future__ import annotations

from functools import cached_property
from itertools import islice
from typing import TYPE_CHECKING, Any

from .errors import Location, SpecError
from .plain import Plain

if TYPE_CHECKING:  # the graph holds the layer kinds, which sit above this core
    from ..layers.base import LayerKind

INPUT = "input"


def tensor_part(path: str) -> str:
    """Which of a layer's parameter figures a torch parameter counts in, by its name: ``bias`` (in_proj_bias too)
    or ``weight`` (everything else), as ``trainable: [bias]`` and ``shares: {weight: a}`` name them."""
    return "bias" if path.rsplit(".", 1)[-1].endswith("bias") else "weight"


class Node(Plain):
    """One layer of the network, as the spec describes it after expansion."""

    __slots__ = FIELDS = ("name", "kind", "inputs", "loc", "trainable", "shares", "ties", "function", "discarded")
    name: str
    kind: LayerKind
    inputs: list[str]
    loc: Location
    trainable: bool | tuple  # True, or the parameters that train, ("bias",): the others are frozen
    shares: str | None  # the earlier layer whose parameters this one uses (a module called twice)
    ties: tuple  # per tensor: (("weight", layer), ...) where only some of its parameters are an earlier layer's
    function: str | None  # the function or method the source network computes it with (no module)
    discarded: bool  # the source network computes it and discards it: no output needs it

    def __init__(self, name: str, kind: LayerKind, inputs: list[str], loc: Location, trainable: bool | tuple = True,
                 shares: str | None = None, ties: tuple = (), function: str | None = None, discarded: bool = False):
        self.name, self.kind, self.inputs, self.loc, self.trainable = name, kind, inputs, loc, trainable
        self.shares, self.ties, self.function, self.discarded = shares, ties, function, discarded


class Graph(Plain):
    """A whole network: the input shape and the nodes in an order where inputs come first."""

    FIELDS = ("name", "input_shape", "nodes", "fit", "source", "notes", "input_loc", "variables", "reexpand",
              "input_name")
    UNCOMPARED = frozenset({"reexpand"})

    def __init__(self, name: str, input_shape: tuple, nodes: list[Node], fit: str = "exact", source: str = "<spec>",
                 notes: list[str] | None = None, input_loc: Location | None = None,
                 variables: dict[str, Any] | None = None, reexpand: Any = None, input_name: str = INPUT):
        self.name, self.input_shape, self.nodes, self.fit, self.source = name, input_shape, nodes, fit, source
        self.notes: list[str] = [] if notes is None else notes
        self.input_loc, self.reexpand, self.input_name = input_loc, reexpand, input_name
        self.variables: dict[str, Any] = {} if variables is None else variables
        # reexpand, set when blocks read their input's shape (in.channels) while expanding: ({input: shape}, fit)
        # -> the Graph expanded for those inputs, so that --input and --fit give the network they describe
        # input_name: the first input's name (a spec's ``inputs:`` names each; the others are nodes of their own)

    def input_shapes(self) -> dict[str, tuple]:
        """Every input's shape by name, the first (position 0) first, then the others (``inputs:``) in order."""
        shapes = {self.input_name: tuple(self.input_shape)}
        shapes.update((self.nodes[i - 1].name, self.nodes[i - 1].kind.shape) for i in self.topology.inputs[1:])
        return shapes

    def with_inputs(self, shapes: dict[str, tuple]) -> Graph:
        """The same graph with the inputs beside the first at other shapes (``shapes``: name -> shape)."""
        nodes = [Node(n.name, type(n.kind)({"shape": shapes[n.name]}), n.inputs, n.loc) if n.name in shapes
                 and n.kind.is_input else n for n in self.nodes]
        return Graph(self.name, self.input_shape, nodes, self.fit, self.source, self.notes, self.input_loc,
                     self.variables, self.reexpand, self.input_name)

    @cached_property
    def topology(self) -> Topology:
        """Who reads whom and which outputs share storage, by position; worked out once per graph."""
        return Topology.of(self)

    def consumers(self) -> dict[str, list[str]]:
        """For each node (and the input), the nodes that read it."""
        out: dict[str, list[str]] = {self.input_name: []}
        for node in self.nodes:
            out.setdefault(node.name, [])
            for src in node.inputs:
                out.setdefault(src, []).append(node.name)
        return out


class Topology(Plain):
    """The graph by position (0 is the input, then every layer in order), as the analysis walks it.

    ``srcs[i]``: the positions layer i reads. ``owner[i]``: the position whose storage output i lives in, its
    own or, for in-place layers and views, its first input's; ``last_read[s]``: the last position that reads
    storage s (the end when nothing does); ``last_reader[i]``: the last that reads output i itself. Owners and
    storage readers both for inference and, as ``*_training``, for training, where dropout makes a new tensor.
    None of this depends on sizes, so a graph works it out once.
    """

    __slots__ = FIELDS = ("names", "srcs", "owner", "last_read", "owner_training", "last_read_training",
                          "last_reader", "position", "kinds", "inputs")
    last_reader: list[int]  # the last position that reads each output (-1 when none does)
    position: dict[str, int]  # name -> position
    kinds: frozenset  # the distinct layer kinds (equal settings are one object)
    inputs: tuple  # the positions of the inputs: 0, and those of the others (a spec's ``inputs:``)

    def __init__(self, names: list[str], srcs: list[tuple[int, ...]], owner: list[int], last_read: list[int],
                 owner_training: list[int], last_read_training: list[int], last_reader: list[int],
                 position: dict[str, int], kinds: frozenset = frozenset(), inputs: tuple = (0,)):
        self.names, self.srcs, self.owner, self.last_read = names, srcs, owner, last_read
        self.owner_training, self.last_read_training, self.last_reader = owner_training, last_read_training, last_reader
        self.position, self.kinds, self.inputs = position, kinds, inputs

    @classmethod
    def of(cls, graph: Graph) -> Topology:
        nodes = graph.nodes
        kinds = [node.kind for node in nodes]
        distinct = set(kinds)  # layer kinds with equal settings are one object: ask each once
        new = [True, *map({k: k.materializes for k in distinct}.__getitem__, kinds)]
        new_training = [True, *map({k: k.materializes_training for k in distinct}.__getitem__, kinds)]
        names, srcs, owner, last_read, last_reader, position = _links(nodes, new, graph.input_name)
        if new_training == new:
            owner_training, last_read_training = owner, last_read
        else:
            owner_training = _owners(srcs, new_training)
            last_read_training = _last_reads(srcs, owner_training, len(srcs) - 1)
        inputs: tuple[int, ...] = (0,)
        if any(kind.is_input for kind in distinct):
            inputs += tuple(i for i, node in enumerate(nodes, 1) if node.kind.is_input)
        return cls(names, srcs, owner, last_read, owner_training, last_read_training, last_reader, position,
                   frozenset(distinct), inputs)


def _links(nodes: list[Node], new: list[bool], first: str = INPUT) -> tuple[list, list, list, list, list, dict]:
    """Names, sources, owners, storage readers and output readers by position (see Topology), in one pass: a
    name is known only once its layer is reached, so reading a later layer (or a cycle) is refused. ``first``:
    the first input's name."""
    position = {first: 0}
    names, srcs = [first], [()]  # type: list[str], list[tuple[int, ...]]
    owner = list(range(len(nodes) + 1))
    end = len(nodes)
    last_read, last_reader = [end] * (end + 1), [-1] * (end + 1)
    at, add_name, add_srcs = position.__getitem__, names.append, srcs.append
    for i, node, made in zip(range(1, end + 1), nodes, islice(new, 1, None)):
        inputs = node.inputs
        try:
            if len(inputs) == 1:  # most layers: no tuple(map(...)) to make
                src = at(inputs[0])
                ins: tuple[int, ...] = (src,)
            else:
                ins = tuple(map(at, inputs))
        except KeyError as exc:
            raise SpecError(f"'{exc.args[0]}' is not computed before this layer (a later layer, or a cycle)",
                            hint="a layer can only read the input and layers before it",
                            location=node.loc, layer=node.name) from None
        add_srcs(ins)
        name = node.name
        position[name] = i
        add_name(name)
        if len(ins) == 1:
            if not made:
                owner[i] = owner[src]
            last_read[owner[src]] = last_reader[src] = i
        else:
            if ins and not made:
                owner[i] = owner[ins[0]]
            for src in ins:
                last_read[owner[src]] = last_reader[src] = i
    return names, srcs, owner, last_read, last_reader, position


def _owners(srcs: list[tuple[int, ...]], new: list[bool]) -> list[int]:
    owner = list(range(len(srcs)))
    for i, ins in enumerate(srcs):
        if not new[i] and ins:
            owner[i] = owner[ins[0]]
    return owner


def _last_reads(srcs: list[tuple[int, ...]], owner: list[int], unread: int) -> list[int]:
    """For each storage (by its owner position), the last position that reads it; ``unread`` where none does."""
    last = [unread] * len(srcs)
    for i, ins in enumerate(srcs):
        for s in ins:
            last[owner[s]] = i
    return last
