"""What a new user hit (issue 21): what each layer's output is (view, in place, new tensor) as its kind says, and
no renderer deciding it from kind names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cnnsize
from cnnsize.cli import main
from cnnsize.layers import REGISTRY
from cnnsize.layers.base import IN_PLACE, NEW, VIEW

ROOT = Path(__file__).resolve().parents[1]
VIEWS = """name: views
input: [8, 16, 16]
layers:
  - conv: {name: c, filters: 8, kernel: 3, pad: 1}
  - relu: {name: r, inplace: true}
  - chunk: {name: half, chunks: 2, index: 0}
  - slice: {name: cut, axis: 1, start: 0, end: 8}
  - dropout: {name: d}
  - flatten: {name: flat}
  - fc: {name: fc, units: 4}
"""


@pytest.fixture
def views_spec(tmp_path):
    path = tmp_path / "views.yaml"
    path.write_text(VIEWS, encoding="utf-8")
    return path


def test_each_kind_says_what_its_output_is_as_torch_makes_it(views_spec):
    """A view or in-place layer's torch output shares its input's storage; a new tensor does not."""
    torch = pytest.importorskip("torch")
    a = cnnsize.analyze(str(views_spec))
    seen = {}
    for row in a.layers[1:]:
        ins = [a.layer(n).output_shape for n in row.inputs]
        x = torch.randn(2, *ins[0])
        y = row.kind.build(ins, row.output_shape).eval()(x)
        shares = y.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
        assert shares == (row.storage != NEW), row.name
        seen[row.name] = row.storage
    assert seen == {"c": NEW, "r": IN_PLACE, "half": VIEW, "cut": VIEW, "d": VIEW, "flat": VIEW, "fc": NEW}
    assert all(r.activations == 0 for r in a.layers if r.storage != NEW)


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_chunk_and_slice_read_as_views(views_spec, fmt, capsys):
    assert main(["report", str(views_spec), "-f", fmt]) == 0
    out = capsys.readouterr().out
    out = out[out.index("<table"):] if fmt == "html" else out  # the table, after the drawing above it
    lines = {name: next(line for line in out.splitlines() if f" {name} " in line or f">{name}<" in line)
             for name in ("r", "half", "cut", "flat")}
    assert "0 (in place)" in lines["r"]
    for name in ("half", "cut", "flat"):
        assert "0 (view)" in lines[name] and "in place" not in lines[name], lines[name]


def test_every_kind_says_what_it_makes():
    assert {kind.makes for kind in REGISTRY.values()} <= {NEW, VIEW, IN_PLACE}


def _string_literals(path: Path) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)}


# Where a kind's name may be written outside cnnsize/layers (whose index.py, generated, names every kind): words
# of another vocabulary that a kind shares, never a test of what kind a layer is
SHARED_WORDS = {
    "cli/calc.py": ("the calc command's subcommands are the calculators of these kinds, named for them",
                    {"conv", "fc", "locally_connected"}),
    "importers/torch_import.py": ("torch's own operator and function names (x += y is torch's add)",
                                  {"add", "sub", "mul", "div", "chunk",
                                   # the tensor methods that give a view of a parameter (_VIEWS_OF_A_PARAMETER)
                                   "view", "reshape", "unsqueeze", "squeeze", "flatten", "expand", "permute",
                                   "transpose", "contiguous"}),
    "importers/yolo.py": ("the spec it writes: Ultralytics' modules as the kinds they are made of",
                          {"adaptive_avgpool", "add", "anchors", "avgpool", "bn", "cat", "chunk", "concat",
                           "contiguous", "conv", "deconv", "div", "dropout", "flatten", "linear", "matmul", "maxpool",
                           "mul", "reshape", "scalar", "sigmoid", "silu", "slice", "softmax", "sub", "transpose",
                           "upsample", "zeropad", "identity", "layer_scale", "permute", "reduce", "stack", "unary",
                           # YOLO26's Pose26 decoding, its training-only branches, its Depth head's end
                           "expand", "unused", "hardtanh", "buffer_affine",
                           # the YAML's activation, as Conv's
                           "gelu", "hardswish", "leaky_relu", "relu", "relu6", "tanh"}),
    "importers/yolo_world.py": ("the spec it writes: YOLO-World's and YOLOE's modules as the kinds they are made of",
                                {"adaptive_maxpool", "add", "anchors", "bias_add", "bn", "cat", "chunk", "concat",
                                 "div", "const_tensor", "contiguous", "contrastive", "conv", "flatten", "layernorm",
                                 "linear", "matmul", "mul", "permute", "reduce", "reshape", "scalar", "sigmoid",
                                 "slice", "softmax", "transpose", "deconv", "maxpool", "relu", "unused"}),
    "passes/conventions.py": ("causes, what a kind is for the counting rules (a softmax, a dropout)",
                              {"softmax", "dropout"}),
    "passes/latency.py": ("a device profile's efficiency keys, the JSON a profile writes", {"conv", "fc", "lrn"}),
}


def test_no_module_outside_the_kinds_names_a_kind():
    """Knowledge of a kind lives on its class (cnnsize/layers): no other module names a layer kind, so none switches
    on one and a new kind is its own file (renderers, passes, importers, the executor, the engine, the CLI)."""
    kinds = set(REGISTRY)
    named = {}
    for path in sorted((ROOT / "cnnsize").rglob("*.py")):
        where = path.relative_to(ROOT / "cnnsize").as_posix()
        if where.startswith("layers/"):
            continue
        found = _string_literals(path) & kinds - SHARED_WORDS.get(where, ("", set()))[1]
        if found:
            named[where] = sorted(found)
    assert named == {}, "put what these modules know of a kind on the kind (cnnsize/layers)"
    assert {"conv", "bn", "opaque"} <= kinds  # the registry is read whole, not only the kinds loaded so far


# -- asked-for columns win at a narrow terminal; what is hidden is named ------------------------------------------

def _header(out: str) -> list[str]:
    line = next(line for line in out.splitlines() if line.startswith("┃"))
    return [h.strip() for h in line.strip("┃").split("┃")]


def _hidden(out: str) -> list[str]:
    text = " ".join(out.split("Hidden at ", 1)[1].split("(--wide")[0].split())
    return [h.strip() for h in text.split(": ", 1)[1].split(", ")]


@pytest.mark.parametrize(("asked", "headers"), [
    (["--count", "torchinfo"], ["Counted (torchinfo)"]),
    (["--traffic"], ["Bytes read", "Bytes written", "FLOP/byte"]),
    (["--device-profile", "t4"], ["Predicted s", "Bound"]),
    (["--columns", "name,rf,buffers,biases,flops"], ["Receptive field", "Buffers", "Biases", "FLOPs"]),
])
def test_what_is_asked_for_wins_at_80_columns(asked, headers, capsys):
    assert main(["report", "resnet50", "--width", "80", *asked]) == 0
    out = capsys.readouterr().out
    from cnnsize.render.table import COLUMNS

    long_name = {short: full for full, short in COLUMNS.values()}
    shown = [long_name.get(h, h) for h in _header(out)]
    assert set(headers) <= set(shown), shown
    assert main(["report", "resnet50", "--wide", *asked]) == 0
    full = [h.split(" (C")[0] for h in _header(capsys.readouterr().out)]
    hidden = [h.split(" (C")[0] for h in _hidden(out)] if "Hidden at" in out else []
    assert sorted(hidden + shown) == sorted(full), (hidden, shown, full)
    assert all(len(line) <= 80 for line in out.splitlines())


def test_a_table_that_fits_hides_nothing_and_says_nothing(capsys):
    assert main(["report", "lenet5", "--width", "200"]) == 0
    assert "Hidden at" not in capsys.readouterr().out


def test_columns_are_deduplicated_and_bounded(capsys):
    import time

    assert main(["report", "lenet5", "--columns", "name,params,name,params"]) == 0
    assert _header(capsys.readouterr().out) == ["Layer", "Params"]
    started = time.perf_counter()
    assert main(["report", "resnet50", "--columns", ",".join(["name", "params"] * 500)]) == 2
    err = capsys.readouterr().err
    assert time.perf_counter() - started < 5 and len(err.strip().splitlines()) == 1 and "--columns names more" in err


# -- every command's table fits the terminal ----------------------------------------------------------------------

FITTED = {
    "compare": ["compare", "resnet50", "vgg16", "mobilenet_v2", "swin_t"],
    "conventions": ["conventions", "swin_t"],
    "sweep": ["sweep", "resnet18", "-b", "1,8", "-i", "3x224x224,3x320x320", "--dtype", "float32,bfloat16"],
    "specs": ["specs"],
    "fit": ["fit", "resnet50", "--max", "300"],
    "explain": ["explain", "lenet5"],
    "report": ["report", "swin_t", "--count", "fvcore"],
}


def _max_width(text: str) -> int:
    from cnnsize.render.boxes import _width

    return max(map(_width, text.splitlines()))


def _at_terminal_width(argv, width, capsys, monkeypatch) -> str:
    """The command's output as a terminal ``width`` cells wide shows it (COLUMNS set, as the shell does)."""
    import cnnsize.render.boxes as boxes

    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setattr(boxes, "terminal_width", lambda: width)
    assert main(list(argv)) in (0, 1)
    return capsys.readouterr().out


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("name", sorted(FITTED))
def test_every_command_fits_the_terminal(name, width, capsys, monkeypatch):
    out = _at_terminal_width(FITTED[name], width, capsys, monkeypatch)
    assert _max_width(out) <= width
    if name in ("compare", "conventions", "sweep"):
        assert main([*FITTED[name], "--wide"]) == 0  # --wide: everything, as a pipe gets it
        wide = capsys.readouterr().out
        assert _max_width(wide) > width and "Hidden" not in wide
        if "Hidden at" in out:
            assert f"Hidden at {width} columns: " in out


