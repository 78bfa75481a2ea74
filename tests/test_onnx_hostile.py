"""Hostile ONNX files (issue 22): a model file is data, never a program.

Nothing a model names is opened (external data, relative, absolute, '..' or through a link), observed with an
audit hook on every Python-level open in the child process, and with strace (which sees onnx's and ONNX Runtime's
C++ opens too) where the machine has it. Constant folding runs nothing whose cost its sizes do not bound, and
nothing no one reads; an If is sized by the branch it takes or kept; limits (nodes, file size) come before the
work; sizes beyond int64 are refused; validate/bench check memory before allocating and keep ONNX Runtime's log
off the terminal. The small hostile files live in tests/broken/ (made by tests/broken/make_onnx.py) with their
golden one-line messages; large ones are made here. Then a hypothesis strategy of small hostile graphs.

All of it needs onnx (the zoo set); the truths are numpy's sizes of the initializers, ONNX Runtime's output
shapes, and torch's FlopCounterMode where MACs are compared.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, need, run_cli

pytestmark = pytest.mark.zoo

CORPUS = sorted((ROOT / "tests" / "broken").glob("*.onnx"))

# The CLI under observation: every Python-level open is recorded (an audit hook), with the process's peak memory,
# into the file CNNSIZE_OBSERVE names, written at exit.
_OBSERVED = """
import atexit, os, runpy, sys
opened = []
def hook(event, args):
    if event == 'open' and args and isinstance(args[0], (str, bytes)):
        opened.append(os.path.abspath(os.fsdecode(args[0])))
sys.addaudithook(hook)
def done():
    seen = list(opened)
    kib = 0
    with open('/proc/self/status') as f:
        kib = next((int(line.split()[1]) for line in f if line.startswith('VmHWM')), 0)
    with open(os.environ['CNNSIZE_OBSERVE'], 'w') as out:
        out.write(repr({'opened': seen, 'peak_kib': kib}))
atexit.register(done)
sys.argv = ['cnnsize', *sys.argv[1:]]
runpy.run_module('cnnsize', run_name='__main__', alter_sys=True)
"""


def observed(*args: str, cwd: Path, tmp: Path) -> tuple[subprocess.CompletedProcess, dict, float]:
    """The CLI run with every open recorded: (result, {'opened': [...], 'peak_kib': n}, seconds)."""
    import ast

    log = tmp / f"observed_{time.monotonic_ns()}.txt"
    env = {**os.environ, "CNNSIZE_OBSERVE": str(log), "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _OBSERVED, *args], capture_output=True, text=True, cwd=cwd, env=env,
                       timeout=120)
    took = time.perf_counter() - start
    seen = ast.literal_eval(log.read_text()) if log.exists() else {"opened": [], "peak_kib": 0}
    return r, seen, took


def traced_opens(*args: str, cwd: Path, tmp: Path) -> list[str] | None:
    """Every file the CLI's process tree opens, C++ included (strace), or None where strace cannot run here."""
    if shutil.which("strace") is None:
        return None
    log = tmp / f"strace_{time.monotonic_ns()}.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(log), sys.executable,
                        "-m", "cnnsize", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    if not log.exists() or "ptrace" in r.stderr:
        return None
    return [line for line in log.read_text().splitlines() if "open" in line]


def one_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "\x1b" not in r.stderr and r.stdout == ""
    return r.stderr.strip()


# -- the corpus: tests/broken/*.onnx, one golden line each ------------------------------------------------------
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_hostile_onnx_gives_its_golden_message(path):
    need("onnx")
    from .test_broken_corpus import run

    result, took, peak = run(path)
    message = one_line(result)
    golden = path.with_suffix(".expected")
    if os.environ.get("CNNSIZE_UPDATE_GOLDEN"):
        golden.write_text(message + "\n", encoding="utf-8")
    assert message == golden.read_text(encoding="utf-8").strip()
    assert f"tests/broken/{path.name}" in message
    assert took < 15, f"{path.name} took {took:.1f} s"
    assert peak is None or peak < 1024, f"{path.name} peaked at {peak:.0f} MiB"


