"""reports/ holds the generated report and plot of every bundled spec.

Regenerate with `python -m cnnsize.bundled.reports`."""

from __future__ import annotations

import pytest

from cnnsize.bundled.reports import expected_reports
from cnnsize.spec.sources import bundled_names

from .conftest import ROOT


def _stale(expected: dict[str, bytes]) -> list[str]:
    folder = ROOT / "reports"
    return [name for name, data in expected.items()
            if not (folder / name).exists() or (folder / name).read_bytes() != data]


def test_every_bundled_spec_has_a_fresh_report():
    expected = expected_reports(pictures=False)
    stale = _stale(expected)
    assert not stale, f"stale reports {stale}: run `python -m cnnsize.bundled.reports`"
    for name in bundled_names():  # each report shows its plot
        assert f"![{name}: " in expected[f"{name}.md"].decode() and f"({name}.svg)" in expected[f"{name}.md"].decode()


@pytest.mark.slow  # draws every bundled spec's plot (matplotlib)
def test_every_bundled_spec_has_a_fresh_plot():
    import matplotlib as mpl  # the test extra pins the version the plots were drawn with: never a silent skip

    stamp = f"cnnsize (matplotlib {mpl.__version__})"
    assert stamp in (ROOT / "reports" / "lenet5.svg").read_text(encoding="utf-8"), \
        f"reports/ plots were drawn by another matplotlib than {mpl.__version__} (the test extra's pin): " \
        "install the pinned one, or run `python -m cnnsize.bundled.reports` and pin the new version"
    expected = {k: v for k, v in expected_reports(pictures=True).items() if k.endswith(".svg")}
    assert len(expected) == len(bundled_names())
    stale = _stale(expected)
    assert not stale, f"stale plots {stale}: run `python -m cnnsize.bundled.reports`"
