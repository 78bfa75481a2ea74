"""A drawing of an analysis: one box per layer (or per block when folded), edges labelled with the tensor each
carries, placed by a layered (Sugiyama) layout, and coloured by the figure the user picks.

The layout is igraph's (``layout_sugiyama``: layers by longest path, crossings cut by the barycenter heuristic,
dummy points on the edges that skip layers), a maintained package pip installs with no system binary; it is
deterministic, so the same spec always gives the same picture. This module only places things; the formats
(SVG, HTML, DOT, Mermaid, TikZ) are written by ``cnnsize.render.draw_formats`` from the Drawing it returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import SpecError, unknown_name
from ..core.numeric import human_bytes, is_int
from ..core.optional import require
from ..core.plain import replace
from ..core.text import num, seconds_text, shape_text, short_count
from ..engine.result import Analysis, LayerResult, fold_rows

# what a drawing can be coloured by: the figure, its name in the legend, how a value reads
COLORS = ("macs", "params", "activations", "memory", "time")
STYLES = ("graph", "volumes")
MAX_NODES = 1500  # beyond this many boxes a drawing folds (by --depth, then runs of layers) with a note
CHAR_W = 7.2  # px per character of 12 px monospace text (0.6 em), so boxes fit their text in every viewer
LINE_H = 15
PAD = 8
LAYER_GAP = 46  # vertical room between layers, for the edge labels
NODE_GAP = 18
DUMMY_W = 4
# a sequential heat scale (ColorBrewer's YlOrRd, 5 classes), light for the smallest figure, dark for the largest
PALETTE = ((255, 255, 204), (254, 217, 118), (253, 141, 60), (227, 26, 28), (128, 0, 38))
ZERO_FILL = "#f2f2f2"


@dataclass
class Node:
    """A box: the layer (or folded block) it stands for, its lines of text, where it is and its colour."""

    name: str
    lines: list[str]
    row: LayerResult
    value: float | None
    fill: str = ZERO_FILL
    ink: str = "#000000"
    x: float = 0.0  # left
    y: float = 0.0  # top
    w: float = 0.0
    h: float = 0.0


@dataclass
class Edge:
    src: int
    dst: int
    label: str
    points: list[tuple[float, float]] = field(default_factory=list)  # from the source's bottom to the target's top


@dataclass
class Drawing:
    title: str
    nodes: list[Node]
    edges: list[Edge]
    color: str
    scale: tuple[float, float] | None  # the coloured figure's smallest and largest non-zero value
    summary: list[str]
    notes: list[str]
    width: float = 0.0
    height: float = 0.0
    analysis: Any = None


def figure(row: LayerResult, color: str) -> float | None:
    """The number a box is coloured by (None: not a number, e.g. a symbolic size)."""
    if color == "memory":
        value: Any = row.param_bytes + row.activation_bytes
    elif color == "time":
        value = row.get("predicted_seconds")
    else:
        value = getattr(row, color)
    if isinstance(value, float) and math.isfinite(value):
        return value
    return float(value) if is_int(value) else None


def value_text(value: Any, color: str) -> str:
    if value is None:
        return "–"
    if color == "time":
        return seconds_text(value)
    if color == "memory":
        return human_bytes(int(value))
    return short_count(int(value))


def check_options(color: str, style: str, analysis: Analysis) -> None:
    if color not in COLORS:
        raise unknown_name("colour", color, COLORS)
    if style not in STYLES:
        raise unknown_name("style", style, STYLES)
    if color == "time" and not any(c.key == "predicted_seconds" for c in analysis.columns):
        raise SpecError("--color time needs a predicted time per layer",
                        hint="add --device-profile NAME (e.g. a100, or 'local' after cnnsize calibrate)")


def fold_to_fit(analysis: Analysis, depth: int | None,
                limit: int = MAX_NODES) -> tuple[Analysis, list[int], list[str]]:
    """The analysis folded by ``depth`` (and, past ``limit`` boxes, at the deepest nesting that fits, then into
    runs of consecutive layers); the box each original layer is in; a note saying what was folded."""
    whole = len(analysis.layers)
    names = [row.name.split(".") for row in analysis.layers]
    tried: list[int | None] = [depth]
    deepest = max((len(parts) - 1 for parts in names), default=0)  # folding deeper than the nesting folds nothing
    if depth is None or len(analysis.collapse(depth).layers) > limit:
        tried += list(range(min(depth or deepest, deepest), 0, -1))
    for d in tried:
        folded = analysis if d is None else analysis.collapse(d)
        if len(folded.layers) <= limit:
            keys = [".".join(parts[:d]) if d is not None and len(parts) > d else ".".join(parts) for parts in names]
            box = {row.name: i for i, row in enumerate(folded.layers)}
            note = [] if d == depth else [f"{whole:,} layers are too many to draw one by one: folded to depth {d} "
                                          f"({len(folded.layers):,} boxes); --depth N chooses"]
            return folded, [box[k] for k in keys], note
    run = math.ceil(whole / limit)
    return run_folded(analysis, run), [i // run for i in range(whole)], [
        f"{whole:,} layers are too many to draw one by one: each box stands for {run:,} consecutive layers"]


def run_folded(analysis: Analysis, run: int) -> Analysis:
    """The analysis with every ``run`` consecutive rows folded into one (a spec too long to fold by its names)."""
    rows = analysis.layers
    groups = [rows[i:i + run] for i in range(0, len(rows), run)]
    folded = [g[0] if len(g) == 1 else fold_rows(f"{g[0].name} … {g[-1].name}", g, analysis.columns)
              for g in groups]
    return replace(analysis, layers=folded)


def box_lines(row: LayerResult, color: str, value: float | None, input_axes: tuple[str, ...]) -> list[str]:
    kind = row.type if not row.summary else f"{row.type} ({row.summary})"
    lines = [row.name, kind, row.axes_text(input_axes)]
    if row.type != "input":
        lines.append(f"{color}: {value_text(value, color)}")
    return [line if len(line) <= 60 else line[:59] + "…" for line in lines]


def edges_of(original: list[LayerResult], owner: list[int]) -> list[Edge]:
    """One edge per producer box and reader box, labelled with the tensor's shape."""
    position = {row.name: i for i, row in enumerate(original)}
    seen: dict[tuple[int, int], Edge] = {}
    for i, row in enumerate(original):
        for name in row.inputs:
            j = position.get(name)
            if j is None or owner[j] == owner[i] or (owner[j], owner[i]) in seen:
                continue
            seen[(owner[j], owner[i])] = Edge(owner[j], owner[i], shape_text(original[j].output_shape))
    return list(seen.values())


