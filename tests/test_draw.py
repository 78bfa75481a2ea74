"""`cnnsize draw` and cnnsize.draw: every bundled spec in every format, the geometry read back from the SVG
itself (no two boxes overlap, every edge joins the boxes of a real producer and reader), the figures in the page
equal to the JSON report's, each format's escaping against hostile names, and bad options in one line."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

import cnnsize
from cnnsize.core.errors import CnnsizeError
from cnnsize.core.safe import printable
from cnnsize.render.drawing import drawing
from cnnsize.spec.sources import bundled_names

from .conftest import ROOT, representative, run_cli

SVG = "{http://www.w3.org/2000/svg}"
TRANSLATE = re.compile(r"translate\(([-\d.]+),([-\d.]+)\)")


def boxes_of(svg_text: str) -> dict[str, tuple[float, float, float, float]]:
    """Each node's box (left, top, right, bottom) as the SVG places it, by its data-layer name."""
    root = ET.fromstring(svg_text)
    graph = root.find(f"{SVG}g")
    ox, oy = map(float, TRANSLATE.match(graph.get("transform")).groups())
    out = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") != "node":
            continue
        x, y = map(float, TRANSLATE.match(g.get("transform")).groups())
        rect = g.find(f"{SVG}rect")
        w, h = float(rect.get("width")), float(rect.get("height"))
        assert g.get("data-layer") not in out
        out[g.get("data-layer")] = (ox + x, oy + y, ox + x + w, oy + y + h)
    return out


def edges_of(svg_text: str) -> list[tuple[str, str, list[tuple[float, float]]]]:
    root = ET.fromstring(svg_text)
    graph = root.find(f"{SVG}g")
    ox, oy = map(float, TRANSLATE.match(graph.get("transform")).groups())
    out = []
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == "edge":
            d = g.find(f"{SVG}path").get("d")
            points = [(ox + float(x), oy + float(y)) for x, y in re.findall(r"([-\d.]+),([-\d.]+)", d)]
            out.append((g.get("data-from"), g.get("data-to"), points))
    return out


def crosses(p, q, box) -> bool:
    """Whether the segment p-q enters the inside of box (left, top, right, bottom): Liang-Barsky clipping."""
    (x0, y0), (x1, y1) = p, q
    left, top, right, bottom = box[0] + 0.5, box[1] + 0.5, box[2] - 0.5, box[3] - 0.5
    dx, dy = x1 - x0, y1 - y0
    lo, hi = 0.0, 1.0
    for step, room in ((-dx, x0 - left), (dx, right - x0), (-dy, y0 - top), (dy, bottom - y0)):
        if step == 0:
            if room < 0:
                return False
            continue
        t = room / step
        if step < 0:
            lo = max(lo, t)
        else:
            hi = min(hi, t)
    return lo < hi


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def check_geometry(svg_text: str, analysis, expected: set | None = None) -> None:
    """From the SVG alone: one box per layer, inside the picture, none overlapping; each edge leaves its producer's
    bottom and enters its reader's top, and the edges are exactly the spec's producer -> reader pairs."""
    root = ET.fromstring(svg_text)
    width, height = float(root.get("width")), float(root.get("height"))
    boxes = boxes_of(svg_text)
    assert list(boxes) == [printable(r.name) for r in analysis.layers]
    items = sorted(boxes.values())
    for i, a in enumerate(items):
        assert 0 <= a[0] and a[2] <= width and 0 <= a[1] and a[3] <= height, a
        for b in items[i + 1:]:
            if b[0] >= a[2]:
                break
            assert not overlap(a, b), (a, b)
    if expected is None:
        expected = {(src, row.name) for row in analysis.layers for src in row.inputs}
    drawn = edges_of(svg_text)
    assert {(s, t) for s, t, _ in drawn} == {(printable(s), printable(t)) for s, t in expected}
    for src, dst, points in drawn:
        (x0, y0), (x1, y1) = points[0], points[-1]
        a, b = boxes[src], boxes[dst]
        assert a[0] <= x0 <= a[2] and abs(y0 - a[3]) < 0.2, (src, points[0], a)
        assert b[0] <= x1 <= b[2] and abs(y1 - b[1]) < 0.2, (dst, points[-1], b)
        assert all(later[1] >= earlier[1] for earlier, later in zip(points, points[1:]))  # always downwards
        for p, q in zip(points, points[1:]):  # never across another box
            for name, box in boxes.items():
                if name not in (src, dst) and box[1] < max(p[1], q[1]) and min(p[1], q[1]) < box[3]:
                    assert not crosses(p, q, box), (src, dst, name)


