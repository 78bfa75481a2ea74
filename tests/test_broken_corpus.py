"""The broken-spec corpus: each spec in tests/broken/ and the one-line message it must give (golden files).

Regenerate the .expected files after a deliberate wording change with:
    CNNSIZE_UPDATE_GOLDEN=1 python -m pytest tests/test_broken_corpus.py
Hostile specs (alias bombs, repeat bombs, deep nesting, code-running tags) must also be refused
quickly and with little memory; the bounds are generous so that they do not flake.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT

CORPUS = sorted((ROOT / "tests" / "broken").glob("*.yaml"))
HOSTILE = {"billion_laughs", "repeat_bomb", "deep_nesting", "deep_nesting_50000", "deep_block_nesting", "python_tag",
           "python_name_tag", "expr_deep_parens", "expr_unary_run", "expr_list_bomb", "expr_power_bomb"}


# Runs the CLI and, at exit, writes the process's own peak resident memory (VmHWM) to stderr's last line.
# Measured inside the child because a child's ru_maxrss also counts the parent's memory at the fork
# (a test process that has imported torch would make every child look 300 MiB large).
_CLI_WITH_PEAK = """
import atexit, runpy, sys
def peak():
    with open('/proc/self/status') as f:
        kib = next((int(line.split()[1]) for line in f if line.startswith('VmHWM')), 0)
    sys.stderr.write(f'\\nPEAK_KIB {kib}\\n')
atexit.register(peak)
sys.argv = ['cnnsize', *sys.argv[1:]]
runpy.run_module('cnnsize', run_name='__main__', alter_sys=True)
"""


def run(spec: Path) -> tuple[subprocess.CompletedProcess, float, float | None]:
    """The CLI on one spec: (result, wall seconds, peak MiB of the child, None where /proc cannot tell)."""
    measure = os.path.exists("/proc/self/status")
    cmd = [sys.executable, "-c", _CLI_WITH_PEAK] if measure else [sys.executable, "-m", "cnnsize"]
    start = time.perf_counter()
    proc = subprocess.run([*cmd, "report", str(spec.relative_to(ROOT))], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    took = time.perf_counter() - start
    peak = None
    if measure:
        err, _, last = proc.stderr.rstrip("\n").rpartition("\n")
        assert last.startswith("PEAK_KIB "), proc.stderr
        peak = int(last.split()[1]) / 1024
        proc.stderr = err.rstrip("\n") + "\n" if err.strip() else ""
    return proc, took, peak


def _kinds_counted(message: str) -> str:
    """The message with the number of valid layer names checked against the registry (its kinds, ``repeat`` and
    ``if``) and written as N, so that a new kind (its own file) leaves the golden messages as they are."""
    import re

    from cnnsize.layers import REGISTRY

    def check(found: re.Match) -> str:
        assert int(found.group(1)) == len(REGISTRY) + 2, message
        return "all N: cnnsize specs --kinds"

    return re.sub(r"all (\d+): cnnsize specs --kinds", check, message)


@pytest.mark.parametrize("spec", CORPUS, ids=[p.stem for p in CORPUS])
def test_broken_spec_gives_its_golden_message(spec):
    result, took, peak = run(spec)
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    message = _kinds_counted(result.stderr.strip())
    golden = spec.with_suffix(".expected")
    if os.environ.get("CNNSIZE_UPDATE_GOLDEN"):
        golden.write_text(message + "\n", encoding="utf-8")
    assert message == golden.read_text(encoding="utf-8").strip()
    assert f"tests/broken/{spec.name}" in message  # every message names the file
    if spec.stem in HOSTILE:
        assert took < 10, f"{spec.name} took {took:.1f} s"
        assert peak is None or peak < 300, f"{spec.name} peaked at {peak:.0f} MiB"


def test_huge_dimensions_stay_exact_integers():
    """No float overflow or rounding: a 10^23-pixel input is sized exactly."""
    import cnnsize

    n = 10**23 + 1
    a = cnnsize.analyze({"input": [3, n, 5], "layers": [{"conv": {"filters": 4, "kernel": 3, "stride": 2}}]})
    row = a.layers[1]
    assert row.output_shape == (4, (n - 3) // 2 + 1, 2)
    assert row.macs == 4 * ((n - 3) // 2 + 1) * 2 * 27 and isinstance(row.macs, int)
    assert a.totals["memory"]["activations_bytes"] == 4 * (3 * n * 5 + 4 * ((n - 3) // 2 + 1) * 2)
