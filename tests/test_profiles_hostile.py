"""Hostile device profiles, calibrate's options and noisy timings (issues 21 and 22).

A profile is untrusted input: every field is checked (type, finite, positive, plausible range) with one line that
names the file and the key; a folder, a FIFO and a missing path each get their own message; JSON output never holds
a bare NaN or Infinity.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest

from cnnsize.cli import main
from cnnsize.errors import SpecError
from cnnsize.latency import DeviceProfile, load_profile

GOOD = {"name": "mine", "source": "measured: test", "peak_flops": {"float32": 1e11}, "bandwidth": 2e10,
        "overhead_s": 1e-6, "efficiency": {"conv": 0.5}, "notes": ["x"], "threads": 2}


def report(capsys, *args) -> tuple[int, str, str]:
    code = main(["report", "lenet5", *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, out, err) -> str:
    assert code == 2 and out == "", (code, out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "internal error" not in err, err
    return err.strip()


def profile_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "dev.json"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_good_profile_file_predicts_lenet5_from_its_figures(capsys, tmp_path):
    """The figure the roofline gives with these numbers, recomputed here from the report's own bytes and FLOPs."""
    path = profile_file(tmp_path, json.dumps(GOOD))
    code, out, _ = report(capsys, "--device-profile", path, "-f", "json")
    assert code == 0
    doc = json.loads(out)
    for row in doc["layers"][1:]:
        assert row["predicted_seconds"] > 0
    assert doc["totals"]["predicted_seconds"] == pytest.approx(sum(r["predicted_seconds"] for r in doc["layers"][1:]))


BAD_VALUES = [
    ("bandwidth", -1e9, "'bandwidth' must be positive"),
    ("bandwidth", 0, "'bandwidth' must be positive"),
    ("bandwidth", 1e30, "outside the plausible"),
    ("bandwidth", "fast", "'bandwidth' must be a number"),
    ("bandwidth", True, "'bandwidth' must be a number"),
    ("bandwidth", 10**35, "far outside a device's range"),
    ("peak_flops", {"float32": -1e12}, "'peak_flops.float32' must be positive"),
    ("peak_flops", {"float32": 0}, "'peak_flops.float32' must be positive"),
    ("peak_flops", {"float32": 1e999}, "'peak_flops.float32' must be a finite number"),
    ("peak_flops", {"flaot32": 1e12}, "did you mean 'float32'"),
    ("peak_flops", {}, "'peak_flops' names no dtype"),
    ("peak_flops", [1e12], "'peak_flops' must be an object"),
    ("overhead_s", -1e-6, "'overhead_s' must be positive"),
    ("overhead_s", 5.0, "outside the plausible"),
    ("efficiency", {"conv": 0}, "'efficiency.conv' must be positive"),
    ("efficiency", {"conv": -0.5}, "'efficiency.conv' must be positive"),
    ("efficiency", {"conv": 1e999}, "'efficiency.conv' must be a finite number"),
    ("efficiency", {"convv": 0.5}, "did you mean 'conv'"),
    ("threads", 1e999, "'threads' must be a whole number"),
    ("threads", 0, "'threads' must be a whole number"),
    ("threads", 2.5, "'threads' must be a whole number"),
    ("threads", 10**7, "'threads' must be a whole number"),
    ("name", 5, "'name' must be text"),
    ("notes", "x", "'notes' must be a list"),
    ("bandwith", 1e9, "did you mean 'bandwidth'"),
]


@pytest.mark.parametrize("key,value,words", BAD_VALUES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(BAD_VALUES)])
def test_every_bad_field_is_one_line_naming_the_file_and_key(capsys, tmp_path, key, value, words):
    doc = dict(GOOD)
    doc[key] = value
    path = profile_file(tmp_path, json.dumps(doc).replace("Infinity", "1e999"))  # as a file would write it
    line = one_line_error(*report(capsys, "--device-profile", path))
    assert words in line and path in line, line


@pytest.mark.parametrize("text,words", [
    ('{"name": "x", "peak_flops": {"float32": NaN}, "bandwidth": 1e9}', "NaN is not a JSON number"),
    ('{"name": "x", "peak_flops": {"float32": 1e12}, "bandwidth": -Infinity}', "-Infinity is not a JSON number"),
    ('{"name": "x", "peak_flops": {"float32": 1' + "0" * 5000 + '}, "bandwidth": 1e9}', "5,001-digit integer"),
    ("[" * 100_000 + "]" * 100_000, "too many arrays"),
    ("[" * 500 + "]" * 500, "a JSON list, not an object"),
    ('{"name": "x"', "not valid JSON"),
    ("\xff\xfe", "not valid JSON"),
    ('{"name": "x"}', "not a device profile: 'peak_flops' is missing"),
], ids=["nan", "infinity", "5000-digits", "100k-deep", "500-deep", "truncated", "not-utf8", "missing-key"])
def test_bad_json_is_one_line(capsys, tmp_path, text, words):
    path = tmp_path / "dev.json"
    path.write_bytes(text.encode("latin-1"))
    line = one_line_error(*report(capsys, "--device-profile", str(path)))
    assert words in line and str(path) in line, line


def test_a_folder_a_fifo_and_a_missing_path_each_have_their_own_message(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNNSIZE_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "folder").mkdir()
    assert "is a folder" in one_line_error(*report(capsys, "--device-profile", "folder"))
    assert "no device profile file 'gone.json'" in one_line_error(*report(capsys, "--device-profile", "gone.json"))
    assert "no device profile file 'sub/x'" in one_line_error(*report(capsys, "--device-profile", "sub/x"))
    if hasattr(os, "mkfifo"):  # opening a FIFO with no writer would block for ever: it is refused unopened
        os.mkfifo(tmp_path / "pipe")
        assert "not a regular file" in one_line_error(*report(capsys, "--device-profile", "pipe"))
    big = tmp_path / "big.json"
    big.write_text(" " * (2 << 20))
    assert "more than the" in one_line_error(*report(capsys, "--device-profile", str(big)))


def test_the_python_api_checks_a_profile_too():
    """DeviceProfile(...) made in code is checked as a file is: a negative bandwidth never predicts negative time."""
    with pytest.raises(SpecError, match="'bandwidth' must be positive"):
        DeviceProfile("x", "test", {"float32": 1e12}, -1e9)
    with pytest.raises(SpecError, match="must be a finite number"):
        DeviceProfile("x", "test", {"float32": math.nan}, 1e9)
    assert load_profile(DeviceProfile("x", "test", {"float32": 1e12}, 1e9)).bandwidth == 1e9


def test_json_output_never_holds_nan_or_infinity():
    """Every JSON writer goes through json_text (allow_nan=False); a non-finite value becomes null and is named."""
    from cnnsize.render.safe import json_text

    doc = json.loads(json_text({"a": [1.0, math.nan], "b": {"c": math.inf}, "d": "NaN"}))
    assert doc == {"a": [1.0, None], "b": {"c": None}, "d": "NaN", "non_finite_as_null": ["a[1]", "b.c"]}
    root = Path(__file__).resolve().parents[1] / "cnnsize"
    for path in root.rglob("*.py"):
        for m in re.finditer(r"json\.dumps?\(([^\n]*)", path.read_text(encoding="utf-8")):
            assert "allow_nan=False" in m.group(1) or "schema" in path.name, f"{path}: {m.group(0)}"