def page_data(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    return json.loads(found.group(1).replace("<\\/", "</"))


def page_rows(page: str) -> list[list]:
    """The rows of the page's view of every layer."""
    return next(level["rows"] for level in page_data(page)["levels"] if level["depth"] is None)


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.texts.append(data)


@pytest.mark.parametrize("name", representative(bundled_names(), {"lenet5", "resnet18", "googlenet", "densenet121",
                                                                    "swin_t", "inception_v3", "vit_b_16"}))
def test_every_bundled_spec_draws_in_every_format(name):
    analysis = cnnsize.analyze(name)
    svg = analysis.draw("svg")
    check_geometry(svg, analysis)
    report = {row["name"]: row for row in json.loads(analysis.to_json())["layers"]}
    rows = page_rows(analysis.draw("html"))
    assert [r[0] for r in rows] == list(report)
    for cells in rows:  # every layer's figures in the page are the JSON report's
        assert cells[3:6] == [report[cells[0]][k] for k in ("params", "macs", "activations")]
    assert analysis.draw("dot").startswith("digraph ")
    assert analysis.draw("mermaid").startswith("flowchart TB")
    tikz = analysis.draw("tikz")
    assert tikz.count(r"\node[") == len(analysis.layers)
    assert tikz.count("{") == tikz.count("}") + tikz.count(r"\{") - tikz.count(r"\}")


def test_the_drawing_is_the_same_every_time_and_folds_by_depth():
    analysis = cnnsize.analyze("resnet18")
    assert analysis.draw("svg") == cnnsize.analyze("resnet18").draw("svg")
    folded = analysis.collapse(1)
    svg = analysis.draw("svg", depth=1)

    def block(name):
        return name.split(".")[0]

    pairs = {(block(src), block(row.name)) for row in analysis.layers for src in row.inputs}
    check_geometry(svg, folded, {(s, t) for s, t in pairs if s != t})
    assert len(boxes_of(svg)) == len(folded.layers) < len(analysis.layers)


def test_a_spec_too_large_to_draw_box_by_box_folds_with_a_note():
    spec = {"input": [4, 8, 8], "layers": [{"relu": {}} for _ in range(400)]}
    analysis = cnnsize.analyze(spec)
    d = drawing(analysis, limit=50)
    assert len(d.nodes) <= 50 and "too many to draw one by one" in d.notes[0]
    assert sum(n.row.folded for n in d.nodes) == len(analysis.layers)
    assert sum(n.row.activations for n in d.nodes) == analysis.totals["activations"]
    blocks = {"input": [4, 8, 8], "blocks": {"b": {"layers": [{"conv": {"filters": 4, "kernel": 1}}, {"relu": {}}]}},
              "layers": [{"repeat": 60, "name": "stage", "block": "b"}]}
    nested = cnnsize.analyze(blocks)
    d = drawing(nested, limit=100)
    assert len(d.nodes) <= 100 and "folded to depth" in d.notes[0]
    assert sum(n.row.macs for n in d.nodes) == nested.totals["macs"]


def test_colours_follow_the_figure_on_a_log_scale():
    analysis = cnnsize.analyze("lenet5")
    for color in ("macs", "params", "activations", "memory"):
        d = drawing(analysis, color=color)
        values = [n.value for n in d.nodes if n.value]
        assert d.scale == (min(values), max(values))
        darkest = max(d.nodes, key=lambda n: n.value or 0)
        assert darkest.fill == "#800026"  # the palette's last colour for the largest figure
        assert all(n.fill == "#f2f2f2" for n in d.nodes if not n.value)
    with pytest.raises(CnnsizeError, match="needs a predicted time"):
        drawing(analysis, color="time")
    timed = cnnsize.analyze("lenet5", device_profile="a100")
    d = drawing(timed, color="time")
    assert [n.value for n in d.nodes[1:]] == [r.predicted_seconds for r in timed.layers[1:]]


HOSTILE = ['a"b\\N\\G$%#&_^~</text><script>alert(1)</script>|]-->', "end", "c\nd \u202e é 漢 [x]",
           "\x1b]0;title\x07\x1b[2J", "graph {", "%\\\\ \\end tikzpicture} {"]


def hostile_spec() -> dict:
    layers = [{"conv": {"filters": 4, "kernel": 3, "pad": 1, "name": HOSTILE[0]}}]
    layers += [{"relu": {"name": n}} for n in HOSTILE[1:]]
    return {"name": "net</title><script>alert(2)</script>", "input": [3, 8, 8], "layers": layers}


def dot_strings(text: str) -> list[list[str]]:
    """Every quoted string of a DOT file as Graphviz reads it: its lines (split at the escape \\n), each with
    \\" and \\\\ unescaped."""
    out = []
    for raw in re.findall(r'"((?:[^"\\]|\\.)*)"', text):
        lines = [""]
        for token in re.findall(r"\\.|[^\\]", raw):
            if token == "\\n":
                lines.append("")
            else:
                lines[-1] += token[1] if token in ('\\"', "\\\\") else token
        out.append(lines)
    return out


def test_hostile_names_are_escaped_in_every_format():
    analysis = cnnsize.analyze(hostile_spec())
    shown = [printable(n) for n in HOSTILE]
    svg = analysis.draw("svg")
    root = ET.fromstring(svg)  # well-formed XML: no name closed an element
    firsts = [g.find(f"{SVG}text").text for g in root.iter(f"{SVG}g") if g.get("class") == "node"]
    assert firsts[1:] == [s[:59] + "…" if len(s) > 60 else s for s in shown]
    assert not any(e.tag == f"{SVG}script" for e in root.iter())
    page = analysis.draw("html")
    tags = Tags()
    tags.feed(page)
    assert tags.tags.count("script") == 2  # the page's data and its own script: no name added one
    assert "\x1b" not in page and "\x1b" not in svg
    labels = [lines[0] for lines in dot_strings(analysis.draw("dot")) if len(lines) > 1]
    assert labels[1:] == shown  # each label's first line is the name, whole, nothing leaked out of its string
    mermaid = analysis.draw("mermaid")
    for line in mermaid.splitlines()[1:]:
        inside = re.findall(r'"([^"]*)"', line)
        assert all(not set(s) & set('[]{}|<>"') - {"<", ">"} for s in inside)
    names = [re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), re.match(r'\s*n\d+\["([^"]*)"\]', line).group(1)
                    ).split("<br/>")[0] for line in mermaid.splitlines() if re.match(r"\s*n\d+\[", line)]
    assert names[1:] == shown
    tikz = analysis.draw("tikz")
    assert "\x1b" not in tikz and r"\end{tikzpicture}" == tikz.strip().splitlines()[-1]
    assert tikz.count(r"\end{tikzpicture}") == 1 and tikz.count(r"\begin{tikzpicture}") == 1


