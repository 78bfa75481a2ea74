"""Regenerate reports/<spec>.md for every bundled spec: ``python -m cnnsize.reports``.

``--check`` writes nothing and exits 1 when a report is stale or missing, so CI
and the test suite can tell when the bundled figures changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .render.text import markdown


def expected_reports() -> dict[str, str]:
    """Report file name -> the markdown the current code produces for it."""
    from .analysis import analyze_graph
    from .sources import bundled_names, load_graph

    return {f"{name}.md": markdown(analyze_graph(load_graph(name))) for name in bundled_names()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    folder = Path(next((a for a in args if not a.startswith("-")), "reports"))
    folder.mkdir(exist_ok=True)
    stale = []
    expected = expected_reports()
    for name, text in expected.items():
        path = folder / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not check:
            path.write_text(text, encoding="utf-8")
    extra = sorted(p.name for p in folder.glob("*.md") if p.name not in expected and p.name != "README.md")
    if check:
        for name in stale:
            print(f"stale or missing: {folder / name}")
        for name in extra:
            print(f"no bundled spec for: {folder / name}")
        return 1 if stale or extra else 0
    print(f"wrote {len(stale)} of {len(expected)} reports to {folder}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