@pytest.mark.slow  # torch builds and runs the networks
@pytest.mark.parametrize("width", [80, 120])
def test_validate_and_bench_fit_the_terminal(width, capsys, monkeypatch):
    pytest.importorskip("torch")
    out = _at_terminal_width(["validate", "resnet18", "-i", "3x32x32", "--runs", "1", "--warmup", "0"], width, capsys,
                             monkeypatch)
    assert "every figure matches torch" in out and _max_width(out) <= width
    out = _at_terminal_width(["bench", "lenet5", "--runs", "2", "--warmup", "0", "--no-peak", "--per-layer"], width,
                             capsys, monkeypatch)
    assert "Per-layer" in out and _max_width(out) <= width


def test_a_real_terminal_gets_compare_fitted():
    pytest.importorskip("termios")
    from .test_ux import in_a_terminal

    out = in_a_terminal("compare", "resnet50", "vgg16", columns=80)
    assert "Comparison" in out and _max_width(out) <= 80 and "Hidden at 80 columns" in out
    assert _max_width(in_a_terminal("compare", "resnet50", "vgg16", "--width", "120", columns=80)) <= 120


# -- each output cell says which axes it shows ---------------------------------------------------------------------

AXES = """name: axes
input: [3, 20, 24]
layers:
  - conv: {name: c, filters: 8, kernel: 1}
  - permute: {name: p, dims: [1, 2, 0]}
  - linear: {name: l, units: 5}
  - transpose: {name: t, axes: [0, 1]}
  - flatten: {name: f, start: 0, end: 1}
  - flatten: {name: g}
"""