def test_corpus_files_are_what_the_script_makes():
    """The committed files are make_onnx.py's graphs (regenerated here; the header, which names the onnx version
    that wrote it, aside)."""
    onnx = need("onnx")
    sys.path.insert(0, str(ROOT / "tests" / "broken"))
    try:
        import make_onnx
    finally:
        sys.path.pop(0)
    made = make_onnx.cases()
    assert set(made) | {"onnx_nested_ifs_45"} == {p.stem for p in CORPUS}
    for name, m in made.items():
        committed = onnx.ModelProto()
        committed.ParseFromString((ROOT / "tests" / "broken" / f"{name}.onnx").read_bytes())
        assert committed.graph.SerializeToString() == m.graph.SerializeToString(), name
    nested = make_onnx.nested_ifs_bytes(45)  # too deep for protobuf: its nested graph, byte for byte
    assert (ROOT / "tests" / "broken" / "onnx_nested_ifs_45.onnx").read_bytes().endswith(nested[-2000:])


# -- models built here ----------------------------------------------------------------------------------------------
def _model(nodes, inits=(), shape=(1, 3, 8, 8), opset=17, output_type=None):
    onnx = need("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", output_type or TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "m", [x], [y], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), onnx


def _external(name: str, location: str, dims, dtype=1):
    onnx = need("onnx")
    t = onnx.TensorProto(name=name, data_type=dtype, dims=list(dims))
    t.data_location = onnx.TensorProto.EXTERNAL
    n = 1
    for d in dims:
        n *= d
    for key, value in (("location", location), ("offset", "0"), ("length", str(4 * n))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def _conv_model(location: str, name: str = "W"):
    """A convolution whose weight names its data at ``location``, and a Constant (layer scale) that does too."""
    from onnx import TensorProto, helper

    scale = helper.make_node("Constant", [], ["g"], value=_external("gv", location, (4, 1, 1)))
    nodes = [helper.make_node("Conv", ["x", name], ["c"], name="conv"), scale,
             helper.make_node("Mul", ["c", "g"], ["y"], name="scale")]
    m, _ = _model(nodes, [_external(name, location, (4, 3, 3, 3))])
    assert m.graph.initializer[0].data_type == TensorProto.FLOAT
    return m


@pytest.fixture
def secrets(tmp_path):
    """A model folder, a working folder holding 'forbidden.bin', and secrets outside the model's folder: beside it
    ('../forbidden.bin'), at an absolute path, and behind a link inside the folder leading out."""
    import numpy as np

    model_dir, work = tmp_path / "model", tmp_path / "work"
    model_dir.mkdir()
    work.mkdir()
    data = np.arange(4 * 27, dtype=np.float32).tobytes()
    for where in (tmp_path / "forbidden.bin", work / "forbidden.bin", tmp_path / "abs_forbidden.bin"):
        where.write_bytes(data)
    (model_dir / "weights.bin").write_bytes(data)
    os.symlink(tmp_path / "forbidden.bin", model_dir / "link_forbidden.bin")
    locations = {"relative": "weights.bin", "cwd": "forbidden.bin", "dotdot": "../forbidden.bin",
                 "absolute": str(tmp_path / "abs_forbidden.bin"), "link": "link_forbidden.bin"}
    paths = {}
    for case, location in locations.items():
        path = model_dir / f"{case}.onnx"
        path.write_bytes(_conv_model(location).SerializeToString())
        paths[case] = path
    return {"root": tmp_path, "model_dir": model_dir, "work": work, "paths": paths}


@pytest.mark.parametrize("case", ["relative", "cwd", "dotdot", "absolute", "link"])
@pytest.mark.parametrize("command", ["report", "import"])
def test_external_data_is_never_opened_by_import(command, case, secrets):
    """import and report size the model from shapes alone: no file the model names is opened, not even one
    beside it, whatever the path; the working folder's 'forbidden.bin' (the old bug) least of all."""
    path = secrets["paths"][case]
    r, seen, took = observed(command, str(path), cwd=secrets["work"], tmp=secrets["root"])
    assert r.returncode == 0, r.stderr
    opened = [p for p in seen["opened"] if p.startswith(str(secrets["root"]))]
    assert opened and all(p == str(path) for p in opened), opened  # the model file, and nothing else there
    assert took < 15 and seen["peak_kib"] < 1 << 20
    if command == "report" and case in ("cwd", "link"):  # C++ opens too, where strace runs here
        lines = traced_opens(command, str(path), cwd=secrets["work"], tmp=secrets["root"])
        if lines is not None:
            assert not [line for line in lines if "forbidden" in line or "weights.bin" in line], lines


def test_external_data_sizes_the_model(secrets):
    """The parameters of weights kept outside the file are counted from their shapes (numpy's sizes)."""
    import cnnsize

    a = cnnsize.from_onnx(str(secrets["paths"]["dotdot"])).analyze()
    assert a.totals["params"] == 4 * 3 * 3 * 3 + 4  # the convolution's weight and the layer scale
    assert [row.type for row in a.layers[1:]] == ["conv", "layer_scale"]


@pytest.mark.parametrize("case", ["dotdot", "absolute", "link"])
def test_validate_reads_external_data_only_beside_the_model(case, secrets):
    """validate needs the weights: it reads them from the model's folder only; any other place is one line
    naming the file and the weight, and is never opened."""
    need("onnxruntime")
    path = secrets["paths"][case]
    r, seen, _ = observed("validate", str(path), "--runs", "0", cwd=secrets["work"], tmp=secrets["root"])
    message = one_line(r)
    assert f"{path}" in message and "'W'" in message and "outside the model's folder" in message
    assert not [p for p in seen["opened"] if "forbidden" in p], seen["opened"]
    lines = traced_opens("validate", str(path), "--runs", "0", cwd=secrets["work"], tmp=secrets["root"])
    if lines is not None:
        assert not [line for line in lines if "forbidden" in line], lines


def test_validate_with_external_data_beside_the_model(secrets):
    """A weight file beside the model is read (and only it), the run checks every shape with ONNX Runtime."""
    need("onnxruntime")
    path = secrets["paths"]["relative"]
    r, seen, _ = observed("validate", str(path), "--runs", "0", cwd=secrets["work"], tmp=secrets["root"])
    assert r.returncode == 0, r.stderr
    assert "every layer's output shape matches ONNX Runtime" in r.stdout
    inside = {p for p in seen["opened"] if p.startswith(str(secrets["root"]))}
    assert inside <= {str(path), str(secrets["model_dir"] / "weights.bin")}
    assert str(secrets["model_dir"] / "weights.bin") in inside


def test_validate_bad_external_length_is_one_line(tmp_path):
    need("onnxruntime")
    (tmp_path / "short.bin").write_bytes(b"\0" * 10)
    path = tmp_path / "short.onnx"
    path.write_bytes(_conv_model("short.bin").SerializeToString())
    message = one_line(run_cli("validate", str(path), "--runs", "0"))
    assert "short.onnx" in message and "'W'" in message and "the file holds 10" in message


@pytest.mark.parametrize("command", ["validate", "bench"])
def test_run_too_large_is_refused_before_allocating(command, tmp_path):
    """A batch whose input alone would take terabytes: one line, exit 2, the memory check first (fast, small)."""
    need("onnxruntime")
    from onnx import helper

    m, _ = _model([helper.make_node("Relu", ["x"], ["y"], name="relu")], shape=("N", 3, 8, 8))
    path = tmp_path / "relu.onnx"
    path.write_bytes(m.SerializeToString())
    r, seen, took = observed(command, str(path), "--batch", str(10**12), "--runs", "1", cwd=tmp_path, tmp=tmp_path)
    message = one_line(r)
    assert "relu.onnx" in message and "free" in message and "--force" in message
    assert took < 15 and seen["peak_kib"] < 1 << 20


def test_onnx_runtime_log_never_reaches_the_terminal(tmp_path):
    """A Reshape to a fixed batch of 1 run at --batch 3: ONNX Runtime logs a coloured multi-line error of its own
    before raising (it used to reach the terminal raw). The user reads one line naming the file; the same for a
    file ONNX Runtime refuses to load (an IR version it does not know)."""
    need("onnxruntime")
    import numpy as np
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Reshape", ["r", "s"], ["y"],
                                                                                   name="flat")]
    m, _ = _model(nodes, [numpy_helper.from_array(np.array([1, 192], np.int64), "s")], shape=("N", 3, 8, 8))
    path = tmp_path / "fixed_batch.onnx"
    path.write_bytes(m.SerializeToString())
    for command in ("validate", "bench"):
        message = one_line(run_cli(command, str(path), "--batch", "3", "--runs", "1", "--warmup", "0"))
        assert "ONNX Runtime failed running the model" in message and "fixed_batch.onnx" in message
    m, _ = _model([helper.make_node("Relu", ["x"], ["y"], name="relu")])
    m.ir_version = 99
    path = tmp_path / "future.onnx"
    path.write_bytes(m.SerializeToString())
    assert run_cli("report", str(path)).returncode == 0
    message = one_line(run_cli("validate", str(path), "--runs", "1", "--warmup", "0"))
    assert "ONNX Runtime cannot load" in message and "future.onnx" in message


