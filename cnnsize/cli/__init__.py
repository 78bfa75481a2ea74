"""The command line: the one place where errors become messages and exit codes.

Exit codes: 0 success, 1 a validation found a mismatch, 2 a user error (bad
spec, bad argument, missing file). A user error is one line on stderr, never a
traceback (``--debug`` shows it).
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Size convolutional neural networks from a short YAML spec.",
                  context_settings={"help_option_names": ["-h", "--help"]})

STATE = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
    STATE["debug"] = debug


def _register_commands() -> None:
    from . import report  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and, as a script, exit with) the exit code."""
    try:  # newer typer vendors click
        from typer._click.exceptions import ClickException
    except ImportError:  # pragma: no cover - older typer
        from click.exceptions import ClickException

    from ..errors import CnnsizeError

    _register_commands()
    args = sys.argv[1:] if argv is None else argv
    STATE["debug"] = "--debug" in args
    try:
        code = app(args=args, prog_name="cnnsize", standalone_mode=False)
        code = code if isinstance(code, int) else 0
    except CnnsizeError as exc:
        if STATE["debug"]:
            raise
        print(f"cnnsize: error: {exc.one_line()}", file=sys.stderr)
        code = 2
    except typer.Exit as exc:
        code = exc.exit_code
    except ClickException as exc:
        exc.show()
        code = exc.exit_code if exc.exit_code else 2
    except typer.Abort:
        print("cnnsize: aborted", file=sys.stderr)
        code = 130
    except KeyboardInterrupt:
        print("cnnsize: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        code = 0
    if argv is None:
        sys.exit(code)
    return code
