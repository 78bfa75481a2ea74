"""What a new user sees: the table fitted to the terminal, --depth, one-line reprs, channels-last inputs, the fit
rule, command typos, and the JSON Schema flagging misspelled kinds."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import cnnsize
from cnnsize.cli import main
from cnnsize.core.text import short_count
from cnnsize.engine.result import COUNT_FIELDS
from cnnsize.render.table import table_text
from cnnsize.spec.sources import bundled_names, bundled_path

from .conftest import run_cli

WIDTHS = (60, 80, 100, 120, 200)


def report(capsys, monkeypatch, *argv, columns: int | None = None):
    """The report as printed to a pipe (capsys), fitted to ``columns`` with --width when given."""
    monkeypatch.setenv("COLUMNS", "77")  # a pipe ignores it: only a terminal's width counts
    code = main(["report", *argv, *(["--width", str(columns)] if columns else [])])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def cells(line: str) -> int:
    from cnnsize.render.boxes import _width

    return _width(line)


# -- the table fits the terminal ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", bundled_names())
def test_every_bundled_report_fits_every_width(name, capsys, monkeypatch):
    for width in WIDTHS:
        out = report(capsys, monkeypatch, name, columns=width)
        too_long = [line for line in out.splitlines() if cells(line) > width]
        assert not too_long, (width, too_long[:2])
        assert "total" in out and "Parameters:" in out  # the totals row and the summary are still there


def test_narrow_table_keeps_the_important_columns_and_shortens_numbers(capsys, monkeypatch):
    out = report(capsys, monkeypatch, "vgg16", columns=80)
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    shown = [h.strip() for h in header.strip("┃").split("┃")]
    assert {"Layer", "Type", "Output", "Params", "MACs"} <= set(shown) and "Receptive field" not in shown
    fc6 = next(line for line in out.splitlines() if "│ fc6 " in line)
    assert "103M" in fc6 and "103,764,992" not in fc6  # 102,760,448 weights + 4,096 biases... as 3 figures
    assert cnnsize.analyze("vgg16").layer("fc6").params == 102_764_544
    assert short_count(102_764_544) == "103M"


def test_pipe_keeps_the_full_table(capsys, monkeypatch):
    a = cnnsize.analyze("vgg16")
    out = report(capsys, monkeypatch, "vgg16")  # capsys: not a terminal, no COLUMNS
    assert out == table_text(a)
    assert "┃ Output " in out and "102,764,544" in out and max(map(cells, out.splitlines())) > 180
    assert report(capsys, monkeypatch, "vgg16", "--wide", columns=80) == out  # --wide: everything, in full
    assert main(["report", "vgg16", "--width", "20"]) == 2 and "too narrow" in capsys.readouterr().err


def test_columns_option(capsys, monkeypatch):
    out = report(capsys, monkeypatch, "lenet5", "--columns", "name,output,params")
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    assert [h.strip() for h in header.strip("┃").split("┃")] == ["Layer", "Output", "Params"]
    assert "61,706" in out  # a pipe: full numbers
    code = main(["report", "lenet5", "--columns", "name,parms"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown column 'parms'" in err and "did you mean 'params'?" in err


def in_a_terminal(*argv: str, columns: int, env_columns: str | None = None) -> str:
    """What the CLI prints to a real terminal (a pseudo-terminal ``columns`` wide), without colours' escapes."""
    import fcntl
    import os
    import pty
    import re
    import struct
    import subprocess
    import sys
    import termios

    main_fd, child_fd = pty.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if env_columns is not None:
        env["COLUMNS"] = env_columns
    proc = subprocess.Popen([sys.executable, "-m", "cnnsize", *argv], stdout=child_fd, stderr=child_fd, env=env)
    os.close(child_fd)
    chunks = []
    while True:
        try:
            data = os.read(main_fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(main_fd)
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_a_terminal_gets_a_table_that_fits_it():
    pytest.importorskip("termios")
    out = in_a_terminal("report", "densenet121", columns=80)
    assert "Output" in out and max(map(cells, out.splitlines())) <= 80
    out = in_a_terminal("report", "densenet121", columns=200, env_columns="100")  # COLUMNS wins, as in shutil
    assert max(map(cells, out.splitlines())) <= 100 < max(map(cells, in_a_terminal(
        "report", "densenet121", columns=200).splitlines()))


@given(st.integers(-(10**30), 10**30))
def test_short_numbers_are_exactly_rounded(n):
    text = short_count(n)
    if abs(n) < 1000:
        assert text == str(n)
        return
    unit = {"K": 3, "M": 6, "G": 9, "T": 12}[text[-1]]
    value = Decimal(text[:-1])
    exact = Decimal(n).scaleb(-unit)
    places = -value.as_tuple().exponent
    assert value == exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    assert len(text[:-1].lstrip("-").replace(".", "")) >= 3 or text[-1] == "T"  # three figures


# -- --depth and collapse -----------------------------------------------------------------------------------------

def test_resnet152_depth_follows_the_spec_structure():
    doc = yaml.safe_load(bundled_path("resnet152").read_text())
    stages = {item["name"]: item["repeat"] for item in doc["layers"] if isinstance(item, dict) and "repeat" in item}
    top = [next(iter(item.values()))["name"] for item in doc["layers"] if "repeat" not in item]
    a = cnnsize.analyze("resnet152")
    one = a.collapse(1)
    assert [r.name for r in one.layers] == ["input", *top[:4], *stages, *top[4:]]
    two = a.collapse(2)
    blocks = [r.name for r in two.layers if r.type == "block"]
    assert blocks == [f"{stage}.{i}" for stage, n in stages.items() for i in range(n)] and len(blocks) == 50
    assert one.layer("layer3").output_shape == a.layer("layer3.35.relu3").output_shape
    assert one.totals == a.totals


@pytest.mark.parametrize("name", bundled_names())
def test_per_layer_sums_equal_the_totals_at_every_depth(name):
    a = cnnsize.analyze(name)
    deepest = max(r.name.count(".") for r in a.layers) + 1
    for depth in range(1, deepest + 1):
        c = a.collapse(depth)
        assert sum(r.folded for r in c.layers) == len(a.layers)
        for key in COUNT_FIELDS:
            assert sum(getattr(r, key) for r in c.layers) == a.totals[key], (depth, key)
    assert len(a.collapse(deepest).layers) == len(a.layers)


def test_depth_on_the_command_line(capsys, monkeypatch):
    out = report(capsys, monkeypatch, "resnet152", "--depth", "1", "-f", "json")
    doc = json.loads(out)
    assert [layer["name"] for layer in doc["layers"]][5:9] == ["layer1", "layer2", "layer3", "layer4"]
    assert doc["totals"] == cnnsize.analyze("resnet152").to_dict()["totals"]
    table = report(capsys, monkeypatch, "resnet152", "--depth", "1")
    assert "block (362 layers)" in table  # layer3: 36 bottlenecks of 10 layers and a 2-layer projection
    assert main(["report", "resnet152", "--depth", "0"]) == 2
    assert "depth must be a positive integer" in capsys.readouterr().err


# -- Python -------------------------------------------------------------------------------------------------------

def test_reprs_are_one_short_line():
    a = cnnsize.analyze("vgg16")
    things = [a, a.layers[1], cnnsize.fit_sizes("alexnet_cs231n", 200, 260), cnnsize.explain("lenet5")]
    for thing in things:
        text = repr(thing)
        assert "\n" not in text and len(text) <= 200, text
    assert repr(a) == ("Analysis(name='vgg16', input=3×224×224, batch=1, dtype='float32', layers=40, "
                       "params=138,357,544, macs=15,470,264,320)")
    assert repr(a.layer("conv1_1")) == ("LayerResult(name='conv1_1', type='conv', output=64×224×224, params=1,792, "
                                        "macs=86,704,128)")


def test_print_shows_the_table_and_the_sizes(capsys):
    a = cnnsize.analyze("vgg16")
    print(a)
    out = capsys.readouterr().out
    assert out == table_text(a)  # not a terminal: the full table
    print(cnnsize.fit_sizes("alexnet_cs231n", 200, 260))
    assert capsys.readouterr().out.strip().endswith("227, 259")


def test_analyze_takes_what_from_torch_returns():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30 * 30, 10))
    imported = cnnsize.from_torch(model, (3, 32, 32))
    a = cnnsize.analyze(imported)
    assert a.totals["params"] == sum(p.numel() for p in model.parameters())


