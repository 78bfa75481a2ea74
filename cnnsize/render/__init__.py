"""Renderers: an Analysis as a terminal table, markdown, CSV, JSON, LaTeX or HTML.

Importing this package registers the formats as the analysis' views (cnnsize.engine.result.VIEWS), which
``Analysis.to_markdown()``, ``print(analysis)`` and the like read: the result itself never imports a renderer.
"""

from __future__ import annotations

from ..core.errors import unknown_name
from ..core.safe import printable_analysis
from ..engine.result import VIEWS
from . import boxes, text
from .table import table_text

FORMATS = ("table", "markdown", "csv", "json", "latex", "html")


def render(analysis, fmt: str, color: bool = False, width: int | None = None,
           columns: tuple[str, ...] | None = None) -> str:
    """The analysis in one of FORMATS, as text; ``color`` adds terminal colours to the table.

    ``width`` fits the table to that many terminal cells and ``columns`` picks its columns (see table_text).
    """
    if fmt not in FORMATS:
        raise unknown_name("format", fmt, FORMATS)
    if fmt not in ("json", "csv"):  # text for people: control characters escaped (machine formats keep them)
        analysis = printable_analysis(analysis)
    if fmt == "table":
        return table_text(analysis, color=color, width=width, columns=columns)
    return WRITERS[fmt](analysis)


WRITERS = {"markdown": text.markdown, "csv": text.csv_text, "json": text.to_json, "latex": text.latex,
           "html": text.html}
VIEWS.update(WRITERS)
VIEWS["terminal"] = lambda analysis: render(analysis, "table", width=boxes.terminal_width())
