"""A table of records in every report format: the shared renderer of ``compare``, ``sweep`` and the like.

A Grid keeps the raw values (for CSV and JSON) and the text a person reads (for the
table, markdown, LaTeX and HTML) side by side, so every format shows the same figures.
No third-party imports.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import unknown_name
from ..core.plain import Plain
from ..core.safe import json_text
from .boxes import box_table, fit_columns, hidden_line, wrap


class Column(Plain):
    """One column: the record key, its header, and how a value reads (``text``; ``str`` by default).

    ``whole`` (record -> str), when given, reads the whole record (a figure with its ratio, say); ``short`` is the
    header in a narrow table.
    """

    __slots__ = FIELDS = ("key", "header", "right", "text", "whole", "short")

    def __init__(self, key: str, header: str, right: bool = True, text: Any = None, whole: Any = None,
                 short: str | None = None):
        self.key, self.header, self.right, self.text, self.whole, self.short = key, header, right, text, whole, short

    def cell(self, record: dict) -> str:
        if self.whole is not None:
            return self.whole(record)
        value = record.get(self.key)
        if value is None:
            return "–"
        return self.text(value) if self.text is not None else str(value)


class Grid(Plain):
    """Records with display columns; ``raw_keys`` are what CSV and JSON carry (default: every record key)."""

    __slots__ = FIELDS = ("title", "columns", "records", "lines", "raw_keys")

    def __init__(self, title: str, columns: list[Column], records: list[dict], lines: list[str] | None = None,
                 raw_keys: list[str] | None = None):
        self.title, self.columns, self.records, self.raw_keys = title, columns, records, raw_keys
        self.lines: list[str] = [] if lines is None else lines

    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    def cells(self) -> list[list[str]]:
        return [[c.cell(r) for c in self.columns] for r in self.records]

    def right(self) -> set[int]:
        return {i for i, c in enumerate(self.columns) if c.right}

    def keys(self) -> list[str]:
        if self.raw_keys is not None:
            return list(self.raw_keys)
        keys: list[str] = []
        for r in self.records:
            keys += [k for k in r if k not in keys]
        return keys


GRID_FORMATS = ("table", "markdown", "csv", "json", "latex", "html")


def render_grid(grid: Grid, fmt: str, color: bool = False, width: int | None = None) -> str:
    """The grid as text in one of GRID_FORMATS; ``width`` fits the terminal table to that many cells (as the
    report's: numbers in three figures, then columns from the right left out and named under it)."""

    if fmt == "table":

        short = [c.short or c.header for c in grid.columns]
        headers, cells, right, _, hidden = fit_columns(grid.headers(), grid.cells(), grid.right(), width,
                                                       short=short)
        text = box_table(headers, cells, right, title="\n".join(wrap(grid.title, width, indent="")), color=color)
        lines = ([hidden_line(hidden, width)] if hidden else []) + grid.lines
        return text + "".join(part + "\n" for line in lines for part in wrap(line, width))
    if fmt == "markdown":
        out = f"# {grid.title}\n\n" + markdown_table(grid.headers(), grid.cells(), grid.right())
        return out + ("\n" + "".join(f"- {line}\n" for line in grid.lines) if grid.lines else "")
    if fmt == "csv":
        import csv  # here, not at the top: the report's table path never loads csv
        import io

        buf = io.StringIO()
        keys = grid.keys()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(keys)
        for r in grid.records:
            writer.writerow([_csv_value(r.get(k)) for k in keys])
        return buf.getvalue()
    if fmt == "json":
        keys = grid.keys()
        doc = {"title": grid.title, "rows": [{k: _json_value(r.get(k)) for k in keys} for r in grid.records]}

        return json_text(doc)
    if fmt == "latex":
        return latex_table(grid.headers(), grid.cells(), grid.right(), caption=grid.title) + "".join(
            f"% {line}\n" for line in grid.lines)
    if fmt == "html":
        return html_table(grid.headers(), grid.cells(), grid.right(), caption=grid.title, notes=grid.lines)
    raise unknown_name("format", fmt, GRID_FORMATS)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return value


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return str(value)


# -- LaTeX and HTML, shared with the per-layer report -------------------------------------------------------------

_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "×": r"$\times$", "·": r"$\cdot$",
          "−": "$-$", "–": "--", "≥": r"$\geq$", "≡": r"$\equiv$", "…": r"\ldots{}", "→": r"$\rightarrow$"}


def latex_escape(text: str) -> str:
    """Text safe inside a LaTeX tabular (special characters escaped, × and the like as math)."""
    return "".join(_LATEX.get(c, c) for c in text)


def latex_table(headers, cells, right: set[int], *, caption: str = "", footer=None) -> str:
    """A booktabs tabular (``\\usepackage{booktabs}``) in a table float with a caption."""
    spec = "".join("r" if i in right else "l" for i in range(len(headers)))
    lines = ["% needs \\usepackage{booktabs}", "\\begin{table}[htbp]", "\\centering"]
    if caption:
        lines.append(f"\\caption{{{latex_escape(caption)}}}")
    lines += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
              " & ".join(latex_escape(h) for h in headers) + " \\\\", "\\midrule"]
    lines += [" & ".join(latex_escape(c) for c in row) + " \\\\" for row in cells]
    if footer:
        lines += ["\\midrule", " & ".join(f"\\textbf{{{latex_escape(c)}}}" if c else "" for c in footer) + " \\\\"]
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def html_table(headers, cells, right: set[int], *, caption: str = "", footer=None, notes=(),
               highlight: frozenset | set = frozenset()) -> str:
    """A self-contained HTML table (inline styles only, so it renders the same in Jupyter and in a file)."""
    import html

    esc = html.escape

    def row(values, tag="td", style=""):
        tds = "".join(f"<{tag} style=\"text-align:{'right' if i in right else 'left'}\">{esc(v)}</{tag}>"
                      for i, v in enumerate(values))
        return f"<tr{style}>{tds}</tr>"

    out = ["<div class=\"cnnsize\">", "<table>"]
    if caption:
        out.append(f"<caption style=\"font-weight:bold\">{esc(caption)}</caption>")
    out += ["<thead>", row(headers, "th"), "</thead>", "<tbody>"]
    out += [row(values, style=" style=\"background:#fff3c4\"" if i in highlight else "")
            for i, values in enumerate(cells)]
    out.append("</tbody>")
    if footer:
        out += ["<tfoot>", row(footer, "th"), "</tfoot>"]
    out.append("</table>")
    if notes:
        out += ["<ul>"] + [f"<li>{esc(n)}</li>" for n in notes] + ["</ul>"]
    out.append("</div>")
    return "\n".join(out) + "\n"


def markdown_table(headers, cells, right: set[int]) -> str:
    """A GitHub-flavoured markdown table; columns in ``right`` are right-aligned."""
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"