def test_a_later_import_of_igraph_works_and_lays_out_the_same():
    """cnnsize loads igraph's C core alone (import igraph pulls in matplotlib's pyplot); igraph imported after it
    must work, and its documented layout_sugiyama must give the very same layout."""
    code = """
import cnnsize
from cnnsize.render.drawing import sugiyama
pairs = [(0, 1), (1, 2), (2, 3), (0, 3), (1, 4), (4, 3), (0, 5), (5, 6), (6, 3)]
fast = sugiyama(7, pairs)
import sys
assert "matplotlib.pyplot" not in sys.modules
import igraph
layout = igraph.Graph(n=7, edges=pairs, directed=True).layout_sugiyama(maxiter=100)
assert fast == ([tuple(c) for c in layout.coords[:7]], [list(r) for r in layout.edge_routing]), fast
print("same")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "same", out.stderr


@pytest.mark.parametrize("args, message", [
    (["-o", "x.png"], "cannot tell a drawing's format from 'x.png'"),
    (["-o", "x"], "(no extension)"),
    (["-o", "x.svg", "--color", "mac"], "unknown colour 'mac'"),
    (["-o", "x.svg", "--color", "time"], "--color time needs a predicted time per layer"),
    (["-o", "x.svg", "--style", "volume"], "unknown style 'volume'"),
    (["-o", "x.svg", "--depth", "0"], "depth must be a positive integer"),
])
def test_bad_options_end_in_one_line(tmp_path, args, message):
    out = run_cli("draw", "lenet5", *args, cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_kept_whole_on_an_error(tmp_path):
    target = tmp_path / "net.svg"
    target.write_text("old")
    assert run_cli("draw", "lenet5", "-o", str(target), "--color", "nope").returncode == 2
    assert target.read_text() == "old"
    assert run_cli("draw", "lenet5", "-o", str(target)).returncode == 0
    check_geometry(target.read_text(), cnnsize.analyze("lenet5"))


def test_without_igraph_one_line_says_how_to_install_it(tmp_path):
    code = ("import sys; sys.modules['igraph'] = None; from cnnsize.cli import main; "
            "sys.argv = ['cnnsize', 'draw', 'lenet5', '-o', 'x.svg']; main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 2 and "pip install 'cnnsize[draw]'" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_python_draw_writes_the_format_its_extension_names(tmp_path):
    for ext, start in ((".svg", "<svg"), (".html", "<!DOCTYPE html>"), (".dot", "digraph"), (".mmd", "flowchart"),
                       (".tex", "% ")):
        text = cnnsize.draw("vgg11", tmp_path / f"net{ext}")
        assert text.startswith(start) and (tmp_path / f"net{ext}").read_text() == text
    assert cnnsize.draw("vgg11", fmt="dot") == (tmp_path / "net.dot").read_text()
    assert html.unescape("&lt;") == "<"


@pytest.mark.slow
@pytest.mark.parametrize("name", bundled_names())
def test_graphviz_reads_every_dot_file(tmp_path, name):
    """Graphviz's own dot parses and lays out each DOT file (.ci/run installs Debian's graphviz)."""
    path = tmp_path / "net.dot"
    cnnsize.draw(name, path)
    out = subprocess.run(["dot", "-Tsvg", str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "<svg" in out.stdout, out.stderr
    assert out.stdout.count('class="node"') == len(cnnsize.analyze(name).layers)


@pytest.mark.slow
def test_graphviz_reads_hostile_names(tmp_path):
    path = tmp_path / "net.dot"
    cnnsize.draw(hostile_spec(), path)
    out = subprocess.run(["dot", "-Tsvg", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    titles = re.findall(r"<title>(.*?)</title>", out.stdout)
    assert len(titles) == 1 + len(HOSTILE) + 1 + len(HOSTILE)  # the graph, the nodes, the edges


def _pair(value) -> list[int]:
    return list(value) if isinstance(value, (list, tuple)) else [value, value]


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "vgg16", "zfnet"])
def test_volumes_show_each_shape_and_the_windows_the_spec_sets(name):
    """The lecture's figures: a box per change of shape with its true size written under it, and on each box the
    window of the layer that slides over it, equal to that layer's kernel and stride in the spec."""
    from cnnsize.render.volumes import volumes, volumes_of

    analysis = cnnsize.analyze(name)
    nodes = {n.name: n for n in cnnsize.load(name).nodes}
    picture = volumes(analysis)
    texts = [s.text for s in picture.shapes if s.kind == "text"]
    boxes = volumes_of(analysis.layers)
    assert len(boxes) == len([s for s in picture.shapes if s.kind == "polygon" and s.fill == "#dbe8f6"])
    for box in boxes:  # each box's layer and its output shape, as the report gives them
        assert box.rows[0].name in texts and "×".join(map(str, box.shape)) in texts
    windows = [t for t in texts if re.fullmatch(r"\d+×\d+( /\d+×\d+)?", t)]
    expected = []
    for nxt in boxes[1:]:
        kind = nodes[nxt.rows[0].name].kind
        kernel = getattr(kind, "kernel", None)
        if kernel is None or len(nxt.shape) < 3:
            continue
        stride = _pair(getattr(kind, "stride", None) or kernel)  # a pool's stride defaults to its kernel
        label = "×".join(map(str, _pair(kernel)))
        expected.append(label + (f" /{'×'.join(map(str, stride))}" if max(stride) > 1 else ""))
    assert windows == expected
    heights = [(b.shape[-2], b.face[1]) for b in boxes if len(b.shape) == 3]
    assert all((h1 < h2) == (f1 < f2) for (h1, f1), (h2, f2) in zip(heights, heights[1:]))  # faces follow H
    tikz = cnnsize.draw(name, fmt="tikz", style="volumes")
    assert tikz.count(r"\filldraw") == sum(s.kind == "polygon" for s in picture.shapes)


