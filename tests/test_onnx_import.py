"""ONNX import (cnnsize.from_onnx, `cnnsize import/report/validate/bench FILE.onnx`) against independent truths.

torchvision models are exported inside the tests with both torch exporters (TorchScript, ``dynamo=False``, and
the default dynamo exporter, which needs onnxscript), with and without constant folding, after their weights and
batch-norm statistics are randomised (initial weights let exporters merge or drop parameters and would hide
counting mistakes). The truths are torch's: FlopCounterMode's MACs / 2, the output shape of a forward, the
parameters and buffers the model holds, or, where batch norm was folded into the convolutions, that count less
each folded batch norm's (found independently by torch.fx: a BatchNorm reading a Conv that nothing else reads).
Shapes of every layer are checked by ONNX Runtime too. Then one hand-made graph per supported operator (built
with onnx.helper), each checked against ONNX Runtime's output shape and the initializers it holds, and the
weight operators against the equivalent torch module's FlopCounterMode MACs.

All of it is marked ``zoo``: it needs torchvision, onnx, onnxruntime and onnxscript (the zoo extra), runs in
.ci/zoo's environment, and skips without them (fails under CNNSIZE_REQUIRE_ZOO=1). The big models are ``slow``
as well. ``CNNSIZE_ONNX_RESULTS=path`` appends each exported model's figures to ``path`` as JSON lines.
"""

from __future__ import annotations

import json
import os

import pytest

from .conftest import need, run_cli

pytestmark = pytest.mark.zoo


# -- torch truths ------------------------------------------------------------------------------------------------
def randomise(model):
    """Random weights and batch-norm statistics, so that no two parameters are equal and none is trivial."""
    torch = need("torch")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(torch.rand(module.running_mean.shape, generator=gen) * 2 - 1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05 + 0.01)
    return model.eval()


def torchvision_model(name: str):
    tv = need("torchvision")
    return randomise(tv.models.get_model(name, weights=None))


def input_size(name: str) -> int:
    return 299 if name == "inception_v3" else 224


def truth(model, size: int) -> dict:
    """What torch measures: MACs (FlopCounterMode / 2), the output's shape, the parameters and buffers the eval
    forward uses (inception_v3's aux head runs only in training)."""
    torch = need("torch")
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    # on the meta device, as tests/zoo_truth.py measures: at inference on CPU nn.MultiheadAttention takes a fused
    # fast path FlopCounterMode has no formula for (and with grad, CPU flash attention has none either); on meta it
    # runs scaled_dot_product_attention, whose QKᵀ and attention·V are counted
    meta = copy.deepcopy(model).to("meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = meta(torch.empty(1, 3, size, size, device="meta"))
    skip = set()
    aux = getattr(model, "AuxLogits", None)
    if aux is not None:
        skip = {id(t) for t in [*aux.parameters(), *aux.buffers()]}
    params = sum(p.numel() for p in model.parameters() if id(p) not in skip)
    buffers = sum(b.numel() for b in model.buffers() if id(b) not in skip)
    return {"macs": counter.get_total_flops() // 2, "output": tuple(y.shape[1:]), "params": params,
            "buffers": buffers}


def folded(model) -> tuple[int, int]:
    """(params, buffers) less what folding each batch norm into the convolution before it removes: the BN's weight,
    bias and statistics, plus a new bias for a convolution that had none (pairs found by torch.fx)."""
    torch = need("torch")
    import torch.fx as fx

    gm = fx.symbolic_trace(model)
    modules = dict(gm.named_modules())
    params = buffers = 0
    for node in gm.graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], torch.nn.modules.batchnorm._BatchNorm):
            continue
        source = node.args[0]
        if getattr(source, "op", None) == "call_module" and isinstance(modules[source.target], torch.nn.Conv2d) \
                and len(source.users) == 1:
            bn, conv = modules[node.target], modules[source.target]
            params -= bn.weight.numel() + bn.bias.numel() - (conv.out_channels if conv.bias is None else 0)
            buffers -= sum(b.numel() for b in bn.buffers())
    return params, buffers


