"""The terminal table, drawn with rich."""

from __future__ import annotations

from ..analysis import Analysis
from .text import HEADERS, rows, summary_lines, total_row


def rich_table(a: Analysis):
    from rich.table import Table

    table = Table(title=f"{a.name}", title_justify="left", show_footer=False, header_style="bold")
    for i, header in enumerate(HEADERS):
        # formulas are long: let every column wrap rather than cut them off
        table.add_column(header, justify="right" if 3 <= i <= 7 else "left", no_wrap=i != 1 and not a.symbolic)
    heaviest = _heaviest(a)
    for r, cells in zip(a.layers, rows(a)):
        table.add_row(*cells, style="bold yellow" if r.name in heaviest else None)
    table.add_section()
    table.add_row(*total_row(a), style="bold")
    return table


def _heaviest(a: Analysis) -> set[str]:
    """The layers holding the most parameters and the most activations."""
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


def text_console(buf, color: bool | None = None, width: int | None = None):
    """A rich console writing to ``buf``: the terminal's width with colours, else wide and plain."""
    from rich.console import Console

    if width is None and color:
        import shutil

        width = shutil.get_terminal_size((200, 40)).columns
    return Console(file=buf, force_terminal=bool(color), color_system="auto" if color else None,
                   width=width or 200, highlight=False)


def rendered(items, color: bool | None = None, width: int | None = None) -> str:
    """Rich renderables (tables, strings) as text without trailing spaces."""
    import io

    buf = io.StringIO()
    console = text_console(buf, color, width)
    for item in items:
        console.print(item, soft_wrap=isinstance(item, str))
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def table_text(a: Analysis, color: bool | None = None, width: int | None = None) -> str:
    """The table and summary as text; colours only when writing to a terminal."""
    items: list = [rich_table(a), *summary_lines(a)]
    if _heaviest(a):
        items.append("Highlighted: the layers with the most parameters, activations and MACs.")
    items += ["Note: " + " ".join(note.split()) for note in a.notes]
    return rendered(items, color, width)
