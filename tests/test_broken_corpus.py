"""The broken-spec corpus: each spec in tests/broken/ and the one-line message it must give (golden files).

Regenerate the .expected files after a deliberate wording change with:
    CNNSIZE_UPDATE_GOLDEN=1 python -m pytest tests/test_broken_corpus.py
Hostile specs (alias bombs, repeat bombs, deep nesting, code-running tags) must also be refused
quickly and with little memory; the bounds are generous so that they do not flake.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT

CORPUS = sorted((ROOT / "tests" / "broken").glob("*.yaml"))
HOSTILE = {"billion_laughs", "repeat_bomb", "deep_nesting", "deep_nesting_50000", "deep_block_nesting", "python_tag",
           "python_name_tag"}


def run(spec: Path) -> tuple[subprocess.CompletedProcess, float, float]:
    """The CLI on one spec: (result, wall seconds, peak MiB of the child)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cnnsize", "report", str(spec.relative_to(ROOT))], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    took = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), took, peak


@pytest.mark.parametrize("spec", CORPUS, ids=[p.stem for p in CORPUS])
def test_broken_spec_gives_its_golden_message(spec):
    result, took, peak = run(spec)
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    message = result.stderr.strip()
    golden = spec.with_suffix(".expected")
    if os.environ.get("CNNSIZE_UPDATE_GOLDEN"):
        golden.write_text(message + "\n", encoding="utf-8")
    assert message == golden.read_text(encoding="utf-8").strip()
    assert f"tests/broken/{spec.name}" in message  # every message names the file
    if spec.stem in HOSTILE:
        assert took < 10, f"{spec.name} took {took:.1f} s"
        assert peak < 300, f"{spec.name} peaked at {peak:.0f} MiB"


def test_huge_dimensions_stay_exact_integers():
    """No float overflow or rounding: a 10^23-pixel input is sized exactly."""
    import cnnsize

    n = 10**23 + 1
    a = cnnsize.analyze({"input": [3, n, 5], "layers": [{"conv": {"filters": 4, "kernel": 3, "stride": 2}}]})
    row = a.layers[1]
    assert row.output_shape == (4, (n - 3) // 2 + 1, 2)
    assert row.macs == 4 * ((n - 3) // 2 + 1) * 2 * 27 and isinstance(row.macs, int)
    assert a.totals["memory"]["activations_bytes"] == 4 * (3 * n * 5 + 4 * ((n - 3) // 2 + 1) * 2)
