"""The terminal table: box-drawn text, with colours and highlighted rows on a terminal.

Drawn by hand rather than with rich: the report path must start as fast as Python
itself, and a table of strings needs no layout engine.
"""

from __future__ import annotations

import unicodedata

from ..analysis import Analysis
from .text import _extra_right, headers, rows, summary_lines, total_row

BOLD, YELLOW, DIM, RESET = "\033[1m", "\033[1;33m", "\033[2m", "\033[0m"


def _width(text: str) -> int:
    """Terminal cells the text takes: wide East Asian characters take two (most cells are ASCII: one each)."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * (width - _width(text))
    return gap + text if right else text + gap


def box_table(headers, cells, right: set[int], *, title: str = "", footer=None, highlight=frozenset(),
              color: bool = False) -> str:
    """A box-drawn table; ``highlight`` holds row indexes to mark, ``footer`` a totals row."""
    all_rows = [tuple(headers), *cells] + ([tuple(footer)] if footer else [])
    widths = [max(_width(row[i]) for row in all_rows) for i in range(len(headers))]

    def line(left, mid, fill, end):
        return left + mid.join(fill * (w + 2) for w in widths) + end

    def row(values, style=""):
        text = "│" + "│".join(f" {_pad(v, w, i in right)} " for i, (v, w) in enumerate(zip(values, widths))) + "│"
        return f"{style}{text}{RESET}" if style and color else text

    out = [title] if title else []
    out.append(line("┏", "┳", "━", "┓"))
    head = "┃" + "┃".join(f" {_pad(h, w, i in right)} " for i, (h, w) in enumerate(zip(headers, widths))) + "┃"
    out.append(f"{BOLD}{head}{RESET}" if color else head)
    out.append(line("┡", "╇", "━", "┩"))
    out += [row(values, YELLOW if i in highlight else "") for i, values in enumerate(cells)]
    if footer:
        out.append(line("├", "┼", "─", "┤"))
        out.append(row(footer, BOLD))
    out.append(line("└", "┴", "─", "┘"))
    return "\n".join(out) + "\n"


def heaviest(a: Analysis) -> set[str]:
    """The layers holding the most parameters, activations and MACs."""
    from ..numeric import is_int

    named = [r for r in a.layers if r.name != "input"]
    out = set()
    for key in ("params", "activations", "macs"):
        values = [r for r in named if is_int(getattr(r, key))]
        if values:
            top = max(values, key=lambda r: getattr(r, key))
            if getattr(top, key):
                out.add(top.name)
    return out


BAR_WIDTH = 8
_EIGHTHS = "▏▎▍▌▋▊▉"


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A left-aligned bar of unicode eighth blocks, ``fraction`` (0..1) of ``width`` cells long, padded to width."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (_EIGHTHS[part - 1] if part else "")
    if not text and fraction > 0:
        text = "▏"  # visible, however small
    return text + " " * (width - len(text))


def share_cells(a: Analysis, key: str) -> list[str] | None:
    """Per row: a bar scaled to the largest layer and the layer's share of the total, e.g. '████▍    42%'.

    None when a figure is a formula (no share to draw).
    """
    from ..numeric import is_int

    values = [getattr(r, key) for r in a.layers]
    if not all(is_int(v) for v in values):
        return None
    total, top = sum(values), max(values, default=0)
    if not top:
        return [bar(0) + "   0%" for _ in values]
    return [f"{bar(v / top)} {round(100 * v / total):>3}%" for v in values]


def table_text(a: Analysis, color: bool = False) -> str:
    """The report table and its summary lines; bars show each layer's share of activation memory and parameters."""
    marked = heaviest(a)
    highlight = {i for i, r in enumerate(a.layers) if r.name in marked}
    heads, cells, footer = list(headers(a)), [list(r) for r in rows(a)], list(total_row(a))
    for header, key in (("Act. memory", "activation_bytes"), ("Params share", "params")):
        shares = share_cells(a, key)
        if shares is not None:
            heads.append(header)
            footer.append("")
            for row, cell in zip(cells, shares):
                row.append(cell)
    text = box_table(heads, cells, set(range(3, 8)) | _extra_right(a), title=a.name, footer=footer, highlight=highlight,
                     color=color)
    lines = summary_lines(a)
    if marked:
        lines.append(f"Heaviest layers{' (highlighted)' if color else ''}: {', '.join(sorted(marked))} "
                     "(most parameters, activations and MACs).")
    lines += ["Note: " + " ".join(note.split()) for note in a.notes]
    return text + "\n".join(lines) + "\n"
