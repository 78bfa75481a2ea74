"""The layers' contract (tools/check_layers.py) holds, and it catches what it is there to catch."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tools import check_layers


def test_the_package_keeps_its_layers():
    assert check_layers.breaches() == []


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "cnnsize" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


@pytest.mark.parametrize(("files", "found"), [
    # an engine module reaching a renderer, even inside a function
    ({"__init__.py": "", "engine/__init__.py": "", "render/__init__.py": "",
      "engine/walk.py": "def f():\n    from ..render import text\n", "render/text.py": ""},
     ["imports cnnsize.render.text (render), a layer above it", "inside a function"]),
    # a circle inside one layer, hidden by a deferred import
    ({"__init__.py": "", "render/__init__.py": "",
      "render/a.py": "from . import b\n", "render/b.py": "def f():\n    from . import a\n"},
     ["import circle: cnnsize.render.a -> cnnsize.render.b"]),
    # the front door imported from inside
    ({"__init__.py": "", "engine/__init__.py": "", "engine/walk.py": "from .. import analyze\n"},
     ["imports the front door 'cnnsize'"]),
    # a circle only the type checker sees still counts
    ({"__init__.py": "", "layers/__init__.py": "", "layers/base.py": "from . import registry\n",
      "layers/registry.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .base import Kind\n"},
     ["import circle: cnnsize.layers.base -> cnnsize.layers.registry"]),
    # an import only for the type checker may name a layer above; a heavy module may be imported late
    ({"__init__.py": "", "core/__init__.py": "", "layers/__init__.py": "", "layers/nn.py": "import torch\n",
      "core/graph.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..layers import nn\n",
      "layers/conv.py": "def build():\n    from .nn import Conv\n"},
     []),
])
def test_breaches_are_found(tmp_path, files, found):
    out = "\n".join(check_layers.breaches(_package(tmp_path, files)))
    for text in found:
        assert text in out, out
    if not found:
        assert out == ""


def test_a_skip_in_ci_names_its_reason_unless_it_is_missing_hardware():
    """conftest.unexpected_skips, which fails a CI run on any skip but a missing CUDA device."""
    from types import SimpleNamespace

    from .conftest import unexpected_skips

    reports = [SimpleNamespace(nodeid="t::cuda", longrepr=("f.py", 1, "Skipped: needs a CUDA device")),
               SimpleNamespace(nodeid="t::ruff", longrepr=("f.py", 2, "Skipped: ruff is not installed"))]
    assert unexpected_skips(reports) == ["t::ruff: Skipped: ruff is not installed"]


def test_every_subpackage_is_installed():
    """pyproject.toml lists the packages a wheel holds: every folder of cnnsize with an __init__.py, or a plain
    `pip install .` lacks it (cnnsize.runtimes was missing, and with it validate and bench on an ONNX file)."""
    import tomllib

    listed = set(tomllib.loads((check_layers.ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    package = check_layers.ROOT / "cnnsize"
    found = {".".join(p.parent.relative_to(package.parent).parts) for p in package.rglob("__init__.py")}
    assert found - listed == set()


def test_onnx_runtime_validation_needs_no_torch():
    """Validating an ONNX file runs under ONNX Runtime alone: its module loads torch only for the bench (the
    executor's timing), as before the move to cnnsize.runtimes."""
    import subprocess
    import sys

    code = "import sys; sys.modules['torch'] = None\nimport cnnsize.runtimes.onnxrt\nprint('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=check_layers.ROOT)
    assert result.stdout.strip() == "ok", result.stderr
