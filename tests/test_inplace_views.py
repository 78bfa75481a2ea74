"""In place onto a part that chunk returns: torch's autograd refuses it where the part requires grad, and so does
cnnsize, in one line; where nothing before it trains (the network's input chunked), torch runs it and so does
cnnsize. The truth is torch itself, on the same network written by hand."""

from __future__ import annotations

import pytest

import cnnsize

torch = pytest.importorskip("torch")


def _spec(before: list, after: list, inplace: bool) -> str:
    layers = [*before, "- chunk: {name: a, chunks: 2, index: 0}", *after,
              f"- relu: {{name: r, inplace: {str(inplace).lower()}}}"]
    return "name: parts\ninput: [4, 8, 8]\nlayers:\n" + "".join(f"  {line}\n" for line in layers)


def _torch_runs(conv: bool, flatten: bool) -> bool:
    layer = torch.nn.Conv2d(4, 4, 3, padding=1)
    x = torch.randn(1, 4, 8, 8)
    y = layer(x) if conv else x
    part = y.chunk(2, 1)[0]
    if flatten:
        part = part.flatten(1)
    try:
        part.relu_()
    except RuntimeError as exc:
        assert "modified inplace" in str(exc)
        return False
    return True


CONV = ["- conv: {name: c, filters: 4, kernel: 3, pad: 1}"]
FLATTEN = ["- flatten: {name: f}"]


@pytest.mark.parametrize(("conv", "flatten"), [(True, False), (True, True), (False, False), (False, True)])
def test_in_place_on_a_chunk_part_as_torch_allows_it(conv, flatten):
    text = _spec(CONV if conv else [], FLATTEN if flatten else [], inplace=True)
    if _torch_runs(conv, flatten):
        assert cnnsize.analyze(text).layer("r").type == "relu"
    else:
        with pytest.raises(cnnsize.SpecError) as err:
            cnnsize.analyze(text)
        assert "torch's autograd refuses" in err.value.message and err.value.layer == "r"
        assert "inplace: false" in str(err.value)
    cnnsize.analyze(_spec(CONV if conv else [], FLATTEN if flatten else [], inplace=False))  # always fine


def test_the_refusal_is_one_line_on_the_command_line(tmp_path):
    from .conftest import run_cli

    path = tmp_path / "parts.yaml"
    path.write_text(_spec(CONV, [], inplace=True))
    result = run_cli("report", str(path))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "layer 'r'" in result.stderr and "inplace: false" in result.stderr