# -- folding: bounded before it runs, nothing unread ----------------------------------------------------------------
def _dead(kind: str):
    """An unused constant of gigabytes (or a loop of 10^12 iterations) beside a ReLU network."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    def ints(v, n):
        return numpy_helper.from_array(np.array(v, np.int64), n)

    relu = helper.make_node("Relu", ["x"], ["y"], name="relu")
    if kind == "constant_of_shape":
        return [helper.make_node("ConstantOfShape", ["s"], ["big"], name="fill"), relu], [ints([30000, 30000], "s")]
    if kind == "range":
        return [helper.make_node("Range", ["a", "b", "d"], ["big"], name="r"), relu], \
            [ints(0, "a"), ints(300_000_000, "b"), ints(1, "d")]
    if kind == "expand":
        return [helper.make_node("Expand", ["one", "s"], ["big"], name="e"), relu], \
            [numpy_helper.from_array(np.ones(1, np.float32), "one"), ints([16, 8000, 8000], "s")]
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond"], ["cond_out"]), helper.make_node("Identity", ["v"], ["v_out"])], "b",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1])])
    return [helper.make_node("Loop", ["M", "C", "V"], ["big"], body=body, name="loop"), relu], \
        [ints(10**12, "M"), numpy_helper.from_array(np.array(True), "C"),
         numpy_helper.from_array(np.ones(1, np.float32), "V")]


@pytest.mark.parametrize("kind", ["constant_of_shape", "range", "expand", "loop"])
def test_unread_constants_are_never_computed(kind, tmp_path):
    """Each used to allocate 3.5-4.6 GB (or hang, the loop): now the report is the ReLU's, quickly and small."""
    nodes, inits = _dead(kind)
    m, _ = _model(nodes, inits)
    path = tmp_path / f"{kind}.onnx"
    path.write_bytes(m.SerializeToString())
    r, seen, took = observed("report", str(path), "-f", "json", cwd=tmp_path, tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    import json

    doc = json.loads(r.stdout)
    assert [row["type"] for row in doc["layers"][1:]] == ["relu"] and doc["totals"]["params"] == 0
    assert took < 15 and seen["peak_kib"] < 1 << 20, (took, seen["peak_kib"])


def test_small_constants_are_still_folded():
    """Folding still computes what it can afford: a Reshape whose shape is Concat(Shape, constant) flattens."""
    import numpy as np
    from onnx import helper, numpy_helper

    import cnnsize

    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Shape", ["r"], ["s"], name="shape", end=1),
             helper.make_node("Concat", ["s", "minus1"], ["target"], name="cat", axis=0),
             helper.make_node("Reshape", ["r", "target"], ["y"], name="flat")]
    m, _ = _model(nodes, [numpy_helper.from_array(np.array([-1], np.int64), "minus1")])
    a = cnnsize.from_onnx(m).analyze()
    assert [row.type for row in a.layers[1:]] == ["relu", "flatten"]
    assert tuple(a.layers[-1].output_shape) == (3 * 8 * 8,)


