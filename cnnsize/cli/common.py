"""Argument parsing and output helpers shared by the commands."""

from __future__ import annotations

import os
import re
import stat
import sys
from typing import Any

from ..core.errors import SpecError

FORMATS = ("table", "markdown", "csv", "json", "latex", "html")


EXTENSIONS = {".md": "markdown", ".markdown": "markdown", ".csv": "csv", ".json": "json", ".tex": "latex",
              ".html": "html", ".htm": "html", ".txt": "table"}


def add_format(parser, formats=FORMATS) -> None:
    """The --format/-f option every reporting command shares; without it, -o FILE's extension picks the format."""
    parser.add_argument("-f", "--format", default=None, choices=formats, metavar="FORMAT",
                        help=", ".join(formats) + f" (default: from -o FILE's extension, {', '.join(EXTENSIONS)}; "
                             f"else {formats[0]})")
    parser.set_defaults(format_choices=formats)


def output_extensions(parser, *extensions: str) -> None:
    """The extensions -o FILE may have for a command that writes one format (calc: .txt, schema: .json)."""
    parser.set_defaults(output_extensions=extensions)


def settle_format(args) -> None:
    """Fill in args.format where --format was not given: from the extension of -o FILE, else the first format.

    An extension that names no format the command writes (report -o out.xlsx, calc -o calc.json) is refused
    before anything runs, so that no file ever holds another format than its name says. A name without an
    extension (or a device such as /dev/null) takes the default; --format, when given, wins over the extension.
    """
    formats = getattr(args, "format_choices", None)
    output = getattr(args, "output", None)
    ext = os.path.splitext(output)[1].lower() if output and output != "-" else ""
    fixed = getattr(args, "output_extensions", None)
    valid = fixed or (tuple(e for e, f in EXTENSIONS.items() if f in formats) if formats else None)
    if ext and valid and ext not in valid and (fixed or getattr(args, "format", None) is None):
        from ..core.safe import printable

        named = f" (a {EXTENSIONS[ext]} file)" if ext in EXTENSIONS else ""
        raise SpecError(f"-o {printable(output)}: {args.command} cannot write {ext} files{named}",
                        hint="name the file " + ", ".join(valid[:-1]) + (" or " if len(valid) > 1 else "")
                             + valid[-1] + ("" if fixed else " (or give --format)"))
    if formats is None or getattr(args, "format", None) is not None:
        return
    found = EXTENSIONS.get(ext)
    args.format = found if found in formats else formats[0]


MAX_DIGITS = 4300  # as many as spec numbers may have (cnnsize.spec.load.MAX_NUMBER_CHARS)


def positive_int(text: str, high: int | None = None) -> int:
    """argparse type of --batch: a positive integer of at most MAX_DIGITS digits (one-line errors); with ``high``
    (see bounded_int), a whole number from 1 to ``high``."""
    import argparse

    text = text.strip()
    if high is not None:
        if not text.isdecimal() or len(text) > 20 or not 1 <= int(text) <= high:
            shown = text if len(text) <= 24 else text[:21] + "..."
            raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {high:,}, got '{shown}'")
        return int(text)
    if len(text) > MAX_DIGITS:
        raise argparse.ArgumentTypeError(f"a number of {len(text):,} characters, more than the {MAX_DIGITS:,} allowed")
    if not text.isdecimal() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text[:40]}' is not a positive integer")
    return int(text)


def bounded_int(high: int):
    """argparse type: positive_int with an upper bound (calibrate's --runs and --threads)."""
    return lambda text: positive_int(text, high)


NAMED_INPUTS = ", repeated as NAME=SHAPE for each input of a spec of several inputs"


def add_sizing(parser, input_help: str = "input shape C x H x W, e.g. 3x224x224", dtype: bool = False,
               several: bool = False) -> None:
    """The -i/--input, -b/--batch (a positive integer), [--dtype] and --fit options of the commands that size a spec;
    ``several``: --input repeats, naming each input (parse_inputs)."""
    if several:
        parser.add_argument("-i", "--input", action="append", help=input_help + NAMED_INPUTS)
    else:
        parser.add_argument("-i", "--input", help=input_help)
    parser.add_argument("-b", "--batch", type=positive_int, default=1, help="batch size")
    if dtype:
        parser.add_argument("--dtype", default="float32", help="float32, float16, bfloat16, int8 or float64")
    parser.add_argument("--fit", help="exact (default) or floor")


def add_width(parser) -> None:
    """--wide and --width N of the commands that draw a table (as report's): a terminal's table fits it."""
    parser.add_argument("--wide", action="store_true", help="every column in full, however wide the terminal")
    parser.add_argument("--width", type=int, metavar="N",
                        help="fit the table to N columns (default: the terminal's, or COLUMNS; a pipe gets it in full)")


def table_width(args) -> int | None:
    """The width to fit a table to: --width, else the terminal's (None: --wide, a file, or a pipe)."""
    if args.width is not None and args.width < 40:
        raise SpecError(f"--width {args.width} is too narrow for a table", hint="give 40 or more")
    if args.wide:
        return None
    if args.width is not None:
        return args.width
    if getattr(args, "output", None) is not None:
        return None
    from ..render.boxes import terminal_width

    return terminal_width()


def add_output(parser) -> None:
    """-o/--output of the reporting commands: the file is replaced whole or not at all."""
    parser.add_argument("-o", "--output", help="write to this file (atomically) instead of standard output")


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


