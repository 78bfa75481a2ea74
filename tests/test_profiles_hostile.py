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
from cnnsize.core.errors import SpecError
from cnnsize.passes.latency import DeviceProfile, load_profile

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
    ("memory_bytes", -1, "'memory_bytes' must be positive"),
    ("memory_bytes", "80GB", "'memory_bytes' must be a number"),
    ("memory_bytes", 1e30, "outside the plausible"),
    ("memory_bytes", 1000, "outside the plausible"),
    ("memory_bytes", 1e999, "'memory_bytes' must be a finite number"),
    ("memory", 2**30, "did you mean 'memory_bytes'"),
    ("interconnect", 0, "'interconnect' must be positive"),
    ("interconnect", [1e9], "'interconnect' must be a number"),
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
    from cnnsize.core.safe import json_text

    doc = json.loads(json_text({"a": [1.0, math.nan], "b": {"c": math.inf}, "d": "NaN"}))
    assert doc == {"a": [1.0, None], "b": {"c": None}, "d": "NaN", "non_finite_as_null": ["a[1]", "b.c"]}
    root = Path(__file__).resolve().parents[1] / "cnnsize"
    for path in root.rglob("*.py"):
        for m in re.finditer(r"json\.dumps?\(([^\n]*)", path.read_text(encoding="utf-8")):
            assert "allow_nan=False" in m.group(1) or "schema" in path.name, f"{path}: {m.group(0)}"


# -- calibrate: every option its help offers works or is refused in one line ---------------------------------------

def calibrate(capsys, *args) -> tuple[int, str, str]:
    code = main(["calibrate", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args,words", [
    (["--threads", "100000"], "--threads: must be a whole number from 1 to"),
    (["--threads", "1" + "0" * 20], "--threads: must be a whole number from 1 to"),
    (["--threads", "0"], "--threads: must be a whole number from 1 to"),
    (["--runs", "0"], "--runs: must be a whole number from 1 to 1,000"),
    (["--runs", "1001"], "--runs: must be a whole number from 1 to 1,000"),
    (["--runs", "1e3"], "--runs: must be a whole number"),
    (["--dtype", "half"], "invalid choice: 'half'"),
    (["--dtype", "int8"], "invalid choice: 'int8'"),
])
def test_calibrate_refuses_bad_options_in_one_line(capsys, args, words):
    code, out, err = calibrate(capsys, *args)
    assert words in one_line_error(code, out, err)