def export(model, size: int, path, exporter: str, fold: bool, dynamic_batch: bool = False) -> str:
    """The model as an ONNX file: TorchScript (folding = constant folding and eval-mode batch-norm folding; without
    it, TrainingMode.PRESERVE keeps batch norm) or dynamo (folding = its optimizer)."""
    torch = need("torch")
    need("onnx")
    x = torch.randn(1, 3, size, size)
    if exporter == "torchscript":
        kwargs = {"input_names": ["x"], "dynamic_axes": {"x": {0: "N"}}} if dynamic_batch else {}
        torch.onnx.export(model, (x,), str(path), dynamo=False, do_constant_folding=fold,
                          training=torch.onnx.TrainingMode.EVAL if fold else torch.onnx.TrainingMode.PRESERVE,
                          **kwargs)
    else:
        need("onnxscript")
        torch.onnx.export(model, (x,), str(path), dynamo=True, optimize=fold, external_data=False,
                          verbose=False)
    return str(path)


# -- torchvision models, both exporters, folded and not -----------------------------------------------------------
QUICK = {("resnet18", "torchscript", True), ("resnet18", "torchscript", False), ("resnet18", "dynamo", True),
         ("resnet18", "dynamo", False), ("mobilenet_v2", "torchscript", False)}
MODELS = ("resnet18", "mobilenet_v2", "efficientnet_b0", "densenet121", "inception_v3", "convnext_tiny", "vit_b_16")
CASES = [pytest.param(m, e, f, id=f"{m}-{e}-{'folded' if f else 'kept'}",
                      marks=() if (m, e, f) in QUICK else (pytest.mark.slow,))
         for m in MODELS for e in ("torchscript", "dynamo") for f in (True, False)]


@pytest.mark.parametrize("name,exporter,fold", CASES)
def test_torchvision_model_from_onnx(name, exporter, fold, tmp_path):
    import cnnsize

    model = torchvision_model(name)
    size = input_size(name)
    want = truth(model, size)
    path = export(model, size, tmp_path / f"{name}.onnx", exporter, fold)
    imported = cnnsize.from_onnx(path)
    a = imported.analyze()
    if os.environ.get("CNNSIZE_ONNX_RESULTS"):  # one JSON line per case: the figures the report quotes
        with open(os.environ["CNNSIZE_ONNX_RESULTS"], "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"model": name, "exporter": exporter, "folded": fold, "torch": want,
                                 "onnx": {k: a.totals[k] for k in ("params", "buffers", "macs")},
                                 "output": list(a.layers[-1].output_shape), "bn_left": "bn" in
                                 {row.type for row in a.layers}, "less_if_folded": list(folded(model))}) + "\n")
    assert a.totals["macs"] == want["macs"]
    assert tuple(a.layers[-1].output_shape) == want["output"]
    kinds = {row.type for row in a.layers}
    if "bn" in kinds or not fold:  # batch norm kept (in part, where it follows no convolution: densenet)
        less_params, less_buffers = folded(model) if fold else (0, 0)
        assert a.totals["params"] == want["params"] + less_params
        assert a.totals["buffers"] == want["buffers"] + less_buffers
    else:  # folded everywhere: the file's count, and the note gives the count with batch norm
        less_params, _ = folded(model)
        assert a.totals["params"] == want["params"] + less_params
        if less_params:
            note = next(n for n in a.notes if "folded" in n)
            assert "Batch norm looks folded" in note
            assert f"it has {want['params']:,} params and {want['buffers']:,} buffers" in note  # torch's count
    if not fold:
        assert not any("folded" in n for n in a.notes)
    need("onnxruntime")  # and the file runs under ONNX Runtime with every layer's output shape as analysed
    from cnnsize.runtimes.onnxrt import validate_onnx

    checked = validate_onnx(path, device="cpu", runs=0)
    assert checked.ok and len(checked.layers) >= 10, [row for row in checked.layers if not row.ok]