# -- inputs people type -------------------------------------------------------------------------------------------

def test_channels_last_input_is_stopped_with_the_shape_to_use(capsys):
    assert main(["report", "lenet5", "--input", "32x32x1"]) == 2
    assert "did you mean 1x32x32?" in capsys.readouterr().err
    conv = ["calc", "conv", "-k", "10", "-F", "5", "-p", "2", "--input"]
    assert main([*conv, "32x32x3"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 3x32x32?" in err and "--layout hwc" in err
    assert main([*conv, "32x32x3", "--layout", "hwc"]) == 0
    converted = capsys.readouterr().out
    assert main([*conv, "3x32x32"]) == 0
    assert capsys.readouterr().out == converted and "(5·5·3 + 1)·10 = 760" in converted
    assert main([*conv, "32x32x3", "--layout", "chw"]) == 0
    assert "(5·5·32 + 1)·10 = 8010" in capsys.readouterr().out  # as written, when asked


def test_channels_last_spec_input():
    spec = "input: [32, 32, 3]\nlayers:\n  - conv: {filters: 10, kernel: 5, pad: 2}\n"
    with pytest.raises(cnnsize.SpecError) as info:
        cnnsize.analyze(spec)
    assert "did you mean [3, 32, 32]?" in info.value.one_line() and ":1:" in info.value.one_line()
    assert cnnsize.analyze(spec, layout="hwc").totals["params"] == (5 * 5 * 3 + 1) * 10
    assert cnnsize.analyze(spec, layout="chw").totals["params"] == (5 * 5 * 32 + 1) * 10
    result = run_cli("report", "-", input=spec)
    assert result.returncode == 2 and "did you mean [3, 32, 32]?" in result.stderr


def test_input_of_another_rank_or_no_shape_is_an_error(capsys):
    assert main(["report", "vgg16", "--input", "3x224"]) == 2
    err = capsys.readouterr().err
    assert "input 3x224 has 2 axes but vgg16's input 3x224x224 has 3 (C×H×W)" in err
    assert main(["report", "vgg16", "--input", "foo"]) == 2
    assert "e.g. 3x224x224" in capsys.readouterr().err


def test_fit_follows_the_spec_rule(capsys):
    assert main(["fit", "resnet18", "--size", "224"]) == 0
    out = capsys.readouterr().out
    assert "resnet18 has fit: floor" in out and "224 runs (fit: floor)" in out
    assert "224 does not fit: " in out and "112.5" in out  # the exact rule, listed too
    assert main(["fit", "resnet18", "--size", "224", "--fit", "floor"]) == 0
    assert "fits exactly" not in capsys.readouterr().out


def test_axes_labels_and_singular(capsys, monkeypatch):
    out = report(capsys, monkeypatch, "m5_speech")
    assert "┃ Output " in out and "(C×L), batch 1" in out
    a = cnnsize.analyze("input: [2, 5, 8, 8]\nlayers:\n  - conv: {filters: 3, kernel: 3, pad: 1}\n")
    text = table_text(a)
    assert "┃ Output " in text and "(C×D×H×W), batch 1, float32; 1 weight layer." in text


# -- the command line ---------------------------------------------------------------------------------------------

def test_misspelled_command_gets_a_suggestion(capsys):
    assert main(["reprot", "vgg16"]) == 2
    assert "unknown command 'reprot'; did you mean 'report'?" in capsys.readouterr().err


def test_debug_before_or_after_the_command(capsys):
    for argv in (["--debug", "report", "nosuch"], ["report", "nosuch", "--debug"]):
        with pytest.raises(cnnsize.SpecError):
            main(argv)
    assert main(["report", "lenet5", "--debug", "-f", "json"]) == 0


def test_calc_kernel_is_not_f(capsys):
    assert main(["calc", "conv", "-i", "3x32x32", "-k", "10", "-f", "5"]) == 2
    assert "-F or --kernel" in capsys.readouterr().err


# -- the JSON Schema ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["input: [3, 8, 8]\nlayers:\n  - reluu\n",
                                  "input: [3, 8, 8]\nlayers:\n  - maxpol: {kernel: 2}\n",
                                  "input: [3, 8, 8]\nlayers:\n  - {convv: {filters: 1, kernel: 1}}\n"])
