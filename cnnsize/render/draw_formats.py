"""A Drawing (cnnsize.render.drawing) written as SVG, a self-contained HTML page, Graphviz DOT, Mermaid or TikZ.

A spec is untrusted: every name reaches each format through that format's own escaping (XML entities, DOT's
quoted strings, Mermaid's entity codes, LaTeX's specials), after control characters are made printable, so no
name can close an element, start a script, end a string or run a TeX command.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from importlib import resources

from ..core.errors import SpecError, unknown_name
from ..core.numeric import is_int
from ..core.safe import printable
from ..core.text import num
from .drawing import MAX_NODES, Drawing, check_options, drawing, heat, value_text
from .volumes import Picture, volumes

EXTENSIONS = {".svg": "svg", ".html": "html", ".htm": "html", ".dot": "dot", ".gv": "dot", ".mmd": "mermaid",
              ".tex": "tikz"}
FONT = "12px monospace"
MARGIN = 20
SIDE = 300  # room on the right for the summary and the legend


def xml(text: object) -> str:
    """Text for an XML element or attribute: printable, then entities (quotes included)."""
    return html.escape(printable(text), quote=True)


def _path(points: list[tuple[float, float]]) -> str:
    return "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _label_at(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Where an edge's label goes: half way down its first stretch, just right of the line."""
    (x0, y0), (x1, y1) = points[0], points[1]
    return (x0 + x1) / 2 + 4, (y0 + y1) / 2 + 4


def row_title(d: Drawing, i: int) -> str:
    """A box's whole row, for a tooltip: every figure the report has for that layer."""
    row = d.nodes[i].row
    parts = [f"{row.name} — {row.type}" + (f" ({row.summary})" if row.summary else "")]
    for key in ("params", "macs", "flops", "activations", "connections", "param_bytes", "activation_bytes"):
        value = getattr(row, key)
        parts.append(f"{key}: {num(value)}")
    for key, value in (row.added or {}).items():
        parts.append(f"{key}: {value}")
    return "\n".join(parts)


def svg(d: Drawing, standalone: bool = True, uid: str = "") -> str:
    """The drawing as one SVG document (the graph, its summary and its colour legend beside it)."""
    width = d.width + 2 * MARGIN + SIDE
    height = max(d.height + 2 * MARGIN, 120 + 16 * (len(d.summary) + len(d.notes)) + 80)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="monospace" font-size="12">'
           if standalone else f'<svg width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} '
           f'{height:.0f}" font-family="monospace" font-size="12">',
           f'<defs><marker id="arrow{uid}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
           f'<g transform="translate({MARGIN},{MARGIN})">', '<g class="edges">']
    for e in d.edges:
        lx, ly = _label_at(e.points)
        out.append(f'<g class="edge" data-from="{xml(d.nodes[e.src].name)}" data-to="{xml(d.nodes[e.dst].name)}">'
                   f'<path d="{_path(e.points)}" fill="none" stroke="#555" stroke-width="1.2" '
                   f'marker-end="url(#arrow{uid})"/><text x="{lx:.1f}" y="{ly:.1f}" font-size="10" fill="#333">'
                   f'{xml(e.label)}</text></g>')
    out.append('</g><g class="nodes">')
    for i, n in enumerate(d.nodes):
        out.append(f'<g class="node" data-layer="{xml(n.name)}" data-index="{i}" '
                   f'transform="translate({n.x:.1f},{n.y:.1f})"><title>{xml(row_title(d, i))}</title>'
                   f'<rect width="{n.w:.1f}" height="{n.h:.1f}" rx="5" fill="{n.fill}" stroke="#333"/>')
        for j, line in enumerate(n.lines):
            weight = ' font-weight="bold"' if j == 0 else ""
            out.append(f'<text x="8" y="{8 + 12 + 15 * j}" fill="{n.ink}"{weight}>{xml(line)}</text>')
        out.append("</g>")
    out.append("</g></g>")
    out.append(_side(d, d.width + 2 * MARGIN + 10))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _side(d: Drawing, x: float) -> str:
    """The summary and the colour legend, right of the graph."""
    out = [f'<g class="summary" transform="translate({x:.0f},{MARGIN})">']
    y = 12
    for j, line in enumerate(d.summary):
        weight = ' font-weight="bold"' if j == 0 else ""
        out.append(f'<text x="0" y="{y}"{weight}>{xml(line)}</text>')
        y += 16
    for note in d.notes:
        out.append(f'<text x="0" y="{y}" fill="#a00">{xml(note[:60])}</text>')
        y += 16
    y += 10
    out.append(f'<text x="0" y="{y}">colour: {xml(d.color)} (log scale)</text>')
    y += 8
    steps = 40
    for s in range(steps):
        out.append(f'<rect x="{s * 5}" y="{y}" width="5" height="14" fill="{heat(s / (steps - 1))[0]}"/>')
    if d.scale is not None:
        lo, hi = d.scale
        out.append(f'<text x="0" y="{y + 28}">{xml(value_text(lo, d.color))}</text>'
                   f'<text x="200" y="{y + 28}" text-anchor="end">{xml(value_text(hi, d.color))}</text>')
    else:
        out.append(f'<text x="0" y="{y + 28}">no layer has a non-zero figure</text>')
    out.append("</g>")
    return "\n".join(out)