def test_resnet18_validates_under_onnx_runtime(tmp_path):
    """Every layer's output shape under ONNX Runtime (a dynamic batch of 3), and the same through the CLI."""
    need("onnxruntime")
    from cnnsize.runtimes.onnxrt import validate_onnx

    model = torchvision_model("resnet18")
    path = export(model, 224, tmp_path / "r18.onnx", "torchscript", True, dynamic_batch=True)
    result = validate_onnx(path, batch=3, device="cpu", runs=2, warmup=1)
    assert result.ok and len(result.layers) >= 40
    assert all(row.measured[0] == 3 for row in result.layers)
    assert result.timing is not None and result.timing.runs == 2
    r = run_cli("validate", path, "--device", "cpu", "--runs", "0", "-f", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["runtime"] == "onnxruntime"
    r = run_cli("bench", path, "--device", "cpu", "--runs", "3", "--warmup", "1", "-f", "json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["times_ms"]) == 3
    for option in (["--backward"], ["--dtype", "float16"], ["--channels-last"]):  # torch's options: refused
        r = run_cli("bench", path, "--device", "cpu", *option)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and option[0] in r.stderr


def test_cli_import_report_and_dynamic_axes(tmp_path):
    """import writes a spec that reports as the file does; a dynamic height and width take --input's sizes."""
    torch = need("torch")
    need("onnx")
    import cnnsize

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Conv2d(8, 4, 3, stride=2), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 10)).eval()
    path = str(tmp_path / "net.onnx")
    torch.onnx.export(net, (torch.randn(1, 3, 32, 32),), path, dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "N", 2: "height", 3: "width"}})
    out = tmp_path / "net.yaml"
    r = run_cli("import", path, "-i", "3x64x48", "-o", str(out))
    assert r.returncode == 0, r.stderr
    spec = cnnsize.analyze(str(out))
    assert tuple(spec.layers[0].output_shape) == (3, 64, 48)
    with torch.no_grad():
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            net(torch.randn(1, 3, 64, 48))
    assert spec.totals["macs"] == counter.get_total_flops() // 2
    assert spec.totals["params"] == sum(p.numel() for p in net.parameters())
    assert any("height = 64" in n for n in spec.notes)
    r = run_cli("report", path, "-i", "3x64x48", "-f", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["totals"]["macs"] == counter.get_total_flops() // 2
    sympy = need("sympy")  # without --input the dynamic axes are symbols: at 64×48, the figures above
    imported = cnnsize.from_onnx(path)
    a = imported.analyze()
    h, w = sympy.Symbol("height", positive=True, integer=True), sympy.Symbol("width", positive=True, integer=True)
    assert a.totals["macs"].subs({h: 64, w: 48}) == counter.get_total_flops() // 2
    r = run_cli("report", path, "-f", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["input_shape"] == [3, "height", "width"]
    fixed = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 30 * 30, 2))
    path = str(tmp_path / "fixed.onnx")
    torch.onnx.export(fixed.eval(), (torch.randn(1, 3, 32, 32),), path, dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "N", 2: "height", 3: "width"}})
    r = run_cli("report", path)  # a Gemm fixes the sizes: the dynamic axes need --input
    assert r.returncode == 2 and "--input" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("report", path, "-i", "3x32x32", "-f", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["totals"]["params"] == sum(p.numel() for p in fixed.parameters())


def test_report_imports_no_onnx_for_a_spec():
    """`cnnsize report` of a spec never imports onnx (nor onnxruntime)."""
    import subprocess
    import sys

    code = ("import sys; from cnnsize.cli import main; main(['report', 'lenet5', '-f', 'json']); "
            "print([m for m in ('onnx', 'onnxruntime') if m in sys.modules], file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stderr.strip().splitlines()[-1] == "[]"


# -- bad files: one line, exit 2 ---------------------------------------------------------------------------------
def _tiny(onnx, helper, op="Relu", **attrs):
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    node = helper.make_node(op, ["x"], ["y"], name="the_node", **attrs)
    return helper.make_model(helper.make_graph([node], "tiny", [x], [y]),
                             opset_imports=[helper.make_opsetid("", 17)])


def _two_inputs(onnx, helper):
    a = helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [1, 3, 8, 8])
    b = helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"], name="sum")], "two", [a, b], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _training_bn(onnx, helper):
    import numpy as np
    from onnx import numpy_helper

    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(np.ones(3, np.float32), n) for n in ("s", "b", "m", "v")]
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], name="bn",
                            training_mode=1)
    return helper.make_model(helper.make_graph([node], "bn", [x], [y], inits),
                             opset_imports=[helper.make_opsetid("", 15)])


