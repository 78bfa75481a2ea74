"""Pictures of an analysis: per-layer activation memory against parameter memory (log scale), and the
receptive field's growth with depth. matplotlib is an optional extra, imported only here.

``plot_data`` returns exactly the series that are drawn (plain lists), so they can be checked
against the analysis without looking at pixels. SVG output is deterministic (fixed hash salt, no
date, text kept as text), so a regenerated picture only differs when the figures do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import SpecError
from ..core.numeric import is_int
from ..core.optional import EXTRAS, require
from ..engine.result import Analysis

PLOT_FORMATS = ("png", "svg")
INSTALL_HINT = EXTRAS["matplotlib"][1]


def plot_data(a: Analysis) -> dict[str, list]:
    """The plotted series, one entry per row of the analysis (the input first).

    ``activation_bytes`` and ``param_bytes`` per layer at the analysis' dtype and batch; ``rf_size`` the
    receptive field's largest side (None once the spatial extent is gone); ``depth`` the weight layers so far.
    """
    if a.symbolic:
        raise SpecError("a plot needs numbers, but this analysis has formulas", hint="give a numeric --input")
    out: dict[str, list] = {"layers": [], "types": [], "activation_bytes": [], "param_bytes": [], "rf_size": [],
                            "depth": []}
    depth = 0
    for r in a.layers:
        depth += r.weight_layer
        out["layers"].append(r.name)
        out["types"].append(r.type)
        out["activation_bytes"].append(int(r.activation_bytes))
        out["param_bytes"].append(int(r.param_bytes))
        rf = r.receptive_field
        out["rf_size"].append(max(rf.size) if rf is not None and all(is_int(v) for v in rf.size) else None)
        out["depth"].append(depth)
    return out


def _matplotlib():
    return require("matplotlib")


def figure(a: Analysis):
    """The matplotlib Figure (two panels sharing the layer axis); no pyplot, so no global state or GUI backend."""
    _matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

    data = plot_data(a)
    n = len(data["layers"])
    x = list(range(n))
    width = min(16.0, max(7.0, 0.18 * n + 3))
    fig = Figure(figsize=(width, 7.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    nan = float("nan")  # a zero has no bar on a log scale
    act = [v if v > 0 else nan for v in data["activation_bytes"]]
    par = [v if v > 0 else nan for v in data["param_bytes"]]
    bar_w = 0.42
    top.set_yscale("log")
    top.bar([i - bar_w / 2 for i in x], act, bar_w, color="#e07b39", label="activation memory")
    top.bar([i + bar_w / 2 for i in x], par, bar_w, color="#3b6ea8", label="parameter memory")
    top.yaxis.set_major_locator(LogLocator(base=32))  # 1 KiB, 32 KiB, 1 MiB, ...: round numbers of bytes
    top.yaxis.set_minor_locator(NullLocator())
    top.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _bytes(v)))
    top.set_ylabel(f"bytes ({a.dtype}, batch {a.batch})")
    top.set_title(f"{a.name}: memory per layer (log scale)", loc="left")
    top.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False)
    top.grid(axis="y", which="major", alpha=0.3)
    rf_x = [i for i, v in zip(x, data["rf_size"]) if v is not None]
    rf_y = [v for v in data["rf_size"] if v is not None]
    bottom.step(rf_x, rf_y, where="post", color="#2a9d55", label="receptive field")
    bottom.plot(rf_x, rf_y, "o", color="#2a9d55", markersize=3)
    bottom.set_ylabel("receptive field (pixels)")
    bottom.grid(alpha=0.3)
    twin = bottom.twinx()
    twin.step(x, data["depth"], where="post", color="#888888", linestyle="--", label="weight layers")
    twin.set_ylabel("weight layers so far")
    twin.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.legend(handles=bottom.get_lines()[:1] + twin.get_lines(), loc="upper left", frameon=False)
    step = max(1, n // 60)  # at most about 60 names on the axis
    bottom.set_xticks(x[::step], [data["layers"][i] for i in x[::step]], rotation=90, fontsize=7)
    bottom.set_xlim(-0.6, n - 0.4)
    return fig


def _bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:g}"  # pragma: no cover


def save_plot(a: Analysis, path: str | Path, fmt: str | None = None) -> Path:
    """Write the plot to ``path`` (PNG or SVG by its suffix, or ``fmt``); returns the path."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in PLOT_FORMATS:
        raise SpecError(f"cannot tell the picture format of '{path}'", hint="name the file .png or .svg")
    if not path.parent.is_dir():
        raise SpecError(f"cannot write '{path}': the folder {path.parent} does not exist")
    data = picture(a, fmt)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)  # never a partial picture
    return path


def picture(a: Analysis, fmt: str = "svg") -> bytes:
    """The plot as PNG or SVG bytes; SVG is byte-for-byte reproducible."""
    import io

    mpl = _matplotlib()
    fig = figure(a)
    buf = io.BytesIO()
    with mpl.rc_context({"svg.hashsalt": "cnnsize", "svg.fonttype": "none", "path.simplify": True}):
        # the matplotlib version is recorded: reports/ plots compare byte for byte only under the same one
        metadata: dict[str, Any] = ({"Date": None, "Creator": f"cnnsize (matplotlib {mpl.__version__})"}
                                    if fmt == "svg" else {"Software": None})
        fig.savefig(buf, format=fmt, metadata=metadata, dpi=110)
    return buf.getvalue()
