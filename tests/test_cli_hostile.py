"""Output files, standard input and terminals at their worst (issue 15): one clear line, exit 2, nothing lost."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from cnnsize.core.safe import printable

from .conftest import ROOT

ESC_SPEC = ('name: "\\e]0;PWNED\\a\\e[2J"\nnotes: ["\\e[31mred"]\ninput: [3, 8, 8]\n'
            'layers: [{relu: {name: "a\\nb\\e[2J"}}, {conv: {filters: 2, kernel: 3, name: "x\\e[1m"}}]\n')


def cli(*args: str, stdin=None, cwd=ROOT, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnsize", *args], cwd=cwd, capture_output=True, stdin=stdin,
                          timeout=120, **kw)


def one_line(proc) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "\x1b" not in err
    return err.strip()


# -- -o FILE -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext, fmt", [(".md", "markdown"), (".csv", "csv"), (".json", "json"), (".tex", "latex"),
                                      (".html", "html"), (".txt", "table"), (".MD", "markdown")])
def test_the_extension_picks_the_format(tmp_path, ext, fmt):
    out = tmp_path / f"report{ext}"
    assert cli("report", "lenet5", "-o", str(out)).returncode == 0
    assert out.read_bytes() == cli("report", "lenet5", "-f", fmt).stdout


def test_format_given_wins_over_the_extension(tmp_path):
    out = tmp_path / "report.md"
    assert cli("report", "lenet5", "-o", str(out), "-f", "csv").returncode == 0
    assert out.read_text().startswith("name,type")


def test_new_files_get_the_umask_and_existing_files_keep_their_mode(tmp_path):
    new = tmp_path / "new.json"
    proc = subprocess.run([sys.executable, "-c", "import os, sys; os.umask(0o027); from cnnsize.cli import main; "
                           f"sys.exit(main(['report', 'lenet5', '-o', {str(new)!r}]))"], cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and stat.S_IMODE(new.stat().st_mode) == 0o640
    old = tmp_path / "old.csv"
    old.write_text("x")
    old.chmod(0o604)
    assert cli("report", "lenet5", "-o", str(old)).returncode == 0
    assert stat.S_IMODE(old.stat().st_mode) == 0o604 and old.read_text().startswith("name,")


def test_a_read_only_file_is_never_replaced(tmp_path):
    ro = tmp_path / "ro.json"
    ro.write_text("keep")
    ro.chmod(0o444)
    assert "the file is read-only" in one_line(cli("report", "lenet5", "-o", str(ro)))
    assert ro.read_text() == "keep" and list(tmp_path.iterdir()) == [ro]


def test_a_symlink_is_followed(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("x")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    assert cli("report", "lenet5", "-o", str(link)).returncode == 0
    assert link.is_symlink() and real.read_text().startswith("name,")


def test_devices_and_fifos_are_written_directly_folders_refused(tmp_path):
    assert cli("report", "lenet5", "-o", "/dev/null").returncode == 0 and os.path.exists("/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    if os.path.exists("/dev/full"):
        assert "No space left on device" in one_line(cli("report", "lenet5", "-o", "/dev/full"))
    assert "it is a folder" in one_line(cli("report", "lenet5", "-o", str(tmp_path)))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    assert cli("report", "lenet5", "-o", str(fifo), "-f", "json").returncode == 0
    assert reader.communicate(timeout=60)[0].startswith(b"{")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert "does not exist" in one_line(cli("report", "lenet5", "-o", str(tmp_path / "no" / "x.md")))


# The child interrupts itself in the middle of writing the temporary file (as Ctrl-C or `kill` would).
_INTERRUPTED = """
import os, signal, sys
from cnnsize.cli import common, main
real = os.fdopen
class Proxy:
    def __init__(self, fh): self.fh = fh
    def __enter__(self): return self
    def __exit__(self, *a): return self.fh.__exit__(*a)
    def flush(self): self.fh.flush()
    def fileno(self): return self.fh.fileno()
    def write(self, text):
        self.fh.write(text[: len(text) // 2]); self.fh.flush()
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))
        self.fh.write(text[len(text) // 2:])
common.os.fdopen = lambda *a, **k: Proxy(real(*a, **k))
sys.exit(main(['report', 'resnet50', '-o', sys.argv[2]]))
"""


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_an_interrupted_write_leaves_nothing_behind(tmp_path, signal_name):
    out = tmp_path / "out.md"
    out.write_text("before")
    proc = subprocess.run([sys.executable, "-c", _INTERRUPTED, signal_name, str(out)], cwd=ROOT, capture_output=True,
                          timeout=120)
    assert proc.returncode == 130 and b"interrupted" in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.md"] and out.read_text() == "before"


def test_an_unwritable_folder_is_one_line(tmp_path, monkeypatch, capsys):
    import tempfile

    from cnnsize.cli import main

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert main(["report", "lenet5", "-o", str(tmp_path / "x.md")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "Permission denied" in err and len(err.strip().splitlines()) == 1


# -- standard input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("data, words", [
    ("input: [3, 8, 8]\nname: caf\xe9\nlayers: [relu]\n".encode("latin-1"), "is not UTF-8 text"),
    ("input: [3, 8, 8]\nlayers: [relu]\n".encode("utf-16"), "is UTF-16 text"),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe\x00", "is binary data"),
    (b"input: [3, 8, 8]\x00\nlayers: [relu]\n", "NUL character"),
])
def test_stdin_gives_the_same_messages_as_a_file(tmp_path, data, words):
    path = tmp_path / "spec.yaml"
    path.write_bytes(data)
    from_file = one_line(cli("report", str(path)))
    from_stdin = one_line(cli("report", "-", stdin=open(path, "rb")))
    assert words in from_file and words in from_stdin
    assert from_file.replace(str(path), "<stdin>").replace("the file", "X") == from_stdin.replace(
        "standard input", "X")


def test_closed_stdin(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "import sys; sys.stdin.close(); from cnnsize.cli import main; "
                           "sys.exit(main(['report', '-']))"], cwd=ROOT, capture_output=True, timeout=120)
    assert "standard input is closed" in one_line(proc)
    proc = subprocess.run(f"{sys.executable} -m cnnsize report - <&-", shell=True, cwd=ROOT, capture_output=True,
                          timeout=120)
    assert "standard input is closed" in one_line(proc)


# -- control characters -----------------------------------------------------------------------------------------
def test_printable_escapes_controls_and_keeps_text():
    assert printable("\x1b]0;PWNED\x07\x1b[2J") == "\\e]0;PWNED\\x07\\e[2J"
    assert printable("a\nb\tc\r") == "a\\nb\\tc\\r"
    assert printable("héllo ✓ 层") == "héllo ✓ 层"
    assert printable("x\u202ey\x9b") == "x\\u202ey\\x9b"


@pytest.mark.parametrize("fmt", ["table", "markdown", "latex", "html"])
def test_text_formats_escape_control_characters(tmp_path, fmt):
    (tmp_path / "esc.yaml").write_text(ESC_SPEC)
    proc = cli("report", str(tmp_path / "esc.yaml"), "-f", fmt)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert "\x1b" not in out and "\x07" not in out and "PWNED" in out
    if fmt != "latex":  # LaTeX writes the backslash of the escape as \textbackslash{}
        assert "\\e]0;PWNED" in out and "a\\nb\\e[2J" in out


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_machine_formats_keep_the_text_properly_quoted(tmp_path, fmt):
    import csv
    import io
    import json

    (tmp_path / "esc.yaml").write_text(ESC_SPEC)
    proc = cli("report", str(tmp_path / "esc.yaml"), "-f", fmt)
    assert proc.returncode == 0
    text = proc.stdout.decode()
    if fmt == "json":
        data = json.loads(text)
        assert data["name"] == "\x1b]0;PWNED\x07\x1b[2J" and data["layers"][1]["name"] == "a\nb\x1b[2J"
        assert "\x1b" not in text  # JSON escapes it itself
    else:
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[2][0] == "a\nb\x1b[2J"


def test_error_lines_escape_control_characters(tmp_path):
    (tmp_path / "bad.yaml").write_text('input: [3, 8, 8]\nlayers: [{conv: {filters: 2, kernel: 9, name: "x\\e[1m"}}]\n')
    line = one_line(cli("report", str(tmp_path / "bad.yaml")))
    assert "layer 'x\\e[1m'" in line
    line = one_line(cli("report", "x\x1b[2J\t.yaml"))
    assert "x\\e[2J\\t.yaml" in line
