"""The report command as a user runs it: formats, JSON schema, totals, output files, bundled names."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest

import cnnsize
from cnnsize.engine.result import COUNT_FIELDS
from cnnsize.spec.sources import bundled_names

from .conftest import ROOT, run_cli


@pytest.mark.parametrize("name", bundled_names())
def test_per_layer_columns_sum_to_the_totals(name):
    a = cnnsize.analyze(name)
    for key in COUNT_FIELDS:
        assert sum(getattr(r, key) for r in a.layers) == a.totals[key], key
    weighted = ("conv", "fc", "locally_connected", "linear", "patch_embed", "mha", "swin_attention", "deconv",
                "box_conv", "box_deconv")
    assert a.totals["weight_layers"] == sum(1 for r in a.layers if r.type in weighted)
    assert a.totals["flops"] == 2 * a.totals["macs"]
    assert a.totals["params"] == a.totals["weights"] + a.totals["biases"]


def test_json_schema_and_values():
    result = run_cli("report", "vgg16", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"schema_version", "name", "input_shape", "batch", "dtype", "layers", "totals"}
    assert doc["schema_version"] == 1 and doc["input_shape"] == [3, 224, 224] and doc["dtype"] == "float32"
    layer_keys = {"name", "type", "inputs", "output_shape", "weights", "biases", "params", "trainable_params",
                  "buffers", "activations", "connections", "macs", "flops", "receptive_field"}
    assert all(set(layer) == layer_keys for layer in doc["layers"])
    pool5 = next(layer for layer in doc["layers"] if layer["name"] == "pool5")
    assert pool5["receptive_field"] == {"size": [212, 212], "stride": [32, 32], "start": [-90, -90]}
    assert next(layer for layer in doc["layers"] if layer["name"] == "fc6")["receptive_field"] is None
    t = doc["totals"]
    assert t["params"] == 138_357_544 and t["macs"] == 15_470_264_320 and t["weight_layers"] == 16
    assert t["memory"]["params_bytes"] == 138_357_544 * 4
    assert t["memory"]["activations_bytes"] == (15_237_608 + 512 * 7 * 7) * 4  # the slide's rows + the 7x7 pool
    assert t["receptive_field"]["size"] == [212, 212]


def test_batch_dtype_and_input_options():
    doc = json.loads(run_cli("report", "vgg16", "--batch", "4", "--dtype", "float16", "--format", "json").stdout)
    assert doc["batch"] == 4 and doc["dtype"] == "float16"
    assert doc["totals"]["activations"] == 4 * (15_237_608 + 512 * 7 * 7)  # whole batch
    assert doc["totals"]["macs"] == 4 * 15_470_264_320
    assert doc["totals"]["memory"]["params_bytes"] == 2 * 138_357_544
    small = json.loads(run_cli("report", "lenet5", "--input", "1x64x64", "--format", "json").stdout)
    assert small["input_shape"] == [1, 64, 64]
    assert small["layers"][1]["output_shape"] == [6, 60, 60]


def test_table_markdown_and_csv():
    table = run_cli("report", "lenet5")
    assert table.returncode == 0 and "117,600" in table.stdout and "Output" in table.stdout
    md = run_cli("report", "lenet5", "--format", "markdown").stdout
    assert md.startswith("# lenet5") and "| C1 | conv" in md
    rows = list(csv.DictReader(io.StringIO(run_cli("report", "lenet5", "--format", "csv").stdout)))
    assert rows[-1]["name"] == "total" and int(rows[-1]["params"]) == cnnsize.analyze("lenet5").totals["params"]
    assert {r["name"]: int(r["connections"]) for r in rows}["C3"] == 240_000


def test_output_file_is_written_whole(tmp_path):
    out = tmp_path / "vgg.json"
    result = run_cli("report", "vgg16", "-f", "json", "-o", str(out))
    assert result.returncode == 0 and result.stdout == ""
    assert json.loads(out.read_text())["totals"]["params"] == 138_357_544
    assert [p.name for p in tmp_path.iterdir()] == ["vgg.json"]  # no temporary files left behind


def test_failed_report_leaves_no_file(tmp_path):
    out = tmp_path / "bad.json"
    spec = tmp_path / "bad.yaml"
    spec.write_text("input: [1, 7, 7]\nlayers:\n  - conv: {filters: 1, kernel: 3, stride: 3}\n")
    result = run_cli("report", str(spec), "-o", str(out))
    assert result.returncode == 2 and not out.exists() and list(tmp_path.iterdir()) == [spec]


def test_bundled_names_work_from_any_folder(tmp_path):
    for name in ("vgg16", "vgg16.yaml"):
        result = run_cli("report", name, "-f", "json", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["name"] == "vgg16"


def test_fit_floor_from_the_command_line(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("input: [1, 7, 7]\nlayers:\n  - conv: {filters: 1, kernel: 3, stride: 3}\n")
    doc = json.loads(run_cli("report", str(spec), "--fit", "floor", "-f", "json").stdout)
    assert doc["layers"][1]["output_shape"] == [1, 2, 2]  # floor((7 - 3)/3) + 1, as torch computes


def test_spec_from_standard_input():
    result = run_cli("report", "-", "-f", "json", input="input: [3, 32, 32]\nlayers:\n  - conv: {filters: 10, "
                                                        "kernel: 5, pad: 2}\n")
    assert result.returncode == 0 and json.loads(result.stdout)["totals"]["params"] == 760


def test_specs_lists_every_bundled_spec_with_totals():
    result = run_cli("specs", "--format", "json")
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(records) == set(bundled_names())
    assert records["vgg16"]["params"] == 138_357_544
    assert "vgg16" in run_cli("specs").stdout


def test_python_api_views():
    a = cnnsize.analyze("lenet5")
    frame = a.to_frame()
    assert frame.loc["C3", "connections"] == 240_000
    assert a.to_dict()["totals"]["params"] == a.totals["params"]
    assert a.to_markdown().startswith("# lenet5")
    assert cnnsize.analyze({"input": [3, 32, 32], "layers": [{"conv": {"filters": 10, "kernel": 5}}]}).totals[
        "params"] == 760
    assert cnnsize.analyze(ROOT / "specs" / "lenet5.yaml").totals == a.totals
    assert cnnsize.analyze((ROOT / "specs" / "lenet5.yaml").read_text()).totals == a.totals


def test_report_does_not_import_torch_pandas_or_sympy():
    code = ("import sys\nfrom cnnsize.cli import main\nmain(['report', 'vgg16', '-f', 'json'])\n"
            "bad = [m for m in ('torch', 'pandas', 'sympy', 'numpy') if m in sys.modules]\n"
            "sys.stderr.write('IMPORTED:' + ','.join(bad))\n")
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.stderr.strip().endswith("IMPORTED:"), result.stderr


def test_report_table_leaves_slow_standard_modules_alone():
    """Start-up (issue 6): the table path loads none of these beyond what `python -c pass` loads here.

    Measured against a bare interpreter in the same environment, as site hooks may load some of them.
    """
    import subprocess
    import sys

    slow = ("pathlib", "importlib.resources", "tempfile", "shutil", "json", "csv", "fractions", "decimal")
    show = "import sys\nsys.stderr.write('LOADED:' + ','.join(sorted(sys.modules)))\n"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    def loaded(code):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
        return set(result.stderr.rpartition("LOADED:")[2].split(","))

    bare = loaded(show)
    report = loaded("from cnnsize.cli import main\nmain(['report', 'vgg16'])\n" + show)
    assert "cnnsize.render.table" in report
    assert sorted((report - bare) & set(slow)) == []
