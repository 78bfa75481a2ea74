"""Bad input gets one line naming file, line and layer, what is wrong and how to fix it; exit code 2."""

from __future__ import annotations

import pytest

from .conftest import run_cli

CASES = [
    # (spec text, expected pieces of the one-line message)
    ("name: bad\ninput: [1, 7, 7]\nlayers:\n  - conv: {filters: 1, kernel: 3, stride: 3}\n",
     ["bad.yaml:4:", "layer 'conv1'", "(7 − 3)/3 + 1 = 2.33: does not fit", "stride 1 (output 5) or 2 (output 3)",
      "pad 1", "input 6 or 9", "fit: floor"]),
    ("input: [3, 32, 32]\nlayers:\n  - conv: {filters: 4, kernel: 3}\n  - maxpol: {kernel: 2}\n",
     ["bad.yaml:4:", "unknown layer kind 'maxpol'", "did you mean 'maxpool'?", "cnnsize specs --kinds"]),
    ("input: [3, 32, 32]\nlayers:\n  - conv: {kernel: 3}\n",
     ["bad.yaml:3:", "layer 'conv1'", "conv is missing 'filters'", "write conv: {filters: ..., kernel: ...}"]),
    ("input: [3, 32, 32]\nlayers:\n  - conv: {filters: four, kernel: 3}\n",
     ["bad.yaml:3:21", "layer 'conv1'", "filters must be a positive integer", "'four'"]),
    ("input: [3, 32, 32]\nlayers:\n  - conv: {filters: 4.5, kernel: 3}\n",
     ["bad.yaml:3:21", "filters must be a positive integer, got 4.5"]),
    ("input: [3, 32, 32]\nlayers:\n  - conv: {filters: 4, kernal: 3}\n",
     ["bad.yaml:3:", "unknown key for conv 'kernal'", "did you mean 'kernel'?"]),
    ("input: [3, 32, 32]\nlayers:\n  - conv: {filters: 4, kernel: 3, bias: maybe}\n",
     ["bad.yaml:3:", "bias must be true or false"]),
    ("input: [3, 32, 32]\nlayrs:\n  - relu\n", ["bad.yaml:2:", "unknown top-level key 'layrs'", "'layers'"]),
    ("layers:\n  - relu\n", ["bad.yaml:1:1", "missing 'input'", "input: [3, 224, 224]"]),
    ("input: [3, 32, 32]\nlayers:\n  - conv: {filters: 4, kernel: 3}\n  - conv: {filters: 4, kernel: 3, groups: 3}\n",
     ["bad.yaml:4:", "layer 'conv2'", "input channels (4) must be divisible by groups (3)"]),
    ("input: [3, 4, 4]\nlayers:\n  - conv: {filters: 4, kernel: 7}\n",
     ["bad.yaml:3:", "7-wide filter is larger than the 4-wide padded input"]),
    ("input: [3, 32, 32]\nlayers:\n  - fc: {units: 10}\n  - conv: {filters: 4, kernel: 3}\n",
     ["bad.yaml:4:", "layer 'conv1'", "needs an input with spatial axes"]),
    ("input: [3, 32, 32]\nlayers:\n  - maxpool: {kernel: 2, pad: 2}\n",
     ["bad.yaml:3:", "pad 2 is more than half the pooling window 2"]),
    ("input: [3, 32, 32]\nlayers:\n  - conv: {name: a, filters: 4, kernel: 3}\n  - conv: {name: a, filters: 4, "
     "kernel: 3}\n", ["bad.yaml:4:", "layer name 'a' is used twice (first at line 3)"]),
    ("input: [3, 32, 32]\nlayers:\n  - conv: {filters: 4, kernel: 3}\n    relu: {}\n",
     ["bad.yaml:3:", "exactly one key"]),
    ("[1, 2, 3]\n", ["bad.yaml:1:1", "top level of a spec must be a mapping"]),
    ("", ["bad.yaml", "the spec is empty"]),
    ("input: [3, 32, 32]\nlayers:\n\t- relu\n", ["bad.yaml:3:1", "invalid YAML", "tabs"]),
    ("input: [3, 32, 32]\ninput: [3, 8, 8]\nlayers: [relu]\n", ["bad.yaml:2:1", "duplicate key 'input'"]),
    ("!!python/object/apply:os.system ['echo hi']\n", ["bad.yaml:1:1", "tag !!python/object/apply:os.system",
                                                     "not allowed"]),
]


@pytest.mark.parametrize("text, pieces", CASES, ids=[c[1][1][:40] for c in CASES])
def test_one_line_error_with_location(tmp_path, text, pieces):
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    result = run_cli("report", str(spec))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("cnnsize: error: ")
    for piece in pieces:
        assert piece in lines[0], (piece, lines[0])


@pytest.mark.parametrize("args, piece", [
    (["report", "no-such-spec"], "no spec file or bundled spec named 'no-such-spec'"),
    (["report", "vgg61"], "did you mean 'vgg19'?"),
    (["report", "."], "is a folder, not a spec file"),
    (["report", "vgg16", "--format", "xml"], "invalid choice: 'xml'"),
    (["report", "vgg16", "--dtype", "f16"], "'f16' is cnnsize's 'float16'"),
    (["report", "vgg16", "--input", "3xx"], "--input '3xx'"),
    (["report", "vgg16", "--batch", "0"], "--batch: '0' is not a positive integer"),
    *[([cmd, "vgg16", "--batch", "-1"], "--batch: '-1' is not a positive integer")
      for cmd in ("conventions", "compare")],
    (["report", "vgg16", "--fit", "round"], "unknown fit rule 'round'"),
    (["report", "vgg16", "--bogus"], "unrecognized arguments: --bogus"),
    (["report"], "the following arguments are required: spec"),
    (["reprot", "vgg16"], "unknown command 'reprot'; did you mean 'report'?"),
])
def test_bad_arguments_exit_2_without_traceback(args, piece):
    result = run_cli(*args)
    assert result.returncode == 2, result
    assert piece in result.stderr and "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "report", "no-such-spec")
    assert result.returncode != 0 and "Traceback" in result.stderr
