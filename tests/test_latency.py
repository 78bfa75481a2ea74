"""Latency predicted from the spec: device profiles, the roofline per layer, and calibration into a temp dir.

How well the prediction matches measured times is a benchmark (benchmarks/latency.py), not a unit test:
timings depend on the machine and its load.
"""

from __future__ import annotations

import json

import pytest

import cnnsize
from cnnsize.passes.latency import DATASHEETS, EFFICIENCY_KEYS, DeviceProfile, load_profile


def test_datasheet_profiles_are_marked_and_complete():
    assert set(DATASHEETS) == {"a100", "h100", "h200", "l4", "t4", "rtx4090"}
    for p in DATASHEETS.values():
        assert p.source.startswith("datasheet: NVIDIA") and p.peak("float32") > 1e12 and p.bandwidth > 1e11
        assert any("not measured" in n for n in p.notes)


def test_one_conv_on_a100_is_the_roofline_of_what_torch_runs():
    """FLOPs from torch's FlopCounterMode and bytes from the tensors themselves, against the A100 datasheet."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    spec = {"name": "one", "input": [32, 28, 28], "layers": [{"conv": {"name": "c", "filters": 64, "kernel": 3,
                                                                         "pad": 1}}]}
    a = cnnsize.analyze(spec, batch=2, device_profile="a100")
    conv = cnnsize.build(a).layer("c")
    x = torch.zeros(2, 32, 28, 28)
    with torch.no_grad(), FlopCounterMode(display=False) as mode:
        y = conv(x)
    moved = sum(t.numel() * 4 for t in (x, y, conv.weight, conv.bias))
    compute, memory = mode.get_total_flops() / 19.5e12, moved / 2039e9
    row = a.layer("c")
    assert row.predicted_seconds == pytest.approx(5e-6 + max(compute, memory), rel=1e-12)
    assert row.bound == ("compute" if compute > memory else "memory")
    assert a.totals["predicted_seconds"] == pytest.approx(row.predicted_seconds)


def test_depthwise_layers_are_memory_bound_on_a_gpu_and_efficiencies_apply():
    a = cnnsize.analyze("mobilenet_v2", device_profile="h100")
    dw = a.layer("features.2.conv.1.0")
    assert dw.kind.groups == dw.output_shape[0] and dw.bound == "memory"
    slow = DeviceProfile("slow", "measured: test", {"float32": 1e12}, 1e11, 0.0, {"depthwise": 0.5})
    b = cnnsize.analyze("mobilenet_v2", device_profile=slow)
    moved = dw.bytes_read + dw.bytes_written
    assert b.layer(dw.name).predicted_seconds == pytest.approx(moved / 1e11 / 0.5)


def test_report_device_profile_in_json_and_a_profile_file(cli, tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(DeviceProfile("mine", "measured: test", {"float32": 2e12}, 5e11, 1e-5).to_dict()))
    for profile in ("t4", str(path)):
        doc = json.loads(cli("report", "resnet18", "--device-profile", profile, "-f", "json").stdout)
        assert all(row["bound"] in ("compute", "memory") for row in doc["layers"][1:])
        assert doc["totals"]["predicted_seconds"] == pytest.approx(sum(r["predicted_seconds"]
                                                                       for r in doc["layers"][1:]))
        assert doc["device_profile"] == load_profile(profile).name
    out = cli("report", "resnet18", "--device-profile", "t4", "-f", "markdown").stdout
    assert "Predicted on t4" in out and "Bound" in out


@pytest.mark.parametrize("profile,words", [("a10", "a100"), ("cpu", "cnnsize calibrate")])
def test_unknown_or_missing_profile_is_one_line(cli, tmp_path, monkeypatch, profile, words):
    monkeypatch.setenv("CNNSIZE_CONFIG_DIR", str(tmp_path))
    r = cli("report", "lenet5", "--device-profile", profile)
    assert r.returncode == 2 and "Traceback" not in r.stderr and words in r.stderr


def test_bad_profile_file_is_one_line(cli, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"name": "x"}')
    r = cli("report", "lenet5", "--device-profile", str(path))
    assert r.returncode == 2 and "not a device profile" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow  # half a minute of timing on a loaded 2-core machine
def test_calibrate_saves_where_report_finds_it(cli, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("CNNSIZE_CONFIG_DIR", str(tmp_path))
    r = cli("calibrate", "--runs", "1", "--threads", "1")
    assert r.returncode == 0, r.stderr
    saved = json.loads((tmp_path / "profiles" / "cpu.json").read_text())
    assert saved["source"].startswith("measured") and saved["peak_flops"]["float32"] > 0 and saved["threads"] == 1
    assert set(saved["efficiency"]) <= set(EFFICIENCY_KEYS)
    doc = json.loads(cli("report", "lenet5", "--device-profile", "cpu", "-f", "json").stdout)
    assert doc["device_profile"] == "cpu" and doc["totals"]["predicted_seconds"] > 0
