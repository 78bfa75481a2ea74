"""`cnnsize plot`: valid PNG and SVG files whose plotted series are the analysis' own figures."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import cnnsize
from cnnsize.render.plot import plot_data

from .conftest import ROOT, run_cli


def test_plotted_series_are_the_analysis():
    a = cnnsize.analyze("vgg16", batch=2, dtype="float16")
    data = plot_data(a)
    assert data["layers"] == [r.name for r in a.layers]
    one = cnnsize.analyze("vgg16")  # batch 1, float32
    assert data["activation_bytes"] == [2 * 2 * r.activations for r in one.layers]  # batch 2, 2 bytes each
    assert data["param_bytes"] == [2 * r.params for r in one.layers]
    assert data["rf_size"][data["layers"].index("pool5")] == 212 and data["rf_size"][-1] is None
    assert data["depth"][-1] == 16
    # the insight the picture is for: most activation memory early, most parameters late
    act, par = data["activation_bytes"], data["param_bytes"]
    assert act.index(max(act)) < len(act) // 4 and par.index(max(par)) > 3 * len(par) // 4


def test_png_and_svg_files(tmp_path):
    pytest.importorskip("matplotlib")
    png, svg = tmp_path / "v.png", tmp_path / "v.svg"
    for path in (png, svg):
        result = run_cli("plot", "alexnet_cs231n", "-o", str(path))
        assert result.returncode == 0, result.stderr
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    assert width > 500 and height > 400
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    text = svg.read_text()
    assert "alexnet_cs231n: memory per layer" in text and "receptive field" in text  # text kept as text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.png", "v.svg"]  # no temporary files left


def test_svg_is_reproducible():
    pytest.importorskip("matplotlib")
    from cnnsize.render.plot import picture

    a = cnnsize.analyze("lenet5")
    assert picture(a, "svg") == picture(a, "svg")


def test_bad_picture_name_is_a_user_error(tmp_path):
    result = run_cli("plot", "lenet5", "-o", str(tmp_path / "x.jpg"))
    assert result.returncode == 2 and ".png or .svg" in result.stderr


def test_missing_matplotlib_says_how_to_install(tmp_path):
    code = ("import sys\nsys.modules['matplotlib'] = None\nfrom cnnsize.cli import main\n"
            f"sys.exit(main(['plot', 'lenet5', '-o', {str(tmp_path / 'x.png')!r}]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2
    assert "matplotlib" in result.stderr and "pip install 'cnnsize[plot]'" in result.stderr