def dot_string(text: object) -> str:
    """A DOT quoted string's inside: backslashes and quotes escaped (so no \\N or \\G escape is read)."""
    return printable(text).replace("\\", "\\\\").replace('"', '\\"')


def dot(d: Drawing) -> str:
    """Graphviz DOT: the same boxes, colours and edge labels; Graphviz lays it out itself."""
    out = [f'digraph "{dot_string(d.title)}" {{', "  rankdir=TB;",
           '  node [shape=box, style="rounded,filled", fontname="monospace", fontsize=10];',
           '  edge [fontname="monospace", fontsize=9];']
    for i, n in enumerate(d.nodes):
        label = "\\n".join(dot_string(line) for line in n.lines)
        out.append(f'  n{i} [label="{label}", fillcolor="{n.fill}", fontcolor="{n.ink}", '
                   f'tooltip="{dot_string(n.name)}"];')
    for e in d.edges:
        out.append(f'  n{e.src} -> n{e.dst} [label="{dot_string(e.label)}"];')
    out.append("}")
    return "\n".join(out) + "\n"


_MERMAID_SAFE = re.compile(r"[A-Za-z0-9 .,:()/_+=\-×–]")


def mermaid_text(text: object) -> str:
    """Mermaid label text: every character but plain ones as an entity code (#35; ...), so no quote, bracket,
    pipe or markup ends the label or reaches the page as HTML."""
    return "".join(ch if _MERMAID_SAFE.fullmatch(ch) else f"#{ord(ch)};" for ch in printable(text))


def mermaid(d: Drawing) -> str:
    """A Mermaid flowchart (renders in GitHub, GitLab and most wikis)."""
    out = ["flowchart TB"]
    for i, n in enumerate(d.nodes):
        label = "<br/>".join(mermaid_text(line) for line in n.lines)
        out.append(f'  n{i}["{label}"]')
        out.append(f"  style n{i} fill:{n.fill},color:{n.ink}")
    for e in d.edges:
        out.append(f'  n{e.src} -->|"{mermaid_text(e.label)}"| n{e.dst}')
    return "\n".join(out) + "\n"


_TEX = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "_": r"\_",
        "%": r"\%", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}", "×": r"$\times$", "–": "--",
        "…": r"\ldots{}", "[": "{[}", "]": "{]}", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
        '"': r"{\ttfamily\char34}"}  # \textquotedbl needs T1; the typewriter font has ASCII's quote


