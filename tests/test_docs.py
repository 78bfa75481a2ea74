"""The documentation holds together without mkdocs: every relative link and anchor of README.md and docs/*.md
resolves (on GitHub and on the mkdocs site, whose heading anchors are made by different rules), the README stays a
front door that links every page, the site's front page is the README, and mkdocs.yml lists every page.
(.ci/run builds the site with ``mkdocs build --strict`` as well, which fails on the same broken links.)"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import yaml

from tools import regen

from .conftest import ROOT

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _plain(heading: str) -> str:
    """A heading's text as rendered: code, emphasis and links reduced to their text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[`*]|(?<!\w)_|_(?!\w)", "", text)


def github_slug(text: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", _plain(text).strip().lower()).replace(" ", "-")


def mkdocs_slug(text: str) -> str:
    """Python-Markdown's toc.slugify (mkdocs' default): ASCII only, runs of spaces and hyphens one hyphen."""
    value = unicodedata.normalize("NFKD", _plain(text)).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    return re.sub(r"[-\s]+", "-", value)


def _outside_code(text: str):
    fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
        elif not fence:
            yield line


def anchors(text: str) -> tuple[set[str], set[str]]:
    """A page's heading anchors by GitHub's rule and by mkdocs' (duplicates numbered as each numbers them)."""
    github: set[str] = set()
    mkdocs: set[str] = set()
    for line in _outside_code(text):
        found = _HEADING.match(line)
        if not found:
            continue
        for slugs, slug, sep in ((github, github_slug(found.group(2)), "-"),
                                 (mkdocs, mkdocs_slug(found.group(2)), "_")):
            unique, n = slug, 0
            while unique in slugs:
                n += 1
                unique = f"{slug}{sep}{n}"
            slugs.add(unique)
    return github, mkdocs


def broken_links(path: Path, text: str | None = None) -> list[str]:
    """Every relative link of a markdown file whose file or anchor does not exist, with why."""
    text = path.read_text(encoding="utf-8") if text is None else text
    out = []
    for line in _outside_code(text):
        for target in _LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path.resolve()
            if not dest.is_file():
                out.append(f"{path.name}: {target}: no such file")
                continue
            if path.parent == DOCS and DOCS.resolve() not in dest.parents:
                out.append(f"{path.name}: {target}: outside docs/, which the site cannot show")
            if anchor and dest.suffix == ".md":
                github, mkdocs = anchors(dest.read_text(encoding="utf-8"))
                if anchor not in github or anchor not in mkdocs:
                    out.append(f"{path.name}: {target}: no heading with that anchor on GitHub and in mkdocs")
    return out


def test_every_relative_link_and_anchor_resolves():
    assert [b for p in [ROOT / "README.md", *PAGES] for b in broken_links(p)] == []


def test_the_link_check_finds_broken_links():
    page = DOCS / "commands.md"
    text = ("[a](spec.md) [b](nowhere.md) [c](spec.md#no-such-heading) [d](#commands) [e](../README.md)\n"
            "[f](conventions.md#every-tools-convention) [g](https://example.org/x.md)\n"
            "```\n[h](ignored.md)\n```\n")
    assert broken_links(page, text) == [
        "commands.md: nowhere.md: no such file",
        "commands.md: spec.md#no-such-heading: no heading with that anchor on GitHub and in mkdocs",
        "commands.md: ../README.md: outside docs/, which the site cannot show"]


def test_slugs_follow_github_and_mkdocs():
    heading = "Every tool's convention: `--count NAME` and `cnnsize conventions`"
    assert github_slug(heading) == "every-tools-convention---count-name-and-cnnsize-conventions"
    assert mkdocs_slug(heading) == "every-tools-convention-count-name-and-cnnsize-conventions"
    assert anchors("# A\n## A\n```\n# B\n```\n") == ({"a", "a-1"}, {"a", "a_1"})


def test_readme_is_a_front_door_to_every_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    linked = {t.partition("#")[0] for t in _LINK.findall(readme)}
    assert [p.name for p in PAGES if p.name != "index.md" and f"docs/{p.name}" not in linked] == []


def test_site_front_page_is_the_readme():
    """docs/index.md is generated from README.md (``python -m tools.regen``): editing only one of them fails."""
    assert (DOCS / "index.md").read_text(encoding="utf-8") == regen.index_text(), "run python -m tools.regen"


def _nav_pages(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for v in nav.values() for p in _nav_pages(v)]
    return [p for item in nav for p in _nav_pages(item)]


def test_mkdocs_nav_lists_every_page_once():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_pages(config["nav"])
    assert sorted(nav) == [p.name for p in PAGES]


def _readme_blocks() -> list[tuple[str, str]]:
    """The README's fenced blocks as (the line before the block, the block's text)."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].startswith("```"):
            end = lines.index("```", i + 1)
            before = next((line for line in reversed(lines[:i]) if line.strip()), "")
            blocks.append((before, "\n".join(lines[i + 1:end])))
            i = end
        i += 1
    return blocks


def test_readme_examples_are_what_cnnsize_prints(cli):
    """Each shell session in the README (``$ cnnsize ...`` and what follows it) and the lenet5 report are the
    output of the command now, byte for byte (errors included, on standard error)."""
    import shlex

    sessions = [(before, text) for before, text in _readme_blocks() if text.startswith("$ cnnsize ")]
    report = [text for _, text in _readme_blocks() if text.startswith("lenet5\n┏")]
    assert len(sessions) == 2 and len(report) == 1
    runs = [("$ cnnsize report lenet5", report[0])]
    for _, text in sessions:
        parts = re.split(r"^(\$ cnnsize .*)$", text, flags=re.M)[1:]
        runs += [(parts[k], parts[k + 1].strip("\n")) for k in range(0, len(parts), 2)]
    assert len(runs) == 4
    for command, shown in runs:
        r = cli(*shlex.split(command)[2:])
        assert (r.stdout + r.stderr).rstrip("\n") == shown, command


def test_readme_import_example_is_what_from_torch_writes():
    """The README's import example: the network it builds (the same line here) imports as the spec it shows."""
    import torch.nn as nn

    import cnnsize

    python = next(text for _, text in _readme_blocks() if "cnnsize.from_torch(net" in text)
    assert "net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),\n" \
           "                    nn.Flatten(), nn.Linear(16 * 16 * 16, 10))" in python
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(16 * 16 * 16, 10))
    imported = cnnsize.from_torch(net, (3, 32, 32), name="small")
    shown = next(text for _, text in _readme_blocks() if text.startswith("# Imported from torch"))
    assert imported.yaml.rstrip("\n") == shown
    assert f"# {imported.analyze().totals['params']}, as sum(p.numel()" in python
    assert imported.analyze().totals["params"] == sum(p.numel() for p in net.parameters())


