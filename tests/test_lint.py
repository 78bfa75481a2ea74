"""The code base stays ruff-clean (complexity included) and mypy-clean; both come with the test extra.

Run as ``python -m ruff`` / ``python -m mypy`` of this interpreter, so they are found without an activated
environment; a missing one fails (the test extra was not installed), it never skips.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from .conftest import ROOT


def _tool(name: str) -> list[str]:
    assert importlib.util.find_spec(name) is not None, f"{name} is not installed: pip install -e '.[test]'"
    return [sys.executable, "-m", name]


def test_ruff_is_clean():
    result = subprocess.run([*_tool("ruff"), "check", "cnnsize", "tests", "benchmarks", "tools"], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow  # a minute of CPU: the slow set, which .ci/run runs
def test_mypy_is_clean():
    result = subprocess.run([*_tool("mypy"), "cnnsize"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
