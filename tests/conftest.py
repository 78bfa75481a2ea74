"""Shared helpers for the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# CI (CI=true) draws the same examples on every run, so a red run is reproducible and a green one stays green;
# a developer's run draws new ones each time (the fuzzing that finds bugs), and prints the blob to replay a failure
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

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


# -- a skip is never silent in CI -------------------------------------------------------------------------------
# The one thing a test may skip for in CI is hardware the machine lacks (a CUDA device): any other skip there (a
# missing package, a tool not installed) fails the run, naming the test and its reason.
ALLOWED_SKIPS = ("CUDA",)


def unexpected_skips(reports) -> list[str]:
    """'test: reason' for each skipped report whose reason names none of ALLOWED_SKIPS."""
    out = []
    for report in reports:
        longrepr = getattr(report, "longrepr", None)
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        if not any(word in reason for word in ALLOWED_SKIPS):
            out.append(f"{report.nodeid}: {reason}")
    return out


def pytest_sessionfinish(session, exitstatus):
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    found = unexpected_skips(reporter.stats.get("skipped", []) if reporter is not None else [])
    if found:
        sys.stderr.write("skipped in CI, where only a missing CUDA device may skip a test:\n  "
                         + "\n  ".join(found) + "\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
