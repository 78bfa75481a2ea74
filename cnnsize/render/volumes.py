"""The lecture's volume figures (``cnnsize draw --style volumes``): each activation of a network's sequential
part as a box whose face is H×W and whose depth is C, on a log scale with the true sizes written under it, the
next layer's filter window drawn on the box it slides over, as the LeNet-5 and AlexNet figures draw them.

The filter window is read from the receptive fields, not from any kind's settings: a layer that grows the field
from size s (jump j) to s' has a window of (s' - s) / j + 1 positions and a stride of j' / j. Layers that keep
their input's shape and add no weights (activations, normalization, dropout) join the box before them. Where the
network branches, the rest is one labelled box. The picture is a list of plain shapes, written as SVG or TikZ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..core.numeric import is_int
from ..core.text import shape_text
from ..engine.result import Analysis, LayerResult

ANGLE = math.radians(35)
GAP = 46
BASE = 300.0  # the baseline the faces' bottoms stand on
FACE_FILL = "#dbe8f6"
TOP_FILL = "#b8cfe8"
SIDE_FILL = "#9fbce0"
WINDOW_FILL = "#f4a261"


@dataclass
class Shape:
    kind: str  # polygon, line, text
    points: list[tuple[float, float]]
    fill: str = "none"
    text: str = ""
    anchor: str = "middle"
    dashed: bool = False
    bold: bool = False


@dataclass
class Picture:
    title: str
    shapes: list[Shape] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def log_size(v: int, base: float, unit: float) -> float:
    return base + unit * math.log2(max(int(v), 1))


@dataclass
class Volume:
    """One box: the layer whose output it is (and those that joined it), its shape and where it stands."""

    rows: list[LayerResult]
    shape: tuple
    x: float = 0.0

    @property
    def face(self) -> tuple[float, float]:
        """(width, height) of the front face: W and H (a vector: a thin bar as tall as its length)."""
        if len(self.shape) >= 3:
            return log_size(self.shape[-1], 8, 18), log_size(self.shape[-2], 8, 18)
        return 10.0, log_size(self.shape[-1], 8, 18)

    @property
    def depth(self) -> float:
        return log_size(self.shape[0], 4, 6) if len(self.shape) >= 3 else 6.0


def sequential_part(a: Analysis) -> tuple[list[LayerResult], list[LayerResult]]:
    """The rows from the input while each reads only the one before it and nothing else reads that; the rest."""
    readers: dict[str, int] = {}
    for row in a.layers:
        for src in row.inputs:
            readers[src] = readers.get(src, 0) + 1
    rows = a.layers
    for i in range(1, len(rows)):
        if rows[i].inputs != [rows[i - 1].name] or readers.get(rows[i - 1].name, 0) != 1:
            return rows[:i], rows[i:]
    return rows, []


def volumes_of(rows: list[LayerResult]) -> list[Volume]:
    """A box per change of shape or layer with weights; layers that keep the shape join the box before them."""
    out: list[Volume] = []
    for row in rows:
        shape = tuple(row.output_shape)
        if not all(is_int(v) for v in shape):
            break
        if out and shape == out[-1].shape and not row.weight_layer:
            out[-1].rows.append(row)
        else:
            out.append(Volume([row], shape))
    return out


def window(prev: LayerResult, row: LayerResult) -> tuple[list[int], list[int]] | None:
    """The filter window (per axis) and stride ``row`` slides over ``prev``'s output, read from their fields."""
    a, b = prev.receptive_field, row.receptive_field
    if a is None or b is None or len(a.size) != len(b.size):
        return None
    try:
        kernel = [int((s2 - s1) // j1 + 1) for s1, s2, j1 in zip(a.size, b.size, a.stride)]
        stride = [int(j2 // j1) for j1, j2 in zip(a.stride, b.stride)]
    except TypeError:  # a symbolic field
        return None
    return (kernel, stride) if any(k > 1 for k in kernel) else None


def box_shapes(v: Volume) -> list[Shape]:
    """The three visible faces of a box (front, top, right side) and its labels below it."""
    w, h = v.face
    d = v.depth
    dx, dy = d * math.cos(ANGLE), -d * math.sin(ANGLE)
    x, y = v.x, BASE - h
    front = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    top = [(x, y), (x + dx, y + dy), (x + w + dx, y + dy), (x + w, y)]
    side = [(x + w, y), (x + w + dx, y + dy), (x + w + dx, y + h + dy), (x + w, y + h)]
    last = v.rows[0]
    cx = x + w / 2
    shapes = [Shape("polygon", top, TOP_FILL), Shape("polygon", side, SIDE_FILL), Shape("polygon", front, FACE_FILL),
              Shape("text", [(cx, BASE + 16)], text=last.name, bold=True),
              Shape("text", [(cx, BASE + 30)], text=shape_text(v.shape))]
    if last.type != "input":
        shapes.append(Shape("text", [(cx, BASE + 44)], text=last.type))
    return shapes


def window_shapes(v: Volume, nxt: Volume, kernel: list[int], stride: list[int]) -> list[Shape]:
    """The next layer's window drawn on this box's face, with lines to the position it makes on the next box."""
    w, h = v.face
    if len(v.shape) < 3:
        return []
    kh, kw = (kernel[-2], kernel[-1]) if len(kernel) > 1 else (1, kernel[-1])
    ww, wh = max(w * kw / v.shape[-1], 3.0), max(h * kh / v.shape[-2], 3.0)
    x0, y0 = v.x + w * 0.55 - ww / 2, BASE - h * 0.55 - wh / 2
    box = [(x0, y0), (x0 + ww, y0), (x0 + ww, y0 + wh), (x0, y0 + wh)]
    nw, nh = nxt.face
    apex = (nxt.x + nw * 0.55, BASE - nh * 0.55)
    label = "×".join(map(str, kernel)) + (f" /{'×'.join(map(str, stride))}" if any(s > 1 for s in stride) else "")
    return [Shape("polygon", box, WINDOW_FILL), Shape("line", [(x0 + ww, y0), apex], dashed=True),
            Shape("line", [(x0 + ww, y0 + wh), apex], dashed=True),
            Shape("text", [(x0 + ww / 2, y0 - 4)], text=label)]


def blocks(rows: list[LayerResult]) -> list[tuple[str, list[LayerResult]]]:
    """Consecutive rows grouped by the first part of their dotted names (layer1.0.conv1 -> layer1)."""
    out: list[tuple[str, list[LayerResult]]] = []
    for row in rows:
        head = row.name.split(".")[0]
        if out and out[-1][0] == head:
            out[-1][1].append(row)
        else:
            out.append((head, [row]))
    return out


def volumes(a: Analysis) -> Picture:
    """The volume figure of ``a`` (see the module's docstring)."""
    seq, rest = sequential_part(a)
    boxes = volumes_of(seq)
    stop = sum(len(v.rows) for v in boxes)
    rest = a.layers[stop:]
    x = 20.0
    for v in boxes:
        v.x = x
        x += v.face[0] + v.depth * math.cos(ANGLE) + GAP + 40
    picture = Picture(a.name)
    for k, v in enumerate(boxes):
        picture.shapes += box_shapes(v)
        if k + 1 < len(boxes):
            found = window(v.rows[-1], boxes[k + 1].rows[0])
            if found is not None:
                picture.shapes += window_shapes(v, boxes[k + 1], *found)
    for name, members in blocks(rest):  # beyond the sequential part: a labelled box per top-level block
        last = members[-1]
        body = [(x, BASE - 60), (x + 150, BASE - 60), (x + 150, BASE), (x, BASE)]
        picture.shapes += [Shape("polygon", body, "#eeeeee"),
                           Shape("text", [(x + 75, BASE - 34)], text=name, bold=True),
                           Shape("text", [(x + 75, BASE - 18)], text=f"{len(members)} layers" if len(members) > 1
                                 else last.type),
                           Shape("text", [(x + 75, BASE + 16)], text=shape_text(last.output_shape))]
        picture.shapes.append(Shape("line", [(x - 30, BASE - 30), (x, BASE - 30)]))
        x += 180
    picture.width = x + 20
    top = min((p[1] for s in picture.shapes for p in s.points), default=0.0)
    for s in picture.shapes:  # everything moved down so the tallest box's top is inside the picture
        s.points = [(px, py - top + 30) for px, py in s.points]
    picture.height = BASE - top + 30 + 60
    return picture