@pytest.mark.parametrize("case", ["text", "truncated", "unknown_op", "empty", "folder", "two_inputs", "training_bn"])
def test_bad_files_one_line_exit_2(case, tmp_path):
    onnx = need("onnx")
    from onnx import helper

    path = tmp_path / "bad.onnx"
    good = _tiny(onnx, helper).SerializeToString()
    if case == "text":
        path.write_text("name: not a model\nlayers: []\n")
    elif case == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif case == "unknown_op":
        path.write_bytes(_tiny(onnx, helper, "Sin").SerializeToString())
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "two_inputs":
        path.write_bytes(_two_inputs(onnx, helper).SerializeToString())
    elif case == "training_bn":
        path.write_bytes(_training_bn(onnx, helper).SerializeToString())
    else:
        path.mkdir()
    for command in ("import", "report"):
        r = run_cli(command, str(path))
        assert r.returncode == 2, (case, command, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        assert "bad.onnx" in r.stderr
    expected = {"two_inputs": "2 inputs (a, b)", "training_bn": "training mode", "text": "not an ONNX model",
                "truncated": "not an ONNX model", "empty": "not an ONNX model", "folder": "folder"}
    assert expected.get(case, "Sin") in r.stderr
    if case == "unknown_op":
        assert "Sin" in r.stderr and "the_node" in r.stderr
        r = run_cli("import", str(path), "--opaque")
        assert r.returncode == 0, r.stderr
        assert "opaque" in r.stdout and "ONNX Sin" in r.stdout


def test_external_data_is_not_loaded(tmp_path):
    """A model whose weights sit in a separate file imports without them (only shapes are needed)."""
    torch = need("torch")
    onnx = need("onnx")
    import cnnsize

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(64 * 6 * 6, 10)).eval()
    path = tmp_path / "ext.onnx"
    torch.onnx.export(net, (torch.randn(1, 3, 8, 8),), str(path), dynamo=False)
    model = onnx.load(str(path))
    onnx.save(model, str(path), save_as_external_data=True, location="ext.onnx.data", size_threshold=0)
    (tmp_path / "ext.onnx.data").unlink()  # the weights are gone
    a = cnnsize.from_onnx(str(path)).analyze()
    assert a.totals["params"] == sum(p.numel() for p in net.parameters())