def test_calibrate_help_lists_only_dtypes_it_accepts(capsys):
    assert main(["calibrate", "-h"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    from cnnsize.cli.calibrate import DTYPES

    offered = re.search(r"--dtype DTYPE (.*?) \(default float32\)", text).group(1)
    assert [d.strip() for d in offered.split(",")] == list(DTYPES)
    assert "1 to 1,000" in text


def test_a_config_folder_that_is_a_file_is_one_line_before_measuring(capsys, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from cnnsize.executor import calibrate as cal

    monkeypatch.setattr(cal, "measure", lambda *a, **k: pytest.fail("measured before checking the folder"))
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("CNNSIZE_CONFIG_DIR", str(tmp_path / "file"))
    line = one_line_error(*calibrate(capsys, "--runs", "1"))
    assert "cannot create the profile folder" in line and "Not a directory" in line


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_calibrate_half_precision_on_the_cpu_works_or_is_one_line(capsys, tmp_path, dtype):
    """Offered by the help: either a profile for that dtype is saved, or one line says why not (old: exit 3)."""
    pytest.importorskip("torch")
    out_path = tmp_path / "p.json"
    code, out, err = calibrate(capsys, "--dtype", dtype, "--runs", "1", "--threads", "1", "-o", str(out_path))
    if code == 0:
        assert dtype in load_profile(str(out_path)).peak_flops
    else:
        assert f"no fast {dtype} kernels" in one_line_error(code, out, err) and not out_path.exists()


class FakeLayers:
    """Layer timings made up for calibrate's logic: ``seconds`` per layer, the overhead layers ``overhead``;
    ``noisy`` makes every layer's median 3× its fastest run."""

    def __init__(self, seconds=1e-3, overhead=1e-5, noisy=False):
        self.seconds, self.overhead, self.noisy, self.calls = seconds, overhead, noisy, 0

    def __call__(self, spec, dev, dtype, runs):
        import cnnsize

        self.calls += 1
        a = cnnsize.analyze(spec, dtype=dtype)
        t = self.overhead if a.name == "overhead" else self.seconds
        times = [t, 3 * t, 3 * t] if self.noisy else [t, t, t]
        return {r.name: list(times) for r in a.layers[1:]}


def fake_machine(monkeypatch, peak, layers: FakeLayers):
    from cnnsize.executor import calibrate as cal

    peaks = []

    def fake_peak(dev, tdtype, longer=False):
        peaks.append(longer)
        return peak

    monkeypatch.setattr(cal, "_peak", fake_peak)
    monkeypatch.setattr(cal, "_bandwidth", lambda dev: 1e13)
    monkeypatch.setattr(cal, "_layer_samples", layers)
    return peaks


def test_calibrate_refuses_a_profile_faster_than_its_peak(capsys, tmp_path, monkeypatch):
    """The calibration's two plain convs (64→64 3×3 at 56×56, 64→256 1×1 at 28×28; FLOPs from FlopCounterMode) each
    in 1 ms less the 10 µs overhead, against a measured peak of 1 GFLOP/s, ran at hundreds of times the peak, which
    cannot be: the peak is measured again, then the profile is refused, and the line gives the median ratio."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    ratios = []
    for conv, size in ((torch.nn.Conv2d(64, 64, 3, padding=1), 56), (torch.nn.Conv2d(64, 256, 1), 28)):
        with FlopCounterMode(display=False) as mode:
            conv(torch.zeros(1, 64, size, size))
        ratios.append(mode.get_total_flops() / 1e9 / (1e-3 - 1e-5))
    peaks = fake_machine(monkeypatch, 1e9, FakeLayers())
    out_path = tmp_path / "p.json"
    line = one_line_error(*calibrate(capsys, "--runs", "3", "-o", str(out_path)))
    assert "cannot be right, so it was not saved" in line and not out_path.exists()
    m = re.search(r"'conv' layers ran at ([\d.]+)× the measured float32 peak \(1.0 GFLOP/s\)", line)
    assert m and float(m.group(1)) == pytest.approx(sum(ratios) / 2, abs=0.05), line
    assert peaks == [False, True]  # measured again, longer, before refusing


def test_calibrate_saves_a_possible_profile_and_measures_noisy_layers_again(capsys, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from cnnsize.executor import calibrate as cal

    layers = FakeLayers(noisy=True)
    fake_machine(monkeypatch, 1e13, layers)
    out_path = tmp_path / "p.json"
    code, _, err = calibrate(capsys, "--runs", "3", "-o", str(out_path))
    assert code == 0, err
    assert layers.calls == 4 * (1 + cal.REMEASURE)  # four specs, measured again twice, no more
    profile = load_profile(str(out_path))
    assert any(n.startswith("noisy:") for n in profile.notes) and "note: noisy:" in err
    assert all(0 < e <= 1.1 for e in profile.efficiency.values())
    quiet = FakeLayers()
    fake_machine(monkeypatch, 1e13, quiet)
    assert calibrate(capsys, "--runs", "3", "-o", str(out_path))[0] == 0 and quiet.calls == 4


# -- bench: noisy runs are measured again and said to be noisy -----------------------------------------------------

def test_a_noisy_bench_says_so():
    """p10 3 ms and p90 179 ms (issue 21's bench) is flagged; a steady one is not."""
    pytest.importorskip("torch")
    from cnnsize.executor.timing import Timing

    def timing(times):
        return Timing("cpu", "x", "float32", 1, "forward", 0, times, 10**6)

    t = timing([3.0] * 5 + [179.0] * 5)
    assert t.noisy and t.to_dict()["noisy"] is True and t.spread > 0.5
    assert any("NOISY" in line and "p10" in line for line in t.lines())
    steady = timing([10.0, 10.1, 10.2, 9.9, 10.0, 10.1])
    assert not steady.noisy and not any("NOISY" in line for line in steady.lines())
    assert timing([3.0, 179.0]).spread is None  # two runs cannot tell


class ScriptedClock:
    """A clock whose runs take the next times from a script (ms), for the re-measuring logic."""

    def __init__(self, script):
        self.script = list(script)

    def sync(self):
        pass

    def start(self):
        return None

    def stop(self, start):
        return self.script.pop(0)


def test_noisy_runs_are_measured_again_within_bounds():
    pytest.importorskip("torch")
    from cnnsize.executor import timing

    noisy, quiet = [3.0, 3.0, 179.0, 179.0, 90.0], [10.0, 10.1, 10.0, 10.2, 10.1]
    notes: list[str] = []
    times, _ = timing._quietest_runs(lambda: None, ScriptedClock(noisy + quiet), 0, 5, False, "x", notes)
    assert times == quiet and "measured 2 times" in notes[0]
    notes = []
    clock = ScriptedClock(noisy * 10)
    times, _ = timing._quietest_runs(lambda: None, clock, 0, 5, False, "x", notes)
    assert len(clock.script) == 5 * (10 - 1 - timing.REMEASURE_ROUNDS)  # never more than the rounds allowed
    slow = [3000.0, 3000.0, 9000.0, 9000.0, 6000.0]  # 30 s a round: over the budget, not measured again
    clock = ScriptedClock(slow * 3)
    timing._quietest_runs(lambda: None, clock, 0, 5, False, "x", [])
    assert len(clock.script) == 10


def test_calibrate_puts_torchs_threads_back(capsys, tmp_path, monkeypatch):
    """measure(threads=1) changed torch's threads for the rest of the process (a library call must not)."""
    torch = pytest.importorskip("torch")
    fake_machine(monkeypatch, 1e13, FakeLayers())
    before = torch.get_num_threads()
    seen = []
    monkeypatch.setattr("cnnsize.executor.calibrate._check_fast_dtype", lambda *a: seen.append(torch.get_num_threads()))
    assert calibrate(capsys, "--runs", "3", "--threads", "1", "-o", str(tmp_path / "p.json"))[0] == 0
    assert seen == [1] and torch.get_num_threads() == before
    assert load_profile(str(tmp_path / "p.json")).threads == 1