# -- If ---------------------------------------------------------------------------------------------------------------
def _if_model(condition, then_nodes, else_nodes, computed: str = ""):
    """An If whose branches read the computed tensor 'r' (a ReLU of the input); its condition written in the file,
    computed from the input's static shape (``computed="shape"``: a constant) or from its values ("input")."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    out = [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)]
    then_g = helper.make_graph(then_nodes, "then", [], out)
    else_g = helper.make_graph(else_nodes, "else", [], out)
    inits = [numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32),
                                     "W"), numpy_helper.from_array(np.array(0, np.int64), "zero")]
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu0")]
    if computed == "shape":  # the batch is 1: Shape(x)[0] == 1, a constant computed from the shape
        nodes += [helper.make_node("Shape", ["x"], ["s"], name="shape"),
                  helper.make_node("Gather", ["s", "zero"], ["n"], name="batch", axis=0),
                  helper.make_node("Equal", ["n", "one"], ["c"], name="is_one")]
        inits.append(numpy_helper.from_array(np.array(1, np.int64), "one"))
    elif computed == "input":
        nodes += [helper.make_node("Flatten", ["r"], ["f"], name="flat"),
                  helper.make_node("Gather", ["f", "zero"], ["g"], name="pick", axis=1),
                  helper.make_node("Cast", ["g"], ["c"], name="cond", to=TensorProto.BOOL)]
    else:
        inits.append(numpy_helper.from_array(np.array(condition), "c"))
    nodes.append(helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g, name="the_if"))
    return _model(nodes, inits)[0]


@pytest.mark.parametrize("condition", [True, False])
def test_if_with_written_condition_is_sized_as_its_branch(condition):
    """The branch taken is sized as any layer: a convolution (torch's MACs, numpy's parameter count) or a sigmoid;
    ONNX Runtime's output shape agrees; it never vanishes."""
    ort = need("onnxruntime")
    torch = need("torch")
    import numpy as np
    from onnx import helper
    from torch.utils.flop_counter import FlopCounterMode

    import cnnsize

    m = _if_model(condition, [helper.make_node("Conv", ["r", "W"], ["o"], name="conv", pads=[1, 1, 1, 1])],
                  [helper.make_node("Sigmoid", ["r"], ["o"], name="sig")])
    a = cnnsize.from_onnx(m, opaque=True).analyze()
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.zeros((1, 3, 8, 8), np.float32)})
    assert (1, *a.layers[-1].output_shape) == y.shape
    kinds = [row.type for row in a.layers[1:]]
    if condition:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)(torch.zeros(1, 3, 8, 8))
        assert "conv" in kinds and a.totals["macs"] == counter.get_total_flops() // 2
        assert a.totals["params"] == 4 * 3 * 3 * 3
    else:
        assert "sigmoid" in kinds and a.totals["params"] == 0