# -- one hand-made graph per operator ------------------------------------------------------------------------------
def _graph_cases():
    """(id, input shape, nodes, initializers as {name: shape or array}, expected kinds, torch equivalent or None)."""
    import numpy as np

    rng = np.random.default_rng(0)

    def w(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    def ints(*values):
        return np.array(values, dtype=np.int64)

    def f(*values):
        return np.array(values, dtype=np.float32)

    return [  # nodes are (op, inputs, attrs[, outputs]); node i writes x{i+1}, the last one y
        ("Conv", [1, 3, 16, 16], [("Conv", ["x", "W", "B"], {"pads": [1, 1, 1, 1], "strides": [2, 2]})],
         {"W": w(8, 3, 3, 3), "B": w(8)}, ["conv"], ("Conv2d", (3, 8, 3), {"stride": 2, "padding": 1})),
        ("Conv_grouped_dilated", [1, 4, 16, 16], [("Conv", ["x", "W"], {"group": 2, "dilations": [2, 2]})],
         {"W": w(6, 2, 3, 3)}, ["conv"], ("Conv2d", (4, 6, 3), {"groups": 2, "dilation": 2, "bias": False})),
        ("ConvTranspose", [1, 4, 8, 8], [("ConvTranspose", ["x", "W", "B"], {"strides": [2, 2], "pads": [1, 1, 1, 1],
                                                                              "output_padding": [1, 1]})],
         {"W": w(4, 5, 3, 3), "B": w(5)}, ["deconv"],
         ("ConvTranspose2d", (4, 5, 3), {"stride": 2, "padding": 1, "output_padding": 1})),
        ("Gemm", [1, 3, 4, 4], [("Flatten", ["x"], {}), ("Gemm", ["x1", "W", "B"], {"transB": 1})],
         {"W": w(10, 48), "B": w(10)}, ["flatten", "fc"], None),
        ("MatMul_Add_linear", [1, 5, 12], [("MatMul", ["x", "W"], {}), ("Add", ["x1", "B"], {})],
         {"W": w(12, 7), "B": w(7)}, ["linear"], ("Linear", (12, 7), {})),
        ("MatMul_two_tensors", [1, 5, 12], [("Transpose", ["x"], {"perm": [0, 2, 1]}), ("MatMul", ["x", "x1"], {})],
         {}, ["permute", "matmul"], None),
        ("BatchNormalization", [1, 6, 5, 5], [("BatchNormalization", ["x", "S", "B", "M", "V"], {"epsilon": 1e-3})],
         {"S": w(6), "B": w(6), "M": w(6), "V": np.abs(w(6))}, ["bn"], None),
        ("Relu", [1, 3, 4, 4], [("Relu", ["x"], {})], {}, ["relu"], None),
        ("LeakyRelu", [1, 3, 4, 4], [("LeakyRelu", ["x"], {"alpha": 0.2})], {}, ["leaky_relu"], None),
        ("Elu", [1, 3, 4, 4], [("Elu", ["x"], {})], {}, ["elu"], None),
        ("PRelu", [1, 3, 4, 4], [("PRelu", ["x", "S"], {})], {"S": w(3, 1, 1)}, ["prelu"], None),
        ("Sigmoid", [1, 3, 4, 4], [("Sigmoid", ["x"], {})], {}, ["sigmoid"], None),
        ("Tanh", [1, 3, 4, 4], [("Tanh", ["x"], {})], {}, ["tanh"], None),
        ("HardSigmoid", [1, 3, 4, 4], [("HardSigmoid", ["x"], {"alpha": 1 / 6})], {}, ["hardsigmoid"], None),
        ("HardSwish", [1, 3, 4, 4], [("HardSwish", ["x"], {})], {}, ["hardswish"], None),
        ("Clip_relu6", [1, 3, 4, 4], [("Clip", ["x", "lo", "hi"], {})], {"lo": f(0), "hi": f(6)}, ["relu6"], None),
        ("Softmax", [1, 10], [("Softmax", ["x"], {"axis": 1})], {}, ["softmax"], None),
        ("LogSoftmax", [1, 5, 10], [("LogSoftmax", ["x"], {"axis": -1})], {}, ["log_softmax"], None),
        ("Sigmoid_Mul_silu", [1, 3, 4, 4], [("Sigmoid", ["x"], {}), ("Mul", ["x", "x1"], {})], {}, ["silu"], None),
        ("Gelu", [1, 3, 4, 4], [("Gelu", ["x"], {"approximate": "tanh"})], {}, ["gelu"], None),
        ("Erf_gelu", [1, 3, 4, 4], [("Div", ["x", "r2"], {}), ("Erf", ["x1"], {}), ("Add", ["x2", "one"], {}),
                                    ("Mul", ["x", "x3"], {}), ("Mul", ["x4", "half"], {})],
         {"r2": f(2 ** 0.5), "one": f(1), "half": f(0.5)}, ["gelu"], None),
        ("Tanh_gelu", [1, 3, 4, 4], [("Pow", ["x", "three"], {}), ("Mul", ["x1", "c"], {}), ("Add", ["x", "x2"], {}),
                                     ("Mul", ["x3", "k"], {}), ("Tanh", ["x4"], {}), ("Add", ["x5", "one"], {}),
                                     ("Mul", ["x", "x6"], {}), ("Mul", ["x7", "half"], {})],
         {"three": f(3), "c": f(0.044715), "k": f((2 / np.pi) ** 0.5), "one": f(1), "half": f(0.5)}, ["gelu"], None),
        ("MaxPool", [1, 3, 9, 9], [("MaxPool", ["x"], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                                      "ceil_mode": 1})], {}, ["maxpool"], None),
        ("AveragePool", [1, 3, 8, 8], [("AveragePool", ["x"], {"kernel_shape": [2, 2], "strides": [2, 2]})], {},
         ["avgpool"], None),
        ("GlobalAveragePool", [1, 3, 5, 5], [("GlobalAveragePool", ["x"], {})], {}, ["global_avgpool"], None),
        ("GlobalMaxPool", [1, 3, 5, 5], [("GlobalMaxPool", ["x"], {})], {}, ["global_maxpool"], None),
        ("ReduceMean_axes_input", [1, 3, 5, 5], [("ReduceMean", ["x", "axes"], {"keepdims": 0})],
         {"axes": ints(2, 3)}, ["global_avgpool", "flatten"], None),
        ("Flatten", [1, 3, 4, 4], [("Flatten", ["x"], {"axis": 1})], {}, ["flatten"], None),
        ("Reshape_flattens", [1, 3, 4, 4], [("Reshape", ["x", "s"], {})], {"s": ints(1, -1)}, ["flatten"], None),
        ("Reshape_tokens", [1, 3, 4, 4], [("Reshape", ["x", "s"], {})], {"s": ints(1, 3, 16)}, ["reshape"], None),
        ("Transpose", [1, 3, 4, 5], [("Transpose", ["x"], {"perm": [0, 2, 3, 1]})], {}, ["permute"], None),
        ("Unsqueeze", [1, 3, 4], [("Unsqueeze", ["x", "ax"], {})], {"ax": ints(2)}, ["reshape"], None),
        ("Add", [1, 3, 4, 4], [("Relu", ["x"], {}), ("Add", ["x", "x1"], {})], {}, ["relu", "add"], None),
        ("Mul", [1, 3, 4, 4], [("Relu", ["x"], {}), ("Mul", ["x", "x1"], {})], {}, ["relu", "mul"], None),
        ("Concat", [1, 3, 4, 4], [("Relu", ["x"], {}), ("Concat", ["x", "x1"], {"axis": 1})], {}, ["relu", "concat"],
         None),
        ("Mul_layer_scale", [1, 3, 4, 4], [("Mul", ["x", "g"], {})], {"g": w(3, 1, 1)}, ["layer_scale"], None),
        ("Add_pos_embed", [1, 5, 8], [("Add", ["x", "p"], {})], {"p": w(1, 5, 8)}, ["pos_embed"], None),
        ("Concat_class_token", [1, 5, 8], [("Concat", ["t", "x"], {"axis": 1})], {"t": w(1, 1, 8)}, ["class_token"],
         None),
        ("Gather_select", [1, 5, 8], [("Gather", ["x", "i"], {"axis": 1})], {"i": np.array(0, dtype=np.int64)},
         ["select"], None),
        ("Pad_constant", [1, 3, 4, 4], [("Pad", ["x", "p"], {"mode": "constant"})], {"p": ints(0, 0, 1, 2, 0, 0, 1, 2)},
         ["zeropad"], None),
        ("Pad_uneven", [1, 3, 4, 4], [("Pad", ["x", "p"], {"mode": "constant"})], {"p": ints(0, 0, 1, 0, 0, 0, 2, 3)},
         ["zeropad"], None),
        ("Pad_reflect", [1, 3, 4, 4], [("Pad", ["x", "p"], {"mode": "reflect"})], {"p": ints(0, 0, 1, 1, 0, 0, 1, 1)},
         ["reflectpad"], None),
        ("Pad_edge", [1, 3, 4, 4], [("Pad", ["x", "p"], {"mode": "edge"})], {"p": ints(0, 0, 2, 2, 0, 0, 2, 2)},
         ["replicatepad"], None),
        ("Resize_nearest", [1, 3, 4, 4], [("Resize", ["x", "", "sc"], {"mode": "nearest"})],
         {"sc": f(1, 1, 2, 2)}, ["upsample"], None),
        ("Resize_linear", [1, 3, 4, 4],
         [("Resize", ["x", "", "sc"], {"mode": "linear", "coordinate_transformation_mode": "align_corners"})],
         {"sc": f(1, 1, 2, 3)}, ["upsample"], None),
        ("LayerNormalization", [1, 5, 8], [("LayerNormalization", ["x", "S", "B"], {"epsilon": 1e-6})],
         {"S": w(8), "B": w(8)}, ["layernorm"], None),
        ("Dropout_Identity", [1, 3, 4, 4], [("Dropout", ["x"], {}), ("Identity", ["x1"], {}), ("Relu", ["x2"], {})],
         {}, ["dropout", "relu"], None),
        ("Split", [1, 6, 4, 4], [("Split", ["x", "sp"], {"axis": 1}, 2), ("Add", ["x1", "x1b"], {})],
         {"sp": ints(3, 3)}, ["chunk", "chunk", "add"], None),
        ("Slice", [1, 6, 4, 4], [("Slice", ["x", "st", "en", "ax"], {})], {"st": ints(2), "en": ints(4),
                                                                             "ax": ints(1)}, ["chunk"], None),
    ]


