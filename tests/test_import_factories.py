"""`cnnsize import MODULE:FACTORY` when the factory or the model misbehaves: one line each, exit 2 (issue 15)."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("torch")

MODELS = '''
import sys
import torch
from torch import nn

def raises():
    raise RuntimeError("weights missing")

def needs(width):
    return nn.Linear(width, 2)

def exits():
    sys.exit(0)

def not_a_model():
    return 42

class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(7, 2)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x), 1))  # 4*6*6 features, not 7

def broken():
    return Broken()
'''


@pytest.fixture
def models(tmp_path, monkeypatch):
    (tmp_path / "hostile_models.py").write_text(MODELS)
    (tmp_path / "hostile_syntax.py").write_text("def f(:\n    pass\n")
    (tmp_path / "hostile_import_error.py").write_text("raise ValueError('no config')\n")
    (tmp_path / "hostile_import_exit.py").write_text("import sys\nsys.exit(0)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [m for m in sys.modules if m.startswith("hostile_")]:
        del sys.modules[name]


@pytest.mark.parametrize("target, words", [
    ("hostile_models:raises", "hostile_models:raises() raised RuntimeError: weights missing"),
    ("hostile_models:needs", "needs arguments"),
    ("hostile_models:exits", "called sys.exit(0)"),
    ("hostile_models:not_a_model", "did not give an nn.Module (it gave a int)"),
    ("hostile_models:nothing", "unknown name in hostile_models 'nothing'"),
    ("hostile_syntax:f", "a SyntaxError at"),
    ("hostile_import_error:f", "importing 'hostile_import_error' raised ValueError: no config"),
    ("hostile_import_exit:f", "importing 'hostile_import_exit' called sys.exit(0)"),
    ("os:path.join", "os:path.join() needs arguments"),
    (".relative:f", "is a relative module name"),
    ("hostile_models:broken", "does not run on a 1×3×8×8 input"),
])
def test_a_misbehaving_factory_is_one_line(models, capsys, target, words):
    from cnnsize.cli import main

    code = main(["import", target, "-i", "3x8x8"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", err
    assert err.startswith("cnnsize: error: ") and len(err.strip().splitlines()) == 1, err
    assert words in err and "Traceback" not in err


def test_torchs_stack_only_with_debug(models, capsys):
    from cnnsize.cli import main

    main(["import", "hostile_models:broken", "-i", "3x8x8"])
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    with pytest.raises(Exception):  # noqa: B017 - whatever torch raised, with its traceback
        main(["--debug", "import", "hostile_models:broken", "-i", "3x8x8"])


def test_an_unexpected_exception_is_an_internal_error_line(monkeypatch, capsys):
    """The last line of defence: exit 3, one line, a traceback only with --debug."""
    from cnnsize.cli import INTERNAL_ERROR, main
    from cnnsize.engine import walk as analysis

    def boom(*a, **k):
        raise KeyError("a bug")

    monkeypatch.setattr(analysis, "analyze_graph", boom)
    assert main(["report", "lenet5"]) == INTERNAL_ERROR == 3
    err = capsys.readouterr().err
    assert err.strip() == "cnnsize: internal error: KeyError: 'a bug' (run with --debug for the traceback; " \
                          "please report it)"
    with pytest.raises(KeyError):
        main(["--debug", "report", "lenet5"])