def test_output_axes_follow_torch(tmp_path):
    """Axes of distinct sizes are tracked through each layer torch builds: each label follows its size."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "axes.yaml"
    path.write_text(AXES, encoding="utf-8")
    a = cnnsize.analyze(str(path))
    a.label_axes()
    rows = {r.name: r for r in a.layers}
    for row in a.layers[1:]:
        src = rows[row.inputs[0]]
        x = torch.zeros(1, *src.output_shape)
        out = tuple(row.kind.build([src.output_shape], row.output_shape)(x).shape[1:])
        by_size = dict(zip(src.output_shape, src.axes))
        for size, axis in zip(out, row.axes):
            if size in by_size:  # an axis torch kept (sizes are distinct): it keeps its name
                assert axis == by_size[size], (row.name, out, row.axes)
            elif len(out) > 1 and size == src.output_shape[0] * src.output_shape[1]:
                assert axis == "·".join(src.axes[:2]), row.name  # merged axes are named together
    assert [rows[n].axes for n in "cpltfg"] == [("C", "H", "W"), ("H", "W", "C"), ("H", "W", "C"), ("W", "H", "C"),
                                                ("W·H", "C"), ("D",)]


def test_swin_and_vit_cells_name_their_axes(capsys):
    assert main(["report", "swin_t", "--columns", "name,output"]) == 0
    out = capsys.readouterr().out
    assert _header(out) == ["Layer", "Output"] and "(C×H×W)" not in _header(out)
    assert "56×56×96 (H×W×C)" in out and "96×56×56 " in out and "96×56×56 (" not in out
    assert main(["report", "vit_b_16", "--columns", "name,output", "-f", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "196×768 (T×D)" in out and "T tokens, D features" in out and "Output (C" not in out


# -- PyTorch's names get cnnsize's -------------------------------------------------------------------------------

def _error(tmp_path, capsys, layer: str, *extra: str) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(f"input: [3, 32, 32]\nlayers:\n  - {layer}\n", encoding="utf-8")
    assert main(["report", str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize(("layer", "ours"), [
    ("conv: {out_channels: 8, kernel: 3}", "filters"), ("conv: {filters: 8, kernel_size: 3}", "kernel"),
    ("conv: {filters: 8, kernel: 3, padding: 1}", "pad"), ("fc: {out_features: 10}", "units"),
    ("maxpool: {kernel_size: 2}", "kernel"), ("linear: {out_features: 10}", "units"),
])
def test_pytorch_setting_names_are_told_ours(layer, ours, tmp_path, capsys):
    """Each suggestion is a setting of that kind, and writing it instead works."""
    err = _error(tmp_path, capsys, layer)
    torch_name = next(k for k in ("out_channels", "kernel_size", "padding", "out_features") if k in layer)
    assert f"PyTorch's {torch_name} is cnnsize's '{ours}'" in err, err
    kind = layer.split(":")[0]
    assert ours in REGISTRY[kind].params
    path = tmp_path / "fixed.yaml"
    path.write_text(f"input: [3, 32, 32]\nlayers:\n  - {layer.replace(torch_name, ours)}\n", encoding="utf-8")
    assert main(["report", str(path)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("name", ["in_channels", "in_features"])
def test_input_sizes_pytorch_asks_for_are_left_out(name, tmp_path, capsys):
    kind = "conv: {filters: 8, kernel: 3, " if name == "in_channels" else "fc: {units: 10, "
    err = _error(tmp_path, capsys, kind + f"{name}: 3}}")
    assert f"leave {name} out" in err and "input shape" in err


def test_dtype_half_is_told_float16(capsys):
    assert main(["report", "lenet5", "--dtype", "half"]) == 2
    assert "'half' is cnnsize's 'float16'" in capsys.readouterr().err
    assert main(["report", "lenet5", "--dtype", "float16"]) == 0


def test_an_unknown_kind_lists_the_closest_few_and_where_all_are(tmp_path, capsys):
    err = _error(tmp_path, capsys, "flaten")
    assert "did you mean 'flatten'?" in err and "cnnsize specs --kinds" in err and len(err) < 300, err
    assert "'Conv2d' is cnnsize's 'conv'" in _error(tmp_path, capsys, "Conv2d: {filters: 8, kernel: 3}")
    assert "'BatchNorm2d' is cnnsize's 'bn'" in _error(tmp_path, capsys, "BatchNorm2d")
    assert main(["specs", "--kinds"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")]
    assert listed == sorted(REGISTRY)


# -- the lecture's letters in calc, and usage errors naming the subcommand's help ---------------------------------

@pytest.mark.parametrize(("kind", "letters", "words"), [
    ("conv", ["-K", "8", "-F", "5", "-S", "1", "-P", "2"], ["--filters", "8", "--kernel", "5", "--stride", "1",
                                                            "--pad", "2"]),
    ("pool", ["-F", "2", "-S", "2", "-P", "0"], ["--kernel", "2", "--stride", "2", "--pad", "0"]),
    ("locally-connected", ["-K", "4", "-F", "3", "-S", "1", "-P", "1"], ["--filters", "4", "--kernel", "3",
                                                                         "--stride", "1", "--pad", "1"]),
])
def test_calc_takes_the_lectures_letters(kind, letters, words, capsys):
    assert main(["calc", kind, "-i", "3x32x32", *letters]) == 0
    by_letters = capsys.readouterr().out
    assert main(["calc", kind, "-i", "3x32x32", *words]) == 0
    assert by_letters == capsys.readouterr().out
    if kind == "conv":  # (F·F·C + 1)·K and (W − F + 2P)/S + 1, as the lecture writes them
        assert f"= {(5 * 5 * 3 + 1) * 8} parameters" in by_letters and f"8×{(32 - 5 + 2 * 2) // 1 + 1}×32" in by_letters


@pytest.mark.parametrize(("argv", "help_of"), [
    (["calc", "conv", "-i", "3x32x32", "-F", "3", "--bogus"], "cnnsize calc conv -h"),
    (["calc", "conv", "-i", "3x32x32", "-F", "3"], "cnnsize calc conv -h"),
    (["calc", "pool", "-i", "3x32x32"], "cnnsize calc pool -h"),
    (["calc", "fc", "-i", "4096"], "cnnsize calc fc -h"),
    (["report", "lenet5", "--bogus"], "cnnsize report -h"),
])
def test_usage_errors_name_the_subcommands_help(argv, help_of, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"see '{help_of}'" in err and len(err.strip().splitlines()) == 1, err


# -- a linear straight after a convolution ------------------------------------------------------------------------

@pytest.mark.parametrize(("tail", "noted"), [
    ("  - linear: {name: head, units: 10}\n", True),
    ("  - fc: {name: head, units: 10}\n", False),
    ("  - flatten\n  - linear: {name: head, units: 10}\n", False),
    ("  - permute: {dims: [1, 2, 0]}\n  - linear: {name: head, units: 10}\n", False),
])
def test_linear_after_a_convolution_is_noted(tail, noted, tmp_path, capsys):
    """nn.Linear on a conv's N×C×H×W output acts on W (torch says so: the shape); the report notes it."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "lin.yaml"
    path.write_text("input: [3, 12, 16]\nlayers:\n  - conv: {filters: 8, kernel: 3, pad: 1}\n" + tail,
                    encoding="utf-8")
    a = cnnsize.analyze(str(path))
    if tail.startswith("  - linear"):
        y = torch.nn.Linear(16, 10)(torch.nn.Conv2d(3, 8, 3, padding=1)(torch.zeros(1, 3, 12, 16)))
        assert tuple(y.shape[1:]) == a.layer("head").output_shape == (8, 12, 10)
    notes = [n for n in a.notes if "nn.Linear" in n]
    assert bool(notes) == noted, a.notes
    if noted:
        assert "layer 'head'" in notes[0] and "(W, 16 values)" in notes[0] and "fc" in notes[0]
        assert main(["report", str(path), "--width", "80"]) == 0
        assert "nn.Linear" in capsys.readouterr().out