def _build(case):
    onnx = need("onnx")
    from onnx import helper, numpy_helper

    name, shape, nodes, inits, _, _ = case
    made = []
    for i, item in enumerate(nodes):
        op, ins, attrs = item[:3]
        out = f"x{i + 1}"
        names = [out] if len(item) < 4 else [out, f"{out}b"]
        made.append(helper.make_node(op, ins, names, name=f"n{i}_{op}", **attrs))
    made[-1].output[0] = "y"
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    graph = helper.make_graph(made, name, [x], [y], [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18 if name != "Gelu" else 20)])


@pytest.mark.parametrize("case", _graph_cases(), ids=lambda c: c[0])
def test_one_graph_per_operator(case):
    """Each operator maps onto the kinds it stands for, with ONNX Runtime's output shape, the initializers'
    parameters (batch-norm statistics as buffers) and, for the weight operators, torch's MACs."""
    ort = need("onnxruntime")
    import numpy as np

    import cnnsize

    name, shape, nodes, inits, kinds, equivalent = case
    model = _build(case)
    imported = cnnsize.from_onnx(model)
    a = imported.analyze()
    assert [row.type for row in a.layers[1:]] == kinds
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.random.default_rng(1).standard_normal(shape).astype(np.float32)})
    assert (1, *a.layers[-1].output_shape) == y.shape
    held = sum(v.size for k, v in inits.items() if v.dtype == np.float32 and v.size > 1)
    if name == "BatchNormalization":
        assert a.totals["params"] == 12 and a.totals["buffers"] == 2 * 6 + 1  # torch's num_batches_tracked too
    elif kinds[-1] in ("prelu", "layer_scale", "pos_embed", "class_token") or any(
            k in kinds for k in ("conv", "deconv", "fc", "linear", "layernorm")):
        assert a.totals["params"] == held
    else:
        assert a.totals["params"] == 0
    if equivalent is not None:
        torch = need("torch")
        from torch.utils.flop_counter import FlopCounterMode

        cls, args, kwargs = equivalent
        module = getattr(torch.nn, cls)(*args, **kwargs)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = module(torch.zeros(shape))
        assert a.totals["macs"] == counter.get_total_flops() // 2
        assert a.totals["params"] == sum(p.numel() for p in module.parameters())
        assert tuple(out.shape[1:]) == tuple(a.layers[-1].output_shape)