def test_schema_flags_misspelled_kinds(text):
    jsonschema = pytest.importorskip("jsonschema")
    from cnnsize.spec.schema import build_schema

    validator = jsonschema.Draft7Validator(build_schema())
    assert list(validator.iter_errors(yaml.safe_load(text)))
    with pytest.raises(cnnsize.SpecError):  # cnnsize itself refuses them too
        cnnsize.analyze(text)
    fixed = text.replace("reluu", "relu").replace("maxpol", "maxpool").replace("convv", "conv")
    assert not list(validator.iter_errors(yaml.safe_load(fixed)))


# -- the executor's figures ---------------------------------------------------------------------------------------

def test_a_figure_above_the_peak_is_remeasured_and_flagged(monkeypatch):
    pytest.importorskip("torch")
    from cnnsize.executor import timing

    calls = []

    def fake_peak(dev, tdtype, **kwargs):  # a peak far below what lenet5 reaches, then a better one
        calls.append(kwargs)
        return 1e-6 if len(calls) == 1 else 2e-6

    monkeypatch.setattr(timing, "measure_peak", fake_peak)
    t = cnnsize.bench("lenet5", device="cpu", runs=2, warmup=0)
    assert len(calls) == 2 and t.peak_gflops == 2e-6  # measured again, the larger kept
    assert t.unreliable and t.fraction_of_peak > 1 and t.to_dict()["unreliable"] is True
    text = "\n".join(t.lines())
    assert "(1024×1024 float32 matmul)" in text and "UNRELIABLE" in text and "measured again" in text
    monkeypatch.setattr(timing, "measure_peak", lambda dev, tdtype, **kw: 1e9)  # a peak it cannot reach
    t = cnnsize.bench("lenet5", device="cpu", runs=2, warmup=0)
    assert not t.unreliable and "unreliable" not in "\n".join(t.lines()).lower()


