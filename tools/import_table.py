"""The "What imports" table of docs/import.md, made from a run of the import zoo test (tests/test_import_zoo.py).

    python tools/import_table.py            # runs the zoo tests (needs torchvision; hours), then prints the table
    python tools/import_table.py RESULTS    # prints the table from a run's JSON lines (CNNSIZE_IMPORT_RESULTS)
    python -m tools.regen --import-results RESULTS   # writes it into docs/import.md

Each row is what the test measured: torch's figures and whether cnnsize's equal them, or the error. The zoo test
checks each model's row in the page against the torch figures it measures (``documented``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "import.md"


def run_tests() -> Path:
    path = Path(tempfile.mkstemp(suffix=".jsonl")[1])
    env = {**os.environ, "CNNSIZE_IMPORT_RESULTS": str(path)}
    subprocess.run([sys.executable, "-m", "pytest", "tests/test_import_zoo.py", "-m", "zoo", "-q", "-p",
                    "no:warnings"], cwd=ROOT, env=env, check=False)
    return path


def status(row: dict) -> str:
    if row.get("error"):
        return "no: " + row["error"].split(" (fx node")[0].replace("|", "/")[:90]
    if not row.get("exact"):
        wrong = [k for k in ("params", "buffers", "macs", "activations")
                 if row.get(f"cnnsize_{k}") != row.get(f"torch_{k}")]
        return "inexact: " + ", ".join(wrong)
    if "validates" not in row:
        return "exact (validation not run)"
    return "exact, validates" if row["validates"] else "exact (validate fails)"


def figures(row: dict) -> list[str]:
    """A row's cells before its status: family, model, input and torch's params, MACs and activations."""
    shape = "×".join(str(v) for v in row["input"])
    return [row["family"], row["name"], shape, f"{row['torch_params']:,}", f"{row['torch_macs']:,}",
            f"{row['torch_activations']:,}"]


def table(rows: list[dict]) -> str:
    lines = ["| family | model | input | params | MACs | activations | import |",
             "|---|---|---|---:|---:|---:|---|"]
    for row in sorted(rows, key=lambda r: (r["family"], r["name"])):
        lines.append("| " + " | ".join([*figures(row), status(row)]) + " |")
    exact = sum(1 for r in rows if r.get("exact"))
    validated = sum(1 for r in rows if r.get("validates"))
    lines.append("")
    lines.append(f"{exact} of {len(rows)} models import exactly (params, buffers, MACs, activations); "
                 f"{validated} validated on CPU in this run.")
    return "\n".join(lines)


def read_rows(path: Path) -> list[dict]:
    """One row per model from a run's JSON lines (the exactness and validation tests' lines; the last run wins)."""
    rows: dict[str, dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        rows.setdefault(row["name"], {}).update(row)
    return [r for r in rows.values() if "torch_params" in r]  # a model the exactness test ran


def documented(name: str) -> list[str] | None:
    """Model NAME's row in docs/import.md's generated table, as cells (None: the table has no such row)."""
    from tools.regen import block

    for line in block("imports").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 7 and cells[1] == name:
            return cells
    return None


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else run_tests()
    print(table(read_rows(path)))


if __name__ == "__main__":
    main()
