"""reports/ holds the generated report of every bundled spec; regenerate with `python -m cnnsize.reports`."""

from __future__ import annotations

from cnnsize.reports import expected_reports

from .conftest import ROOT


def test_every_bundled_spec_has_a_fresh_report():
    folder = ROOT / "reports"
    stale = [name for name, text in expected_reports().items()
             if not (folder / name).exists() or (folder / name).read_text(encoding="utf-8") != text]
    assert not stale, f"stale reports {stale}: run `python -m cnnsize.reports`"
