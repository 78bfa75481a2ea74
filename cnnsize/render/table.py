"""The terminal table: box-drawn text, with colours and highlighted rows on a terminal.

Drawn by hand rather than with rich: the report path must start as fast as Python
itself, and a table of strings needs no layout engine.
"""

from __future__ import annotations

import os
import sys
import unicodedata

from ..engine.result import Analysis
from .text import summary_lines

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
    from ..core.numeric import is_int

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
    from ..core.numeric import is_int

    values = [getattr(r, key) for r in a.layers]
    if not all(is_int(v) for v in values):
        return None
    total, top = sum(values), max(values, default=0)
    if not top:
        return [bar(0) + "   0%" for _ in values]
    return [f"{bar(v / top)} {round(100 * v / total):>3}%" for v in values]


# The report's columns: key -> (header, short header). Listed in the order they show; PRIORITY says which stay
# when the terminal is narrow.
COLUMNS = {"name": ("Layer", "Layer"), "type": ("Type", "Type"), "output": ("Output", "Output"),
           "weights": ("Weights", "Wts"), "biases": ("Biases", "Bias"), "params": ("Params", "Params"),
           "buffers": ("Buffers", "Bufs"), "activations": ("Activations", "Acts"),
           "connections": ("Connections", "Conns"), "macs": ("MACs", "MACs"), "flops": ("FLOPs", "FLOPs"),
           "rf": ("Receptive field", "RF"), "memory": ("Act. memory", "Act.%"), "share": ("Params share", "Par.%")}
DEFAULT_COLUMNS = ("name", "type", "output", "weights", "params", "activations", "connections", "macs", "rf",
                   "memory", "share")
PRIORITY = ("name", "type", "output", "params", "macs", "activations", "weights", "connections", "rf", "memory",
            "share", "biases", "buffers", "flops")
ESSENTIAL = 5  # the first PRIORITY columns kept while names can still be shortened
MIN_NAME = 16  # a layer name is shortened to no fewer cells than this before essential columns go
_COUNTS = ("weights", "biases", "params", "buffers", "connections", "macs", "flops")


MAX_COLUMN_NAMES = 4 * len(COLUMNS)  # --columns may repeat a name, but not without end (each costs a column's cells)


def parse_columns(text: str) -> tuple[str, ...]:
    """'name,output,params' -> ('name', 'output', 'params'), each once; an unknown name lists the valid ones."""
    from ..core.errors import SpecError, unknown_name

    parts = text.split(",", MAX_COLUMN_NAMES)
    if len(parts) > MAX_COLUMN_NAMES:
        raise SpecError(f"--columns names more than {MAX_COLUMN_NAMES} columns; the table has {len(COLUMNS)}",
                        hint="name each once, of: " + ", ".join(COLUMNS))
    chosen = tuple(dict.fromkeys(part.strip() for part in parts if part.strip()))
    if not chosen:
        raise SpecError("--columns names no column", hint="e.g. --columns " + ",".join(PRIORITY[:5]))
    for key in chosen:
        if key not in COLUMNS:
            raise unknown_name("column", key, COLUMNS)
    return chosen


def _column_cells(a: Analysis, key: str, short: bool) -> tuple[list[str], str] | None:
    """The cells of one column (every row) and its total, full or shortened; None when it has nothing to show."""
    from .text import num, rf_text, short_count

    count = short_count if short else num
    rows_ = a.layers
    t = a.totals
    if key == "name":
        return [r.name for r in rows_], "total"
    if key == "type":
        return [r.type if short or not r.summary else f"{r.type} ({r.summary})" for r in rows_], ""
    if key == "output":
        first = a.label_axes()
        return [r.axes_text(first) for r in rows_], ""
    if key in _COUNTS:
        return [count(getattr(r, key)) for r in rows_], count(t[key])
    if key == "activations":
        from .text import activations_text

        return [activations_text(r, count, short) for r in rows_], count(t["activations"])
    if key == "rf":
        return [rf_text(r.receptive_field) for r in rows_], rf_text(t["receptive_field"])
    extra = dict(a.extra_fields())
    if key in extra:  # a figure asked for (--count, --traffic, --device-profile): cnnsize.engine.result.EXTRA_FIELDS
        from .text import extra_text, seconds_text

        cell = seconds_text if key == "predicted_seconds" else extra_text
        return [cell(getattr(r, key)) for r in rows_], cell(t.get(key))
    shares = share_cells(a, "activation_bytes" if key == "memory" else "params")
    if shares is None:
        return None
    if short:
        shares = [cell.split()[-1] for cell in shares]  # the percentage alone
    return shares, ""


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


