"""`cnnsize import` against factories that raise BaseExceptions, print to stdout or never finish (issue 22).

Each is one line on stderr with exit 2, the spec on stdout stays YAML, and --timeout bounds the user's code.
"""

from __future__ import annotations

import sys
import time

import pytest
import yaml

pytest.importorskip("torch")

MODELS = '''
import os
import torch
from torch import nn


class Custom(BaseException):
    pass


def custom():
    raise Custom("boom")


def generator_exit():
    raise GeneratorExit("closed")


def system_exit():
    raise SystemExit("bye")


def chatty():
    print("hello from the factory")
    os.write(1, b"a C library writing to descriptor 1\\n")
    return nn.Sequential(nn.Conv2d(3, 4, 3))


def forever():
    while True:
        pass


class SwallowsEverything(nn.Module):
    def forward(self, x):
        while True:
            try:
                while True:
                    pass
            except Exception:
                pass


class RaisesInForward(nn.Module):
    def forward(self, x):
        raise Custom("in forward")


def raises_in_forward():
    return RaisesInForward()


def traced_forever():
    return SwallowsEverything()
'''


@pytest.fixture
def models(tmp_path, monkeypatch):
    (tmp_path / "hostile_base.py").write_text(MODELS)
    (tmp_path / "hostile_base_import.py").write_text("raise GeneratorExit('at import')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [m for m in sys.modules if m.startswith("hostile_base")]:
        del sys.modules[name]


@pytest.mark.parametrize("target, words", [
    ("hostile_base:custom", "hostile_base:custom() raised Custom: boom"),
    ("hostile_base:generator_exit", "hostile_base:generator_exit() raised GeneratorExit: closed"),
    ("hostile_base:system_exit", "called sys.exit('bye')"),
    ("hostile_base:raises_in_forward", "the model's forward failed: Custom: in forward"),
    ("hostile_base_import:f", "importing 'hostile_base_import' raised GeneratorExit: at import"),
])
def test_a_base_exception_is_one_line(models, capfd, target, words):
    from cnnsize.cli import main

    code = main(["import", target, "-i", "3x8x8"])
    out, err = capfd.readouterr()
    assert code == 2 and out == "", err
    assert err.startswith("cnnsize: error: ") and len(err.strip().splitlines()) == 1, err
    assert words in err and "Traceback" not in err


def test_what_a_factory_prints_goes_to_stderr_and_the_spec_stays_yaml(models, capfd):
    from cnnsize.cli import main

    assert main(["import", "hostile_base:chatty", "-i", "3x8x8"]) == 0
    out, err = capfd.readouterr()
    spec = yaml.safe_load(out)
    assert spec["layers"] == [{"conv": {"name": "0", "filters": 4, "kernel": 3}}] and spec["input"] == [3, 8, 8]
    assert "hello from the factory" in err and "a C library writing" in err
    print("stdout works again")  # restored after the import
    assert capfd.readouterr().out == "stdout works again\n"


@pytest.mark.parametrize("target", ["hostile_base:forever", "hostile_base:traced_forever"])
def test_timeout_stops_a_factory_or_a_trace_that_never_ends(models, capfd, target):
    """The loop in the forward even swallows every Exception: the timeout is a BaseException it cannot eat."""
    from cnnsize.cli import main

    start = time.monotonic()
    code = main(["import", target, "-i", "3x8x8", "--timeout", "1.5"])
    took = time.monotonic() - start
    out, err = capfd.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "took more than 1.5 s (--timeout)" in err and took < 30


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "1e999", "abc", "100000"])
def test_a_bad_timeout_is_one_line(capfd, value):
    from cnnsize.cli import main

    assert main(["import", "x:y", "--timeout", value]) == 2
    err = capfd.readouterr().err
    assert "--timeout" in err and "is not a number of seconds" in err and len(err.strip().splitlines()) == 1
