"""Valid inputs at the limits give correct, exact results; invalid ones a located one-line error (issue 15)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

import cnnsize
from cnnsize.core.errors import SpecError
from cnnsize.core.numeric import human_bytes, human_count

from .conftest import ROOT


def cli(*args: str, stdin: bytes | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnsize", *args], cwd=kw.pop("cwd", ROOT), capture_output=True,
                          input=stdin, timeout=120, **kw)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.decode("utf-8", "replace") if isinstance(proc.stderr, bytes) else proc.stderr
    assert proc.returncode == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


# -- YAML merge keys -------------------------------------------------------------------------------------------
MERGE = """
input: [3, 16, 16]
vars:
  base: &base {filters: 8, kernel: 3}
  narrow: &narrow {filters: 4}
  mid: &mid {<<: *base, filters: 5}
layers:
  - conv: {<<: *base, filters: 16}
  - conv: {<<: *base}
  - conv: {<<: [*narrow, *base]}
  - conv: {<<: *mid}
"""


def test_merge_keys_follow_yaml_an_explicit_key_overrides_a_merged_one():
    a = cnnsize.analyze(MERGE)
    # the truth: PyYAML's own reading of the same text for single merges; the YAML merge-key spec
    # ("keys in earlier mappings override later ones") for the list
    plain = yaml.safe_load(MERGE)["layers"]
    assert [r.output_shape[0] for r in a.layers[1:]] == [plain[0]["conv"]["filters"], plain[1]["conv"]["filters"],
                                                         4, plain[3]["conv"]["filters"]] == [16, 8, 4, 5]


def test_a_real_duplicate_key_is_still_an_error():
    with pytest.raises(SpecError, match="duplicate key 'filters'") as err:
        cnnsize.analyze("input: [3, 8, 8]\nlayers:\n  - conv: {filters: 8, kernel: 3, filters: 4}\n")
    assert err.value.location.line == 3


# -- notes -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("notes, expected", [("", []), ("5", ["5"]), ("[1, two]", ["1", "two"]), ("hi", ["hi"]),
                                             ("null", [])])
def test_notes_empty_or_numbers(notes, expected):
    a = cnnsize.analyze(f"input: [3, 8, 8]\nnotes: {notes}\nlayers: [relu]\n")
    assert a.notes == expected


def test_notes_in_compare(tmp_path):
    (tmp_path / "a.yaml").write_text("input: [3, 8, 8]\nnotes:\nlayers: [relu]\n")
    (tmp_path / "b.yaml").write_text("input: [3, 8, 8]\nnotes: 7\nlayers: [relu, relu]\n")
    proc = cli("compare", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    assert proc.returncode == 0, proc.stderr


# -- huge sizes stay exact ---------------------------------------------------------------------------------------
def test_human_sizes_are_exact_for_any_integer():
    n = 10**300
    assert human_bytes(n).endswith(" TiB") and human_bytes(n).replace(",", "").startswith(str(n // 2**40)[:30])
    assert human_count(n) == str(n // 10**12) + ".00T"
    assert human_count(123456789012345678901234567890) == "123456789012345678.90T"
    assert human_bytes(2**60) == f"{2**20:,}.0 TiB"
    for k in range(1, 60):  # ordinary sizes: the same text as the float formatting it replaces
        n = 3**k
        if n >= 10**12:  # below 2^53 the float formatting as before; above it exact (Fraction rounds half to even)
            from fractions import Fraction

            exact = round(Fraction(n, 10**12), 2)
            expected = f"{n / 10**12:.2f}T" if n < 2**53 else f"{exact.numerator // exact.denominator}." \
                f"{int((exact - exact.numerator // exact.denominator) * 100):02d}T"
            assert human_count(n) == expected
        if n < 2**53:
            assert human_bytes(n) in (f"{n:,} B", *(f"{n / 1024**p:,.1f} {u}" for p, u in
                                                    enumerate(("B", "KiB", "MiB", "GiB", "TiB")) if p))


def test_huge_scale_and_batch_report_exactly():
    scale = 10**300
    proc = cli("report", "-", "-f", "table", stdin=f"input: [3, 8, 8]\nlayers: [{{upsample: {{scale: {scale}}}}}]\n"
               .encode())
    assert proc.returncode == 0, proc.stderr
    assert f"{3 * 64 * scale * scale:,}".encode() in proc.stdout
    batch = "9" * 4000
    proc = cli("report", "lenet5", "--batch", batch, "-f", "json")
    assert proc.returncode == 0, proc.stderr[-500:]
    import json

    single = cnnsize.analyze("lenet5").totals["macs"]
    assert json.loads(proc.stdout)["totals"]["macs"] == single * int(batch)


@pytest.mark.parametrize("args, words", [
    (("--batch", "9" * 5000), "a number of 5,000 characters"),
    (("--batch", "0"), "is not a positive integer"),
    (("--input", "1x" + "9" * 5000 + "x32"), "a size of 5,000 digits"),
    (("--max-batch", "--device-memory", "9" * 5000), "too many digits"),
    (("--max-batch", "--device-memory", "17EiB"), "more than 16EiB"),
])
def test_huge_numbers_on_the_command_line_are_one_line(args, words):
    assert words in one_error_line(cli("report", "lenet5", *args))


def test_max_batch_with_a_huge_device_is_exact():
    """Not capped at 2^63: the largest batch whose inference peak fits, checked one batch above."""
    from cnnsize.engine.memory import parse_bytes

    device = parse_bytes("16EiB")
    proc = cli("report", "lenet5", "--max-batch", "--device-memory", "16EiB", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    import json

    found = json.loads(proc.stdout)["max_batch"]["inference"]
    assert found < 2**63 - 1
    peak = lambda b: cnnsize.analyze("lenet5", batch=b).totals["memory"]["inference_peak_bytes"]  # noqa: E731
    assert peak(found) <= device < peak(found + 1)


def test_float_integers_only_when_exact():
    a = cnnsize.analyze("input: [3, 8.0, 8]\nlayers: [{conv: {filters: 4.0, kernel: 3}}]\n")
    assert a.layers[1].output_shape == (4, 6, 6)
    for bad in ("12345678901234567.0", "1.0e+300", "2.5"):
        with pytest.raises(SpecError):
            cnnsize.analyze(f"input: [3, 8, 8]\nlayers: [{{conv: {{filters: {bad}, kernel: 3}}}}]\n")
