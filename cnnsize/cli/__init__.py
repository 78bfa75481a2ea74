"""The command line: the one place where errors become messages and exit codes.

Exit codes: 0 success, 1 a validation found a mismatch, 2 a user error (bad
spec, bad argument, missing file), 3 an internal error (a bug: one line asking for
a report), 130 interrupted. A user error is one line on stderr, never a
traceback (``--debug`` shows it).

Built on argparse (standard library) rather than typer: typer 0.24+ imports
pydantic on every run, which alone costs several times Python's own start-up,
and `cnnsize report` is meant to answer as fast as Python can start.
Each command lives in its own module with ``register(subparsers)``; the module
imports its heavy dependencies only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import __version__

INTERNAL_ERROR = 3  # exit code of an unexpected exception: neither 1 (a validation mismatch) nor 2 (bad input)
COMMAND_MODULES = ["report", "validate", "calc", "explain", "fit", "compare", "sweep", "plot", "draw", "schema",
                   "importer", "conventions", "calibrate", "plan"]
# which module defines each command, so that a run registers only the one it needs (start-up time)
COMMAND_OF = {"report": "report", "specs": "report", "validate": "validate", "bench": "validate", "calc": "calc",
              "explain": "explain", "fit": "fit", "compare": "compare", "sweep": "sweep", "plot": "plot",
              "draw": "draw", "schema": "schema", "import": "importer", "conventions": "conventions",
              "calibrate": "calibrate", "plan": "plan"}


def terminal_columns() -> int:
    """shutil.get_terminal_size().columns, without importing shutil.

    argparse makes a help formatter for every argument it adds, and its own formatter imports
    shutil (with bz2 and lzma) to size itself: a few ms of every run, for help that is rarely shown.
    """
    try:
        columns = int(os.environ.get("COLUMNS", 0))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]  # None: the except
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class Formatter(argparse.HelpFormatter):
    """argparse's help formatter, sized by terminal_columns() (see there why)."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None, **kwargs):
        width = terminal_columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width, **kwargs)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, exit code 2, and the Formatter above."""

    def __init__(self, *args, formatter_class=Formatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse hook
        from ..core.safe import printable

        print(f"cnnsize: error: {printable(message)}; see '{self.prog} -h'", file=sys.stderr)
        raise SystemExit(2)


def build_parser(argv: list[str] | None = None) -> Parser:
    """The parser; given the arguments, only the named command's module is loaded (all for help or typos)."""
    parser = Parser(prog="cnnsize", description="Size convolutional neural networks from a short YAML spec.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--version", action="version", version=f"cnnsize {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    first = next((a for a in argv or [] if not a.startswith("-")), None)
    modules = [COMMAND_OF[first]] if first in COMMAND_OF else COMMAND_MODULES
    for name in modules:
        importlib.import_module(f".{name}", __name__).register(sub)
    return parser


def _check_command(args: list[str]) -> None:
    """A misspelled command gets a suggestion rather than argparse's list of choices."""
    first = next((a for a in args if not a.startswith("-")), None)
    if first is None or first in COMMAND_OF or any(a in ("-h", "--help", "--version") for a in args[:1]):
        return
    from ..core.errors import unknown_name

    raise unknown_name("command", first, COMMAND_OF)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and, as a script, exit with) the exit code."""
    from ..core.errors import CnnsizeError

    args_in = list(sys.argv[1:] if argv is None else argv)
    if hasattr(sys, "set_int_max_str_digits"):  # exact sizes are printed in full: a few inputs of 4,300 digits each
        sys.set_int_max_str_digits(max(sys.get_int_max_str_digits(), 100_000))
    debug = "--debug" in args_in
    if debug:  # it works before or after the command: every command reads it from here
        args_in = [a for a in args_in if a != "--debug"]
    parser = build_parser(args_in)
    from ..spec import sources

    sources.DEFAULT_MAX_LAYERS = sources.CLI_MAX_LAYERS
    sources.DEFAULT_MAX_ONNX_NODES = sources.CLI_MAX_ONNX_NODES
    try:
        _check_command(args_in)
        args, extra = parser.parse_known_args(args_in)
        if extra:  # named by the subcommand whose help lists what it takes (cnnsize calc conv -h)
            prog = " ".join(["cnnsize", *(p for p in (args.command, getattr(args, "calc_kind", None)) if p)])
            Parser(prog=prog).error(f"unrecognized arguments: {' '.join(extra)}")
        from .common import settle_format

        settle_format(args)
        if args.command is None:
            parser.print_help(sys.stderr)
            code = 2
        else:
            code = args.run(args) or 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except CnnsizeError as exc:
        if debug:
            raise
        from ..core.safe import printable

        print(f"cnnsize: error: {printable(exc.one_line())}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("cnnsize: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        code = 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug, not bad input
        if debug:
            raise
        from ..core.safe import printable

        text = " ".join(str(exc).split())
        text = f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
        print(f"cnnsize: internal error: {printable(text)} (run with --debug for the traceback; please report it)",
              file=sys.stderr)
        code = INTERNAL_ERROR
    if argv is None:
        sys.exit(code)
    return code
