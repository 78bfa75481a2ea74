"""The report's terminal table: an analysis' columns, fitted to the terminal, with colours and highlighted rows."""

from __future__ import annotations

from ..core.errors import SpecError, unknown_name
from ..core.text import short_count
from ..engine.result import Analysis
from .boxes import _elide, _table_width, _width, box_table, hidden_line, wrap
from .text import activations_text, heaviest, num, rf_text, share_cells, summary_lines

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

        return [activations_text(r, count, short) for r in rows_], count(t["activations"])
    if key == "rf":
        return [rf_text(r.receptive_field) for r in rows_], rf_text(t["receptive_field"])
    column = next((c for c in a.columns if c.key == key), None)
    if column is not None:  # a figure a pass added (--count, --traffic, --device-profile), as its Column says
        return [column.cell(r.get(key)) for r in rows_], column.cell(t.get(key))
    shares = share_cells(a, "activation_bytes" if key == "memory" else "params")
    if shares is None:
        return None
    if short:
        shares = [cell.split()[-1] for cell in shares]  # the percentage alone
    return shares, ""


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


