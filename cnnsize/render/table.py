"""The terminal table, drawn with rich."""

from __future__ import annotations

from ..analysis import Analysis
from .text import HEADERS, rows, summary_lines, total_row


def rich_table(a: Analysis):
    from rich.table import Table

    table = Table(title=f"{a.name}", title_justify="left", show_footer=False, header_style="bold")
    for i, header in enumerate(HEADERS):
        table.add_column(header, justify="right" if 3 <= i <= 7 else "left", no_wrap=i != 1)
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


def table_text(a: Analysis, color: bool | None = None, width: int | None = None) -> str:
    """The table and summary as text; colours only when writing to a terminal."""
    import io

    from rich.console import Console

    buf = io.StringIO()
    if width is None and color:
        import shutil

        width = shutil.get_terminal_size((200, 40)).columns
    console = Console(file=buf, force_terminal=bool(color), color_system="auto" if color else None,
                      width=width or 200, highlight=False)
    console.print(rich_table(a))
    for line in summary_lines(a):
        console.print(line, soft_wrap=True)
    if _heaviest(a):
        console.print("Highlighted: the layers with the most parameters, activations and MACs.", soft_wrap=True)
    for note in a.notes:
        console.print("Note: " + " ".join(note.split()), soft_wrap=True)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"