def parse_inputs(given: Any) -> tuple | dict | None:
    """The repeatable --input: one shape (``3x224x224``: the input, or a spec's first) or each input by name
    (``image=3x224x224``, ``mask=1x224x224``: a mapping of names to shapes, which the analysis checks)."""
    if not given:
        return None
    texts = [given] if isinstance(given, str) else list(given)
    plain, named = None, {}  # type: Any, dict[str, tuple]
    for text in texts:
        name, sep, shape = text.partition("=")
        name = name.strip()
        if not sep:
            if plain is not None or named:
                raise SpecError(f"--input '{text}' after another --input: name each input",
                                hint="write --input NAME=SHAPE for each, e.g. --input image=3x224x224 "
                                     "--input mask=1x224x224")
            plain = parse_shape(text)
            continue
        if plain is not None or not _NAME.match(name):
            raise SpecError(f"--input '{text}': {'name each input' if plain is not None else 'not an input name'}",
                            hint="write --input NAME=SHAPE, e.g. --input image=3x224x224")
        if name in named:
            raise SpecError(f"--input names input '{name}' twice", hint="give each input's shape once")
        if not shape.strip():
            raise SpecError(f"--input '{text}' gives no size for input '{name}'",
                            hint=f"write e.g. --input {name}=3x224x224")
        named[name] = parse_shape(shape)
    return named or plain


def onnx_shape(spec: str, shape: Any) -> Any:
    """The --input an ONNX file's dynamic axes take: one shape; inputs named one by one are for specs."""
    from ..spec.sources import is_onnx

    if isinstance(shape, dict) and is_onnx(spec):
        raise SpecError("--input NAME=SHAPE names the inputs of a spec; an ONNX file takes one --input",
                        hint="give one shape, e.g. --input 3x224x224")
    return shape


def write_output(text: str, output: str | None, fmt: str | None = None, say: bool = True) -> None:
    """Print, or write to a file: atomically to a regular file, directly to a device or FIFO.

    A regular file is written to a temporary file beside it and renamed over it: never a partial file, the
    temporary removed on any failure or interruption (Ctrl-C, SIGTERM). An existing file keeps its mode
    (a read-only one is refused, not replaced); a new one gets 0666 less the umask, as the shell's ``>``.
    A symbolic link is followed (the file it names is replaced, the link stays). A device (``/dev/null``)
    or FIFO is written directly, as ``> /dev/null`` would: renaming over it would replace it. A folder
    is refused. ``say``: a regular file written is named on standard error ("wrote FILE (FORMAT)"), standard
    output staying empty for scripts.
    """
    if output is None or output == "-":
        # CSV and JSON piped on keep their text as it is (quoted by their own rules); anything a terminal shows,
        # and every other format, has its control characters escaped
        if fmt not in ("csv", "json") or sys.stdout.isatty():
            from ..core.safe import terminal_text

            text = terminal_text(text)
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from ..core.safe import printable

    shown = printable(output)
    target = os.path.realpath(output)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise SpecError(f"cannot write '{shown}': {exc.strerror}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise SpecError(f"cannot write '{shown}': it is a folder", hint="give a file name inside it")
    if st is not None and not stat.S_ISREG(st.st_mode):
        _write_directly(text, output, shown)
        return
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise SpecError(f"cannot write '{shown}': the folder {printable(folder)} does not exist")
    if st is not None and (not st.st_mode & 0o222 or not os.access(target, os.W_OK)):  # root may, but should not
        raise SpecError(f"cannot write '{shown}': the file is read-only",
                        hint="make it writable or choose another name")
    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
    import tempfile  # only here: with shutil, random, bz2 and lzma it costs several ms of every start

    try:
        fd, tmp = tempfile.mkstemp(prefix=".cnnsize-", dir=folder)
    except OSError as exc:
        raise SpecError(f"cannot write '{shown}': {exc.strerror} (in the folder {printable(folder)})") from None
    try:
        with _terminate_as_interrupt(), os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
        os.replace(tmp, target)
        if say:
            print(f"wrote {shown}" + (f" ({fmt})" if fmt else ""), file=sys.stderr)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise SpecError(f"cannot write '{shown}': {exc.strerror}") from None
        raise


def _write_directly(text: str, output: str, shown: str) -> None:
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise SpecError(f"cannot write '{shown}': {exc.strerror}") from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class _terminate_as_interrupt:
    """While writing, SIGTERM raises KeyboardInterrupt (as Ctrl-C does) so the temporary file is removed."""

    def __enter__(self):
        import signal
        import threading

        self.old = None
        if threading.current_thread() is threading.main_thread():
            def stop(signum, frame):
                raise KeyboardInterrupt

            self.old = signal.signal(signal.SIGTERM, stop)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            import signal

            signal.signal(signal.SIGTERM, self.old)


def add_checkpoint(group) -> None:
    """--checkpoint and --checkpoint-impl (report and validate): activation checkpointing's segments and variant."""
    group.add_argument("--checkpoint", metavar="SEGMENTS", help="activation checkpointing (torch.utils.checkpoint): "
                       "every:N (the network's blocks, N to a segment, every segment but the last checkpointed, as "
                       "checkpoint_sequential) or layer and block names joined by commas, each one segment; the step's "
                       "memory and the forward work it recomputes (implies --train)")
    group.add_argument("--checkpoint-impl", metavar="VARIANT", default="non-reentrant",
                       help="torch.utils.checkpoint's variant: non-reentrant (use_reentrant=False, torch's advice; "
                            "the default) or reentrant")


def add_grad_scaler(group) -> None:
    """--grad-scaler/--no-grad-scaler (report and plan): whether fp16-mixed trains with a gradient scaler."""
    import argparse

    group.add_argument("--grad-scaler", action=argparse.BooleanOptionalAction, default=True,
                       help="fp16-mixed trains with a gradient scaler (torch.amp.GradScaler, the default: its state "
                            "counted); --no-grad-scaler: none, which fp16 needs (refused; plan leaves fp16-mixed out)")
