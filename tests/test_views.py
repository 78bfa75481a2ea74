"""compare, sweep, the LaTeX/HTML formats, the table's share bars and Jupyter display, checked against the
analysis of each spec computed on its own."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser

import pytest

import cnnsize
from cnnsize.api import compare, sweep_records
from cnnsize.render import FORMATS, render
from cnnsize.render.boxes import bar
from cnnsize.render.text import share_cells
from cnnsize.render.views import RATIO_KEYS, totals_record

from .conftest import run_cli

SPECS = ("vgg16", "vgg11", "lenet5")
WIDTH_SPEC = """
name: widths
vars: {width: 8}
input: [3, 32, 32]
layers:
  - conv: {filters: width, kernel: 3, pad: 1}
  - relu
  - maxpool: {kernel: 2}
  - conv: {filters: width * 2, kernel: 3, pad: 1}
  - global_avgpool
  - fc: {units: 10}
"""


class _Cells(HTMLParser):
    """Collects the text of every table row and checks the tags balance."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self.stack: list[str] = []
        self.cell = None

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        assert self.stack.pop() == tag
        if tag in ("td", "th"):
            self.rows[-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def html_rows(text: str) -> list[list[str]]:
    parser = _Cells()
    parser.feed(text)
    assert parser.stack == []
    return parser.rows


def test_compare_totals_and_ratios_match_each_analysis():
    records = compare(list(SPECS))
    first = cnnsize.analyze(SPECS[0])
    for spec, rec in zip(SPECS, records):
        a = cnnsize.analyze(spec)
        assert rec["params"] == a.totals["params"] and rec["macs"] == a.totals["macs"]
        assert rec["activations"] == a.totals["activations"] and rec["weight_layers"] == a.totals["weight_layers"]
        assert rec["inference_peak_bytes"] == a.totals["memory"]["inference_peak_bytes"]
        assert rec["training_bytes"] == a.totals["memory"]["training_bytes"]
        assert rec["receptive_field"] == a.totals["receptive_field"].size[0]
        assert rec["params_ratio"] == a.totals["params"] / first.totals["params"]
        assert rec["macs_ratio"] == a.totals["macs"] / first.totals["macs"]
        assert rec["weight_layers_ratio"] == a.totals["weight_layers"] / 16
    assert records[0]["params_ratio"] == 1.0
    assert records[2]["receptive_field_ratio"] == 16 / 212  # lenet5's field against vgg16's


@pytest.mark.parametrize("fmt", FORMATS)
def test_compare_cli_in_every_format(fmt):
    result = run_cli("compare", *SPECS, "--batch", "2", "-f", fmt)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    a = {s: cnnsize.analyze(s, batch=2) for s in SPECS}
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [r["spec"] for r in rows] == list(SPECS)
        for r in rows:
            assert int(r["params"]) == a[r["spec"]].totals["params"]
            assert int(r["activations"]) == a[r["spec"]].totals["activations"]  # batch 2
            assert float(r["macs_ratio"]) == pytest.approx(a[r["spec"]].totals["macs"] / a["vgg16"].totals["macs"])
    elif fmt == "json":
        rows = json.loads(out)["rows"]
        assert {k + "_ratio" for k in RATIO_KEYS} <= set(rows[0])
        assert [r["params"] for r in rows] == [a[s].totals["params"] for s in SPECS]
    elif fmt == "html":
        rows = html_rows(out)
        assert len(rows) == 1 + len(SPECS) and rows[0][0] == "Spec"
        assert rows[2][2] == f"{a['vgg11'].totals['params']:,} ({a['vgg11'].totals['params'] / 138_357_544:.3g}×)"
    elif fmt == "latex":
        body = [line for line in out.splitlines() if line.endswith("\\\\")]
        assert len(body) == 1 + len(SPECS) and all(line.count(" & ") == 10 for line in body)
        assert "\\begin{tabular}" in out and f"{a['lenet5'].totals['params']:,}" in out
    else:
        for s in SPECS:
            assert f"{a[s].totals['params']:,}" in out


def test_sweep_rows_are_the_analysis_of_each_combination():
    records = sweep_records("lenet5", batch=[1, 8], input_shape=[(1, 32, 32), (1, 36, 36)],
                            dtype=["float32", "float16"], fit="floor")
    assert len(records) == 8
    for rec in records:
        a = cnnsize.analyze("lenet5", input_shape=tuple(rec["input_shape"]), batch=rec["batch"], dtype=rec["dtype"],
                            fit="floor")
        assert {k: rec[k] for k in totals_record(a)} == totals_record(a)
    assert {(tuple(r["input_shape"]), r["batch"], r["dtype"]) for r in records} == {
        (s, b, d) for s in [(1, 32, 32), (1, 36, 36)] for b in (1, 8) for d in ("float32", "float16")}


def test_sweep_variables_and_the_dataframe():
    frame = cnnsize.sweep(WIDTH_SPEC, batch=[1, 4], variables={"width": [8, 16, 32]})
    assert list(frame["width"]) == [8, 8, 16, 16, 32, 32] and list(frame["batch"]) == [1, 4] * 3
    for _, row in frame.iterrows():
        spec = WIDTH_SPEC.replace("width: 8", f"width: {row['width']}")
        a = cnnsize.analyze(spec, batch=int(row["batch"]))
        assert row["params"] == a.totals["params"] and row["macs"] == a.totals["macs"]
        assert row["training_bytes"] == a.totals["memory"]["training_bytes"]
    assert frame.loc[0, "input_shape"] == "3×32×32"


def test_sweep_unknown_variable_is_named_with_a_suggestion():
    with pytest.raises(cnnsize.CnnsizeError, match="widht.*did you mean 'width'"):
        sweep_records(WIDTH_SPEC, variables={"widht": [1]})


@pytest.mark.parametrize("fmt", FORMATS)
def test_sweep_cli_in_every_format(fmt, tmp_path):
    spec = tmp_path / "w.yaml"
    spec.write_text(WIDTH_SPEC)
    result = run_cli("sweep", str(spec), "--batch", "1,8", "--dtype", "float32,float16", "--set", "width=8,64",
                     "-f", fmt)
    assert result.returncode == 0, result.stderr
    truth = {(w, b, d): cnnsize.analyze(WIDTH_SPEC.replace("width: 8", f"width: {w}"), batch=b, dtype=d).totals
             for w in (8, 64) for b in (1, 8) for d in ("float32", "float16")}
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert len(rows) == 8
        for r in rows:
            t = truth[(int(r["width"]), int(r["batch"]), r["dtype"])]
            assert int(r["params"]) == t["params"] and int(r["activations_bytes"]) == t["memory"]["activations_bytes"]
    elif fmt == "json":
        rows = json.loads(result.stdout)["rows"]
        assert [(r["width"], r["batch"], r["dtype"]) for r in rows] == list(truth)
        assert [r["macs"] for r in rows] == [t["macs"] for t in truth.values()]
    elif fmt == "html":
        assert len(html_rows(result.stdout)) == 9
    else:
        assert f"{truth[(64, 1, 'float32')]['params']:,}" in result.stdout


def test_sweep_cli_errors_are_one_line():
    result = run_cli("sweep", "lenet5", "--set", "width")
    assert result.returncode == 2 and "NAME=VALUES" in result.stderr and len(result.stderr.splitlines()) == 1
    result = run_cli("sweep", "lenet5", "--batch", "1,x")
    assert result.returncode == 2 and "--batch" in result.stderr
    result = run_cli("sweep", "lenet5", "--set", "width=8")
    assert result.returncode == 2 and "unknown spec variable 'width'" in result.stderr


def test_latex_and_html_reports_hold_every_row():
    a = cnnsize.analyze("alexnet_cs231n")
    rows = html_rows(render(a, "html"))
    assert len(rows) == 1 + len(a.layers) + 1  # header, layers, total
    assert [r[0] for r in rows[1:-1]] == [r.name for r in a.layers]
    assert rows[-1][4] == f"{a.totals['params']:,}"
    assert a._repr_html_() == render(a, "html")
    tex = render(a, "latex")
    body = [line for line in tex.splitlines() if line.endswith("\\\\")]
    assert len(body) == 1 + len(a.layers) + 1 and all(line.count(" & ") == 8 for line in body)
    assert "\\caption{alexnet\\_cs231n}" in tex  # LaTeX's special characters escaped
    assert not any("_" in line.replace("\\_", "") for line in body)


def test_share_bars_scale_to_the_largest_layer():
    assert bar(1.0) == "████████" and bar(0.0) == " " * 8 and bar(0.5) == "████    "
    assert bar(1 / 64).strip() == "▏" and bar(1e-9).strip() == "▏"  # tiny but not nothing
    a = cnnsize.analyze("vgg16")
    cells = share_cells(a, "params")
    top = max(range(len(a.layers)), key=lambda i: a.layers[i].params)
    assert a.layers[top].name == "fc6" and cells[top].startswith("████████")
    assert int(cells[top].split()[-1].rstrip("%")) == round(100 * a.layers[top].params / a.totals["params"])
    table = render(a, "table")
    assert "Act. memory" in table and "Params share" in table  # shown without colour too
    assert share_cells(cnnsize.analyze("lenet5", input_shape=(1, 64, 64)), "activation_bytes") is not None


def test_records_are_the_frame_and_the_rows():
    a = cnnsize.analyze("lenet5", batch=2, dtype="float16")
    records = a.to_records()
    assert [r["name"] for r in records] == [r.name for r in a.layers]
    assert [r["activation_bytes"] for r in records] == [2 * r.activations for r in a.layers]
    assert [r["depth"] for r in records][-1] == a.totals["weight_layers"]
    frame = a.to_frame()
    assert list(frame["param_bytes"]) == [r.params * 2 for r in a.layers]