def test_validate_compares_training_figures_at_the_batch_shown(capsys):
    pytest.importorskip("torch")
    report_saved = cnnsize.analyze("lenet5").totals["memory"]["saved_for_backward_bytes"]
    v = cnnsize.validate("lenet5", device="cpu", runs=0)
    saved = v.totals["saved_for_backward_bytes"]
    assert saved.batch == 1 and saved.predicted == saved.measured == report_saved  # no batch norm: batch 1
    v = cnnsize.validate("resnet18", device="cpu", runs=0, input_shape=(3, 64, 64))  # batch norm: batch 2
    saved = v.totals["saved_for_backward_bytes"]
    two = cnnsize.analyze("resnet18", input_shape=(3, 64, 64), batch=2, device="cpu").totals["memory"]
    assert saved.batch == 2 and saved.predicted == two["saved_for_backward_bytes"] == saved.measured
    assert any("batch 2" in n for n in v.notes)
    assert main(["validate", "lenet5", "--device", "cpu", "--runs", "0"]) == 0
    out = capsys.readouterr().out
    assert "Batch" in out and "Tolerance" in out and "±10% + 256 KiB" in out


def test_training_peak_tolerance_is_relative():
    pytest.importorskip("torch")
    import torch

    from cnnsize.executor.validation import _within

    cpu = torch.device("cpu")
    predicted = 8 * 2**20  # a small network's step: 14.5% off must fail, as 9% off passes
    assert not _within(predicted, int(predicted * 1.145), 1, cpu).ok
    assert not _within(predicted, int(predicted * 0.855), 1, cpu).ok
    assert _within(predicted, int(predicted * 1.09), 1, cpu).ok
    assert _within(predicted, predicted, 1, cpu).tolerance == "±10% + 256 KiB"


# -- typed results ------------------------------------------------------------------------------------------------

def test_totals_and_memory_are_records_that_read_as_before():
    from cnnsize.core.plain import fields, is_plain
    from cnnsize.engine.result import MemoryBudget, Totals

    a = cnnsize.analyze("resnet18")
    t, m = a.totals, a.totals["memory"]
    assert isinstance(t, Totals) and isinstance(m, MemoryBudget) and is_plain(t)
    assert t.params == t["params"] == 11_689_512 and t.memory is m and m.training_bytes == m["training_bytes"]
    assert "training_bytes_all_trainable" not in m and m.get("training_bytes_all_trainable") is None
    frozen = cnnsize.analyze("resnet18", freeze_until="layer1.0.conv1").totals.memory
    assert frozen["training_bytes_all_trainable"] == m.training_bytes  # the optional key appears when it applies
    doc = a.to_dict()["totals"]
    assert list(doc) == [*COUNT_FIELDS, "weight_layers", "memory", "receptive_field"]
    assert list(doc["memory"]) == [name for name in fields(MemoryBudget) if name != "training_bytes_all_trainable"]
    assert json.loads(json.dumps(doc))["memory"] == {k: v for k, v in dict(m).items()}


def test_figures_added_to_the_totals_read_back_and_keep_their_place():
    """An optional pass (a counting convention, memory traffic) adds its totals as keys, as to a dict."""
    a = cnnsize.analyze("lenet5")
    a.totals["counted"] = 416_520
    assert a.totals.counted == a.totals["counted"] == 416_520 and "counted" in a.totals
    assert list(a.to_dict()["totals"])[-4:] == ["weight_layers", "counted", "memory", "receptive_field"]
    assert a.totals.replaced(weights=0).get("counted") == 416_520
    with pytest.raises(AttributeError):
        a.totals.nothing  # noqa: B018


@pytest.mark.zoo
@pytest.mark.parametrize("name", ["vgg11", "vgg13", "vgg16", "vgg19"])
def test_vgg_at_320_against_torchvision(name):
    """torchvision's VGGs run at 320×320 with the parameters they have at 224 (their AdaptiveAvgPool2d(7)): so do
    the bundled specs, built here on the meta device (no weights allocated or downloaded)."""
    from .conftest import need

    torch = need("torch")
    torchvision = need("torchvision")
    with torch.device("meta"):
        model = getattr(torchvision.models, name)(weights=None).eval()
        out = model(torch.zeros(1, 3, 320, 320))
    a = cnnsize.analyze(name, input_shape=(3, 320, 320))
    assert a.totals["params"] == sum(p.numel() for p in model.parameters())
    assert tuple(out.shape[1:]) == a.layers[-1].output_shape == (1000,)