def test_supported_lists_every_operator():
    """supported() is what the kinds declare: every operator of the table above is in it."""
    need("onnx")
    from cnnsize.importers.onnx_import import supported

    ops = {op for declared in supported().values() for op in declared}
    tested = {node[0] for case in _graph_cases() for node in case[2]}
    assert tested - {"Div", "Erf", "Pow"} <= ops  # GELU's inner operators are taken along by its last Mul


@pytest.mark.parametrize("exporter,opset", [("torchscript", 17), ("torchscript", 20), ("dynamo", 18)])
def test_activations_as_exporters_write_them(exporter, opset, tmp_path):
    """GELU (exact and tanh), SiLU, Hardswish and ReLU6 as each exporter writes them at each opset (written out
    before opset 20, Gelu after; Clip's bounds as inputs): each is one layer of its kind, MACs and params torch's."""
    torch = need("torch")
    need("onnx")
    import cnnsize

    nn = torch.nn
    net = randomise(nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8), nn.GELU(approximate="tanh"),
                                  nn.Linear(8, 6), nn.SiLU(), nn.Hardswish(), nn.ReLU6(), nn.Linear(6, 3)))
    x = torch.randn(1, 5, 8)
    path = str(tmp_path / "act.onnx")
    if exporter == "torchscript":
        torch.onnx.export(net, (x,), path, dynamo=False, opset_version=opset)
    else:
        need("onnxscript")
        torch.onnx.export(net, (x,), path, dynamo=True, opset_version=opset, external_data=False, verbose=False)
    a = cnnsize.from_onnx(path).analyze()
    kinds = [row.type for row in a.layers[1:]]
    assert kinds == ["linear", "gelu", "linear", "gelu", "linear", "silu", "hardswish", "relu6", "linear"]
    assert [a.layers[i].name for i in (2, 4)] and a.layers[4].name != a.layers[2].name
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = net(x)
    assert a.totals["macs"] == counter.get_total_flops() // 2
    assert a.totals["params"] == sum(p.numel() for p in net.parameters())
    assert (1, *a.layers[-1].output_shape) == tuple(y.shape)
    gelus = [row for row in a.layers if row.type == "gelu"]
    spec_gelus = [next(iter(item.values())) for item in cnnsize.from_onnx(path).spec["layers"]
                  if next(iter(item)) == "gelu"]
    assert [b.get("approximate", "none") for b in spec_gelus] == ["none", "tanh"] and len(gelus) == 2


