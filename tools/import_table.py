"""The README's "what imports" table, made from a run of the import zoo test (tests/test_import_zoo.py).

    python tools/import_table.py            # runs the zoo tests (needs torchvision; hours), then prints the table
    python tools/import_table.py RESULTS    # prints the table from a run's JSON lines (CNNSIZE_IMPORT_RESULTS)

Each row is what the test measured: torch's figures and whether cnnsize's equal them, or the error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


def table(rows: list[dict]) -> str:
    lines = ["| family | model | input | params | MACs | activations | import |",
             "|---|---|---|---:|---:|---:|---|"]
    for row in sorted(rows, key=lambda r: (r["family"], r["name"])):
        shape = "×".join(str(v) for v in row["input"])
        lines.append(f"| {row['family']} | {row['name']} | {shape} | {row['torch_params']:,} | "
                     f"{row['torch_macs']:,} | {row['torch_activations']:,} | {status(row)} |")
    exact = sum(1 for r in rows if r.get("exact"))
    validated = sum(1 for r in rows if r.get("validates"))
    lines.append("")
    lines.append(f"{exact} of {len(rows)} models import exactly (params, buffers, MACs, activations); "
                 f"{validated} validated on CPU in this run.")
    return "\n".join(lines)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else run_tests()
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        rows.setdefault(row["name"], {}).update(row)  # the exactness and validation tests' lines; the last run wins
    print(table([r for r in rows.values() if "torch_params" in r]))  # a model the exactness test ran


if __name__ == "__main__":
    main()
