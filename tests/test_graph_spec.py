"""The graph spec language: from:, merges, blocks, repeat over blocks, if parts, expressions, and its errors."""

from __future__ import annotations

import textwrap

import pytest

import cnnsize
from cnnsize.core.errors import LimitExceeded, SpecError
from cnnsize.spec.sources import load_graph


def spec(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


RESIDUAL = spec("""
    name: tiny_resnet
    input: [base, 16, 16]
    fit: floor
    vars: {base: 8}
    blocks:
      basic:
        args: {planes: ~, stride: 1, down: false}
        layers:
          - conv: {name: conv1, filters: planes, kernel: 3, stride: stride, pad: 1, bias: false}
          - bn: {name: bn1}
          - relu: {name: relu1}
          - conv: {name: conv2, filters: planes, kernel: 3, pad: 1, bias: false}
          - bn: {name: bn2}
          - if: down
            layers:
              - conv: {name: downsample.0, from: in, filters: planes, kernel: 1, stride: stride, bias: false}
              - bn: {name: downsample.1}
          - add: {name: add, from: [bn2, "{'downsample.1' if down else 'in'}"]}
          - relu: {name: relu2}
    layers:
      - {repeat: 2, name: layer1, block: basic, args: {planes: base}}
      - {repeat: 3, name: layer2, block: basic, args: {planes: base * 2}, first: {stride: 2, down: true}}
      - global_avgpool: {name: pool, from: layer2}
      - fc: {name: fc, units: 3}
""")


def test_blocks_repeat_and_optional_parts():
    a = cnnsize.analyze(RESIDUAL)
    names = [r.name for r in a.layers]
    assert "layer2.0.downsample.0" in names and "layer2.1.downsample.0" not in names
    assert "layer1.0.downsample.0" not in names
    assert a.layer("layer2.0.conv1").summary == "filters=16, kernel=3, stride=2, pad=1, bias=False"
    assert a.layer("layer1.1.add").inputs == ["layer1.1.bn2", "layer1.0.relu2"]  # 'in' is the block's input
    assert a.layer("layer2.0.add").inputs == ["layer2.0.bn2", "layer2.0.downsample.1"]
    assert a.layer("layer2.2.add").output_shape == (16, 8, 8)
    assert a.layer("pool").inputs == ["layer2.2.relu2"]  # a block use's name stands for its output


def test_graph_forms_match_torch():
    torch = pytest.importorskip("torch")  # noqa: F841
    from .torch_graph import measure

    a = cnnsize.analyze(RESIDUAL)
    got = measure(a)
    assert all(got["shapes"][r.name] == tuple(r.output_shape) for r in a.layers)
    assert (got["params"], got["macs"]) == (a.totals["params"], a.totals["macs"])


def test_template_names_inline_blocks_and_index():
    a = cnnsize.analyze(spec("""
        input: [4, 8, 8]
        vars: {growth: 2}
        blocks:
          dense:
            layers:
              - conv: {name: conv, filters: growth, kernel: 3, pad: 1}
              - concat: {name: cat, from: [in, conv]}
          pair:
            inline: true
            args: {k: ~}
            layers:
              - conv: {name: "c{k}", filters: 4, kernel: 1}
              - relu: {name: "r{k}"}
        layers:
          - {repeat: 3, name: "block.layer{i + 1}", block: dense}
          - {repeat: 2, layers: [pair: {k: "i * 10"}]}
          - conv: {filters: "growth * i + 1", kernel: 1}
    """.replace('"growth * i + 1"', '"growth * 3 + 1"')))
    names = [r.name for r in a.layers]
    assert names[1:7] == ["block.layer1.conv", "block.layer1.cat", "block.layer2.conv", "block.layer2.cat",
                          "block.layer3.conv", "block.layer3.cat"]
    assert a.layer("block.layer3.cat").output_shape == (10, 8, 8)
    assert {"c0", "r0", "c10", "r10"} <= set(names)
    assert a.layers[-1].output_shape == (7, 8, 8)


def test_variables_can_be_overridden():
    a = cnnsize.analyze(RESIDUAL, variables={"base": 4})
    assert a.input_shape == (4, 16, 16)
    assert a.layer("layer2.0.conv1").output_shape == (8, 8, 8)
    with pytest.raises(SpecError, match="unknown spec variable 'bse'.*did you mean 'base'"):
        cnnsize.analyze(RESIDUAL, variables={"bse": 4})


def test_rf_through_branches_is_the_union():
    a = cnnsize.analyze(spec("""
        input: [1, 32, 32]
        fit: floor
        layers:
          - conv: {name: a, filters: 1, kernel: 3, pad: 1}
          - conv: {name: b, from: input, filters: 1, kernel: 7, stride: 2, pad: 3}
          - upsample: {name: up, scale: 2}
          - avgpool: {name: c, from: input, kernel: 2, stride: 2}
          - concat: {name: cat1, from: [a, up]}
          - conv: {name: d, filters: 1, kernel: 3, stride: 2, pad: 1}
          - concat: {name: cat2, from: [d, c]}
          - global_avgpool
    """))
    rf = a.layer("cat2").receptive_field
    # d: cat1's union (size 7, jump 1, start -3) through a 3x3 stride-2 conv: 7 + 2 = 9, jump 2, start -4;
    # c: a 2x2 stride-2 pool: size 2, start 0. The union spans -4 .. 5.
    assert (rf.size, rf.stride, rf.start) == ((9, 9), (2, 2), (-4, -4))
    assert a.totals["receptive_field"] == rf  # the last layer with spatial extent


def test_rf_through_a_residual_graph_matches_gradients():
    """The field of one output unit equals the input pixels its gradient reaches (all weights positive)."""
    torch = pytest.importorskip("torch")
    from .torch_graph import GraphModule

    a = cnnsize.analyze(spec("""
        input: [1, 40, 40]
        fit: floor
        layers:
          - conv: {name: a, filters: 2, kernel: 3, stride: 2, pad: 1}
          - conv: {name: b, filters: 2, kernel: 5, pad: 2}
          - conv: {name: s, from: a, filters: 2, kernel: 1}
          - add: {name: add, from: [b, s]}
          - avgpool: {name: p, kernel: 2, stride: 2}
          - conv: {name: e, from: add, filters: 2, kernel: 1, stride: 2}
          - concat: {name: out, from: [p, e]}
    """))
    model = GraphModule(a)
    for prm in model.parameters():
        torch.nn.init.constant_(prm, 0.1)
    x = torch.ones(1, 1, 40, 40, requires_grad=True)
    y = model(x)
    k = 4  # a unit well inside the map
    y[0, :, k, k].sum().backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    rf = a.layer("out").receptive_field
    lo = rf.start[0] + k * rf.stride[0]
    assert (rows.min().item(), rows.max().item()) == (lo, lo + rf.size[0] - 1)


# -- errors: every one caught at analysis time, with the spec location and the layer ------------------------------
BAD = {
    "unknown_ref": ("""
        input: [3, 8, 8]
        layers:
          - conv: {name: stem, filters: 4, kernel: 3, pad: 1}
          - add: {from: [stem, stme2]}
     """, r"<string>:4:\d+: layer 'add1': 'from' names unknown layer 'stme2'; did you mean 'stem'"),
    "later_layer": ("""
        input: [3, 8, 8]
        layers:
          - conv: {name: a, filters: 4, kernel: 3, pad: 1, from: b}
          - conv: {name: b, filters: 4, kernel: 3, pad: 1}
     """, r"<string>:3:\d+: layer 'a': 'from' names unknown layer 'b'.*only name layers defined above"),
    "cycle": ("""
        input: [3, 8, 8]
        layers:
          - conv: {name: a, filters: 4, kernel: 3, pad: 1, from: a}
     """, r"<string>:3:\d+: layer 'a': 'from' names the layer itself \('a'\): a cycle"),
    "add_shapes": ("""
        input: [3, 8, 8]
        layers:
          - conv: {name: a, filters: 4, kernel: 3, pad: 1}
          - conv: {name: b, filters: 4, kernel: 2, stride: 2}
          - add: {name: sum, from: [a, b]}
     """, r"<string>:5:\d+: layer 'sum': add needs inputs of one shape, got 4×8×8 and 4×4×4"),
    "concat_sizes": ("""
        input: [3, 8, 8]
        layers:
          - conv: {name: a, filters: 4, kernel: 3, pad: 1}
          - maxpool: {name: b, kernel: 2}
          - concat: {name: cat, from: [a, b]}
     """, r"<string>:5:\d+: layer 'cat': concat needs inputs of one spatial size, got 4×8×8 and 4×4×4"),
    "missing_arg": ("""
        input: [3, 8, 8]
        blocks:
          unit: {args: {width: ~, stride: 1}, layers: [conv: {filters: width, kernel: 1}]}
        layers:
          - unit: {name: u1, stride: 2}
     """, r"<string>:5:\d+: layer 'u1': block 'unit' is missing argument 'width'; required arguments: width"),
    "unknown_arg": ("""
        input: [3, 8, 8]
        blocks:
          unit: {args: {width: ~}, layers: [conv: {filters: width, kernel: 1}]}
        layers:
          - unit: {widht: 4}
     """, r"<string>:5:19: unknown argument of block 'unit' 'widht'; did you mean 'width'"),
    "unknown_variable": ("""
        input: [3, 8, 8]
        vars: {width: 4}
        layers:
          - conv: {filters: widht * 2, kernel: 1}
     """, r"<string>:4:\d+: layer 'conv1': .*unknown variable 'widht'.*did you mean 'width'"),
    "unknown_block_in_repeat": ("""
        input: [3, 8, 8]
        blocks:
          unit: {layers: [relu]}
        layers:
          - {repeat: 2, block: unti}
     """, r"<string>:5:24: unknown block 'unti'; did you mean 'unit'"),
    "recursive_block": ("""
        input: [3, 8, 8]
        blocks:
          loop: {layers: [relu, loop]}
        layers:
          - loop
     """, r"<string>:3:9: block 'loop' uses itself"),
    "mul_broadcast": ("""
        input: [4, 8, 8]
        layers:
          - conv: {name: g, filters: 2, kernel: 1}
          - mul: {name: gate, from: [input, g]}
     """, r"<string>:4:\d+: layer 'gate': mul cannot broadcast 4×8×8 and 2×8×8"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_graph_errors(case):
    text, pattern = BAD[case]
    with pytest.raises(SpecError, match=pattern):
        cnnsize.analyze(spec(text))


def test_hostile_block_nesting_is_refused_before_expanding():
    text = spec("""
        input: [3, 8, 8]
        blocks:
          b1: {layers: [{repeat: 1000, layers: [relu]}]}
          b2: {layers: [{repeat: 1000, block: b1}]}
          b3: {layers: [{repeat: 1000, block: b2}]}
        layers:
          - b3
    """)
    with pytest.raises(LimitExceeded, match="expands to 1,000,000,000 layers"):
        cnnsize.load(text)


def test_expression_repeat_counts_are_bounded_while_expanding():
    text = spec("""
        input: [3, 8, 8]
        blocks:
          b: {args: {n: ~}, layers: [{repeat: n, layers: [relu]}]}
        layers:
          - b: {n: "10 ** 9"}
    """)
    with pytest.raises(LimitExceeded, match="more than 10,000 layers"):
        load_graph(text, max_layers=10_000)


def test_a_row_reads_its_counts_from_the_figures_it_shares():
    """A row (LayerResult) holds the Figures the walk worked out once for every layer alike and reads its counts
    from them: every count reads back, every field is set, and changing one row's count (a formula tidied) leaves
    the shared figures, and so the other rows, as they were."""
    from cnnsize.core.plain import fields
    from cnnsize.engine.result import COUNT_FIELDS, Figures, LayerResult

    figures = Figures(*range(1, 10))
    given = dict(name="a", type="conv", inputs=["x"], output_shape=(4, 5), receptive_field="rf", param_bytes=11,
                 activation_bytes=12, kind="k", weight_layer=True, materialized=False, location="here",
                 function="F.relu")
    row, other = LayerResult(figures=figures, **given), LayerResult(figures=figures, **given)
    assert [getattr(row, key) for key in COUNT_FIELDS] == list(range(1, 10))
    assert all(getattr(row, name) == value for name, value in given.items())
    assert all(hasattr(row, name) for name in fields(LayerResult))
    assert row == other
    row.macs = 80
    assert (row.macs, row.figures.macs, row.flops) == (80, 80, 9)
    assert figures.macs == other.macs == 8 and row != other


def test_a_repeat_expands_as_its_layers_written_out(monkeypatch):
    """A repeat's plain body is expanded once and stamped after (Expander._stamp): the graph and every figure are
    those of the same layers written one by one, automatic names skipping a name already taken (relu3), a layer's
    ``function`` kept (the stamped ones once lost it, and crashed the walk with it in their ties)."""
    body = ["- conv: {filters: 8, kernel: 3, pad: 1, bias: false}", "- bn", "- relu: {inplace: true, function: F.relu}",
            "- dropout: {p: 0.1, trainable: false}"]
    head = "name: n\ninput: [3, 16, 16]\nlayers:\n  - relu: {name: relu3}\n"
    repeated = head + "  - repeat: 4\n    layers:\n" + "".join(f"      {line}\n" for line in body)
    written = head + "".join(f"  {line}\n" for _ in range(4) for line in body)
    from cnnsize.spec.expand import Expander

    stamped = []
    stamp = Expander._stamp
    monkeypatch.setattr(Expander, "_stamp", lambda self, *args: stamped.append(args[2] if len(args) > 2 else 1) or
                        stamp(self, *args))
    a, b = load_graph(repeated), load_graph(written)
    assert sum(stamped) == 3  # the repetitions after the first
    assert [(n.name, n.inputs, n.kind.values, n.trainable, n.shares, n.ties, n.function) for n in a.nodes] == \
        [(n.name, n.inputs, n.kind.values, n.trainable, n.shares, n.ties, n.function) for n in b.nodes]
    assert [n.function for n in a.nodes].count("F.relu") == 4
    assert "relu3" in [n.name for n in a.nodes] and len({n.name for n in a.nodes}) == len(a.nodes)
    assert cnnsize.analyze(repeated).to_dict()["layers"] == cnnsize.analyze(written).to_dict()["layers"]


@pytest.mark.parametrize("taken", [False, True])
def test_a_stamped_repeat_is_named_as_its_layers_written_out(monkeypatch, taken):
    """The repetitions after the first are made in one go where none of their automatic names is taken (a kind twice
    in the body numbers on in turn) and one by one where one is (conv7, written before): either way the names, links,
    locations and figures of the same layers written one by one."""
    body = ["- conv: {filters: 8, kernel: 3, pad: 1}", "- relu", "- conv: {filters: 8, kernel: 1}", "- relu"]
    head = "name: n\ninput: [8, 8, 8]\nlayers:\n" + ("  - relu: {name: conv7}\n" if taken else "")
    repeated = head + "  - repeat: 5\n    layers:\n" + "".join(f"      {line}\n" for line in body)
    written = head + "".join(f"  {line}\n" for _ in range(5) for line in body)
    from cnnsize.spec.expand import Expander

    one_by_one = []
    each = Expander._stamp_each
    monkeypatch.setattr(Expander, "_stamp_each", lambda self, *args: one_by_one.append(args[2]) or each(self, *args))
    a, b = load_graph(repeated), load_graph(written)
    assert one_by_one == ([4] if taken else [])
    assert [(n.name, n.inputs) for n in a.nodes] == [(n.name, n.inputs) for n in b.nodes]
    lines = [n.loc.line for n in a.nodes[-20:]]  # each stamped layer where its body's line is
    assert lines == lines[:4] * 5 and len(set(lines)) == 4
    assert [n.name for n in a.nodes if n.kind.kind == "conv"][-1] == ("conv11" if taken else "conv10")
    assert cnnsize.analyze(repeated).to_dict()["layers"] == cnnsize.analyze(written).to_dict()["layers"]


@pytest.mark.parametrize("reads", [["layer1.0.conv2"], ["conv1"], ["nope"], ["input", "layer4.1.relu"]])
def test_a_graph_layer_reading_a_later_layer_itself_or_no_layer_is_refused(reads):
    """Graph.topology takes the layers in order: reading a later layer (a cycle), itself or a name no layer has is
    one located line naming the name, whichever of a layer's inputs it is."""
    from cnnsize.core.graph import Graph, Node

    graph = cnnsize.load("resnet18")
    first = graph.nodes[0]
    nodes = [Node(first.name, first.kind, reads, first.loc), *graph.nodes[1:]]
    with pytest.raises(SpecError) as err:
        Graph("g", graph.input_shape, nodes).topology  # noqa: B018
    assert f"'{reads[-1]}' is not computed before this layer" in str(err.value) and "layer 'conv1'" in str(err.value)