# -- what the file's parameters leave out of the module's count (issue 21) ------------------------------------------
def test_untrained_resnet18_notes_folded_norms_and_dropped_zero_biases(tmp_path):
    """torch's dynamo exporter folds an untrained resnet18's batch norms and drops the conv biases that folding
    leaves all zero: the file holds 11,679,912 params where torch counts 11,689,512. The note says why and gives
    torch's counts of params and buffers (the truth: the module itself)."""
    torch = need("torch")
    tv = need("torchvision")
    need("onnxscript")
    import cnnsize

    model = tv.models.resnet18(weights=None).eval()
    path = str(tmp_path / "r18.onnx")
    torch.onnx.export(model, (torch.randn(1, 3, 64, 64),), path, dynamo=True, external_data=False, verbose=False)
    a = cnnsize.from_onnx(path).analyze()
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    less, _ = folded(model)
    bn_bias = sum(m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d))  # folded, all zero
    assert a.totals["params"] == params + less - bn_bias  # the file's: no batch norm, no conv bias
    note = next(n for n in a.notes if "Batch norm looks folded" in n)
    assert "dropped the biases that folding left all zero" in note
    assert f"the {a.totals['params']:,} params are the file's" in note
    assert f"it has {params:,} params and {buffers:,} buffers" in note


def test_deduplicated_parameters_are_noted(tmp_path):
    """torch's dynamo exporter stores two equal convolutions' weights once; both layers read them, so they count
    once (shares:), and the note gives what the module holds beyond the file: the second convolution's parameters
    (torch's count)."""
    torch = need("torch")
    need("onnxscript")
    import cnnsize

    nn = torch.nn
    net = randomise(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3)))
    with torch.no_grad():
        net[4].weight.copy_(net[2].weight)
        net[4].bias.copy_(net[2].bias)
    path = str(tmp_path / "dedup.onnx")
    torch.onnx.export(net, (torch.randn(1, 3, 16, 16),), path, dynamo=True, external_data=False, verbose=False)
    imported = cnnsize.from_onnx(path)
    a = imported.analyze()
    merged = sum(p.numel() for p in net[4].parameters())
    assert a.totals["params"] == sum(p.numel() for p in net.parameters()) - merged
    note = next(n for n in a.notes if "shares:" in n)
    assert f"the module holds {merged:,} more params" in note
