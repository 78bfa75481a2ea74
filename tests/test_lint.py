"""The code base stays ruff-clean (ruff comes with the test extra)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .conftest import ROOT


def test_ruff_is_clean():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    result = subprocess.run([ruff, "check", "cnnsize", "tests", "benchmarks", "tools"], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow  # a minute of CPU: the slow set, which .ci/run runs
def test_mypy_is_clean():
    mypy = shutil.which("mypy")
    if mypy is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    result = subprocess.run([mypy, "cnnsize"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
