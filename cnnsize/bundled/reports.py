"""Regenerate reports/<spec>.md and reports/<spec>.svg for every bundled spec: ``python -m cnnsize.bundled.reports``.

Each markdown report shows its plot (memory per layer, receptive field by depth) above the table; a few drawings
(``cnnsize draw``, in every format, and the volume figures) are kept in reports/drawings/ as golden files.
``--check`` writes nothing and exits 1 when a report is stale or missing, so CI and the test suite
can tell when the bundled figures changed. The pictures need matplotlib; without it only the
markdown is written and checked.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..engine.walk import analyze_graph
from ..render.draw_formats import draw_text
from ..render.plot import picture
from ..render.text import markdown
from ..spec.sources import bundled_names, load_graph


def has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def expected_reports(pictures: bool | None = None) -> dict[str, bytes]:
    """Report file name -> the bytes the current code produces for it (``.md``, and ``.svg`` with ``pictures``)."""

    pictures = has_matplotlib() if pictures is None else pictures
    out: dict[str, bytes] = {}
    for name in bundled_names():
        a = analyze_graph(load_graph(name))
        out[f"{name}.md"] = markdown(a, picture=f"{name}.svg").encode("utf-8")
        if pictures:

            out[f"{name}.svg"] = picture(a, "svg")
    return out


# the drawings kept as golden files in reports/drawings/ (cnnsize draw; igraph lays the graphs out)
DRAWINGS = {"lenet5": ("svg", "dot", "mermaid", "tikz"), "resnet18": ("svg", "dot", "mermaid", "tikz"),
            "googlenet": ("svg",)}
VOLUMES = ("lenet5", "alexnet", "vgg16")
EXTENSION = {"svg": "svg", "dot": "dot", "mermaid": "mmd", "tikz": "tex"}


def has_igraph() -> bool:
    import importlib.util

    return importlib.util.find_spec("igraph") is not None


def expected_drawings() -> dict[str, bytes]:
    """drawings/NAME.EXT (the graph) and drawings/NAME.volumes.EXT (the volume figure) -> their bytes."""
    out: dict[str, bytes] = {}
    for name, formats in DRAWINGS.items():
        a = analyze_graph(load_graph(name))
        for fmt in formats:
            out[f"drawings/{name}.{EXTENSION[fmt]}"] = draw_text(a, fmt).encode("utf-8")
    for name in VOLUMES:
        a = analyze_graph(load_graph(name))
        for fmt in ("svg", "tikz"):
            out[f"drawings/{name}.volumes.{EXTENSION[fmt]}"] = draw_text(a, fmt, style="volumes").encode("utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    folder = Path(next((a for a in args if not a.startswith("-")), "reports"))
    folder.mkdir(exist_ok=True)
    stale = []
    expected = expected_reports()
    if has_igraph():
        expected.update(expected_drawings())
    (folder / "drawings").mkdir(exist_ok=True)
    for name, data in expected.items():
        path = folder / name
        if path.exists() and path.read_bytes() == data:
            continue
        stale.append(name)
        if not check:
            path.write_bytes(data)
    kinds = ("*.md", "*.svg") if has_matplotlib() else ("*.md",)
    extra = sorted(p.name for kind in kinds for p in folder.glob(kind)
                   if p.name not in expected and p.name != "README.md")
    if check:
        for name in stale:
            print(f"stale or missing: {folder / name}")
        for name in extra:
            print(f"no bundled spec for: {folder / name}")
        return 1 if stale or extra else 0
    print(f"wrote {len(stale)} of {len(expected)} reports to {folder}/")
    if not has_matplotlib():
        print("matplotlib is not installed: the pictures were not written (pip install 'cnnsize[plot]')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