def tex(text: object) -> str:
    """LaTeX text: its special characters escaped; other characters beyond ASCII written as [U+XXXX], which every
    engine typesets."""
    out = []
    for ch in printable(text):
        if ch in _TEX:
            out.append(_TEX[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append(f"[U+{ord(ch):04X}]")
    return "".join(out)


def tikz(d: Drawing) -> str:
    """A TikZ picture (\\usepackage{tikz}) at the layout's positions, for slides and papers."""
    out = [f"% {tex(d.title)}: drawn by cnnsize (needs \\usepackage{{tikz}})",
           r"\begin{tikzpicture}[x=0.75pt, y=-0.75pt, every node/.style={font=\ttfamily\scriptsize}]"]
    for i, n in enumerate(d.nodes):
        r, g, b = (int(n.fill[k:k + 2], 16) for k in (1, 3, 5))
        ink = "white" if n.ink == "#ffffff" else "black"
        body = r" \\ ".join(tex(line) for line in n.lines)
        out.append(f"\\node[draw, rounded corners=2pt, align=center, text={ink}, "
                   f"fill={{rgb,255:red,{r};green,{g};blue,{b}}}, minimum width={n.w * 0.75:.1f}pt] (n{i}) "
                   f"at ({n.x + n.w / 2:.1f},{n.y + n.h / 2:.1f}) {{{body}}};")
    for e in d.edges:
        bends = "".join(f" -- ({x:.1f},{y:.1f})" for x, y in e.points[1:-1])
        out.append(f"\\draw[->] (n{e.src}.south){bends} -- (n{e.dst}.north) "
                   f"node[pos=0.1, right, font=\\ttfamily\\tiny] {{{tex(e.label)}}};")
    out.append(r"\end{tikzpicture}")
    return "\n".join(out) + "\n"


STYLE = ("body{font:13px system-ui,sans-serif;margin:12px}#main{display:flex;gap:12px;align-items:flex-start}"
         "#graph{overflow:auto;border:1px solid #ccc;max-height:85vh;flex:3}#side{flex:2;max-height:85vh;"
         "overflow:auto}.node{cursor:pointer}.node.hit rect{stroke:#06c;stroke-width:3}.node.src rect{stroke:#0a0;"
         "stroke-width:3}.node.sel rect{stroke:#000;stroke-width:4}table{border-collapse:collapse}td,th{border:1px "
         "solid #ccc;padding:2px 6px;text-align:right}td:first-child,th:first-child,td:nth-child(2),th:nth-child(2)"
         "{text-align:left}th{cursor:pointer;background:#eee;position:sticky;top:0}tr.sel{background:#ffd}"
         "#info{min-height:3em;margin:6px 0}#levels button.on{font-weight:bold}")


def page(views: list[tuple[int | None, Drawing]], analysis, start: int = 0) -> str:
    """One self-contained HTML page: the drawing at each folding depth (a click on a block unfolds it), a search
    box, the selected layer's figures, inputs and receptive field, and the sortable table of every layer. Its
    script and style are inside it: it fetches nothing and works offline."""
    script = resources.files("cnnsize.render").joinpath("draw_page.js").read_text(encoding="utf-8")
    axes = analysis.label_axes()
    levels = [{"depth": depth, "rows": [_row_cells(n.row, axes) for n in d.nodes],
               "edges": [[e.src, e.dst] for e in d.edges], "rf": [_rf(n.row) for n in d.nodes],
               "folded": [n.row.folded for n in d.nodes]}
              for depth, d in views]
    data = json.dumps({"levels": levels, "start": start, "input": _plain_shape(analysis.input_shape)}, allow_nan=False)
    data = data.replace("</", "<\\/")  # no name can close the script element it sits in
    first = views[start][1]
    buttons = "".join(f'<button data-level="{k}"{" class=on" if k == start else ""}>'
                      f'{"every layer" if depth is None else f"depth {depth}"} ({len(d.nodes)})</button>'
                      for k, (depth, d) in enumerate(views))
    # the first view is in the page; the others wait as text until shown (parsing them all slowed opening)
    graphs = "".join(f'<div class="view" data-level="{k}">{svg(d, standalone=False, uid=str(k))}</div>' if k == start
                     else f'<div class="view" data-level="{k}" hidden></div><script type="text/plain" '
                          f'id="view{k}">{svg(d, standalone=False, uid=str(k))}</script>'
                     for k, (_, d) in enumerate(views))
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{xml(first.title)} — cnnsize</title>", f"<style>{STYLE}</style>",
        "</head><body>", f"<h1>{xml(first.title)}</h1>",
        f'<p><input id="search" type="search" placeholder="find a layer by name" size="30"> <span id="found"></span>'
        f' <span id="levels">{buttons}</span></p>',
        '<div id="main">', f'<div id="graph">{graphs}</div>',
        '<div id="side"><div id="info">Click a box: its figures, its inputs and its receptive field.</div>'
        '<svg id="rf" width="260" height="180"></svg>', _table(analysis), "</div></div>",
        f'<script type="application/json" id="data">{data}</script>',
        f"<script>{script}</script>", "</body></html>"]) + "\n"


def _plain_shape(shape) -> list:
    return [int(v) if is_int(v) else str(v) for v in shape]


def _rf(row) -> dict | None:
    """A box's receptive field as the page draws it (None where the layer sees every position)."""
    rf = row.receptive_field
    if rf is None or not all(is_int(v) or isinstance(v, float) for v in (*rf.size, *rf.stride, *rf.start)):
        return None
    return {"size": [int(v) for v in rf.size], "stride": [int(v) for v in rf.stride],
            "start": [float(v) for v in rf.start], "out": _plain_shape(row.output_shape)}


COLUMNS = ("name", "type", "output", "params", "macs", "activations", "memory")


def _row_cells(row, axes: tuple[str, ...] | None = None) -> list:
    def plain(value):
        return int(value) if is_int(value) else str(value)

    return [row.name, row.type, row.axes_text(axes), plain(row.params), plain(row.macs), plain(row.activations),
            plain(row.param_bytes + row.activation_bytes)]


