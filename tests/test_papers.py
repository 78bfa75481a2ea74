"""The papers table: every architecture's figure as its paper states it, against cnnsize's."""

from __future__ import annotations

import re

import pytest

import cnnsize
from cnnsize.bundled import papers


@pytest.mark.parametrize("paper", papers.PAPERS, ids=lambda p: f"{p.spec}-{p.quantity}-{p.figure}")
def test_verdict(paper):
    """Each entry says whether cnnsize reproduces the paper's figure; the arithmetic must agree."""
    assert papers.reproduces(paper) is paper.expect, papers.verdict(paper)
    if not paper.expect:
        assert paper.why


def test_every_figure_says_where_its_text_was_read():
    """Each row records where its figure's text was checked, or says it was not read in the paper itself; a row
    that points to another row's record ("as vgg11's") names a row that has one."""
    specs = {p.spec for p in papers.PAPERS}
    for paper in papers.PAPERS:
        assert paper.seen, f"{paper.spec} {paper.quantity}: no record of where its text was read"
        if paper.seen.startswith("as ") and paper.seen.endswith("'s"):
            assert paper.seen[3:-2] in specs


def test_papers_table_keeps_its_columns():
    """A quoted table row ("VGG 16 | 71.5% | 15300 | 138") must not split the markdown row: seven cells each."""
    for line in papers.table().splitlines():
        assert len(re.findall(r"(?<!\\)\|", line)) == 8, line[:80]


def test_docs_papers_table_is_generated():
    """docs/conventions.md holds what ``papers.table()`` writes now (``python -m tools.regen`` rewrites it)."""
    from tools import regen

    assert regen.block("papers") == papers.table(), "stale papers table: run python -m tools.regen"


@pytest.mark.parametrize("spec", ["resnet50", "resnet101", "resnet152"])
def test_resnet_v1_moves_the_stride_only(spec):
    """v1 (the paper) strides on the first 1x1 of a block, v1.5 (torchvision) on the 3x3: same parameters,
    fewer MACs, the same output sizes at every block boundary."""
    v15, v1 = cnnsize.analyze(spec), cnnsize.analyze(spec, variables={"v1": True})
    assert v1.totals["params"] == v15.totals["params"] and v1.totals["macs"] < v15.totals["macs"]
    first = v1.layer("layer2.0.conv1")
    assert first.kind.stride == 2 and v1.layer("layer2.0.conv2").kind.stride == 1
    assert [r.output_shape for r in v1.layers if r.type == "add"] == [r.output_shape for r in v15.layers
                                                                       if r.type == "add"]