def test_volumes_are_svg_or_tikz_only():
    with pytest.raises(CnnsizeError, match="--style volumes draws SVG or TikZ"):
        cnnsize.draw("lenet5", fmt="dot", style="volumes")
    svg = cnnsize.draw("resnet18", fmt="svg", style="volumes")
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert ["layer1", "layer2", "layer3", "layer4"] == [t for t in texts if t and t.startswith("layer")]


def test_report_html_draws_the_network_above_the_table(tmp_path):
    out = run_cli("report", "lenet5", "-f", "html")
    assert out.returncode == 0 and out.stdout.index("<svg") < out.stdout.index("<table")
    check_geometry(out.stdout[out.stdout.index("<svg"):out.stdout.index("</svg>") + 6], cnnsize.analyze("lenet5"))
    code = ("import sys; sys.modules['igraph'] = None; from cnnsize.cli import main; "
            "sys.argv = ['cnnsize', 'report', 'lenet5', '-f', 'html']; main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and "pip install 'cnnsize[draw]'" in out.stdout and "<table" in out.stdout
    notebook = cnnsize.analyze("lenet5")._repr_html_()  # Jupyter's display
    assert notebook.index("<svg") < notebook.index("<table")


def test_the_golden_drawings_are_fresh():
    """reports/drawings/: a few drawings in every format and the volume figures, byte for byte what the code draws
    (regenerate with python -m cnnsize.bundled.reports; look at them when they change)."""
    from cnnsize.bundled.reports import expected_drawings

    expected = expected_drawings()
    folder = ROOT / "reports"
    stale = [name for name, data in expected.items() if not (folder / name).exists()
             or (folder / name).read_bytes() != data]
    assert not stale, f"stale drawings {stale}: run `python -m cnnsize.bundled.reports`"
    kept = {f"drawings/{p.name}" for p in (folder / "drawings").iterdir()}
    assert kept == set(expected), kept ^ set(expected)


@pytest.mark.slow
def test_graphviz_reads_the_golden_dot_files():
    for path in (ROOT / "reports" / "drawings").glob("*.dot"):
        out = subprocess.run(["dot", "-Tsvg", str(path)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and out.stderr == "", (path, out.stderr)


LATEX_DOCUMENT = "\\documentclass{article}\n\\usepackage{tikz}\n\\begin{document}\n\\input{%s}\n\\end{document}\n"


def compile_tikz(tmp_path, tikz_text: str) -> str:
    """LaTeX's own pdflatex compiles the picture inside a document (.ci/run installs Debian's texlive); its log."""
    (tmp_path / "picture.tex").write_text(tikz_text, encoding="utf-8")
    (tmp_path / "doc.tex").write_text(LATEX_DOCUMENT % "picture.tex", encoding="utf-8")
    out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    log = (tmp_path / "doc.log").read_text(encoding="latin-1")
    assert out.returncode == 0 and (tmp_path / "doc.pdf").stat().st_size > 0, log[-2000:]
    assert "Missing character" not in log, log
    return log


@pytest.mark.slow
def test_latex_compiles_the_golden_tikz_pictures(tmp_path):
    paths = sorted((ROOT / "reports" / "drawings").glob("*.tex"))
    assert len(paths) >= 5
    for path in paths:
        compile_tikz(tmp_path, path.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_latex_compiles_hostile_names_and_prints_them(tmp_path):
    """Every special character of TeX escaped: the document compiles and the PDF's text holds each name."""
    compile_tikz(tmp_path, cnnsize.draw(hostile_spec(), fmt="tikz"))
    text = subprocess.run(["pdftotext", str(tmp_path / "doc.pdf"), "-"], capture_output=True, text=True,
                          timeout=60).stdout  # poppler-utils, installed by .ci/run
    flat = text.replace(" ", "").replace("\n", "")
    # \_ is a rule drawn, not a glyph: pdftotext shows it as a space
    for name in ('a"b\\N\\G$%#&^~', "</text><script>alert(1)</script>|]-->", "\\endtikzpicture}{", "graph{",
                 "[x]"):
        assert name in flat, (name, text)
    compile_tikz(tmp_path, cnnsize.draw(hostile_spec(), fmt="tikz", style="volumes"))


@pytest.mark.slow
def test_librsvg_renders_the_golden_svgs_and_hostile_names(tmp_path):
    """librsvg (GNOME's SVG renderer, Debian's librsvg2-bin) draws each SVG without an error or a warning."""
    paths = sorted((ROOT / "reports" / "drawings").glob("*.svg"))
    hostile = tmp_path / "hostile.svg"
    cnnsize.draw(hostile_spec(), hostile)
    for path in [*paths, hostile]:
        out = subprocess.run(["rsvg-convert", "-o", str(tmp_path / "out.png"), str(path)], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0 and out.stderr == "", (path, out.stderr)
        assert (tmp_path / "out.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.parametrize("name", bundled_names())
def test_every_bundled_page_stays_under_two_megabytes(name):
    page = cnnsize.analyze(name).draw("html")
    assert len(page.encode()) < 2_000_000
    assert not set(re.findall(r"https?://[^\s\"'<>]+", page)) - {"http://www.w3.org/2000/svg"}  # nothing fetched