def _table(analysis) -> str:
    """Every layer's row (the table beside the drawing), whatever the drawing's folding."""
    head = "".join(f"<th>{xml(c)}</th>" for c in COLUMNS)
    body = []
    axes = analysis.label_axes()
    for i, row in enumerate(analysis.layers):
        cells = _row_cells(row, axes)
        tds = "".join(f"<td>{xml(num(c) if isinstance(c, int) else c)}</td>" for c in cells)
        body.append(f'<tr data-layer="{xml(row.name)}" data-index="{i}">{tds}</tr>')
    return f'<table id="layers"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def picture_svg(p: Picture) -> str:
    """A volume figure (cnnsize.render.volumes) as SVG."""
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{p.width:.0f}" height="{p.height:.0f}" '
           f'viewBox="0 0 {p.width:.0f} {p.height:.0f}" font-family="sans-serif" font-size="11">',
           f"<title>{xml(p.title)}</title>"]
    for s in p.shapes:
        if s.kind == "polygon":
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in s.points)
            out.append(f'<polygon points="{points}" fill="{s.fill}" stroke="#333" stroke-width="0.8"/>')
        elif s.kind == "line":
            (x1, y1), (x2, y2) = s.points
            dash = ' stroke-dasharray="4,3"' if s.dashed else ""
            out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#555"{dash}/>')
        else:
            (x, y), = s.points
            weight = ' font-weight="bold"' if s.bold else ""
            out.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{s.anchor}"{weight}>{xml(s.text)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def picture_tikz(p: Picture) -> str:
    """A volume figure as a TikZ picture (\\usepackage{tikz}), for slides and papers."""
    out = [f"% {tex(p.title)}: drawn by cnnsize (needs \\usepackage{{tikz}})",
           r"\begin{tikzpicture}[x=0.75pt, y=-0.75pt, every node/.style={font=\sffamily\scriptsize}]"]
    for s in p.shapes:
        if s.kind == "polygon":
            r, g, b = (int(s.fill[k:k + 2], 16) for k in (1, 3, 5))
            path = " -- ".join(f"({x:.1f},{y:.1f})" for x, y in s.points)
            out.append(f"\\filldraw[fill={{rgb,255:red,{r};green,{g};blue,{b}}}, draw=black!80] {path} -- cycle;")
        elif s.kind == "line":
            (x1, y1), (x2, y2) = s.points
            out.append(f"\\draw[{'dashed, ' if s.dashed else ''}black!70] ({x1:.1f},{y1:.1f}) -- ({x2:.1f},{y2:.1f});")
        else:
            (x, y), = s.points
            text = "\\textbf{" + tex(s.text) + "}" if s.bold else tex(s.text)
            out.append(f"\\node at ({x:.1f},{y:.1f}) {{{text}}};")
    out.append(r"\end{tikzpicture}")
    return "\n".join(out) + "\n"


WRITERS: dict[str, Callable[..., str]] = {"svg": svg, "dot": dot, "mermaid": mermaid, "tikz": tikz}
FORMATS = ("svg", "html", "dot", "mermaid", "tikz")
VOLUME_FORMATS: dict[str, Callable[[Picture], str]] = {"svg": picture_svg, "tikz": picture_tikz}


def format_of(path: object) -> str:
    """The drawing format a file name asks for, by its extension (one line listing them otherwise)."""
    import os

    ext = os.path.splitext(str(path))[1].lower()
    if ext not in EXTENSIONS:
        raise SpecError(f"cannot tell a drawing's format from '{printable(path)}'"
                        + (f" (extension '{printable(ext)}')" if ext else " (no extension)"),
                        hint="name the file " + ", ".join(f"*{e}" for e in EXTENSIONS))
    return EXTENSIONS[ext]


def draw_text(analysis, fmt: str = "svg", color: str = "macs", style: str = "graph", depth: int | None = None) -> str:
    """The analysis drawn in ``fmt`` (one of FORMATS)."""
    if fmt not in FORMATS:
        raise unknown_name("drawing format", fmt, FORMATS)
    if style == "volumes":
        if fmt not in VOLUME_FORMATS:
            raise SpecError(f"--style volumes draws SVG or TikZ, not {fmt}",
                            hint="name the file *.svg or *.tex, or use --style graph")
        check_options(color, style, analysis)
        return VOLUME_FORMATS[fmt](volumes(analysis))
    if fmt == "html":
        views = [(d, drawing(analysis, color=color, style=style, depth=d)) for d in levels(analysis, depth)]
        start = next(k for k, (d, _) in enumerate(views) if d == depth)
        return page(views, analysis, start)
    return WRITERS[fmt](drawing(analysis, color=color, style=style, depth=depth))


def levels(analysis, depth: int | None, most: int = 6) -> list[int | None]:
    """The folding depths the page offers, fewest boxes first: each depth that shows a different number of boxes
    (at most ``most``, the user's --depth always among them), then every layer, if not too many to draw."""
    deepest = max((row.name.count(".") for row in analysis.layers), default=0)
    counts: dict[int, int | None] = {len(analysis.layers): None}
    for d in range(deepest, 0, -1):
        counts.setdefault(len(analysis.collapse(d).layers), d)
    chosen = sorted((n, d) for n, d in counts.items() if n <= MAX_NODES or d == depth)
    out = [d for _, d in chosen][:most]
    if depth not in out:
        out.append(depth)
    return out