def paint(nodes: list[Node], color: str) -> tuple[float, float] | None:
    """Fill every box on a log heat scale of its figure; the scale's ends (None when nothing is above zero)."""
    values = [n.value for n in nodes if n.value is not None and n.value > 0]
    if not values:
        return None
    lo, hi = min(values), max(values)
    for node in nodes:
        if node.value is None or node.value <= 0:
            continue
        t = 0.0 if hi == lo else (math.log(node.value) - math.log(lo)) / (math.log(hi) - math.log(lo))
        node.fill, dark = heat(t)
        node.ink = "#ffffff" if dark else "#000000"
    return lo, hi


def heat(t: float) -> tuple[str, bool]:
    """The palette's colour at ``t`` in [0, 1], and whether it is dark enough for white text."""
    t = min(max(t, 0.0), 1.0) * (len(PALETTE) - 1)
    i = min(int(t), len(PALETTE) - 2)
    f = t - i
    rgb = [round(a + (b - a) * f) for a, b in zip(PALETTE[i], PALETTE[i + 1])]
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return "#{:02x}{:02x}{:02x}".format(*rgb), luminance < 140


def sugiyama(n: int, pairs: list[tuple[int, int]]) -> tuple[list, list]:
    """igraph's layered layout of ``n`` vertices: their (x, layer) and each edge's bends.

    ``import igraph`` imports matplotlib's pyplot when matplotlib is installed (its plotting), a second or more
    of every drawing; the layout is in igraph's C core, so that core is loaded alone when it can be, and
    ``Graph.layout_sugiyama``, the documented wrapper of the same function, is used otherwise (a test checks
    both give the same layout)."""
    core = _igraph_core()
    if core is not None and hasattr(getattr(core, "GraphBase", None), "_layout_sugiyama"):
        coords, routes = core.GraphBase(n, pairs, True)._layout_sugiyama(None, None, 1, 1, 100)
    else:
        igraph = require("igraph")
        layout = igraph.Graph(n=n, edges=pairs, directed=True).layout_sugiyama(maxiter=100)
        coords, routes = layout.coords, layout.edge_routing
    return [tuple(c) for c in coords[:n]], [list(r) for r in routes or [[] for _ in pairs]]


def _igraph_core() -> Any:
    """igraph's C extension (igraph._igraph) loaded without the Python package around it; None if it cannot be.

    It is registered as ``igraph._igraph`` (an extension initialises once per process), so a later
    ``import igraph`` finds it and works as usual."""
    import importlib.machinery
    import importlib.util
    import os
    import sys

    if "igraph._igraph" in sys.modules:
        return sys.modules["igraph._igraph"]
    if "igraph" in sys.modules:
        return None
    try:
        found = importlib.util.find_spec("igraph")
        folder = os.path.dirname(found.origin or "") if found is not None else ""
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, "_igraph" + suffix)
            if os.path.isfile(path):
                loader = importlib.machinery.ExtensionFileLoader("igraph._igraph", path)
                spec = importlib.util.spec_from_file_location("igraph._igraph", path, loader=loader)
                module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
                sys.modules["igraph._igraph"] = module
                loader.exec_module(module)
                return module if hasattr(getattr(module, "GraphBase", None), "_layout_sugiyama") else None
    except (ImportError, OSError, RuntimeError):
        return None
    return None


