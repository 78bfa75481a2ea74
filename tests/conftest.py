"""Shared helpers for the tests."""

from __future__ import annotations

import functools
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


@functools.cache
def heavy_detector(name: str, macs_limit: int = 2 * 10**9) -> bool:
    """A bundled detector spec (one holding a ``detections`` layer) over ``macs_limit``: its transform resizes any
    image to a fixed size, so no small input makes it light, and validating it on a 2-core CPU takes minutes and
    tens of GB (validate keeps every layer's output). Its figures are checked by tests/test_detection_zoo.py
    against torchvision's real forward and the spec against a fresh import (tests/test_detector_specs.py)."""
    import re

    import cnnsize
    from cnnsize.spec.sources import bundled_path

    text = bundled_path(name).read_text(encoding="utf-8")
    return re.search(r"^\s*- detections:", text, re.M) is not None and cnnsize.analyze(name).totals["macs"] > macs_limit


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


# -- the quick tier: `python -m pytest -m quick`, under a minute on 2 cores, for the edit-test loop --------------
# The spec language, the walk and its figures against the seed tables, every kind's own examples, the passes, the
# renderers and the command line in this process: what most edits break. The default set runs these and the rest
# (torch builds and traces, fuzzing, fresh processes); `-m quick` does not even collect the other files.
QUICK_FILES = frozenset({
    "test_expr.py", "test_graph_spec.py", "test_seed_examples.py", "test_symbolic.py", "test_calc_cli.py",
    "test_fit_explain.py", "test_layers.py", "test_latency.py", "test_terminal_output.py", "test_hostile_inputs.py",
    "test_schema.py", "test_limits.py", "test_views.py", "test_help_values.py", "test_report_cli.py",
    "test_new_user.py", "test_traffic.py", "test_layer_kinds.py", "test_docs.py", "test_papers.py",
    "test_output_files.py", "test_reports_fresh.py", "test_profiles_hostile.py", "test_lint.py",
})


# the tests of those files that build torch networks or sweep every bundled spec: the default set's
NOT_QUICK = frozenset({
    "test_traffic_matches_the_tensors_torch_moves", "test_kind_saves_for_backward_what_torch_saves",
    "test_a_small_network_validates_without_the_compiler", "test_kind_matches_torch",
    "test_every_bundled_spec_validates", "test_no_raw_control_characters_on_standard_output",
})


def _quick_only(config) -> bool:
    return (config.getoption("markexpr", "") or "").strip() == "quick"


def pytest_ignore_collect(collection_path, config):
    if _quick_only(config) and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return collection_path.name not in QUICK_FILES
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in QUICK_FILES and item.originalname not in NOT_QUICK and \
                not any(item.get_closest_marker(m) for m in ("slow", "zoo")):
            item.add_marker(pytest.mark.quick)
