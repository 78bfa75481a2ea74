"""Without the onnx package (the default environment), an .onnx file is one line saying what to install.

The ONNX import itself is tested in tests/test_onnx_import.py (the zoo set, where onnx is installed).
"""

from __future__ import annotations

import importlib.util

import pytest

from .conftest import run_cli


@pytest.mark.skipif(importlib.util.find_spec("onnx") is not None, reason="onnx is installed here")
@pytest.mark.parametrize("command", ["report", "import", "validate", "bench"])
def test_onnx_file_without_onnx_is_one_line(command, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07")
    r = run_cli(command, str(path))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "pip install 'cnnsize[onnx]'" in r.stderr and "Traceback" not in r.stderr