def table_text(a: Analysis, color: bool = False, width: int | None = None,
               columns: tuple[str, ...] | None = None) -> str:
    """The report table and its summary lines; bars show each layer's share of activation memory and parameters.

    ``width`` (terminal cells) fits everything to it: first shorter headers, numbers (138M) and types, then
    the least important columns left out (the asked-for ones last: ``columns`` and the figures of --count,
    --traffic, --device-profile; then PRIORITY), then long layer names shortened in the middle. A line under
    the table names what was left out. None draws every chosen column in full. ``columns`` picks and orders the
    columns (keys of COLUMNS); the asked-for figures are added to them.
    """

    marked = heaviest(a)
    highlight = {i for i, r in enumerate(a.layers) if r.name in marked}
    extra = a.extra_fields()
    default = DEFAULT_COLUMNS[:-2] + tuple(k for k, _ in extra) + DEFAULT_COLUMNS[-2:]
    keys = list(columns or default) + [k for k, _ in extra if columns and k not in columns]
    asked = ["name", *(columns or ()), *(k for k, _ in reversed(extra))]  # the latest pass' figures first
    long_headers = dict(COLUMNS, **{k: (h, h) for k, h in extra})

    def build(short: bool) -> tuple[list[str], list[str], list[list[str]], list[str]]:
        shown, heads, cols, totals = [], [], [], []
        for key in keys:
            found = _column_cells(a, key, short)
            if found is None:
                continue
            cells, total = found
            shown.append(key)
            heads.append(long_headers[key][1 if short else 0])
            cols.append(cells)
            totals.append(total)
        return shown, heads, cols, totals

    shown, heads, cols, totals = build(short=False)

    def size() -> int:
        return _table_width([[h, *c, t] for h, c, t in zip(heads, cols, totals)])

    hidden: list[str] = []
    if width is not None and size() > width:
        shown, heads, cols, totals = build(short=True)
        order = sorted(shown, key=lambda k: (asked.index(k) if k in asked else len(asked),
                                             PRIORITY.index(k) if k in PRIORITY else len(PRIORITY)))

        def drop(keep: int) -> None:
            while size() > width and len(shown) > keep:
                victim = next(k for k in reversed(order) if k in shown)
                i = shown.index(victim)
                hidden.append(long_headers[victim][0])  # (put in table order below)
                for part in (shown, heads, cols, totals):
                    del part[i]

        def shorten_names(floor: int) -> None:
            if "name" not in shown or size() <= width:
                return
            i = shown.index("name")
            longest = max(map(_width, cols[i]))
            target = max(floor, longest - (size() - width), len(heads[i]))
            cols[i] = [_elide(c, target) for c in cols[i]]

        drop(keep=min(ESSENTIAL, len(shown)))
        shorten_names(MIN_NAME)
        drop(keep=1)
        shorten_names(3)
    right = {i for i, key in enumerate(shown)
             if key in _COUNTS or key == "activations" or key in dict(extra) or (key in ("memory", "share") and cols[i]
                                                            and cols[i][0][:1].isdigit())}
    cells = [list(row) for row in zip(*cols)] if cols else [[] for _ in a.layers]
    title = wrap(a.name, width, indent="")
    text = box_table(heads, cells, right, title="\n".join(title), footer=totals, highlight=highlight,
                     color=color)
    hidden = [long_headers[k][0] for k in keys if long_headers[k][0] in hidden]  # in the table's order
    lines = [hidden_line(hidden, width, picks=True)] if hidden else []
    lines += summary_lines(a)
    if marked:
        lines.append(f"Heaviest layers{' (highlighted)' if color else ''}: {', '.join(sorted(marked))} "
                     "(most parameters, activations and MACs).")
    lines += ["Note: " + " ".join(note.split()) for note in a.notes]
    return text + "".join(part + "\n" for line in lines for part in wrap(line, width))


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
    from .text import short_count

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