def place(nodes: list[Node], edges: list[Edge]) -> tuple[float, float]:
    """Lay the boxes out by igraph's Sugiyama layout, then space them by their sizes; the drawing's size."""
    for node in nodes:
        node.w = max(len(line) for line in node.lines) * CHAR_W + 2 * PAD
        node.h = len(node.lines) * LINE_H + 2 * PAD
    coords, routes = sugiyama(len(nodes), [(e.src, e.dst) for e in edges])
    ranks = [int(round(y)) for _, y in coords]
    depth = max(ranks, default=0) + 1
    heights = [0.0] * depth
    for node, rank in zip(nodes, ranks):
        heights[rank] = max(heights[rank], node.h)
    tops = [0.0] * depth
    for r in range(1, depth):
        tops[r] = tops[r - 1] + heights[r - 1] + LAYER_GAP
    lefts = _spread(nodes, coords, ranks, routes, depth)
    for i, node in enumerate(nodes):
        node.x = lefts[("n", i)]
        node.y = tops[ranks[i]] + (heights[ranks[i]] - node.h) / 2
    for k, (edge, route) in enumerate(zip(edges, routes)):
        bends = []  # through each layer it skips, straight down its own slot: beside the boxes, never across one
        for j, (_, y) in enumerate(route):
            x, rank = lefts[("d", k, j)], int(round(y))
            bends += [(x, tops[rank]), (x, tops[rank] + heights[rank])]
        src, dst = nodes[edge.src], nodes[edge.dst]
        edge.points = [(src.x + src.w / 2, src.y + src.h), *bends, (dst.x + dst.w / 2, dst.y)]
    width = max((n.x + n.w for n in nodes), default=0.0)
    return width, tops[-1] + heights[-1] if nodes else 0.0


def _spread(nodes, coords, ranks, routes, depth) -> dict[tuple, float]:
    """Left edges: each layer's boxes and edge bends in the layout's order, pushed apart to their widths."""
    per_rank: list[list[tuple[float, tuple, float]]] = [[] for _ in range(depth)]
    for i, ((x, _), rank) in enumerate(zip(coords, ranks)):
        per_rank[rank].append((x, ("n", i), nodes[i].w))
    for k, route in enumerate(routes):
        for j, (x, y) in enumerate(route):
            per_rank[int(round(y))].append((x, ("d", k, j), DUMMY_W))
    unit = max((n.w for n in nodes), default=0.0) / 2 + NODE_GAP
    lefts: dict[tuple, float] = {}
    for items in per_rank:
        right = -math.inf
        for x, key, w in sorted(items, key=lambda item: item[0]):
            left = max(x * unit - w / 2, right + NODE_GAP)
            lefts[key] = left
            right = left + w
    low = min(lefts.values(), default=0.0)
    for key in lefts:
        lefts[key] -= low
    for k, route in enumerate(routes):  # a bend is a point, at the middle of its thin slot
        for j in range(len(route)):
            lefts[("d", k, j)] += DUMMY_W / 2
    return lefts


def summary_lines(analysis: Analysis) -> list[str]:
    t = analysis.totals
    memory = t["memory"]
    inputs = analysis.inputs
    given = f"input {shape_text(analysis.input_shape)}" if len(inputs) == 1 else \
        "inputs " + ", ".join(f"{name} {shape_text(shape)}" for name, shape in inputs.items())
    lines = [f"{analysis.name}", f"{given}, batch {analysis.batch}, "
             f"{analysis.dtype}",
             f"params {num(t['params'])} ({short_count(t['params'])})",
             f"MACs {num(t['macs'])} ({short_count(t['macs'])})",
             f"activations {num(t['activations'])}"]
    peak = memory.get("inference_peak_bytes")
    if is_int(peak):
        lines.append(f"inference peak {human_bytes(peak)}")
    if is_int(memory.get("training_bytes")):
        lines.append(f"training step {human_bytes(memory['training_bytes'])} ({memory['optimizer']})")
    rf = t.get("receptive_field")
    if rf is not None:
        lines.append(f"receptive field {'×'.join(str(s) for s in rf.size)}")
    seconds = t.get("predicted_seconds")
    if seconds is not None:
        lines.append(f"predicted time {seconds_text(seconds)}")
    return lines


def drawing(analysis: Analysis, color: str = "macs", style: str = "graph", depth: int | None = None,
            limit: int = MAX_NODES) -> Drawing:
    """The Drawing of ``analysis``: boxes placed, edges routed, colours set (see the module's docstring)."""
    check_options(color, style, analysis)
    input_axes = analysis.label_axes()
    shown, owner, notes = fold_to_fit(analysis, depth, limit)
    nodes = []
    for row in shown.layers:
        value = figure(row, color)
        nodes.append(Node(row.name, box_lines(row, color, value, input_axes), row, value))
    edges = edges_of(analysis.layers, owner)
    scale = paint(nodes, color)
    width, height = place(nodes, edges)
    return Drawing(analysis.name, nodes, edges, color, scale, summary_lines(analysis), notes, width, height,
                   shown)
