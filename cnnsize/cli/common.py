"""Argument parsing and output helpers shared by the commands."""

from __future__ import annotations

import os
import re
import sys

from ..errors import SpecError

FORMATS = ("table", "markdown", "csv", "json", "latex", "html")


def add_format(parser, formats=FORMATS) -> None:
    """The --format/-f option every reporting command shares."""
    parser.add_argument("-f", "--format", default=formats[0], choices=formats, metavar="FORMAT",
                        help=", ".join(formats))


MAX_DIGITS = 4300  # as many as spec numbers may have (cnnsize.spec.load.MAX_NUMBER_CHARS)


def positive_int(text: str) -> int:
    """argparse type of --batch: a positive integer of at most MAX_DIGITS digits (one-line errors)."""
    import argparse

    text = text.strip()
    if len(text) > MAX_DIGITS:
        raise argparse.ArgumentTypeError(f"a number of {len(text):,} characters, more than the {MAX_DIGITS:,} allowed")
    if not text.isdecimal() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text[:40]}' is not a positive integer")
    return int(text)


_NAME = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


def parse_shape(text: str) -> tuple:
    """'3x224x224' -> (3, 224, 224); names such as 'H' become positive integer sympy symbols."""
    parts = [p.strip() for p in re.split(r"[x×,]", text.strip())]
    if not parts or len(parts) > 4:
        raise SpecError(f"--input '{text}' is not a shape", hint="write channels x height x width, e.g. 3x224x224")
    out: list = []
    for part in parts:
        if part.isdecimal() and len(part) > MAX_DIGITS:
            raise SpecError(f"--input: a size of {len(part):,} digits, more than the {MAX_DIGITS:,} allowed",
                            hint="sizes have at most 4,300 digits")
        if part.isdecimal() and int(part) > 0:
            out.append(int(part))
        elif _NAME.match(part):
            import sympy

            out.append(sympy.Symbol(part, positive=True, integer=True))
        else:
            raise SpecError(f"--input '{text}': '{part}' is neither a positive integer nor a name",
                            hint="write channels x height x width, e.g. 3x224x224 or 3xHxW")
    return tuple(out)


def write_output(text: str, output: str | None) -> None:
    """Print, or write to a file atomically (never a partial file)."""
    if output is None or output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    import tempfile  # only here: with shutil, random, bz2 and lzma it costs several ms of every start

    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise SpecError(f"cannot write '{output}': the folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".cnnsize-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, output)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise SpecError(f"cannot write '{output}': {exc.strerror}") from None
