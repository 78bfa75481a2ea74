"""Regenerate every generated file from the code that knows its content: ``python -m tools.regen``.

    python -m tools.regen                              # write whatever is stale, say what was written
    python -m tools.regen --check                      # write nothing; exit 1 naming every stale file
    python -m tools.regen --import-results RUN.jsonl   # also the "What imports" table, from a zoo run's lines
    python -m tools.regen --zoo                        # also the tables of the detectors and YOLO configs
                                                       # (needs torchvision and ultralytics: the zoo environment)

What it writes (run it after adding or changing a layer kind, a convention, a paper's figure or the README):

- ``cnnsize/layers/index.py``: which module defines each layer kind, found by importing every module of
  cnnsize/layers (the registry loads a kind's module from it on first use, so a new kind's file needs no other
  edit);
- ``cnnsize/spec.schema.json``, through the schema's own generator (``cnnsize.spec.schema``);
- each generated table of the documentation, between ``<!-- generated: KEY (...) -->`` and ``<!-- end -->``
  in its page (BLOCKS below: every layer kind, the papers table, the conventions' rules, what imports);
- ``docs/index.md``, the documentation site's front page: README.md with its links made relative to docs/;
- the conventions' table, which shows each kind's coverage: the kinds declare it themselves (``tools_checked`` and
  ``count_rules`` in each kind's class, checked by tests/test_conventions_zoo.py), so no list is kept here.

The tests that keep these files fresh read them through ``block`` and ``index_text``, so a page that was not
regenerated fails them. "What imports" comes from a zoo run (hours, tools/import_table.py), so it is rewritten
only when a run's lines are given; tests/test_import_zoo.py checks its rows against torch's figures.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if not __package__:  # run as python tools/regen.py: this checkout's cnnsize and tools, not an installed one
    sys.path.insert(0, str(ROOT))
DOCS = ROOT / "docs"
INDEX = DOCS / "index.md"
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _papers() -> str:
    from cnnsize.bundled import papers

    return papers.table()


def _conventions() -> str:
    from cnnsize.passes import conventions

    return conventions.rules_table()


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _setting(name: str, param) -> str:
    default = "required" if param.required else "none" if param.default is None else str(param.default).lower()
    if isinstance(param.default, tuple):
        default = ", ".join(str(v) for v in param.default)
    choices = f"; one of {', '.join(str(c) for c in param.choices)}" if param.choices else ""
    return f"`{name}` ({default}){': ' + param.doc if param.doc else ''}{choices}"


def kinds_table() -> str:
    """Every registered layer kind: what it is (its docstring's first paragraph), its settings with their
    defaults and documentation, and the torch and ONNX operations it imports from."""
    from cnnsize.layers.base import REGISTRY

    lines = ["| kind | what it is | settings (default) | from torch | from ONNX |", "|---|---|---|---|---|"]
    for name in sorted(REGISTRY):
        cls = REGISTRY[name]
        what = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()).replace("``", "`")
        settings = "; ".join(_setting(k, p) for k, p in cls.params.items()) or "none"
        torch = ", ".join(f"`{m.rsplit('.', 1)[-1]}`" for m in (*cls.torch_modules, *cls.torch_functions)) or "–"
        onnx = ", ".join(f"`{op}`" for op in cls.onnx_ops) or "–"
        lines.append(f"| `{name}` | {_cell(what)} | {_cell(settings)} | {_cell(torch)} | {_cell(onnx)} |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Block:
    """A generated table: the page that holds it and the function that writes it (None: from a zoo run)."""

    page: str
    make: Callable[[], str] | None


BLOCKS = {
    "kinds": Block("kinds.md", kinds_table),
    "papers": Block("conventions.md", _papers),
    "conventions": Block("conventions.md", _conventions),
    "imports": Block("import.md", None),
    "yolo": Block("import.md", None),
    "detectors": Block("../README.md", None),
    "yolo-first": Block("../README.md", None),
}


def _pattern(key: str) -> re.Pattern:
    return re.compile(r"(<!-- generated: " + re.escape(key) + r" \([^)\n]*\) -->\n)(.*?)(<!-- end -->)", re.S)


def block(key: str, text: str | None = None) -> str:
    """The generated table KEY as its page holds it now (text: the page's text, if already read)."""
    page = BLOCKS[key].page
    text = (DOCS / page).read_text(encoding="utf-8") if text is None else text
    found = _pattern(key).search(text)
    if not found:
        raise LookupError(f"docs/{page} lacks the generated {key} table (<!-- generated: {key} (...) -->)")
    return found.group(2)


def replace_block(text: str, key: str, table: str) -> str:
    block(key, text)  # raises if the markers are missing
    body = table if table.endswith("\n") else table + "\n"
    return _pattern(key).sub(lambda m: m.group(1) + body + m.group(3), text, count=1)


def index_text(readme: str | None = None) -> str:
    """docs/index.md: the README with links into docs/ made relative to docs/ (the site's root)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8") if readme is None else readme

    def relink(m: re.Match) -> str:
        target = m.group(1)
        if target.startswith(("http://", "https://", "mailto:", "#")):
            return m.group(0)
        if not target.startswith("docs/"):
            raise ValueError(f"README.md links to {target!r}, outside docs/: the site cannot show it; "
                             "link a page under docs/ or write the path as code")
        return f"]({target[len('docs/'):]})"

    note = "<!-- generated from README.md by python -m tools.regen: edit README.md, not this file -->\n"
    return note + _LINK.sub(relink, readme)


def _write(path: Path, text: str, check: bool) -> bool:
    """Write TEXT to PATH unless it is there already; True when PATH was (or, with check, would be) changed."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    if not check:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return True


def _tables(imports: Path | None, yolo: bool = False) -> dict[str, str]:
    tables = {key: b.make() for key, b in BLOCKS.items() if b.make is not None}
    if imports is not None:
        from tools import import_table

        tables["imports"] = import_table.table(import_table.read_rows(imports))
    if yolo:  # the YAMLs are ultralytics', the detectors torchvision's: written where they are installed (the zoo
        from tools import deploy_table, yolo_table  # environment), checked there

        tables["yolo"] = yolo_table.table()
        tables["yolo-first"] = yolo_table.table(first_scale=True)
        tables["detectors"] = deploy_table.detectors_table()
    return tables


def _pages(tables: dict[str, str]) -> dict[Path, str]:
    pages: dict[Path, str] = {}
    for key, table in tables.items():
        path = (DOCS / BLOCKS[key].page).resolve()
        text = pages.get(path) or path.read_text(encoding="utf-8")
        pages[path] = replace_block(text, key, table)
    return pages


def _index(check: bool) -> list[Path]:
    """cnnsize/layers/index.py (kind name -> module) from the kinds' own files; the registry of this process then
    reads the kinds found, so the files written after it (the schema, the tables) have every kind."""
    from cnnsize.layers import index, registry
    from cnnsize.layers.base import REGISTRY

    kinds = registry.discover(REGISTRY)
    index.KINDS.clear()
    index.KINDS.update(kinds)
    path = Path(index.__file__)
    return [path] if _write(path, registry.index_text(kinds), check) else []


def regenerate(check: bool = False, imports: Path | None = None, yolo: bool = False) -> list[Path]:
    """Every generated file brought up to date (with check: left alone); the files that were stale."""
    from cnnsize.spec import schema

    stale = _index(check)
    if _write(schema.SCHEMA_FILE, schema.schema_text(), check):
        stale.append(schema.SCHEMA_FILE)
    pages = _pages(_tables(imports, yolo))
    for path, text in pages.items():
        if _write(path, text, check):
            stale.append(path)
    if _write(INDEX, index_text(pages.get(ROOT / "README.md")), check):
        stale.append(INDEX)
    for path, text in pictures().items():
        if _write(path, text, check):
            stale.append(path)
    return stale


def pictures() -> dict[Path, str]:
    """The drawings the README and the documentation show (docs/img/), drawn by the current code."""
    from cnnsize.api import draw

    return {DOCS / "img" / "lenet5.volumes.svg": draw("lenet5", fmt="svg", style="volumes"),
            DOCS / "img" / "inception3a.svg": draw(INCEPTION_BLOCK, fmt="svg", color="macs")}


# one Inception block of GoogLeNet (inception3a, on its 192×28×28 input), for the drawing docs/draw.md shows
INCEPTION_BLOCK = {
    "name": "inception3a", "input": [192, 28, 28], "layers": [
        {"conv": {"name": "branch1", "filters": 64, "kernel": 1, "from": "input"}},
        {"conv": {"name": "branch2.reduce", "filters": 96, "kernel": 1, "from": "input"}},
        {"conv": {"name": "branch2.conv", "filters": 128, "kernel": 3, "pad": 1}},
        {"conv": {"name": "branch3.reduce", "filters": 16, "kernel": 1, "from": "input"}},
        {"conv": {"name": "branch3.conv", "filters": 32, "kernel": 3, "pad": 1}},
        {"maxpool": {"name": "branch4.pool", "kernel": 3, "stride": 1, "pad": 1, "from": "input"}},
        {"conv": {"name": "branch4.conv", "filters": 32, "kernel": 1}},
        {"concat": {"name": "cat", "from": ["branch1", "branch2.conv", "branch3.conv", "branch4.conv"]}}]}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    imports = Path(args[args.index("--import-results") + 1]) if "--import-results" in args else None
    stale = regenerate(check=check, imports=imports, yolo="--zoo" in args or "--yolo" in args)
    for path in stale:
        print(f"{'stale' if check else 'wrote'}: {path.relative_to(ROOT)}")
    if not stale:
        print("every generated file is up to date")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
