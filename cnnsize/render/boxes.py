"""Box-drawn terminal tables, fitted to a width: the writer the report's table and every Grid share.

Drawn by hand rather than with rich: the report path must start as fast as Python itself, and a table of
strings needs no layout engine.
"""

from __future__ import annotations

import os
import sys
import unicodedata

from ..core.text import short_count

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


def _elide(text: str, width: int) -> str:
    """Text shortened to ``width`` cells with an ellipsis in the middle (both ends of a dotted name stay)."""
    if _width(text) <= width:
        return text
    keep = max(width - 1, 1)
    head = max(keep // 3, 1)  # more of the end, where a dotted name says which layer it is
    tail = keep - head
    out = text[:head] + "…" + (text[-tail:] if tail else "")
    while _width(out) > width and head > 1:  # wide characters: trim until it fits
        head -= 1
        out = text[:head] + "…" + (text[-tail:] if tail else "")
    return out


def _table_width(cols: list[list[str]]) -> int:
    return sum(max(map(_width, col)) + 3 for col in cols) + 1


def wrap(line: str, width: int | None, indent: str = "  ") -> list[str]:
    """A summary line wrapped to ``width`` cells (continuations indented); unchanged without a width."""
    if width is None or _width(line) <= width:
        return [line]
    import textwrap

    return textwrap.wrap(line, width=max(width, 20), subsequent_indent=indent, break_long_words=True,
                         break_on_hyphens=False) or [""]


_GROUPED = None  # compiled on first use: digits with thousands separators (1,234,567)


def compact_cell(text: str) -> str:
    """Every number written with thousands separators in a cell, in three figures: '138,357,544 (5.41×)' ->
    '138M (5.41×)', '+4,089,184,256' -> '+4.09G'."""
    global _GROUPED
    if "," not in text:
        return text
    if _GROUPED is None:
        import re

        _GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+")
    return _GROUPED.sub(lambda m: short_count(int(m.group().replace(",", ""))), text)


def fit_columns(headers: list[str], cells: list[list[str]], right: set[int], width: int | None, *,
                footer: list[str] | None = None, short: list[str] | None = None, compact: bool = True,
                keep: frozenset[int] = frozenset({0}), groups: list[list[int]] | None = None):
    """A table of several columns fitted to ``width`` terminal cells, as the report's is: first ``short``
    headers and (``compact``) numbers in three figures, then columns left out from the right (never those in
    ``keep``; a column of ``groups`` with the rest of its group), then the first column's text shortened in the
    middle. Returns (headers, cells, right, footer, hidden): ``hidden`` names what was left out, by full header.
    """
    rows = [list(headers), *map(list, cells)] + ([list(footer)] if footer else [])

    def size() -> int:
        return _table_width([[row[i] for row in rows] for i in range(len(rows[0]))]) if rows[0] else 1

    if width is None or size() <= width:
        return headers, cells, right, footer, []
    names = list(headers)
    rows[0] = list(short or headers)
    if compact:
        rows[1:] = [[compact_cell(c) for c in row] for row in rows[1:]]
    alive = list(range(len(headers)))
    hidden: list[str] = []
    for col in reversed(range(len(headers))):
        if size() <= width:
            break
        if col in keep or col not in alive:
            continue
        group = next((g for g in groups or () if col in g), [col])
        hidden.insert(0, names[group[0]])  # a group by its first column's name
        for i in sorted((alive.index(c) for c in group if c in alive), reverse=True):
            del alive[i]
            for row in rows:
                del row[i]
    if size() > width and alive and alive[0] == 0:  # the names: shortened in the middle
        longest = max(_width(row[0]) for row in rows)
        target = max(3, longest - (size() - width), _width(rows[0][0]))
        rows = [[_elide(row[0], target), *row[1:]] for row in rows]
    new_right = {i for i, c in enumerate(alive) if c in right}
    return rows[0], rows[1:len(cells) + 1], new_right, (rows[-1] if footer else None), hidden


def hidden_line(hidden: list[str], width: int | None, picks: bool = False) -> str:
    """The columns a narrow table left out and the options that show them (``picks``: the command has --columns)."""
    return (f"Hidden at {width} columns: {', '.join(hidden)} (--wide or a larger --width shows them"
            + ("; --columns picks which)." if picks else ")."))


def terminal_width() -> int | None:
    """The width to fit the table to on a terminal: COLUMNS when set (as shutil reads it), else the terminal's.

    None (no limit) when standard output is not a terminal: a pipe or a file gets the full table, as scripts
    expect (``--width`` fits it anyway).
    """
    if not sys.stdout.isatty():
        return None
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns or None
    except (OSError, ValueError):
        return None
