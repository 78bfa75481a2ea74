"""Imported layers are named like the module paths they run in (a module's second call ``layer1.0.relu_1``, an add
in a block's forward ``layer1.0.add``), so ``--depth`` folds an imported model as it folds a bundled spec."""

from __future__ import annotations

import csv
import io

import pytest

import cnnsize

from .conftest import need, run_cli

torch = pytest.importorskip("torch")
nn = torch.nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.relu = nn.ReLU()  # called twice, as torchvision's blocks do

    def forward(self, x):
        out = self.relu(self.conv1(x))
        out = self.conv2(out)
        out += x
        return self.relu(out)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.layer1 = nn.Sequential(Block(4), Block(4))
        self.layer2 = nn.Sequential(Block(4))
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(x.mean((2, 3)), 1))


def folded(spec_path, depth: int) -> list[str]:
    r = run_cli("report", str(spec_path), "--depth", str(depth), "-f", "csv")
    assert r.returncode == 0, r.stderr
    return [row[0] for row in csv.reader(io.StringIO(r.stdout))][1:]


def test_names_nest_like_the_module_paths(tmp_path):
    imported = cnnsize.from_torch(Net(), (3, 8, 8))
    names = [r.name for r in imported.analyze().layers[1:]]
    assert len(set(names)) == len(names)
    assert names[:6] == ["stem", "layer1.0.conv1", "layer1.0.relu", "layer1.0.conv2", "layer1.0.add",
                         "layer1.0.relu_1"]
    module_paths = {n for n, _ in Net().named_modules()}
    for name in names:  # every layer sits under a module path that exists (or at the top)
        assert name.rpartition(".")[0] in module_paths, name
    path = tmp_path / "net.yaml"
    path.write_text(imported.yaml, encoding="utf-8")
    top = [n for n in folded(path, 1) if n and n not in ("input", "total")]
    assert top[:3] == ["stem", "layer1", "layer2"]  # each block folds into its stage's row
    assert cnnsize.analyze(imported.yaml).totals["params"] == sum(p.numel() for p in Net().parameters())


@pytest.mark.zoo
def test_imported_resnet50_folds_as_the_bundled_spec(tmp_path):
    """--depth 1 printed 61 rows for the imported resnet50 (layer1_0_relu_1, iadd), 11 for the bundled one."""
    models = need("torchvision.models")
    path = tmp_path / "resnet50.yaml"
    path.write_text(cnnsize.from_torch(models.resnet50().eval(), (3, 224, 224)).yaml, encoding="utf-8")
    imported, bundled = folded(path, 1), folded("resnet50", 1)
    # torchvision calls torch.flatten before fc, which the bundled spec's fc does itself: the one row more
    assert [n for n in imported if n != "flatten"] == bundled
    assert len(imported) == len(bundled) + 1


def test_analyze_takes_a_module_with_its_input_shape():
    model = Net()
    a = cnnsize.analyze(model, (3, 8, 8), batch=2)
    assert a.totals["params"] == sum(p.numel() for p in model.parameters())
    assert a.totals["macs"] == cnnsize.from_torch(model, (3, 8, 8)).analyze(batch=2).totals["macs"]
    with pytest.raises(cnnsize.CnnsizeError) as caught:
        cnnsize.analyze(model)
    assert "from_torch" in caught.value.one_line() and "input_shape" in caught.value.one_line()


def test_analyze_imports_torch_only_for_a_module():
    import subprocess
    import sys

    code = ("import sys, cnnsize; cnnsize.analyze('lenet5')\n"
            "try:\n    cnnsize.analyze(object())\nexcept cnnsize.CnnsizeError as e:\n    print(e.one_line())\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.splitlines()[-1] == "False" and "nn.Module" in out
