"""Renderers: an Analysis as a terminal table, markdown, CSV, JSON, LaTeX or HTML."""

FORMATS = ("table", "markdown", "csv", "json", "latex", "html")


def render(analysis, fmt: str, color: bool = False, width: int | None = None,
           columns: tuple[str, ...] | None = None) -> str:
    """The analysis in one of FORMATS, as text; ``color`` adds terminal colours to the table.

    ``width`` fits the table to that many terminal cells and ``columns`` picks its columns (see table_text).
    """
    from ..core.errors import unknown_name

    if fmt not in ("json", "csv"):  # text for people: control characters escaped (machine formats keep them)
        from ..core.safe import printable_analysis

        analysis = printable_analysis(analysis)
    if fmt == "table":
        from .table import table_text

        return table_text(analysis, color=color, width=width, columns=columns)
    from . import text

    if fmt == "markdown":
        return text.markdown(analysis)
    if fmt == "csv":
        return text.csv_text(analysis)
    if fmt == "json":
        return text.to_json(analysis)
    if fmt == "latex":
        return text.latex(analysis)
    if fmt == "html":
        return text.html(analysis)
    raise unknown_name("format", fmt, FORMATS)