def test_if_with_constant_computed_condition_is_kept_opaque_never_dropped():
    """The issue's case: a condition computed from constants (the input's static shape), branches reading a
    computed tensor. It used to be a constant that vanished with --opaque; now it is an opaque layer reading what
    its branches read (ONNX Runtime's output shape), or without --opaque the error naming it."""
    ort = need("onnxruntime")
    import numpy as np
    from onnx import helper

    import cnnsize
    from cnnsize.core.errors import CnnsizeError

    m = _if_model(None, [helper.make_node("Relu", ["r"], ["o"], name="inner")],
                  [helper.make_node("Sigmoid", ["r"], ["o"], name="inner2")], computed="shape")
    with pytest.raises(CnnsizeError, match="ONNX operator If .node 'the_if'"):
        cnnsize.from_onnx(m)
    imported = cnnsize.from_onnx(m, opaque=True)
    layers = [next(iter(item.values())) for item in imported.spec["layers"]]
    assert [body.get("op") for body in layers] == [None, "ONNX If"], layers
    assert layers[1].get("from", "relu0") == "relu0"
    a = imported.analyze()
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.zeros((1, 3, 8, 8), np.float32)})
    assert (1, *a.layers[-1].output_shape) == y.shape


def test_if_with_condition_from_the_input_is_one_error():
    """A condition computed from the input's values: one CnnsizeError (with or without --opaque), never a result
    without the If."""
    from onnx import helper

    import cnnsize
    from cnnsize.core.errors import CnnsizeError

    m = _if_model(None, [helper.make_node("Relu", ["r"], ["o"], name="inner")],
                  [helper.make_node("Sigmoid", ["r"], ["o"], name="inner2")], computed="input")
    for opaque in (False, True):
        with pytest.raises(CnnsizeError):
            cnnsize.from_onnx(m, opaque=opaque)