# -- validate answers in a few seconds beyond torch's import ------------------------------------------------------

SMALL = """name: small
input: [3, 32, 32]
layers:
  - conv: {filters: 16, kernel: 3, pad: 1}
  - bn
  - relu
  - maxpool: {kernel: 2}
  - conv: {filters: 32, kernel: 3, pad: 1}
  - relu
  - maxpool: {kernel: 2}
  - conv: {filters: 32, kernel: 3, pad: 1}
  - global_avgpool
  - fc: {units: 10}
"""


def test_a_small_network_validates_without_the_compiler(tmp_path):
    """validate imports neither TorchDynamo, the compiler nor sympy (10 s of 13 on a 15k-parameter network before),
    leaves torch's classes as they were, and every figure still matches."""
    pytest.importorskip("torch")
    import subprocess
    import sys

    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL, encoding="utf-8")
    code = ("import sys, time, io, inspect, json; import torch; t = time.perf_counter(); from cnnsize.cli import main; "
            "out = io.StringIO(); sys.stdout = out; rc = main(['validate', sys.argv[1], '--runs', '0']); "
            "sys.stdout = sys.__stdout__; took = time.perf_counter() - t; "
            "from torch.utils.flop_counter import _FlopCounterMode as F; "
            "raw = inspect.unwrap(vars(F)['__torch_dispatch__']); "
            "print(json.dumps({'rc': rc, 'took': took, 'left': hasattr(raw, '__dynamo_disable'), "
            "'imported': [m for m in ('torch._dynamo', 'torch._inductor', 'sympy') if m in sys.modules], "
            "'matched': 'every figure matches torch' in out.getvalue()}))")
    proc = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    import json

    got = json.loads(proc.stdout.strip().splitlines()[-1])
    took = got.pop("took")
    assert got == {"rc": 0, "left": False, "imported": [], "matched": True}, proc.stderr
    assert took < 10, took  # about 2.5 s on a shared 2-core machine (13 s before); generous against load