def test_import_results_become_the_pages_table(tmp_path):
    """A zoo run's JSON lines (tests/test_import_zoo.py) become the "What imports" table that regen writes between
    the page's markers, the page's other text untouched, and ``documented`` reads a model's row back."""
    import json

    from tools import import_table

    lines = [{"name": "net", "family": "classification", "input": [3, 8, 8], "torch_params": 1234, "torch_macs": 5,
              "torch_activations": 6, "cnnsize_params": 1234, "exact": True},
             {"name": "net", "family": "classification", "validates": True},
             {"name": "bad", "family": "video", "input": [3, 2, 8, 8], "torch_params": 1, "torch_macs": 2,
              "torch_activations": 3, "error": "cannot import module type X | Y (fx node 'a')"}]
    run = tmp_path / "run.jsonl"
    run.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    table = import_table.table(import_table.read_rows(run))
    assert table.splitlines()[2:] == [
        "| classification | net | 3×8×8 | 1,234 | 5 | 6 | exact, validates |",
        "| video | bad | 3×2×8×8 | 1 | 2 | 3 | no: cannot import module type X / Y |", "",
        "1 of 2 models import exactly (params, buffers, MACs, activations); 1 validated on CPU in this run."]
    page = "before\n<!-- generated: imports (x) -->\nold\n<!-- end -->\nafter\n"
    written = regen.replace_block(page, "imports", table)
    assert written == f"before\n<!-- generated: imports (x) -->\n{table}\n<!-- end -->\nafter\n"
    assert regen.block("imports", written) == table + "\n"
    assert import_table.documented("alexnet")[:2] == ["classification", "alexnet"]