def test_if_nested_30_deep_with_written_conditions():
    """Thirty Ifs, each in the then branch of the last, all true: the innermost ReLU is what is sized."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    import cnnsize

    out = [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)]
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["o"], name="leaf")], "leaf", [], out)
    other = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["o"])], "other", [], out)
    for level in range(30):
        node = helper.make_node("If", ["c"], ["o"], then_branch=graph, else_branch=other, name=f"if{level}")
        graph = helper.make_graph([node], f"g{level}", [], out)
    m, _ = _model(list(graph.node), [numpy_helper.from_array(np.array(True), "c")])
    m.graph.node[0].output[0] = "y"
    a = cnnsize.from_onnx(m).analyze()
    assert [row.type for row in a.layers[1:]] == ["relu"]


# -- limits before the work -------------------------------------------------------------------------------------------
def test_too_many_nodes_is_refused_before_parsing(tmp_path):
    """30,001 nodes (the command line's limit is 30,000): one line, counted in the file's bytes, fast and small."""
    from onnx import helper

    n = 30_001
    nodes = [helper.make_node("Relu", [f"v{i}" if i else "x"], [f"v{i + 1}" if i < n - 1 else "y"]) for i in range(n)]
    m, _ = _model(nodes)
    path = tmp_path / "many.onnx"
    path.write_bytes(m.SerializeToString())
    r, seen, took = observed("report", str(path), cwd=tmp_path, tmp=tmp_path)
    message = one_line(r)
    assert "more than 30,000 ONNX nodes" in message and "many.onnx" in message
    assert took < 15 and seen["peak_kib"] < 300 << 10, (took, seen["peak_kib"])


def test_node_count_counts_subgraphs():
    """The count in the bytes sees the nodes inside a long node's subgraphs (what protobuf would build)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from cnnsize.importers.onnx_import import count_nodes

    inner = [helper.make_node("Relu", [f"a{i}" if i else "x"], [f"a{i + 1}" if i < 499 else "o"]) for i in range(500)]
    out = [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)]
    branch = helper.make_graph(inner, "b", [], out)
    m, _ = _model([helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)],
                  [numpy_helper.from_array(np.array(True), "c")])
    assert count_nodes(m.SerializeToString(), 10**6) == 1 + 2 * 500
    assert count_nodes(b"\xff\xff", 10) is None  # no protobuf message: the parser says so


