"""Ultralytics YOLO model YAMLs (yolov8n.yaml, yolo11s.yaml, ...) as cnnsize specs: ``from_yolo``.

A YOLO YAML is close to a spec (rows of ``[from, repeats, module, args]``), but its modules are Ultralytics' own and
its channels and repeats follow a scale. This reads the file with the spec loader's safe YAML (no tags, no eval:
the args ``nc``, ``None`` or ``"nearest"`` are resolved by name), applies the scale as ultralytics.nn.tasks.parse_model
does (repeats ``max(round(n · depth), 1)`` where n > 1, widths ``make_divisible(min(c2, max_channels) · width, 8)``)
and writes each module as a spec block made of the primitive kinds, named as ultralytics names its modules
(``model.2.cv1.conv``), so that a built spec holds the model's state dict keys. The Detect head's decoding (the DFL,
the anchors, dist2bbox, the sigmoid) is written out as the layers torch runs. Nothing here imports torch or
ultralytics.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import CnnsizeError, Location, SpecError, unknown_name
from ..spec.load import LocDict, LocList, load_yaml
from ..spec.sources import read_text
from . import ImportedSpec, analyze_spec

SCALE_RE = re.compile(r"yolo(e-)?[v]?\d+([nslmx])")  # ultralytics.nn.tasks.guess_model_scale
STRIDE_PROBE = 256  # the input size ultralytics runs once to learn the head's strides (DetectionModel.__init__)
LITERALS = {"None": None, "True": True, "False": False}
Out = int | tuple  # a row's output channels, or (channels, the name of the layer that is its output)


def make_divisible(x: float, divisor: int) -> int:
    """ultralytics.utils.ops.make_divisible: the smallest multiple of ``divisor`` at least ``x``."""
    return math.ceil(x / divisor) * divisor


def autopad(k: int, d: int = 1) -> int:
    """ultralytics.nn.modules.conv.autopad with p=None: the 'same' padding of a (dilated) odd kernel."""
    return (d * (k - 1) + 1) // 2 if d > 1 else k // 2


def guess_scale(path: str) -> str:
    """The scale letter in a file name as ultralytics reads it (yolov8n.yaml: n), or ''."""
    found = SCALE_RE.search(Path(path).stem)
    return found.group(2) if found else ""


def locate(path: str) -> str:
    """The YAML file to read for ``path``: itself, its unscaled name (yolov8n.yaml -> yolov8.yaml, as ultralytics
    resolves it), or either among the model YAMLs of an installed ultralytics package (found without importing it)."""
    unified = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", path)
    for candidate in (path, unified):
        if os.path.isfile(candidate):
            return candidate
    if os.sep not in path and "/" not in path:
        import importlib.util

        spec = importlib.util.find_spec("ultralytics")
        if spec is not None and spec.submodule_search_locations:
            root = Path(next(iter(spec.submodule_search_locations))) / "cfg" / "models"
            for name in (Path(path).name, Path(unified).name):
                found = sorted(root.rglob(name))
                if found:
                    return str(found[0])
    raise SpecError(f"no YOLO model YAML '{path}'" + (f" (nor '{unified}')" if unified != path else ""),
                    hint="give the path of an Ultralytics model YAML, or install ultralytics to read its own by name")


class _Row:
    """One ``[from, repeats, module, args]`` row with where it is written."""

    def __init__(self, index: int, row: Any, loc: Location):
        if not isinstance(row, list) or len(row) != 4:
            raise SpecError("a YOLO layer row is [from, repeats, module, args]", location=loc)
        self.index, self.loc = index, loc
        self.source, self.repeats, self.module, self.args = row
        self.locs = [row.loc_of(k) if isinstance(row, LocList) else loc for k in range(4)]
        if not isinstance(self.module, str):
            raise SpecError(f"a module name must be text, got {self.module!r}", location=self.locs[2])
        if not isinstance(self.repeats, int) or isinstance(self.repeats, bool) or not 1 <= self.repeats <= 1000:
            raise SpecError(f"repeats must be a whole number from 1 to 1000, got {self.repeats!r}",
                            location=self.locs[1])
        if not isinstance(self.args, list):
            raise SpecError(f"args must be a list, got {self.args!r}", location=self.locs[3])


class Translator:
    """The state parse_model keeps (the channels of every row so far) and the spec being written."""

    def __init__(self, doc: dict, scale: str, filename: str):
        self.filename = filename
        self.in_channels = 3
        self.classifies = False  # a Classify head: sized at 224×224 by default, as ultralytics trains it
        self.nc = doc.get("nc", 80)
        self.reg_max = doc.get("reg_max", 16)
        self.kpt_shape = doc.get("kpt_shape", [17, 3])
        self.end2end = bool(doc.get("end2end", False))  # the head's one-to-one copy (computed in eval, not decoded)
        self.legacy = True  # ultralytics' Detect.legacy: v3/v5/v8/v9 heads, until a C3k2, A2C2f or C2fCIB row
        self.depth, self.width, self.max_channels = self._multiples(doc, scale)
        self.blocks: dict[str, dict] = {}
        self.layers: list[dict] = []
        self.names: list[str] = []
        self.ch: list[int] = []
        self.heads: list[dict] = []  # the settings of the heads' anchor layers, whose strides are set at the end
        self.text = ""  # YOLO-World's, YOLOE's: the layer holding the classes' text embeddings now (yolo_world)

    def _multiples(self, doc: dict, scale: str) -> tuple:
        scales = doc.get("scales")
        if scales:
            if not isinstance(scales, dict):
                raise SpecError("scales must map letters to [depth, width, max_channels]")
            if not scale:
                scale = next(iter(scales))
            if scale not in scales:
                raise unknown_name("scale", scale, scales).at(Location(self.filename))
            self.scale = scale
            value = scales[scale]
            if not (isinstance(value, list) and len(value) == 3):
                raise SpecError(f"scale '{scale}' must be [depth, width, max_channels], got {value!r}",
                                location=Location(self.filename))
            return tuple(value)
        self.scale = scale
        return doc.get("depth_multiple", 1.0), doc.get("width_multiple", 1.0), math.inf

    # -- rows ------------------------------------------------------------------------------------------------------
    def source_name(self, i: int, j: Any, loc: Location) -> str:
        """The layer a ``from`` index stands for: -1 the previous row (the image for row 0), k >= 0 row k, -k the
        k-th row back (as the forward's y[j] reads it)."""
        if isinstance(j, bool) or not isinstance(j, int):
            raise SpecError(f"a 'from' index must be a whole number, got {j!r}", location=loc)
        if j == -1:
            return self.names[-1] if self.names else "input"
        k = j if j >= 0 else i + j
        if not 0 <= k < i:
            raise SpecError(f"'from' {j} of row {i} is not an earlier row (0 to {i - 1}, or -1 to -{i})",
                            location=loc)
        return self.names[k]

    def channels(self, j: int) -> int:
        """parse_model's ch[f]: the input's channels for row 0, else that row's output channels."""
        return self.ch[j] if self.ch else self.in_channels

    def width_of(self, c2: Any, loc: Location) -> int:
        if isinstance(c2, bool) or not isinstance(c2, (int, float)) or c2 <= 0:
            raise SpecError(f"the output channels must be a positive number, got {c2!r}", location=loc)
        return make_divisible(min(c2, self.max_channels) * self.width, 8)

    def resolve(self, value: Any) -> Any:
        """An arg as parse_model reads it: a name it knows (nc, reg_max) or a literal written as text (None);
        any other text stays text ("nearest")."""
        if isinstance(value, str):
            if value in {"nc": 0, "reg_max": 0, "kpt_shape": 0}:
                return getattr(self, value)
            return LITERALS.get(value, value)
        return value

    def add_row(self, row: _Row) -> None:
        module = MODULES.get(row.module)
        if module is None:
            raise unknown_name("Ultralytics module", row.module, MODULES).at(row.locs[2])
        low, high, write = module
        args = [self.resolve(a) for a in row.args]
        if not low <= len(args) <= high:
            need = f"{low}" if low == high else f"{low} to {high}"
            raise SpecError(f"{row.module} takes {need} args, got {len(args)}: {row.args!r}", location=row.locs[3])
        n = max(round(row.repeats * self.depth), 1) if row.repeats > 1 else row.repeats
        sources = row.source if isinstance(row.source, list) else [row.source]
        names = [self.source_name(row.index, j, row.locs[0]) for j in sources]
        c1 = [self.channels(j) for j in sources]
        name = f"model.{row.index}"
        try:
            c2 = write(self, _Use(name, names, c1, n, args, row))
        except CnnsizeError as exc:
            raise exc.at(row.loc) from None
        if isinstance(c2, tuple):  # a module whose output is a layer inside it (the head's last join)
            c2, name = c2
        self.names.append(name)
        self.ch.append(c2)

    def use(self, block: str, settings: dict, make: Callable[[], dict]) -> dict:
        """A use of block ``block`` (defined by ``make`` on first use)."""
        if block not in self.blocks:
            self.blocks[block] = make()
        return {block: settings}


class _Use:
    """One row as its writer sees it: the layer name, the sources, their channels, the repeats and args."""

    def __init__(self, name: str, sources: list, c1: list, n: int, args: list, row: _Row):
        self.name, self.sources, self.c1, self.n, self.args, self.row = name, sources, c1, n, args, row

    def source(self) -> str:
        if len(self.sources) != 1:
            raise SpecError(f"{self.row.module} reads one layer, 'from' gives {len(self.sources)}",
                            location=self.row.locs[0])
        return self.sources[0]

    def arg(self, k: int, default: Any) -> Any:
        return self.args[k] if k < len(self.args) else default


def _int(value: Any, what: str) -> int:
    if isinstance(value, (list, tuple)) and value and all(v == value[0] for v in value):
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{what} must be a whole number, got {value!r}")
    return value


# -- blocks: Ultralytics' modules as spec blocks ------------------------------------------------------------------
def conv_block() -> dict:
    """ultralytics.nn.modules.conv.Conv: Conv2d (no bias), BatchNorm2d, SiLU (act: false, none)."""
    return {"args": {"c2": None, "k": 1, "s": 1, "p": 0, "g": 1, "d": 1, "act": True},
            "layers": [{"conv": {"name": "conv", "filters": "c2", "kernel": "k", "stride": "s", "pad": "p",
                                 "groups": "g", "dilation": "d", "bias": False}},
                       {"bn": {"name": "bn"}},
                       {"if": "act", "layers": [{"silu": {"name": "act"}}]}]}


def bottleneck_block(t: Translator) -> dict:
    """Bottleneck: Conv k1, Conv k2 (groups g), and x + that where shortcut and the widths agree."""
    t.use("Conv", {}, conv_block)
    return {"args": {"c2": None, "c_": None, "shortcut": True, "g": 1, "k1": 3, "k2": 3},
            "layers": [{"Conv": {"name": "cv1", "c2": "c_", "k": "k1", "p": "k1 // 2"}},
                       {"Conv": {"name": "cv2", "c2": "c2", "k": "k2", "p": "k2 // 2", "g": "g"}},
                       {"if": "shortcut and in.channels == c2",
                        "layers": [{"add": {"name": "add", "from": ["in", "cv2"]}}]}]}


def conv_settings(name: str, c2: int, k: int, s: int = 1, p: int | None = None, g: int = 1, d: int = 1,
                  act: bool = True, source: str | None = None) -> dict:
    """A Conv block use's settings, the defaults left out."""
    settings: dict[str, Any] = {"name": name, "c2": c2}
    for key, value, default in (("k", k, 1), ("s", s, 1), ("p", autopad(k, d) if p is None else p, 0),
                                ("g", g, 1), ("d", d, 1), ("act", act, True)):
        if value != default:
            settings[key] = value
    if source is not None:
        settings["from"] = source
    return settings


def write_conv(t: Translator, u: _Use, depthwise: bool = False) -> Out:
    c1 = u.c1[0]
    c2 = t.width_of(u.args[0], u.row.locs[3])
    k, s = _int(u.arg(1, 1), "the kernel"), _int(u.arg(2, 1), "the stride")
    if depthwise:  # DWConv(c1, c2, k, s, d, act): groups gcd(c1, c2)
        p, g, d, act = None, math.gcd(c1, c2), _int(u.arg(3, 1), "the dilation"), u.arg(4, True)
    else:
        p, g, d, act = u.arg(3, None), _int(u.arg(4, 1), "groups"), _int(u.arg(5, 1), "the dilation"), u.arg(6, True)
    if act is not True and act is not False:
        raise SpecError(f"a Conv's act other than True or False ({act!r}) is not read yet")
    settings = conv_settings(u.name, c2, k, s, None if p is None else _int(p, "the padding"), g, d, act,
                             u.source())
    last = _repeat(t, u, "Conv", settings, conv_block)
    return (c2, last) if last else c2


def _repeat(t: Translator, u: _Use, block: str, settings: dict, make: Callable[[], dict]) -> str | None:
    """One block use, or nn.Sequential of n of them (model.i.0, model.i.1, ...: a module without repeats of its own,
    given n > 1), each reading the one before; the name of the last where there are several."""
    if u.n == 1:
        t.layers.append(t.use(block, settings, make))
        return None
    for j in range(u.n):
        each = {**settings, "name": f"{u.name}.{j}"}
        if j:
            each.pop("from", None)
        t.layers.append(t.use(block, each, make))
    return f"{u.name}.{u.n - 1}"


def write_bottleneck(t: Translator, u: _Use) -> Out:
    c2 = t.width_of(u.args[0], u.row.locs[3])
    shortcut, g = u.arg(1, True), _int(u.arg(2, 1), "groups")
    k = u.arg(3, (3, 3))
    e = u.arg(4, 0.5)
    settings = {"name": u.name, "c2": c2, "c_": int(c2 * e), "shortcut": bool(shortcut), "g": g,
                "k1": _int(k[0], "a kernel"), "k2": _int(k[1], "a kernel"), "from": u.source()}
    last = _repeat(t, u, "Bottleneck", settings, lambda: bottleneck_block(t))
    return (c2, last) if last else c2


def c2f_block(t: Translator, n: int) -> dict:
    """C2f with n bottlenecks: cv1, its two halves (chunk), each bottleneck on the last, all joined, cv2."""
    t.use("Bottleneck", {}, lambda: bottleneck_block(t))
    joined = ["y0", "y1", *(f"m.{j}" for j in range(n))]
    return {"args": {"c2": None, "c": None, "shortcut": False, "g": 1},
            "layers": [{"Conv": {"name": "cv1", "c2": "2 * c"}},
                       {"chunk": {"name": "y0", "chunks": 2, "index": 0, "from": "cv1"}},
                       {"chunk": {"name": "y1", "chunks": 2, "index": 1, "from": "cv1"}},
                       {"repeat": n, "name": "m", "block": "Bottleneck",
                        "args": {"c2": "c", "c_": "c", "shortcut": "shortcut", "g": "g"}},
                       {"concat": {"name": "cat", "from": joined}},
                       {"Conv": {"name": "cv2", "c2": "c2"}}]}


def write_c2f(t: Translator, u: _Use) -> Out:
    c2 = t.width_of(u.args[0], u.row.locs[3])
    shortcut, g, e = u.arg(1, False), _int(u.arg(2, 1), "groups"), u.arg(3, 0.5)
    block = f"C2f_{u.n}"
    t.layers.append(t.use(block, {"name": u.name, "c2": c2, "c": int(c2 * e), "shortcut": bool(shortcut), "g": g,
                                  "from": u.source()}, lambda: c2f_block(t, u.n)))
    return c2


def c3_block(t: Translator, n: int) -> dict:
    """C3 with n bottlenecks (1x1 then 3x3): cv1 and the bottlenecks, cv2 beside them, joined, cv3."""
    t.use("Bottleneck", {}, lambda: bottleneck_block(t))
    return {"args": {"c2": None, "c_": None, "shortcut": True, "g": 1},
            "layers": [{"Conv": {"name": "cv1", "c2": "c_"}},
                       {"repeat": n, "name": "m", "block": "Bottleneck",
                        "args": {"c2": "c_", "c_": "c_", "shortcut": "shortcut", "g": "g", "k1": 1}},
                       {"Conv": {"name": "cv2", "c2": "c_", "from": "in"}},
                       {"concat": {"name": "cat", "from": ["m", "cv2"]}},
                       {"Conv": {"name": "cv3", "c2": "c2"}}]}


def write_c3(t: Translator, u: _Use) -> Out:
    c2 = t.width_of(u.args[0], u.row.locs[3])
    shortcut, g, e = u.arg(1, True), _int(u.arg(2, 1), "groups"), u.arg(3, 0.5)
    t.layers.append(t.use(f"C3_{u.n}", {"name": u.name, "c2": c2, "c_": int(c2 * e), "shortcut": bool(shortcut),
                                        "g": g, "from": u.source()}, lambda: c3_block(t, u.n)))
    return c2


def c2_block(t: Translator, n: int) -> dict:
    """C2: cv1, its halves, n Bottlenecks (3×3, 3×3) in a row on the first, joined with the second, cv2."""
    t.use("Bottleneck", {}, lambda: bottleneck_block(t))
    return {"args": {"c2": None, "c": None, "shortcut": True, "g": 1},
            "layers": [{"Conv": {"name": "cv1", "c2": "2 * c"}},
                       {"chunk": {"name": "b", "chunks": 2, "index": 1, "from": "cv1"}},
                       {"chunk": {"name": "a", "chunks": 2, "index": 0, "from": "cv1"}},
                       {"repeat": n, "name": "m", "block": "Bottleneck",
                        "args": {"c2": "c", "c_": "c", "shortcut": "shortcut", "g": "g"}},
                       {"concat": {"name": "cat", "from": ["m", "b"]}},
                       {"Conv": {"name": "cv2", "c2": "c2"}}]}


def write_c2(t: Translator, u: _Use) -> Out:
    c2 = t.width_of(u.args[0], u.row.locs[3])
    shortcut, g, e = u.arg(1, True), _int(u.arg(2, 1), "groups"), u.arg(3, 0.5)
    t.layers.append(t.use(f"C2_{u.n}", {"name": u.name, "c2": c2, "c": int(c2 * e), "shortcut": bool(shortcut),
                                        "g": g, "from": u.source()}, lambda: c2_block(t, u.n)))
    return c2


def ghostconv_block() -> dict:
    """GhostConv: a Conv to half the width, a depthwise 5×5 Conv of it, the two joined."""
    return {"args": {"c2": None, "k": 1, "s": 1, "g": 1, "act": True},
            "layers": [{"Conv": {"name": "cv1", "c2": "c2 // 2", "k": "k", "s": "s", "p": "k // 2", "g": "g",
                                 "act": "act"}},
                       {"Conv": {"name": "cv2", "c2": "c2 // 2", "k": 5, "p": 2, "g": "c2 // 2", "act": "act"}},
                       {"concat": {"name": "cat", "from": ["cv1", "cv2"]}}]}


def write_ghostconv(t: Translator, u: _Use) -> Out:
    c2 = t.width_of(u.args[0], u.row.locs[3])
    t.use("Conv", {}, conv_block)
    k, s, g = _int(u.arg(1, 1), "the kernel"), _int(u.arg(2, 1), "the stride"), _int(u.arg(3, 1), "groups")
    act = u.arg(4, True)
    last = _repeat(t, u, "GhostConv", {"name": u.name, "c2": c2, "k": k, "s": s, "g": g, "act": bool(act),
                                       "from": u.source()}, ghostconv_block)
    return (c2, last) if last else c2


def ghost_bottleneck_block(t: Translator) -> dict:
    """GhostBottleneck (stride 1): GhostConv to half the width, (an nn.Identity), GhostConv back without
    activation, plus x."""
    t.use("GhostConv", {}, ghostconv_block)
    return {"args": {},
            "layers": [{"GhostConv": {"name": "conv.0", "c2": "in.channels // 2"}},
                       {"GhostConv": {"name": "conv.2", "c2": "in.channels", "act": False}},
                       {"add": {"name": "add", "from": ["conv.2", "in"]}}]}


def c3ghost_block(t: Translator, n: int) -> dict:
    """C3Ghost: a C3 whose n bottlenecks are GhostBottlenecks."""
    t.use("GhostBottleneck", {}, lambda: ghost_bottleneck_block(t))
    return {"args": {"c2": None, "c_": None},
            "layers": [{"Conv": {"name": "cv1", "c2": "c_"}},
                       {"repeat": n, "name": "m", "block": "GhostBottleneck"},
                       {"Conv": {"name": "cv2", "c2": "c_", "from": "in"}},
                       {"concat": {"name": "cat", "from": ["m", "cv2"]}},
                       {"Conv": {"name": "cv3", "c2": "c2"}}]}


def write_c3ghost(t: Translator, u: _Use) -> Out:
    c2 = t.width_of(u.args[0], u.row.locs[3])
    e = u.arg(3, 0.5)
    t.use("Conv", {}, conv_block)
    t.layers.append(t.use(f"C3Ghost_{u.n}", {"name": u.name, "c2": c2, "c_": int(c2 * e), "from": u.source()},
                          lambda: c3ghost_block(t, u.n)))
    return c2


def c3k_block(t: Translator) -> dict:
    """C3k: a C3 of 2 bottlenecks of k × k kernels (its hidden width c_ = c2 · 0.5)."""
    t.use("Bottleneck", {}, lambda: bottleneck_block(t))
    return {"args": {"c2": None, "shortcut": True, "g": 1, "k": 3},
            "layers": [{"Conv": {"name": "cv1", "c2": "c2 // 2"}},
                       {"Bottleneck": {"name": "m.0", "c2": "c2 // 2", "c_": "c2 // 2", "shortcut": "shortcut",
                                       "g": "g", "k1": "k", "k2": "k"}},
                       {"Bottleneck": {"name": "m.1", "c2": "c2 // 2", "c_": "c2 // 2", "shortcut": "shortcut",
                                       "g": "g", "k1": "k", "k2": "k"}},
                       {"Conv": {"name": "cv2", "c2": "c2 // 2", "from": "in"}},
                       {"concat": {"name": "cat", "from": ["m.1", "cv2"]}},
                       {"Conv": {"name": "cv3", "c2": "c2"}}]}


def c3k2_block(t: Translator, n: int, c3k: bool) -> dict:
    """C3k2 (a C2f): cv1, its halves, n C3k (c3k) or Bottleneck (hidden width c // 2) on the last, joined, cv2."""
    t.use("Bottleneck", {}, lambda: bottleneck_block(t))
    inner = ({"block": "C3k", "args": {"c2": "c", "shortcut": "shortcut", "g": "g"}} if c3k else
             {"block": "Bottleneck", "args": {"c2": "c", "c_": "c // 2", "shortcut": "shortcut", "g": "g"}})
    if c3k:
        t.use("C3k", {}, lambda: c3k_block(t))
    return {"args": {"c2": None, "c": None, "shortcut": True, "g": 1},
            "layers": [{"Conv": {"name": "cv1", "c2": "2 * c"}},
                       {"chunk": {"name": "y0", "chunks": 2, "index": 0, "from": "cv1"}},
                       {"chunk": {"name": "y1", "chunks": 2, "index": 1, "from": "cv1"}},
                       {"repeat": n, "name": "m", **inner},
                       {"concat": {"name": "cat", "from": ["y0", "y1", *(f"m.{j}" for j in range(n))]}},
                       {"Conv": {"name": "cv2", "c2": "c2"}}]}


def write_c3k2(t: Translator, u: _Use) -> Out:
    t.legacy = False  # parse_model: a C3k2 row makes the Detect head after it the depthwise one
    c2 = t.width_of(u.args[0], u.row.locs[3])
    c3k = bool(u.arg(1, False)) or t.scale in ("m", "l", "x")  # parse_model sets c3k for the M/L/X sizes
    e, attn, g, shortcut = u.arg(2, 0.5), u.arg(3, False), _int(u.arg(4, 1), "groups"), u.arg(5, True)
    if attn:  # YOLO26: a PSABlock after each bottleneck
        return write_c3k2_attn(t, u, c2, int(c2 * e), shortcut, g)
    block = f"C3k2_{u.n}{'_c3k' if c3k else ''}"
    t.layers.append(t.use(block, {"name": u.name, "c2": c2, "c": int(c2 * e), "shortcut": bool(shortcut), "g": g,
                                  "from": u.source()}, lambda: c3k2_block(t, u.n, c3k)))
    return c2


def attention_block(t: Translator) -> dict:
    """ultralytics' Attention: a 1×1 qkv Conv viewed as heads × (2·key_dim + head_dim) × HW, q·scale, qᵀk, its
    softmax, v·softmaxᵀ viewed back as the map, plus a depthwise 3×3 Conv of v (copied to the map's shape), then
    a 1×1 proj Conv."""
    t.use("Conv", {}, conv_block)
    n = "in.height * in.width"
    return {"args": {"heads": None, "kd": None, "hd": None, "scale": None},
            "layers": [{"Conv": {"name": "qkv", "c2": "in.channels + 2 * heads * kd", "act": False}},
                       {"reshape": {"name": "view", "shape": ["heads", "2 * kd + hd", n]}},
                       {"slice": {"name": "q", "axis": 1, "start": 0, "end": "kd", "from": "view"}},
                       {"slice": {"name": "k", "axis": 1, "start": "kd", "end": "2 * kd", "from": "view"}},
                       {"slice": {"name": "v", "axis": 1, "start": "2 * kd", "end": "2 * kd + hd", "from": "view"}},
                       {"scalar": {"name": "q_scaled", "op": "mul", "value": "scale", "from": "q"}},
                       {"transpose": {"name": "q_t", "axes": [1, 2]}},
                       {"matmul": {"name": "scores", "from": ["q_t", "k"]}},
                       {"softmax": {"name": "softmax", "axis": 2}},
                       {"transpose": {"name": "attn_t", "axes": [1, 2]}},
                       {"matmul": {"name": "weighted", "from": ["v", "attn_t"]}},
                       {"reshape": {"name": "out", "shape": ["in.channels", "in.height", "in.width"]}},
                       {"contiguous": {"name": "v_copy", "from": "v"}},
                       {"reshape": {"name": "v_map", "shape": ["in.channels", "in.height", "in.width"]}},
                       {"Conv": {"name": "pe", "c2": "in.channels", "k": 3, "p": 1, "g": "in.channels",
                                 "act": False}},
                       {"add": {"name": "sum", "from": ["out", "pe"]}},
                       {"Conv": {"name": "proj", "c2": "in.channels", "act": False}}]}


def psa_block(t: Translator) -> dict:
    """PSABlock: x + attn(x), then that + ffn (a 1×1 Conv to twice the width, a 1×1 Conv back, no activation)."""
    t.use("Attention", {}, lambda: attention_block(t))
    return {"args": {"heads": None, "kd": None, "hd": None, "scale": None},
            "layers": [{"Attention": {"name": "attn", "heads": "heads", "kd": "kd", "hd": "hd", "scale": "scale"}},
                       {"add": {"name": "add1", "from": ["in", "attn"]}},
                       {"Conv": {"name": "ffn.0", "c2": "2 * in.channels"}},
                       {"Conv": {"name": "ffn.1", "c2": "in.channels", "act": False}},
                       {"add": {"name": "add2", "from": ["add1", "ffn.1"]}}]}


def c2psa_block(t: Translator, n: int) -> dict:
    """C2PSA: cv1, its halves, n PSABlocks on the second, joined, cv2."""
    t.use("PSABlock", {}, lambda: psa_block(t))
    return {"args": {"c": None, "heads": None, "kd": None, "hd": None, "scale": None},
            "layers": [{"Conv": {"name": "cv1", "c2": "2 * c"}},
                       {"chunk": {"name": "a", "chunks": 2, "index": 0, "from": "cv1"}},
                       {"chunk": {"name": "b", "chunks": 2, "index": 1, "from": "cv1"}},
                       {"repeat": n, "name": "m", "block": "PSABlock",
                        "args": {"heads": "heads", "kd": "kd", "hd": "hd", "scale": "scale"}},
                       {"concat": {"name": "cat", "from": ["a", "m"]}},
                       {"Conv": {"name": "cv2", "c2": "in.channels"}}]}


def write_c2psa(t: Translator, u: _Use) -> Out:
    c1, c2 = u.c1[0], t.width_of(u.args[0], u.row.locs[3])
    if c1 != c2:
        raise SpecError(f"C2PSA keeps its width: its input has {c1} channels, its output {c2}")
    c = int(c1 * u.arg(1, 0.5))
    t.layers.append(t.use(f"C2PSA_{u.n}", {"name": u.name, "c": c, **_attention_settings(c), "from": u.source()},
                          lambda: c2psa_block(t, u.n)))
    return c2


def _attention_settings(c: int) -> dict:
    """Attention(c, attn_ratio=0.5, num_heads=max(c // 64, 1))'s sizes, as C2PSA and PSA make it."""
    heads = max(c // 64, 1)
    hd = c // heads
    kd = int(hd * 0.5)
    return {"heads": heads, "kd": kd, "hd": hd, "scale": kd ** -0.5}


def psa_v10_block(t: Translator) -> dict:
    """YOLOv10's PSA: cv1, its halves, the second + attn(it), that + ffn (as PSABlock's), both joined, cv2."""
    t.use("Attention", {}, lambda: attention_block(t))
    return {"args": {"c": None, "heads": None, "kd": None, "hd": None, "scale": None},
            "layers": [{"Conv": {"name": "cv1", "c2": "2 * c"}},
                       {"chunk": {"name": "a", "chunks": 2, "index": 0, "from": "cv1"}},
                       {"chunk": {"name": "b", "chunks": 2, "index": 1, "from": "cv1"}},
                       {"Attention": {"name": "attn", "heads": "heads", "kd": "kd", "hd": "hd", "scale": "scale"}},
                       {"add": {"name": "add1", "from": ["b", "attn"]}},
                       {"Conv": {"name": "ffn.0", "c2": "2 * c"}},
                       {"Conv": {"name": "ffn.1", "c2": "c", "act": False}},
                       {"add": {"name": "add2", "from": ["add1", "ffn.1"]}},
                       {"concat": {"name": "cat", "from": ["a", "add2"]}},
                       {"Conv": {"name": "cv2", "c2": "in.channels"}}]}


def write_psa(t: Translator, u: _Use) -> Out:
    c1, c2 = u.c1[0], t.width_of(u.args[0], u.row.locs[3])
    if c1 != c2:
        raise SpecError(f"PSA keeps its width: its input has {c1} channels, its output {c2}")
    c = int(c1 * u.arg(1, 0.5))
    last = _repeat(t, u, "PSA", {"name": u.name, "c": c, **_attention_settings(c), "from": u.source()},
                   lambda: psa_v10_block(t))
    return (c2, last) if last else c2


def scdown_block() -> dict:
    """SCDown: a 1×1 Conv to c2, then a depthwise k×k Conv at stride s without activation."""
    return {"args": {"c2": None, "k": 3, "s": 2},
            "layers": [{"Conv": {"name": "cv1", "c2": "c2"}},
                       {"Conv": {"name": "cv2", "c2": "c2", "k": "k", "s": "s", "p": "k // 2", "g": "c2",
                                 "act": False}}]}


def write_scdown(t: Translator, u: _Use) -> Out:
    c2 = t.width_of(u.args[0], u.row.locs[3])
    t.use("Conv", {}, conv_block)
    k, s = _int(u.args[1], "the kernel"), _int(u.args[2], "the stride")
    last = _repeat(t, u, "SCDown", {"name": u.name, "c2": c2, "k": k, "s": s, "from": u.source()}, scdown_block)
    return (c2, last) if last else c2


def repvggdw_block() -> dict:
    """RepVGGDW (training form): a depthwise 7×7 and a depthwise 3×3 Conv without activation, summed, SiLU."""
    return {"args": {},
            "layers": [{"Conv": {"name": "conv", "c2": "in.channels", "k": 7, "p": 3, "g": "in.channels",
                                 "act": False}},
                       {"Conv": {"name": "conv1", "c2": "in.channels", "k": 3, "p": 1, "g": "in.channels",
                                 "act": False, "from": "in"}},
                       {"add": {"name": "sum", "from": ["conv", "conv1"]}},
                       {"silu": {"name": "act"}}]}


def cib_block(t: Translator, lk: bool) -> dict:
    """CIB (e = 1): depthwise 3×3, 1×1 to 2c, depthwise 3×3 (or RepVGGDW with lk), 1×1 back, depthwise 3×3,
    and x + that with shortcut (its width is kept)."""
    t.use("Conv", {}, conv_block)
    middle = ({"RepVGGDW": {"name": "cv1.2"}} if lk else
              {"Conv": {"name": "cv1.2", "c2": "2 * in.channels", "k": 3, "p": 1, "g": "2 * in.channels"}})
    if lk:
        t.use("RepVGGDW", {}, repvggdw_block)
    return {"args": {"shortcut": True},
            "layers": [{"Conv": {"name": "cv1.0", "c2": "in.channels", "k": 3, "p": 1, "g": "in.channels"}},
                       {"Conv": {"name": "cv1.1", "c2": "2 * in.channels"}},
                       middle,
                       {"Conv": {"name": "cv1.3", "c2": "in.channels"}},
                       {"Conv": {"name": "cv1.4", "c2": "in.channels", "k": 3, "p": 1, "g": "in.channels"}},
                       {"if": "shortcut", "layers": [{"add": {"name": "add", "from": ["in", "cv1.4"]}}]}]}


def c2fcib_block(t: Translator, n: int, lk: bool) -> dict:
    """C2fCIB: a C2f whose n bottlenecks are CIBs."""
    cib = f"CIB{'_lk' if lk else ''}"
    t.use(cib, {}, lambda: cib_block(t, lk))
    return {"args": {"c2": None, "c": None, "shortcut": False},
            "layers": [{"Conv": {"name": "cv1", "c2": "2 * c"}},
                       {"chunk": {"name": "y0", "chunks": 2, "index": 0, "from": "cv1"}},
                       {"chunk": {"name": "y1", "chunks": 2, "index": 1, "from": "cv1"}},
                       {"repeat": n, "name": "m", "block": cib, "args": {"shortcut": "shortcut"}},
                       {"concat": {"name": "cat", "from": ["y0", "y1", *(f"m.{j}" for j in range(n))]}},
                       {"Conv": {"name": "cv2", "c2": "c2"}}]}


def write_c2fcib(t: Translator, u: _Use) -> Out:
    t.legacy = False  # parse_model: a C2fCIB row makes the Detect head after it the depthwise one
    c2 = t.width_of(u.args[0], u.row.locs[3])
    shortcut, lk, g, e = u.arg(1, False), bool(u.arg(2, False)), _int(u.arg(3, 1), "groups"), u.arg(4, 0.5)
    if g != 1:
        raise SpecError("C2fCIB's g is not used by its CIBs; only g = 1 is read")
    t.layers.append(t.use(f"C2fCIB_{u.n}{'_lk' if lk else ''}",
                          {"name": u.name, "c2": c2, "c": int(c2 * e), "shortcut": bool(shortcut),
                           "from": u.source()}, lambda: c2fcib_block(t, u.n, lk)))
    return c2


def area_attention_block(t: Translator, area: int) -> dict:
    """YOLO12's AAttn over ``area`` strips of the map: a 1×1 qkv Conv, its tokens (area × N/area) split into heads
    of 32 (q, k, v), qᵀk scaled, softmax, v·attnᵀ, back to the map (copies where torch's reshape cannot view: the
    strips' split and merge, and v's head axes), plus a depthwise 7×7 Conv of v, then a 1×1 proj Conv."""
    t.use("Conv", {}, conv_block)
    hw = "in.height * in.width"
    x_back = ([{"contiguous": {"name": "x_copy"}}, {"reshape": {"name": "x_map", "shape": ["in.height", "in.width",
                                                                                          "in.channels"]}},
               {"permute": {"name": "x_chw", "dims": [2, 0, 1]}}, {"contiguous": {"name": "x_out"}}] if area > 1 else
              [{"reshape": {"name": "x_map", "shape": ["in.height", "in.width", "in.channels"]}},
               {"permute": {"name": "x_out", "dims": [2, 0, 1]}}])  # a view already in memory order: no copy
    return {"args": {"heads": None, "hd": None},
            "layers": [{"Conv": {"name": "qkv", "c2": "3 * in.channels", "act": False}},
                       {"flatten": {"name": "tokens", "start": 1}},
                       {"transpose": {"name": "tokens_t", "axes": [0, 1]}},
                       *([{"contiguous": {"name": "strips"}}] if area > 1 else []),  # torch's reshape copies
                       {"reshape": {"name": "split", "shape": [area, f"{hw} // {area}", "heads", "3 * hd"]}},
                       {"permute": {"name": "heads_first", "dims": [0, 2, 3, 1]}},
                       {"slice": {"name": "q", "axis": 2, "start": 0, "end": "hd", "from": "heads_first"}},
                       {"slice": {"name": "k", "axis": 2, "start": "hd", "end": "2 * hd", "from": "heads_first"}},
                       {"slice": {"name": "v", "axis": 2, "start": "2 * hd", "end": "3 * hd", "from": "heads_first"}},
                       {"scalar": {"name": "q_scaled", "op": "mul", "value": 32 ** -0.5, "from": "q"}},
                       {"transpose": {"name": "q_t", "axes": [2, 3]}},
                       {"matmul": {"name": "scores", "from": ["q_t", "k"]}},
                       {"softmax": {"name": "softmax", "axis": 3}},
                       {"transpose": {"name": "attn_t", "axes": [2, 3]}},
                       {"matmul": {"name": "weighted", "from": ["v", "attn_t"]}},
                       {"permute": {"name": "x_tokens", "dims": [0, 3, 1, 2]}},
                       *x_back,
                       {"permute": {"name": "v_tokens", "dims": [0, 3, 1, 2], "from": "v"}},
                       {"contiguous": {"name": "v_copy"}},
                       {"reshape": {"name": "v_map", "shape": ["in.height", "in.width", "in.channels"]}},
                       {"permute": {"name": "v_chw", "dims": [2, 0, 1]}},
                       {"contiguous": {"name": "v_out"}},
                       {"Conv": {"name": "pe", "c2": "in.channels", "k": 7, "p": 3, "g": "in.channels",
                                 "act": False}},
                       {"add": {"name": "sum", "from": ["x_out", "pe"]}},
                       {"Conv": {"name": "proj", "c2": "in.channels", "act": False}}]}


def ablock_block(t: Translator, area: int) -> dict:
    """ABlock: x + AAttn(x), then that + mlp (a 1×1 Conv to int(dim · mlp_ratio), a 1×1 Conv back, no act)."""
    attn = f"AAttn_{area}"
    t.use(attn, {}, lambda: area_attention_block(t, area))
    return {"args": {"heads": None, "hd": None, "hidden": None},
            "layers": [{attn: {"name": "attn", "heads": "heads", "hd": "hd"}},
                       {"add": {"name": "add1", "from": ["in", "attn"]}},
                       {"Conv": {"name": "mlp.0", "c2": "hidden"}},
                       {"Conv": {"name": "mlp.1", "c2": "in.channels", "act": False}},
                       {"add": {"name": "add2", "from": ["add1", "mlp.1"]}}]}


def a2c2f_block(t: Translator, n: int, a2: bool, area: int, residual: bool) -> dict:
    """A2C2f: cv1, then n in a row (each two ABlocks with a2, else a C3k), all joined, cv2; with a2 and residual
    (the L and X scales) x + gamma · that, gamma a learned scale per channel."""
    t.use("Conv", {}, conv_block)
    if a2:
        block = f"ABlock_{area}"
        t.use(block, {}, lambda: ablock_block(t, area))
        inner = [{block: {"name": f"m.{j}.{i}", "heads": "c_ // 32", "hd": 32, "hidden": "hidden"}}
                 for j in range(n) for i in range(2)]
        ends = [f"m.{j}.1" for j in range(n)]
    else:
        t.use("Bottleneck", {}, lambda: bottleneck_block(t))
        t.use("C3k", {}, lambda: c3k_block(t))
        inner = [{"C3k": {"name": f"m.{j}", "c2": "c_", "shortcut": "shortcut", "g": "g"}} for j in range(n)]
        ends = [f"m.{j}" for j in range(n)]
    tail = ([{"layer_scale": {"name": "gamma", "init": 0.01}}, {"add": {"name": "out", "from": ["in", "gamma"]}}]
            if a2 and residual else [])
    return {"args": {"c2": None, "c_": None, "hidden": None, "shortcut": True, "g": 1},
            "layers": [{"Conv": {"name": "cv1", "c2": "c_"}}, *inner,
                       {"concat": {"name": "cat", "from": ["cv1", *ends]}},
                       {"Conv": {"name": "cv2", "c2": "c2"}}, *tail]}


def write_a2c2f(t: Translator, u: _Use) -> Out:
    t.legacy = False  # parse_model: an A2C2f row makes the Detect head after it the depthwise one
    c2 = t.width_of(u.args[0], u.row.locs[3])
    args = list(u.args) + ([True, 1.2] if t.scale in ("l", "x") else [])  # parse_model's L/X residual, mlp_ratio
    a2, area, residual = bool(args[1]) if len(args) > 1 else True, args[2] if len(args) > 2 else 1, \
        bool(args[3]) if len(args) > 3 else False
    mlp_ratio, e = args[4] if len(args) > 4 else 2.0, args[5] if len(args) > 5 else 0.5
    g, shortcut = _int(args[6], "groups") if len(args) > 6 else 1, bool(args[7]) if len(args) > 7 else True
    c_ = int(c2 * e)
    if c_ % 32:
        raise SpecError(f"A2C2f's hidden width {c_} is not a multiple of 32 (its ABlocks' heads of 32)")
    area = _int(area, "the area") if a2 else 1
    block = (f"A2C2f_{u.n}{'_a2' if a2 else ''}{f'_area{area}' if a2 and area > 1 else ''}"
             f"{'_res' if a2 and residual else ''}")
    t.layers.append(t.use(block, {"name": u.name, "c2": c2, "c_": c_, "hidden": int(c_ * mlp_ratio),
                                  "shortcut": shortcut, "g": g, "from": u.source()},
                          lambda: a2c2f_block(t, u.n, a2, area, residual)))
    return c2


def repconv_block(t: Translator) -> dict:
    """RepConv (training form): a k×k and a 1×1 Conv without activation, summed, plus 0 (its absent identity
    branch: torch adds the number 0, a new tensor), then SiLU."""
    t.use("Conv", {}, conv_block)
    return {"args": {"c2": None, "k": 3},
            "layers": [{"Conv": {"name": "conv1", "c2": "c2", "k": "k", "p": "k // 2", "act": False}},
                       {"Conv": {"name": "conv2", "c2": "c2", "act": False, "from": "in"}},
                       {"add": {"name": "sum", "from": ["conv1", "conv2"]}},
                       {"scalar": {"name": "id_out", "op": "add", "value": 0}},
                       {"silu": {"name": "act"}}]}


def rep_bottleneck_block(t: Translator) -> dict:
    """RepBottleneck: a Bottleneck whose first Conv is a RepConv (e = 1: the width kept)."""
    t.use("RepConv", {}, lambda: repconv_block(t))
    return {"args": {"c2": None, "shortcut": True},
            "layers": [{"RepConv": {"name": "cv1", "c2": "c2"}},
                       {"Conv": {"name": "cv2", "c2": "c2", "k": 3, "p": 1}},
                       {"if": "shortcut and in.channels == c2",
                        "layers": [{"add": {"name": "add", "from": ["in", "cv2"]}}]}]}


def rep_csp_block(t: Translator, n: int) -> dict:
    """RepCSP: a C3 of n RepBottlenecks."""
    t.use("RepBottleneck", {}, lambda: rep_bottleneck_block(t))
    return {"args": {"c2": None},
            "layers": [{"Conv": {"name": "cv1", "c2": "c2 // 2"}},
                       {"repeat": n, "name": "m", "block": "RepBottleneck", "args": {"c2": "c2 // 2"}},
                       {"Conv": {"name": "cv2", "c2": "c2 // 2", "from": "in"}},
                       {"concat": {"name": "cat", "from": ["m", "cv2"]}},
                       {"Conv": {"name": "cv3", "c2": "c2"}}]}


def elan_block(t: Translator, n: int) -> dict:
    """RepNCSPELAN4 (n ≥ 1: each branch a RepCSP of n, then a 3×3 Conv) or ELAN1 (n = 0: a 3×3 Conv each): cv1,
    its halves, the two branches one after the other on the last, all four joined, cv4."""
    t.use("Conv", {}, conv_block)
    if n:
        t.use(f"RepCSP_{n}", {}, lambda: rep_csp_block(t, n))
        branch = [({f"RepCSP_{n}": {"name": f"{cv}.0", "c2": "c4"}}, {"Conv": {"name": f"{cv}.1", "c2": "c4",
                                                                              "k": 3, "p": 1}})
                  for cv in ("cv2", "cv3")]
        layers = [branch[0][0], branch[0][1], branch[1][0], branch[1][1]]
        ends = ["cv2.1", "cv3.1"]
    else:
        layers = [{"Conv": {"name": cv, "c2": "c4", "k": 3, "p": 1}} for cv in ("cv2", "cv3")]
        ends = ["cv2", "cv3"]
    return {"args": {"c2": None, "c3": None, "c4": None},
            "layers": [{"Conv": {"name": "cv1", "c2": "c3"}},
                       {"chunk": {"name": "y0", "chunks": 2, "index": 0, "from": "cv1"}},
                       {"chunk": {"name": "y1", "chunks": 2, "index": 1, "from": "cv1"}},
                       *layers,
                       {"concat": {"name": "cat", "from": ["y0", "y1", *ends]}},
                       {"Conv": {"name": "cv4", "c2": "c2"}}]}


def write_elan(t: Translator, u: _Use, ncsp: bool) -> Out:
    c2 = t.width_of(u.args[0], u.row.locs[3])
    c3, c4 = _int(u.args[1], "c3"), _int(u.args[2], "c4")
    n = _int(u.arg(3, 1), "n") if ncsp else 0
    name = f"RepNCSPELAN4_{n}" if ncsp else "ELAN1"
    last = _repeat(t, u, name, {"name": u.name, "c2": c2, "c3": c3, "c4": c4, "from": u.source()},
                   lambda: elan_block(t, n))
    return (c2, last) if last else c2


def aconv_block() -> dict:
    """AConv: a 2×2 average pool at stride 1, then a 3×3 Conv at stride 2."""
    return {"args": {"c2": None},
            "layers": [{"avgpool": {"name": "pool", "kernel": 2, "stride": 1}},
                       {"Conv": {"name": "cv1", "c2": "c2", "k": 3, "s": 2, "p": 1}}]}


def adown_block() -> dict:
    """ADown: a 2×2 average pool at stride 1, its halves: a 3×3 Conv at stride 2 on the first, a 3×3 max pool at
    stride 2 and a 1×1 Conv on the second, joined."""
    return {"args": {"c2": None},
            "layers": [{"avgpool": {"name": "pool", "kernel": 2, "stride": 1}},
                       {"chunk": {"name": "x1", "chunks": 2, "index": 0, "from": "pool"}},
                       {"chunk": {"name": "x2", "chunks": 2, "index": 1, "from": "pool"}},
                       {"Conv": {"name": "cv1", "c2": "c2 // 2", "k": 3, "s": 2, "p": 1, "from": "x1"}},
                       {"maxpool": {"name": "pool2", "kernel": 3, "stride": 2, "pad": 1, "from": "x2"}},
                       {"Conv": {"name": "cv2", "c2": "c2 // 2"}},
                       {"concat": {"name": "cat", "from": ["cv1", "cv2"]}}]}


def write_down(t: Translator, u: _Use, block: str, make: Callable[[], dict]) -> Out:
    c2 = t.width_of(u.args[0], u.row.locs[3])
    t.use("Conv", {}, conv_block)
    last = _repeat(t, u, block, {"name": u.name, "c2": c2, "from": u.source()}, make)
    return (c2, last) if last else c2


def sppelan_block() -> dict:
    """SPPELAN: cv1, three max pools in a row (cv2, cv3, cv4), the four joined, cv5."""
    return {"args": {"c2": None, "c3": None, "k": 5},
            "layers": [{"Conv": {"name": "cv1", "c2": "c3"}},
                       *({"maxpool": {"name": cv, "kernel": "k", "stride": 1, "pad": "k // 2"}}
                         for cv in ("cv2", "cv3", "cv4")),
                       {"concat": {"name": "cat", "from": ["cv1", "cv2", "cv3", "cv4"]}},
                       {"Conv": {"name": "cv5", "c2": "c2"}}]}


def write_sppelan(t: Translator, u: _Use) -> Out:
    c2 = t.width_of(u.args[0], u.row.locs[3])
    t.use("Conv", {}, conv_block)
    last = _repeat(t, u, "SPPELAN", {"name": u.name, "c2": c2, "c3": _int(u.args[1], "c3"),
                                     "k": _int(u.arg(2, 5), "the kernel"), "from": u.source()}, sppelan_block)
    return (c2, last) if last else c2


def sppf_block(t: Translator, n: int) -> dict:
    """SPPF: cv1, one max pool applied n times in a row, the n + 1 joined, cv2 (and + x with shortcut)."""
    t.use("Conv", {}, conv_block)
    pools = [f"m{'' if j == 0 else f'_{j}'}" for j in range(n)]
    return {"args": {"c2": None, "k": 5, "act": True, "shortcut": False},
            "layers": [{"Conv": {"name": "cv1", "c2": "in.channels // 2", "act": "act"}},
                       *({"maxpool": {"name": p, "kernel": "k", "stride": 1, "pad": "k // 2"}} for p in pools),
                       {"concat": {"name": "cat", "from": ["cv1", *pools]}},
                       {"Conv": {"name": "cv2", "c2": "c2"}},
                       {"if": "shortcut and in.channels == c2",
                        "layers": [{"add": {"name": "add", "from": ["cv2", "in"]}}]}]}


def write_sppf(t: Translator, u: _Use) -> Out:
    c2 = t.width_of(u.args[0], u.row.locs[3])
    k, n, shortcut = _int(u.arg(1, 5), "the kernel"), _int(u.arg(2, 3), "the pools"), u.arg(3, False)
    act = len(u.args) <= 2  # parse_model: a legacy row (args [c1, c2, k] at most) activates cv1
    settings = {"name": u.name, "c2": c2, "k": k, "act": act, "shortcut": bool(shortcut), "from": u.source()}
    last = _repeat(t, u, f"SPPF_{n}", settings, lambda: sppf_block(t, n))
    return (c2, last) if last else c2


def spp_block(t: Translator, ks: list) -> dict:
    """SPP: cv1, max pools of several kernels side by side on it (m.0, m.1, ...), the lot joined, cv2."""
    t.use("Conv", {}, conv_block)
    pools = [f"m.{j}" for j in range(len(ks))]
    return {"args": {"c2": None},
            "layers": [{"Conv": {"name": "cv1", "c2": "in.channels // 2"}},
                       *({"maxpool": {"name": p, "kernel": k, "stride": 1, "pad": k // 2, "from": "cv1"}}
                         for p, k in zip(pools, ks)),
                       {"concat": {"name": "cat", "from": ["cv1", *pools]}},
                       {"Conv": {"name": "cv2", "c2": "c2"}}]}


def write_spp(t: Translator, u: _Use) -> Out:
    c2 = t.width_of(u.args[0], u.row.locs[3])
    ks = [_int(k, "a kernel") for k in u.arg(1, [5, 9, 13])]
    last = _repeat(t, u, "SPP_" + "_".join(map(str, ks)), {"name": u.name, "c2": c2, "from": u.source()},
                   lambda: spp_block(t, ks))
    return (c2, last) if last else c2


def write_upsample(t: Translator, u: _Use) -> Out:
    size, scale, mode = u.arg(0, None), u.arg(1, None), u.arg(2, "nearest")
    if size is not None or scale is None:
        raise SpecError("nn.Upsample by a scale factor only is read ([None, scale, mode])")
    t.layers.append({"upsample": {"name": u.name, "scale": scale, "mode": mode, "from": u.source()}})
    return u.c1[0]


def write_concat(t: Translator, u: _Use) -> Out:
    if u.arg(0, 1) != 1:
        raise SpecError(f"Concat along dimension {u.arg(0, 1)!r}: cnnsize reads the channels' (1)")
    t.layers.append({"concat": {"name": u.name, "from": list(u.sources)}})
    return sum(u.c1)


def write_maxpool(t: Translator, u: _Use) -> Out:
    k = _int(u.args[0], "the kernel")
    s, p = _int(u.arg(1, k), "the stride"), _int(u.arg(2, 0), "the padding")
    t.layers.append({"maxpool": {"name": u.name, "kernel": k, "stride": s, "pad": p, "from": u.source()}})
    return u.c1[0]


def write_zeropad(t: Translator, u: _Use) -> Out:
    pad = u.args[0]
    left, right, top, bottom = (pad,) * 4 if isinstance(pad, int) else pad
    t.layers.append({"zeropad": {"name": u.name, "pad": [top, left], "pad_end": [bottom, right],
                                 "from": u.source()}})
    return u.c1[0]


def write_deconv(t: Translator, u: _Use) -> Out:
    c2 = t.width_of(u.args[0], u.row.locs[3])
    k, s, p = _int(u.arg(1, 1), "the kernel"), _int(u.arg(2, 1), "the stride"), _int(u.arg(3, 0), "the padding")
    t.layers.append({"deconv": {"name": u.name, "filters": c2, "kernel": k, "stride": s, "pad": p,
                                "from": u.source()}})
    return c2


def write_identity(t: Translator, u: _Use) -> Out:
    t.layers.append({"identity": {"name": u.name, "from": u.source()}})
    return u.c1[0]


def write_cblinear(t: Translator, u: _Use) -> Out:
    """CBLinear(c2s): one nn.Conv2d (with bias) to sum(c2s) channels, split into the c2s parts (views, taken where
    a CBFuse reads them). Its channels are the list, as parse_model keeps them."""
    c2s = u.args[0]
    if not (isinstance(c2s, list) and c2s):
        raise SpecError(f"CBLinear's first arg is a list of output channels, got {c2s!r}", location=u.row.locs[3])
    c2s = [_int(c, "a CBLinear part's channels") for c in c2s]
    k, s = _int(u.arg(1, 1), "the kernel"), _int(u.arg(2, 1), "the stride")
    p, g = u.arg(3, None), _int(u.arg(4, 1), "groups")
    t.layers.append({"conv": {"name": f"{u.name}.conv", "filters": sum(c2s), "kernel": k, "stride": s,
                              "pad": autopad(k) if p is None else _int(p, "the padding"), "groups": g,
                              "from": u.source()}})
    return c2s, f"{u.name}.conv"


def write_cbfuse(t: Translator, u: _Use) -> Out:
    """CBFuse(idx): part idx[i] of each CBLinear read, resized to the last input's size (nearest: a whole factor,
    learnt from the maps' heights at a 256×256 input, as the strides are), all stacked with the last input and
    summed (torch.sum(torch.stack(...), 0): two new tensors)."""
    idx = u.args[0]
    if not isinstance(idx, list) or len(idx) != len(u.sources) - 1:
        raise SpecError(f"CBFuse's idx has one index per CBLinear read ({len(u.sources) - 1}), got {idx!r}",
                        location=u.row.locs[3])
    probe = analyze_spec({"name": "probe", "input": [t.in_channels, STRIDE_PROBE, STRIDE_PROBE], "fit": "floor",
                          "blocks": t.blocks, "layers": t.layers})
    heights: dict[str, int] = {}
    for row in probe.layers:  # a block use's height is its last layer's
        heights.update({n: row.output_shape[1] for n in u.sources if row.name == n or row.name.startswith(n + ".")})
    target, parts = u.sources[-1], []
    for i, (src, c2s) in enumerate(zip(u.sources[:-1], u.c1[:-1])):
        j = _int(idx[i], "a CBFuse index")
        if not isinstance(c2s, list) or not 0 <= j < len(c2s):
            raise SpecError(f"CBFuse reads part {j} of '{src}', which is not a CBLinear of that many parts")
        factor, rest = divmod(heights[target], heights[src])
        if rest or not factor:
            raise SpecError(f"CBFuse resizes '{src}' ({heights[src]} high) to '{target}' ({heights[target]}): "
                            "not a whole factor")
        part = f"{u.name}.in{i}"
        t.layers += [{"slice": {"name": f"{part}.part", "axis": 0, "start": sum(c2s[:j]), "end": sum(c2s[:j + 1]),
                                "from": src}},
                     {"upsample": {"name": part, "scale": factor, "mode": "nearest", "function": "F.interpolate"}}]
        parts.append(part)
    t.layers += [{"stack": {"name": f"{u.name}.stack", "axis": 0, "from": [*parts, target]}},
                 {"reduce": {"name": f"{u.name}.sum", "op": "sum", "axes": [0]}}]
    return u.c1[-1], f"{u.name}.sum"


def dfl_block() -> dict:
    """DFL: the 4 × reg_max box logits as 4 sides' distributions, softmax over the bins, their expectation by a
    fixed 1×1 conv (weights 0 .. reg_max − 1, a parameter that does not train)."""
    return {"args": {"c1": 16},
            "layers": [{"reshape": {"name": "view", "shape": [4, "c1", "in.length"]}},
                       {"transpose": {"name": "transpose", "axes": [0, 1]}},
                       {"softmax": {"name": "softmax", "axis": 0}},
                       {"conv": {"name": "conv", "filters": 1, "kernel": 1, "bias": False, "trainable": False}},
                       {"reshape": {"name": "out", "shape": [4, "in.length"]}}]}


def _branch(t: Translator, prefix: str, source: str, convs: list[tuple], last: int) -> str:
    """One level's branch of a head: Conv blocks (name, c2, k, groups), then nn.Conv2d(…, last, 1), flattened."""
    for j, (part, c2, k, g) in enumerate(convs):
        t.layers.append({"Conv": conv_settings(f"{prefix}.{part}", c2, k, g=g, source=source if j == 0 else None)})
    t.layers.append({"conv": {"name": f"{prefix}.{len({p.split('.')[0] for p, *_ in convs})}", "filters": last,
                              "kernel": 1}})
    t.layers.append({"flatten": {"name": f"{prefix}.view", "start": 1}})
    return f"{prefix}.view"


def _head_branches(t: Translator, h: str, u: _Use, part: str, convs: Callable[[int], list], last: int,
                   label: str) -> str:
    """One branch per level (``h.part.i``), flattened and joined along the anchors: ``h.label``."""
    views = [_branch(t, f"{h}.{part}.{i}", x, convs(c), last) for i, (x, c) in enumerate(zip(u.sources, u.c1))]
    t.layers.append({"cat": {"name": f"{h}.{label}", "axis": 1, "from": views}})
    return f"{h}.{label}"


class _Head:
    """A Detect head's sizes and its task's extra branch (cv4: Segment's mask coefficients, Pose's keypoints,
    OBB's angle), as ultralytics.nn.modules.head builds them."""

    def __init__(self, t: Translator, u: _Use, task: str, light: bool):
        self.task, self.nc = task, _int(u.arg(0, t.nc), "nc")
        ch = u.c1
        self.c2, self.c3 = max(16, ch[0] // 4, t.reg_max * 4), max(ch[0], min(self.nc, 100))
        self.legacy = t.legacy and not light
        self.kpt_shape = _kpt_shape(u.arg(1, [17, 3])) if task == "pose" else (0, 0)
        self.extra = {"segment": lambda: _int(u.arg(1, 32), "nm"),
                      "obb": lambda: _int(u.arg(1, 1), "ne"),
                      "pose": lambda: self.kpt_shape[0] * self.kpt_shape[1],
                      "detect": lambda: 0}[task]()
        self.c4 = max(ch[0] // 4, self.extra)

    def cls_convs(self, c: int) -> list:
        c3 = self.c3
        if self.legacy:
            return [("0", c3, 3, 1), ("1", c3, 3, 1)]
        return [("0.0", c, 3, c), ("0.1", c3, 1, 1), ("1.0", c3, 3, c3), ("1.1", c3, 1, 1)]

    def forward_head(self, t: Translator, h: str, u: _Use, prefix: str) -> dict:
        """Detect.forward_head: the joined boxes, scores and the task's extra (OBB: its angle in radians)."""
        out = {"boxes": _head_branches(t, h, u, f"{prefix}cv2", lambda c: [("0", self.c2, 3, 1), ("1", self.c2, 3, 1)],
                                       4 * t.reg_max, f"{prefix}boxes"),
               "scores": _head_branches(t, h, u, f"{prefix}cv3", self.cls_convs, self.nc, f"{prefix}scores")}
        if self.extra:
            out["extra"] = self.extra_branch(t, h, u, prefix)
        return out

    def extra_branch(self, t: Translator, h: str, u: _Use, prefix: str) -> str:
        """The task's cv4 branches, joined (OBB: its angle in radians)."""
        extra = _head_branches(t, h, u, f"{prefix}cv4", lambda c: [("0", self.c4, 3, 1), ("1", self.c4, 3, 1)],
                               self.extra, f"{prefix}{self.task}")
        return self.angle(t, f"{h}.{prefix}angle", extra) if self.task == "obb" else extra

    def decode_kpts(self, t: Translator, h: str, kpts: str) -> str:
        """Pose's keypoints decoded (eval)."""
        return _kpts_decode(t, h, kpts, self.kpt_shape)

    def angle(self, t: Translator, a: str, logits: str) -> str:
        """OBB's angle from its logits: (angle.sigmoid() - 0.25) * pi."""
        t.layers += [{"sigmoid": {"name": f"{a}.sigmoid", "from": logits}},
                     {"scalar": {"name": f"{a}.shift", "op": "sub", "value": 0.25}},
                     {"scalar": {"name": a, "op": "mul", "value": math.pi}}]
        return a


def write_detect(t: Translator, u: _Use, task: str = "detect", light: bool = False,
                 head_kind: type | None = None) -> Out:
    """Detect(nc) (and v10Detect, Segment, OBB): per level a box branch (two 3×3 Conv, a 1×1 conv to 4·reg_max) and
    a class branch (legacy: two 3×3 Conv; else depthwise 3×3 + 1×1 twice), the task's extra branch, the same again
    as the one-to-one head of an end-to-end model (v10Detect, end2end: True; computed in eval, not decoded), then
    the eval-mode decoding of the one-to-many head, each step the tensor torch makes."""
    t.use("Conv", {}, conv_block)
    h, head = u.name, (head_kind or _Head)(t, u, task, light)
    preds = head.forward_head(t, h, u, "")
    if light or t.end2end:
        head.forward_head(t, h, u, "one2one_")
    points = {"name": f"{h}.anchors", "strides": [1] * len(u.c1), "from": list(u.sources)}
    strides = {"name": f"{h}.strides", "strides": [1] * len(u.c1), "output": "strides", "from": list(u.sources)}
    t.layers += [{"anchors": points}, {"anchors": strides}]
    t.heads += [points, strides]  # their strides are learnt once the whole spec is written (_set_strides)
    dist = preds["boxes"]
    if t.reg_max > 1:
        t.layers.append(t.use("DFL", {"name": f"{h}.dfl", "c1": t.reg_max, "from": dist}, dfl_block))
        dist = f"{h}.dfl"
    if task == "obb":
        _dist2rbox(t, h, dist, preds["extra"])
    else:
        _dist2bbox(t, h, dist)
    t.layers.append({"sigmoid": {"name": f"{h}.sigmoid", "from": preds["scores"]}})
    t.layers.append({"cat": {"name": f"{h}.out", "axis": 0, "from": [f"{h}.dbox", f"{h}.sigmoid"]}})
    if task == "detect":
        return 4 + head.nc, f"{h}.out"
    if task == "pose":
        preds["extra"] = head.decode_kpts(t, h, preds["extra"])
    t.layers.append({"cat": {"name": f"{h}.{task}_out", "axis": 0, "from": [f"{h}.out", preds["extra"]]}})
    return 4 + head.nc + head.extra, f"{h}.{task}_out"


def _kpt_shape(value: Any) -> tuple[int, int]:
    if not (isinstance(value, (list, tuple)) and len(value) == 2):
        raise SpecError(f"kpt_shape must be [keypoints, 2 or 3 values each], got {value!r}")
    n, ndim = _int(value[0], "the keypoints"), _int(value[1], "a keypoint's values")
    if n < 1 or ndim not in (2, 3):
        raise SpecError(f"kpt_shape must be [keypoints, 2 or 3 values each], got {value!r}")
    return n, ndim


def _kpts_decode(t: Translator, h: str, kpts: str, kpt_shape: tuple[int, int]) -> str:
    """Pose.kpts_decode (eval, not export): x and y as (k · 2 + (anchor − 0.5)) · stride, the visibility's sigmoid.
    torch writes the three into a clone of the keypoints, in place; here they are stacked, the same storage
    (nk × anchors) holding the same values, so the figures are torch's; k · 2 − (0.5 − anchor) is the same number
    (add does not broadcast, sub does)."""
    n, ndim = kpt_shape
    k = f"{h}.kpts"
    parts = []
    for axis, name in enumerate(("x", "y")):
        parts.append(f"{k}.{name}")
        t.layers += [{"slice": {"name": f"{k}.{name}_raw", "axis": 0, "start": axis, "step": ndim, "from": kpts}},
                     {"scalar": {"name": f"{k}.{name}_2", "op": "mul", "value": 2.0}},
                     {"slice": {"name": f"{k}.a{name}", "axis": 0, "start": axis, "end": axis + 1,
                                "from": f"{h}.anchors"}},
                     {"scalar": {"name": f"{k}.a{name}_c", "op": "rsub", "value": 0.5}},  # 0.5 − a
                     {"sub": {"name": f"{k}.{name}_a", "from": [f"{k}.{name}_2", f"{k}.a{name}_c"]}},
                     {"mul": {"name": f"{k}.{name}", "from": [f"{k}.{name}_a", f"{h}.strides"]}}]
    if ndim == 3:
        t.layers += [{"slice": {"name": f"{k}.v_raw", "axis": 0, "start": 2, "step": 3, "from": kpts}},
                     {"sigmoid": {"name": f"{k}.v"}}]
        parts.append(f"{k}.v")
    t.layers += [{"stack": {"name": f"{k}.stack", "axis": 1, "from": parts}},
                 {"flatten": {"name": f"{k}.out", "start": 0, "end": 1}}]
    return f"{k}.out"


def write_segment(t: Translator, u: _Use) -> Out:
    """Segment(nc, nm, npr): Detect with the mask coefficients joined to its output, and the prototypes (Proto on
    the first level: a 3×3 Conv, a 2×2 transposed conv at stride 2, a 3×3 Conv, a 1×1 Conv to nm), which the model
    returns beside it; the prototypes are written first, so that the spec's last layer is the detections."""
    nm = _int(u.arg(1, 32), "nm")
    npr = t.width_of(_int(u.arg(2, 256), "npr"), u.row.locs[3])  # parse_model scales npr as a width
    t.use("Conv", {}, conv_block)
    p = f"{u.name}.proto"
    t.layers += [{"Conv": conv_settings(f"{p}.cv1", npr, 3, source=u.sources[0])},
                 {"deconv": {"name": f"{p}.upsample", "filters": npr, "kernel": 2, "stride": 2}},
                 {"Conv": conv_settings(f"{p}.cv2", npr, 3)},
                 {"Conv": conv_settings(f"{p}.cv3", nm, 1)}]
    return write_detect(t, u, "segment")


def write_classify(t: Translator, u: _Use) -> Out:
    """Classify(nc): a Conv to 1280 channels, the global average, flattened, dropout (p 0: the identity), a
    Linear to nc, and at inference its softmax (the output; the logits are the tuple's second part)."""
    nc = _int(u.args[0], "nc")
    k, s = _int(u.arg(1, 1), "the kernel"), _int(u.arg(2, 1), "the stride")
    p, g = u.arg(3, None), _int(u.arg(4, 1), "groups")
    t.use("Conv", {}, conv_block)
    h = u.name
    t.layers += [{"Conv": conv_settings(f"{h}.conv", 1280, k, s, None if p is None else _int(p, "the padding"), g,
                                        source=u.source())},
                 {"adaptive_avgpool": {"name": f"{h}.pool", "output": 1}},
                 {"flatten": {"name": f"{h}.flatten"}},
                 {"dropout": {"name": f"{h}.drop", "p": 0.0, "inplace": True}},
                 {"linear": {"name": f"{h}.linear", "units": nc}},
                 {"softmax": {"name": f"{h}.softmax", "axis": 0}}]
    t.classifies = True
    return nc, f"{h}.softmax"


def _dist2bbox(t: Translator, h: str, dist: str) -> None:
    """ultralytics.utils.tal.dist2bbox (xywh) times the strides, as torch runs it."""
    d = f"{h}.decode"
    t.layers += [{"chunk": {"name": f"{d}.lt", "chunks": 2, "index": 0, "from": dist}},
                 {"chunk": {"name": f"{d}.rb", "chunks": 2, "index": 1, "from": dist}},
                 {"sub": {"name": f"{d}.x1y1", "from": [f"{h}.anchors", f"{d}.lt"]}},
                 {"add": {"name": f"{d}.x2y2", "from": [f"{h}.anchors", f"{d}.rb"]}},
                 {"add": {"name": f"{d}.sum", "from": [f"{d}.x1y1", f"{d}.x2y2"]}},
                 {"scalar": {"name": f"{d}.c_xy", "op": "div", "value": 2}},
                 {"sub": {"name": f"{d}.wh", "from": [f"{d}.x2y2", f"{d}.x1y1"]}},
                 {"cat": {"name": f"{d}.xywh", "axis": 0, "from": [f"{d}.c_xy", f"{d}.wh"]}},
                 {"mul": {"name": f"{h}.dbox", "from": [f"{d}.xywh", f"{h}.strides"]}}]


def _dist2rbox(t: Translator, h: str, dist: str, angle: str) -> None:
    """ultralytics.utils.tal.dist2rbox (the OBB head's rotated xywh) times the strides, as torch runs it."""
    d = f"{h}.decode"
    t.layers += [{"chunk": {"name": f"{d}.lt", "chunks": 2, "index": 0, "from": dist}},
                 {"chunk": {"name": f"{d}.rb", "chunks": 2, "index": 1, "from": dist}},
                 {"unary": {"name": f"{d}.cos", "op": "cos", "from": angle}},
                 {"unary": {"name": f"{d}.sin", "op": "sin", "from": angle}},
                 {"sub": {"name": f"{d}.diff", "from": [f"{d}.rb", f"{d}.lt"]}},
                 {"scalar": {"name": f"{d}.half", "op": "div", "value": 2}},
                 {"chunk": {"name": f"{d}.xf", "chunks": 2, "index": 0, "from": f"{d}.half"}},
                 {"chunk": {"name": f"{d}.yf", "chunks": 2, "index": 1, "from": f"{d}.half"}},
                 {"mul": {"name": f"{d}.xcos", "from": [f"{d}.xf", f"{d}.cos"]}},
                 {"mul": {"name": f"{d}.ysin", "from": [f"{d}.yf", f"{d}.sin"]}},
                 {"sub": {"name": f"{d}.x", "from": [f"{d}.xcos", f"{d}.ysin"]}},
                 {"mul": {"name": f"{d}.xsin", "from": [f"{d}.xf", f"{d}.sin"]}},
                 {"mul": {"name": f"{d}.ycos", "from": [f"{d}.yf", f"{d}.cos"]}},
                 {"add": {"name": f"{d}.y", "from": [f"{d}.xsin", f"{d}.ycos"]}},
                 {"cat": {"name": f"{d}.xy_rot", "axis": 0, "from": [f"{d}.x", f"{d}.y"]}},
                 {"add": {"name": f"{d}.xy", "from": [f"{d}.xy_rot", f"{h}.anchors"]}},
                 {"add": {"name": f"{d}.wh", "from": [f"{d}.lt", f"{d}.rb"]}},
                 {"cat": {"name": f"{d}.xywh", "axis": 0, "from": [f"{d}.xy", f"{d}.wh"]}},
                 {"mul": {"name": f"{h}.dbox", "from": [f"{d}.xywh", f"{h}.strides"]}}]


# -- YOLO26 (ultralytics 8.4's cfg/models/26): C3k2 with attention; Segment26, OBB26, Pose26, SemanticSegment and
# Depth heads ---------------------------------------------------------------------------------------------------


def bottleneck_psa_block(t: Translator) -> dict:
    """One repeat of C3k2 with attn (an nn.Sequential): a Bottleneck (hidden width c // 2), then a PSABlock."""
    t.use("Bottleneck", {}, lambda: bottleneck_block(t))
    t.use("PSABlock", {}, lambda: psa_block(t))
    return {"args": {"c": None, "shortcut": True, "g": 1, "heads": None, "kd": None, "hd": None, "scale": None},
            "layers": [{"Bottleneck": {"name": "0", "c2": "c", "c_": "c // 2", "shortcut": "shortcut", "g": "g"}},
                       {"PSABlock": {"name": "1", "heads": "heads", "kd": "kd", "hd": "hd", "scale": "scale"}}]}


def c3k2_attn_block(t: Translator, n: int) -> dict:
    """C3k2 with attn (YOLO26): cv1, its halves, n (Bottleneck, PSABlock) pairs on the last, all joined, cv2."""
    t.use("BottleneckPSA", {}, lambda: bottleneck_psa_block(t))
    attn = {"heads": "heads", "kd": "kd", "hd": "hd", "scale": "scale"}
    return {"args": {"c2": None, "c": None, "shortcut": True, "g": 1, "heads": None, "kd": None, "hd": None,
                     "scale": None},
            "layers": [{"Conv": {"name": "cv1", "c2": "2 * c"}},
                       {"chunk": {"name": "y0", "chunks": 2, "index": 0, "from": "cv1"}},
                       {"chunk": {"name": "y1", "chunks": 2, "index": 1, "from": "cv1"}},
                       {"repeat": n, "name": "m", "block": "BottleneckPSA",
                        "args": {"c": "c", "shortcut": "shortcut", "g": "g", **attn}},
                       {"concat": {"name": "cat", "from": ["y0", "y1", *(f"m.{j}" for j in range(n))]}},
                       {"Conv": {"name": "cv2", "c2": "c2"}}]}


def write_c3k2_attn(t: Translator, u: _Use, c2: int, c: int, shortcut: Any, g: int) -> Out:
    """C3k2(c1, c2, n, c3k, e, attn=True, g, shortcut): attn wins over c3k (which the M/L/X scales set); each PSABlock
    is Attention(c, attn_ratio 0.5, num_heads max(c // 64, 1)), as C2PSA's."""
    if c < 2:
        raise SpecError(f"C3k2 with attn needs a hidden width of 2 or more, got {c}")
    t.use("Conv", {}, conv_block)
    t.layers.append(t.use(f"C3k2_{u.n}_attn", {"name": u.name, "c2": c2, "c": c, "shortcut": bool(shortcut), "g": g,
                                               **_attention_settings(c), "from": u.source()},
                          lambda: c3k2_attn_block(t, u.n)))
    return c2


def _conv_sizes(c1: int, c2: int, k: int) -> tuple[int, int]:
    """(parameters, buffers) of ultralytics' Conv(c1, c2, k): the conv's weights (no bias), the batch norm's scale
    and shift, its running mean and variance and its num_batches_tracked."""
    return c1 * c2 * k * k + 2 * c2, 2 * c2 + 1


def _unused(t: Translator, name: str, source: str, weights: int, buffers: int = 0) -> None:
    """A module ultralytics builds but its eval forward never calls (a training-only branch): its parameters and
    buffers, counted as torch counts them, nothing computed."""
    t.layers.append({"unused": {"name": name, "module": name, "weights": weights, "buffers": buffers,
                                "from": source}})


class _OBB26(_Head):
    """OBB26: OBB whose angle is the raw logits (no sigmoid, no shift)."""

    def angle(self, t: Translator, a: str, logits: str) -> str:
        return logits


class _Pose26(_Head):
    """Pose26: cv4 is two 3×3 Conv per level (no final conv; width max(ch[0] // 4, nk + 2 · keypoints)), then
    cv4_kpts, a 1×1 conv to the keypoints; cv4_sigma (a 1×1 conv to 2 · keypoints) and the RealNVP flow model
    are trained only: held, never called in eval. The keypoints decode as (k + anchor) · stride."""

    def __init__(self, t: Translator, u: _Use, task: str, light: bool):
        super().__init__(t, u, task, light)
        n, ndim = self.kpt_shape
        self.c4 = max(u.c1[0] // 4, n * (ndim + 2))

    def extra_branch(self, t: Translator, h: str, u: _Use, prefix: str) -> str:
        n = self.kpt_shape[0]
        feats = []
        for i, x in enumerate(u.sources):
            p = f"{h}.{prefix}cv4.{i}"
            t.layers += [{"Conv": {"name": f"{p}.0", "c2": self.c4, "k": 3, "p": 1, "from": x}},
                         {"Conv": {"name": f"{p}.1", "c2": self.c4, "k": 3, "p": 1}}]
            feats.append(f"{p}.1")
        views = []
        for i, f in enumerate(feats):
            k = f"{h}.{prefix}cv4_kpts.{i}"
            t.layers += [{"conv": {"name": k, "filters": self.extra, "kernel": 1, "from": f}},
                         {"flatten": {"name": f"{k}.view", "start": 1}}]
            views.append(f"{k}.view")
        t.layers.append({"cat": {"name": f"{h}.{prefix}pose", "axis": 1, "from": views}})
        sigma = len(feats) * (self.c4 * 2 * n + 2 * n)
        _unused(t, f"{h}.{prefix}cv4_sigma", feats[0], sigma)
        if not prefix:  # RealNVP: 6 scale and 6 translation nets of Linear(2, 64), (64, 64), (64, 2)
            _unused(t, f"{h}.flow_model", feats[0], 12 * (2 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2), 2 + 4 + 12)
        return f"{h}.{prefix}pose"

    def decode_kpts(self, t: Translator, h: str, kpts: str) -> str:
        """Pose26.kpts_decode (eval): x and y as (k + anchor) · stride (the anchor's row broadcast: a view),
        the visibility's sigmoid, stacked as torch's clone holds them."""
        n, ndim = self.kpt_shape
        block = f"Pose26Decode_{n}_{ndim}_{h.replace('.', '_')}"
        t.layers.append(t.use(block, {"name": f"{h}.kpts", "from": kpts}, lambda: _pose26_decode(h, n, ndim)))
        return f"{h}.kpts"


def _pose26_decode(h: str, n: int, ndim: int) -> dict:
    """The keypoints' decoding as a block (its input the keypoints [n · ndim, anchors], ``in.length`` the anchors),
    reading the head's anchors and strides by name."""
    layers: list[dict] = []
    parts = []
    for axis, name in enumerate(("x", "y")):
        layers += [{"slice": {"name": f"{name}_raw", "axis": 0, "start": axis, "step": ndim, "from": "in"}},
                   {"slice": {"name": f"a{name}", "axis": 0, "start": axis, "end": axis + 1,
                              "from": f"{h}.anchors"}},
                   {"expand": {"name": f"a{name}_rows", "shape": [n, "in.length"]}},
                   {"add": {"name": f"{name}_a", "from": [f"{name}_raw", f"a{name}_rows"]}},
                   {"mul": {"name": name, "from": [f"{name}_a", f"{h}.strides"]}}]
        parts.append(name)
    if ndim == 3:
        layers += [{"slice": {"name": "v_raw", "axis": 0, "start": 2, "step": 3, "from": "in"}},
                   {"sigmoid": {"name": "v"}}]
        parts.append("v")
    layers += [{"stack": {"name": "stack", "axis": 1, "from": parts}},
               {"flatten": {"name": "out", "start": 0, "end": 1}}]
    return {"args": {}, "layers": layers}


def write_obb26(t: Translator, u: _Use) -> Out:
    """OBB26(nc, ne): OBB with the raw angle."""
    return write_detect(t, u, "obb", head_kind=_OBB26)


def write_pose26(t: Translator, u: _Use) -> Out:
    """Pose26(nc, kpt_shape): see _Pose26."""
    return write_detect(t, u, "pose", head_kind=_Pose26)


def write_segment26(t: Translator, u: _Use) -> Out:
    """Segment26(nc, nm, npr): Detect with the mask coefficients, and Proto26's prototypes: each coarser level a 1×1
    Conv to the first's width (feat_refine), resized ×2, ×4 (nearest) and added to the first, a 3×3 Conv to npr
    (feat_fuse), then Proto's cv1, 2×2 transposed conv, cv2, cv3 to nm; its semseg branch (two 3×3 Conv and a 1×1
    conv to nc) is trained only: held, never called in eval. Written before the head, as write_segment does."""
    nm = _int(u.arg(1, 32), "nm")
    npr = t.width_of(_int(u.arg(2, 256), "npr"), u.row.locs[3])  # parse_model scales npr as a width
    proto26(t, u, npr, nm)
    return write_detect(t, u, "segment")


def proto26(t: Translator, u: _Use, npr: int, nm: int) -> None:
    """Proto26(ch, npr, nm, nc) in eval (Segment26's and YOLOESegment26's): see write_segment26."""
    nc = _int(u.arg(0, t.nc), "nc")
    t.use("Conv", {}, conv_block)
    p, ch = f"{u.name}.proto", u.c1
    feat = u.sources[0]
    for i, x in enumerate(u.sources[1:]):
        t.layers += [{"Conv": conv_settings(f"{p}.feat_refine.{i}", ch[0], 1, source=x)},
                     {"upsample": {"name": f"{p}.feat_refine.{i}.up", "scale": 2 ** (i + 1), "mode": "nearest",
                                   "function": "F.interpolate"}},
                     {"add": {"name": f"{p}.sum{i}", "from": [feat, f"{p}.feat_refine.{i}.up"]}}]
        feat = f"{p}.sum{i}"
    t.layers += [{"Conv": conv_settings(f"{p}.feat_fuse", npr, 3, source=feat)},
                 {"Conv": conv_settings(f"{p}.cv1", npr, 3)},
                 {"deconv": {"name": f"{p}.upsample", "filters": npr, "kernel": 2, "stride": 2}},
                 {"Conv": conv_settings(f"{p}.cv2", npr, 3)},
                 {"Conv": conv_settings(f"{p}.cv3", nm, 1)}]
    sizes = [_conv_sizes(ch[0], npr, 3), _conv_sizes(npr, npr, 3), (npr * nc + nc, 0)]
    _unused(t, f"{p}.semseg", f"{p}.cv3", sum(w for w, _ in sizes), sum(b for _, b in sizes))


def write_semantic_segment(t: Translator, u: _Use) -> Out:
    """SemanticSegment(nc): the per-pixel class logits at the first level's resolution (classifier: a 3×3 Conv of
    its width, a 1×1 conv to nc), the eval output; aux_head (the same on the second level) is trained only: held,
    never called in eval."""
    nc = _int(u.arg(0, t.nc), "nc")
    c_mid, h = u.c1[0], u.name
    if len(u.sources) > 1:
        w, b = _conv_sizes(u.c1[1], c_mid, 3)
        _unused(t, f"{h}.aux_head", u.sources[1], w + c_mid * nc + nc, b)
    t.use("Conv", {}, conv_block)
    t.layers += [{"Conv": conv_settings(f"{h}.classifier.0", c_mid, 3, source=u.sources[0])},
                 {"conv": {"name": f"{h}.classifier.1", "filters": nc, "kernel": 1}}]
    return nc, f"{h}.classifier.1"


def write_depth(t: Translator, u: _Use) -> Out:
    """Depth(c_mid) (c_mid not scaled): each level a 1×1 Conv to c_mid (proj), then from the coarsest down: resized
    ×2 (bilinear, align_corners), added to the next level's, refined by two 3×3 Conv; the head (a 3×3 Conv to
    c_mid // 2, a 2×2 transposed conv at stride 2, a 3×3 Conv to c_mid // 4, a 1×1 conv to 1), clamped to
    [−4, 5], calibrated by the buffers cal_a and cal_b (exp(cal_a · x + cal_b)): the eval output, at a quarter of
    the input's size."""
    c_mid, h = _int(u.arg(0, 256), "c_mid"), u.name
    if c_mid < 4:
        raise SpecError(f"Depth's c_mid must be 4 or more, got {c_mid}")
    t.use("Conv", {}, conv_block)
    for i, x in enumerate(u.sources):
        t.layers.append({"Conv": conv_settings(f"{h}.proj.{i}", c_mid, 1, source=x)})
    out = f"{h}.proj.{len(u.sources) - 1}"
    for i in range(len(u.sources) - 2, -1, -1):
        t.layers += [{"upsample": {"name": f"{h}.up{i}", "scale": 2, "mode": "bilinear", "align_corners": True,
                                   "function": "F.interpolate", "from": out}},
                     {"add": {"name": f"{h}.sum{i}", "from": [f"{h}.up{i}", f"{h}.proj.{i}"]}},
                     {"Conv": conv_settings(f"{h}.refine.{i}.0", c_mid, 3)},
                     {"Conv": conv_settings(f"{h}.refine.{i}.1", c_mid, 3)}]
        out = f"{h}.refine.{i}.1"
    t.layers += [{"Conv": conv_settings(f"{h}.head.0", c_mid // 2, 3, source=out)},
                 {"deconv": {"name": f"{h}.head.1", "filters": c_mid // 2, "kernel": 2, "stride": 2}},
                 {"Conv": conv_settings(f"{h}.head.2", c_mid // 4, 3)},
                 {"conv": {"name": f"{h}.head.3", "filters": 1, "kernel": 1}},
                 {"hardtanh": {"name": f"{h}.clamp", "min_val": -4.0, "max_val": 5.0, "function": ".clamp"}},
                 {"buffer_affine": {"name": h, "scale": "cal_a", "shift": "cal_b", "function": "operator.mul"}},
                 {"unary": {"name": f"{h}.exp", "op": "exp", "function": "torch.exp"}}]
    return 1, f"{h}.exp"


# YOLO26's heads, in MODULES below
MODULES_26: dict[str, tuple[int, int, Callable]] = {
    "Segment26": (0, 3, write_segment26),
    "OBB26": (0, 2, write_obb26),
    "Pose26": (0, 2, write_pose26),
    "SemanticSegment": (0, 1, write_semantic_segment),
    "Depth": (0, 1, write_depth),
}

# module name -> (fewest args, most args, writer); the args as the YAML gives them (parse_model adds c1)
MODULES: dict[str, tuple[int, int, Callable]] = {
    "Conv": (1, 7, write_conv),
    "DWConv": (1, 5, lambda t, u: write_conv(t, u, depthwise=True)),
    "Bottleneck": (1, 5, write_bottleneck),
    "C2f": (1, 4, write_c2f),
    "C3": (1, 4, write_c3),
    "SPPF": (1, 4, write_sppf),
    "SPP": (1, 2, write_spp),
    "nn.Upsample": (2, 3, write_upsample),
    "Concat": (0, 1, write_concat),
    "nn.MaxPool2d": (1, 3, write_maxpool),
    "nn.ZeroPad2d": (1, 1, write_zeropad),
    "nn.ConvTranspose2d": (1, 4, write_deconv),
    "Detect": (0, 1, write_detect),
    "v10Detect": (0, 1, lambda t, u: write_detect(t, u, light=True)),
    "Segment": (0, 3, write_segment),
    "OBB": (0, 2, lambda t, u: write_detect(t, u, "obb")),
    "Pose": (0, 2, lambda t, u: write_detect(t, u, "pose")),
    "SCDown": (3, 3, write_scdown),
    "PSA": (1, 2, write_psa),
    "C2fCIB": (1, 5, write_c2fcib),
    "A2C2f": (1, 8, write_a2c2f),
    "nn.Identity": (0, 0, write_identity),
    "C2": (1, 4, write_c2),
    "GhostConv": (1, 5, write_ghostconv),
    "C3Ghost": (1, 4, write_c3ghost),
    "CBLinear": (1, 5, write_cblinear),
    "CBFuse": (1, 1, write_cbfuse),
    "C3k2": (1, 6, write_c3k2),
    "C2PSA": (1, 2, write_c2psa),
    "RepNCSPELAN4": (3, 4, lambda t, u: write_elan(t, u, ncsp=True)),
    "ELAN1": (3, 3, lambda t, u: write_elan(t, u, ncsp=False)),
    "AConv": (1, 1, lambda t, u: write_down(t, u, "AConv", aconv_block)),
    "ADown": (1, 1, lambda t, u: write_down(t, u, "ADown", adown_block)),
    "SPPELAN": (2, 3, write_sppelan),
    "Classify": (1, 5, write_classify),
    **MODULES_26,
}

from . import yolo_world  # noqa: E402  (YOLO-World's and YOLOE's modules, given this module's blocks and helpers)

MODULES.update(yolo_world.modules(sys.modules[__name__]))


def _document(source: str) -> tuple[dict, str, str]:
    """(the YAML's mapping, where it was read, the name it was asked by): a path, a name ultralytics ships, or text."""
    if "\n" in source:
        text, filename, asked = source, "<yolo>", "yolo"
    else:
        filename = locate(source)
        asked = source
        text, filename = read_text(filename)
    doc = load_yaml(text, filename)
    if not isinstance(doc, dict) or not isinstance(doc.get("backbone"), list) or not isinstance(doc.get("head"), list):
        raise SpecError("not an Ultralytics model YAML: it needs 'backbone' and 'head' lists of rows",
                        location=Location(filename))
    return doc, filename, asked


# what ultralytics' forward computes with a function or tensor method rather than a module, by kind (the spec's
# ``function``): tools that hook modules (thop, and so model.info()'s GFLOPs) count these as their function rules say
FUNCTIONS = {"matmul": "operator.matmul", "softmax": ".softmax", "sigmoid": ".sigmoid", "concat": "torch.cat",
             "cat": "torch.cat", "chunk": ".chunk", "slice": ".split", "add": "operator.add", "sub": "operator.sub",
             "mul": "operator.mul", "scalar": "operator.mul", "reshape": ".view", "flatten": ".flatten",
             "transpose": ".transpose", "permute": ".permute", "contiguous": ".contiguous", "anchors": "make_anchors",
             "unary": "torch.cos", "stack": "torch.stack", "reduce": "torch.sum", "layer_scale": "operator.mul"}


def _mark_functions(layers: list) -> None:
    """Give each layer that ultralytics computes with a function its ``function`` (nested ``if`` layers too)."""
    for item in layers:
        if "layers" in item:
            _mark_functions(item["layers"])
        if len(item) != 1:  # an if or a repeat of a block
            continue
        (kind, body), = item.items()
        if kind in FUNCTIONS and isinstance(body, dict) and "function" not in body:
            body["function"] = FUNCTIONS[kind]


ACTIVATIONS = {"SiLU": "silu", "ReLU": "relu", "ReLU6": "relu6", "Hardswish": "hardswish", "GELU": "gelu",
               "Sigmoid": "sigmoid", "Tanh": "tanh", "LeakyReLU": "leaky_relu", "Identity": "identity"}
ACTIVATION_RE = re.compile(r"^\s*(?:torch\.)?nn\.(\w+)\(\s*([0-9.eE+-]*)\s*\)\s*$")


def _activation(text: Any, where: Location) -> dict:
    """The YAML's ``activation`` (Conv's default, e.g. ``torch.nn.ReLU()``) as a layer, read without eval: an
    nn activation with no argument, or LeakyReLU's slope."""
    found = ACTIVATION_RE.match(text) if isinstance(text, str) else None
    if found is None or found.group(1) not in ACTIVATIONS:
        raise SpecError(f"activation {text!r} is not read: write nn.NAME() with NAME one of "
                        f"{', '.join(ACTIVATIONS)} (LeakyReLU may give its slope)", location=where)
    kind, arg = ACTIVATIONS[found.group(1)], found.group(2)
    settings: dict[str, Any] = {"name": "act"}
    if arg:
        if kind != "leaky_relu":
            raise SpecError(f"activation {text!r}: only LeakyReLU takes an argument", location=where)
        settings["negative_slope"] = float(arg)
    return {kind: settings}


def from_yolo(source: str | os.PathLike, scale: str | None = None, *, input_shape: tuple | list | None = None,
              name: str | None = None) -> ImportedSpec:
    """The spec of an Ultralytics YOLO model YAML (a path, a name such as ``yolov8n.yaml`` that an installed
    ultralytics ships, or the YAML text), at ``scale`` (default: the letter in the file name, as ultralytics reads
    it, else the YAML's first scale), sized at ``input_shape`` (default 3×640×640)."""
    source = os.fspath(source)
    if source.startswith("ultralytics:"):  # cnnsize report ultralytics:yolov8n.yaml: one that ultralytics ships
        source = Path(source.partition(":")[2]).name
    doc, filename, asked = _document(source)
    scale = scale if scale is not None else guess_scale(asked)
    t = Translator(doc, scale, filename)
    t.in_channels = _int(doc.get("ch", 3), "ch") if input_shape is None else int(input_shape[0])
    rows = list(doc["backbone"]) + list(doc["head"])
    locs = [part.loc_of(k) if isinstance(part, LocList) else Location(filename)
            for part in (doc["backbone"], doc["head"]) for k in range(len(part))]
    for i, (row, loc) in enumerate(zip(rows, locs)):
        t.add_row(_Row(i, row, loc))
    stem = Path(asked).stem if "\n" not in os.fspath(source) else "yolo"
    spec_name = name or (stem if guess_scale(stem) or not t.scale else f"{stem}{t.scale}")
    side = 224 if t.classifies else 640
    shape = list(input_shape) if input_shape is not None else [t.in_channels, side, side]
    if "activation" in doc and "Conv" in t.blocks:
        where = doc.loc_of("activation") if isinstance(doc, LocDict) else Location(filename)
        t.blocks["Conv"]["layers"][-1]["layers"] = [_activation(doc["activation"], where)]
    for layers in (t.layers, *(b["layers"] for b in t.blocks.values())):
        _mark_functions(layers)
    spec = {"name": spec_name, "input": shape, "fit": "floor", "blocks": t.blocks, "layers": t.layers}
    if t.heads:
        _set_strides(t, spec)
    imported = ImportedSpec(spec, checked=analyze_spec(spec))
    head = (f"# {Path(filename).name} at scale {t.scale or '-'}, written by cnnsize.from_yolo as ultralytics' "
            f"parse_model builds it; shapes follow torch's rounding (fit: floor).")
    imported._yaml = head + "\n" + imported.yaml.split("\n", 1)[1]
    return imported


def _set_strides(t: Translator, spec: dict) -> None:
    """The heads' strides as ultralytics learns them: input size / each map's height, at a 256×256 input."""
    probe = analyze_spec({**spec, "input": [spec["input"][0], STRIDE_PROBE, STRIDE_PROBE]})
    rows = {row.name: row for row in probe.layers}
    for settings in t.heads:
        strides = []
        for src in rows[settings["name"]].inputs:  # the block uses' output layers
            h = rows[src].output_shape[1]
            if STRIDE_PROBE % h:
                raise SpecError(f"the head's map '{src}' is {h} high at a {STRIDE_PROBE}-pixel input: no whole stride")
            strides.append(STRIDE_PROBE // h)
        settings["strides"] = strides
