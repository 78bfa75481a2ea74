"""Shared helpers for the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT.parent / "shared" / "seeds"


def run_cli(*args: str, input: str | None = None, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run the installed CLI as a user would, in a fresh process."""
    return subprocess.run([sys.executable, "-m", "cnnsize", *args], capture_output=True, text=True, input=input,
                          cwd=cwd or ROOT, timeout=120)


@pytest.fixture
def cli():
    return run_cli


def need(module: str):
    """Import an optional test dependency (torchvision, a peer tool), or skip the test without it.

    .ci/run sets CNNSIZE_REQUIRE_ZOO=1 for the zoo set, where a missing package is a failure, not a skip.
    """
    import os

    if os.environ.get("CNNSIZE_REQUIRE_ZOO"):
        import importlib

        return importlib.import_module(module)
    return pytest.importorskip(module)


def representative(names, keep):
    """``names`` as parameters, those not in ``keep`` marked slow: the default run checks a representative few,
    ``-m slow`` (run by .ci/run) the rest."""
    return [name if name in keep else pytest.param(name, marks=pytest.mark.slow) for name in names]