def test_file_beyond_protobuf_is_refused_unread(tmp_path):
    """A 2 GiB file (sparse: no disk used) is refused by its size before it is read."""
    path = tmp_path / "huge.onnx"
    with open(path, "wb") as fh:
        fh.truncate(2 << 30)
    r, seen, took = observed("report", str(path), cwd=tmp_path, tmp=tmp_path)
    message = one_line(r)
    assert "huge.onnx" in message and "2,147,483,648 bytes" in message
    assert took < 15 and seen["peak_kib"] < 300 << 10


# -- sizes, errors ------------------------------------------------------------------------------------------------
def _dynamic(tmp_path) -> Path:
    from onnx import helper

    m, _ = _model([helper.make_node("Relu", ["x"], ["y"], name="relu")], shape=("N", 3, "H", "W"))
    path = tmp_path / "dyn.onnx"
    path.write_bytes(m.SerializeToString())
    return path


@pytest.mark.parametrize("shape", ["3x9223372036854775808x8", "3x" + "9" * 40 + "x8"])
def test_dynamic_axes_beyond_int64_are_one_line(shape, tmp_path):
    path = _dynamic(tmp_path)
    message = one_line(run_cli("report", str(path), "-i", shape))
    assert "dyn.onnx" in message and "ONNX sizes are from 1 to 9,223,372,036,854,775,807" in message


@pytest.mark.parametrize("size", [0, -4, 2**63, 2.5, True])
def test_dynamic_axes_bad_sizes_through_the_api(size, tmp_path):
    import cnnsize
    from cnnsize.core.errors import CnnsizeError

    with pytest.raises(CnnsizeError) as info:
        cnnsize.from_onnx(str(_dynamic(tmp_path)), input_shape=(3, size, 8))
    assert "axis 2" in str(info.value) and "dyn.onnx" in str(info.value)


def test_dynamic_axes_at_int64_max_are_exact(tmp_path):
    """The largest size ONNX holds is sized exactly (ints, no float)."""
    import cnnsize

    n = 2**63 - 1
    a = cnnsize.from_onnx(str(_dynamic(tmp_path)), input_shape=(3, n, 2)).analyze()
    assert tuple(a.layers[-1].output_shape) == (3, n, 2)


def test_errors_name_the_file_and_node(tmp_path):
    """A setting no layer can take (groups 0) is said with the file and the node, never as '<dict>'."""
    import cnnsize
    from cnnsize.core.errors import CnnsizeError

    path = ROOT / "tests" / "broken" / "onnx_conv_groups_0.onnx"
    with pytest.raises(CnnsizeError) as info:
        cnnsize.from_onnx(str(path))
    text = str(info.value)
    assert "onnx_conv_groups_0.onnx" in text and "ONNX node 'the_conv' (Conv)" in text and "<dict>" not in text


def test_unsupported_operator_is_named_before_its_shape():
    """NonZero's output has no static shape, but what is wrong is that no kind stands for NonZero."""
    import cnnsize
    from cnnsize.core.errors import CnnsizeError

    with pytest.raises(CnnsizeError) as info:
        cnnsize.from_onnx(str(ROOT / "tests" / "broken" / "onnx_unsupported_no_static_shape.onnx"))
    assert "cannot import the ONNX operator NonZero (node 'nz')" in str(info.value)
    assert "static shape" not in str(info.value)


def test_user_model_proto_is_left_unchanged():
    """from_onnx works on a copy: the caller's ModelProto keeps its external data and its If."""
    import numpy as np
    from onnx import helper, numpy_helper

    import cnnsize
    from cnnsize.core.errors import CnnsizeError

    m = _conv_model("somewhere.bin")
    m.graph.node.append(helper.make_node("If", ["c"], ["unused"], then_branch=helper.make_graph([], "t", [], []),
                                         else_branch=helper.make_graph([], "e", [], [])))
    m.graph.initializer.append(numpy_helper.from_array(np.array(True), "c"))
    before = m.SerializeToString()
    try:
        cnnsize.from_onnx(m)
    except CnnsizeError:
        pass
    assert m.SerializeToString() == before
