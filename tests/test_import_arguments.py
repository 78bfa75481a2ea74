"""A forward that needs arguments beside its input tensor (a ModuleDict indexed by a task name, a depth) is told
how to pass them, and imports with them (``kwargs=``, ``cnnsize import --kwargs JSON``); a TorchScript module is
told what it is."""

from __future__ import annotations

import sys
import textwrap

import pytest

import cnnsize

from .conftest import run_cli

torch = pytest.importorskip("torch")
nn = torch.nn


class Multi(nn.Module):
    def __init__(self):
        super().__init__()
        self.heads = nn.ModuleDict({"a": nn.Linear(8, 4), "b": nn.Linear(8, 2)})
        self.blocks = nn.ModuleList(nn.Linear(8, 8) for _ in range(3))

    def forward(self, x, task, depth: int = 3):
        for block in self.blocks[:depth]:
            x = torch.relu(block(x))
        return self.heads[task](x)


def macs(model, *args, **kwargs) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*args, **kwargs)
    return counter.get_total_flops() // 2


def test_a_missing_argument_says_how_to_pass_it():
    with pytest.raises(cnnsize.CnnsizeError) as caught:
        cnnsize.from_torch(Multi(), (8,))
    text = caught.value.one_line()
    assert "'task'" in text and "kwargs=" in text and "--kwargs" in text
    assert "control flow" not in text


@pytest.mark.parametrize("kwargs", [{"task": "b"}, {"task": "a", "depth": 1}])
def test_kwargs_are_passed_to_the_forward(kwargs):
    model = Multi().eval()
    imported = cnnsize.from_torch(model, (8,), kwargs=kwargs)
    totals = imported.analyze().totals
    assert totals["macs"] == macs(model, torch.randn(1, 8), **kwargs)
    assert totals["params"] == sum(p.numel() for p in model.parameters())  # the other head: unused


def test_an_unknown_argument_is_named_with_the_valid_ones():
    with pytest.raises(cnnsize.CnnsizeError, match="did you mean 'task'"):
        cnnsize.from_torch(Multi(), (8,), kwargs={"tsk": "a"})
    with pytest.raises(cnnsize.CnnsizeError, match="tensor"):
        cnnsize.from_torch(Multi(), (8,), kwargs={"task": torch.zeros(1)})


def test_a_torchscript_module_is_named_as_such():
    for scripted in (torch.jit.script(nn.Linear(3, 3)), torch.jit.trace(nn.Linear(3, 3), torch.zeros(1, 3))):
        with pytest.raises(cnnsize.CnnsizeError, match="TorchScript") as caught:
            cnnsize.from_torch(scripted, (3,))
        assert "control flow" not in caught.value.one_line()


@pytest.mark.slow  # a torch import in a subprocess: the slow set (the default run stays under 5 minutes)
def test_cli_kwargs_are_json(tmp_path):
    (tmp_path / "multimodel.py").write_text(textwrap.dedent('''
        import torch.nn as nn

        class Multi(nn.Module):
            def __init__(self):
                super().__init__()
                self.heads = nn.ModuleDict({"a": nn.Linear(8, 4), "b": nn.Linear(8, 2)})

            def forward(self, x, task):
                return self.heads[task](x)
        '''), encoding="utf-8")
    ok = run_cli("import", "multimodel:Multi", "-i", "8", "--kwargs", '{"task": "b"}', cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "units: 2" in ok.stdout and "unused" in ok.stdout
    for bad, says in (("{task: b}", "not JSON"), ('["b"]', "JSON object"), ('{"tsk": "b"}', "did you mean")):
        r = run_cli("import", "multimodel:Multi", "-i", "8", "--kwargs", bad, cwd=tmp_path)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, (bad, r.stderr)
    missing = run_cli("import", "multimodel:Multi", "-i", "8", cwd=tmp_path)
    assert missing.returncode == 2 and "--kwargs" in missing.stderr
    assert sys.executable  # the CLI runs in this interpreter (conftest.run_cli)
