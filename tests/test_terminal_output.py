"""No command writes a raw control character to standard output, whatever the spec's names hold.

The renderers escape names (cnnsize/render/safe.py); write_output escapes anything left on the way out, keeping
only newlines, tabs and cnnsize's own colours. CSV and JSON piped on, and files written with -o in machine formats,
keep the text as it is (tests/test_cli_hostile.py checks their quoting).
"""

from __future__ import annotations

import json

import pytest

from .conftest import run_cli

HOSTILE = """name: "\\e]0;PWNED\\a\\e[2J"
input: [3, 32, 32]
notes: "note \\e[2J\\r\\u202e here"
layers:
  - conv: {filters: 8, kernel: 3, pad: 1, name: "c\\e]0;X\\a1\\x9b"}
  - relu
"""
RAW = set(range(0x00, 0x20)) - {0x0A, 0x09}


@pytest.mark.parametrize("command", [["report"], ["report", "-f", "markdown"], ["report", "-f", "latex"],
                                     ["report", "--depth", "1"], ["explain"], ["fit"], ["conventions"],
                                     ["compare", "lenet5"]])
def test_no_raw_control_characters_on_standard_output(tmp_path, command):
    spec = tmp_path / "hostile.yaml"
    spec.write_text(HOSTILE, encoding="utf-8")
    args = [command[0], str(spec), *command[1:]]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    raw = [c for c in result.stdout if ord(c) in RAW or 0x7F <= ord(c) <= 0x9F or c in "\u202e"]
    assert not raw, (command, raw[:5])
    assert "e]0;" in result.stdout or command[0] == "compare"  # the names are shown, escaped


def test_machine_formats_in_files_keep_the_text(tmp_path):
    spec = tmp_path / "hostile.yaml"
    spec.write_text(HOSTILE, encoding="utf-8")
    out = tmp_path / "out.json"
    assert run_cli("report", str(spec), "-o", str(out)).returncode == 0
    assert json.loads(out.read_text(encoding="utf-8"))["name"] == "\x1b]0;PWNED\x07\x1b[2J"
