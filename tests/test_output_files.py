"""-o FILE writes the format its extension names, or is refused (exit 2, one line listing the extensions) before
anything is written; a written file is named on standard error."""

from __future__ import annotations

import json

import pytest

from cnnsize.cli import main

# every command with -o, with a working invocation (torch-free), and what its own extension holds
COMMANDS = {
    "report": (["report", "lenet5"], ".json"),
    "compare": (["compare", "lenet5", "alexnet_cs231n"], ".csv"),
    "sweep": (["sweep", "lenet5", "-b", "1,2"], ".md"),
    "conventions": (["conventions", "lenet5"], ".json"),
    "calc": (["calc", "conv", "-i", "3x32x32", "-k", "8", "-F", "3"], ".txt"),
    "explain": (["explain", "lenet5"], ".txt"),
    "schema": (["schema"], ".json"),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("ext", [".xlsx", ".yaml"])
def test_an_extension_the_command_cannot_write_is_refused(name, ext, tmp_path, capsys):
    args, _ = COMMANDS[name]
    out = tmp_path / f"out{ext}"
    out.write_text("keep")  # an existing file is not replaced
    assert main([*args, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"cannot write {ext} files" in err and "name the file" in err, err
    assert out.read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_calc_refuses_json_and_writes_text(tmp_path, capsys):
    args, _ = COMMANDS["calc"]
    assert main([*args, "-o", str(tmp_path / "calc.json")]) == 2
    assert "calc cannot write .json files" in capsys.readouterr().err and not list(tmp_path.iterdir())
    assert main([*args]) == 0
    shown = capsys.readouterr().out
    assert main([*args, "-o", str(tmp_path / "calc.txt")]) == 0
    assert (tmp_path / "calc.txt").read_text() == shown


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_extension_names_what_is_written_and_the_file_is_named(name, tmp_path, capsys):
    args, ext = COMMANDS[name]
    out = tmp_path / f"out{ext}"
    assert main([*args, "-o", str(out)]) == 0
    std = capsys.readouterr()
    assert std.out == "" and std.err.startswith(f"wrote {out}"), std
    text = out.read_text(encoding="utf-8")
    if ext == ".json":
        json.loads(text)
    elif ext == ".csv":
        assert text.startswith("spec,")
    elif ext == ".md":
        assert text.startswith("# ")
    else:
        assert "┏" not in text and text.strip()


def test_report_xlsx_is_refused_and_names_the_formats(tmp_path, capsys):
    assert main(["report", "lenet5", "-o", str(tmp_path / "out.xlsx")]) == 2
    err = capsys.readouterr().err
    assert ".md" in err and ".csv" in err and ".json" in err and ".html" in err and "--format" in err
    assert main(["report", "lenet5", "-o", str(tmp_path / "out.xlsx"), "-f", "csv"]) == 0  # asked for: -f wins
    assert (tmp_path / "out.xlsx").read_text().startswith("name,type")
    assert "wrote" in capsys.readouterr().err


def test_validate_takes_its_format_from_the_extension(tmp_path, capsys):
    """validate -o x.json writes JSON, x.txt the table, x.csv is refused before torch runs."""
    assert main(["validate", "lenet5", "-o", str(tmp_path / "v.csv")]) == 2
    assert "validate cannot write .csv files" in capsys.readouterr().err
    from cnnsize.cli import build_parser
    from cnnsize.cli.common import settle_format

    args = build_parser(["validate"]).parse_args(["validate", "lenet5", "-o", "v.json"])
    settle_format(args)
    assert args.format == "json"
    args = build_parser(["validate"]).parse_args(["validate", "lenet5", "-o", "v.txt"])
    settle_format(args)
    assert args.format == "table"
