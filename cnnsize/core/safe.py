"""Text that is safe on a terminal: control characters shown as escapes, never sent raw.

A spec is untrusted: a name such as ``"\\e]0;PWNED\\a\\e[2J"`` written raw would set the terminal's
title and clear its screen, and a newline would split a one-line error in two. Every name, note and
path that reaches a terminal or an error line goes through printable(); machine formats (JSON, CSV)
keep the text as it is, quoted by their own rules.
"""

from __future__ import annotations

import re

from .plain import is_plain, replace

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators and bidirectional overrides
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match) -> str:
    ch = m.group()
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\e"}.get(ch) or (
        f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def printable(text: object) -> str:
    """``text`` with every control character escaped: ``\\e``, ``\\n``, ``\\x07``, ``\\u202e``; other text unchanged."""
    text = str(text)
    if text.isprintable() and text.isascii():
        return text
    return _UNSAFE.sub(_escape, text)


def _safe(text: object) -> bool:
    text = str(text)
    return text.isascii() and text.isprintable() or not _UNSAFE.search(text)


def printable_analysis(analysis):
    """The analysis with its name, notes and layer names made printable, for the text renderers.

    The analysis itself is not changed (JSON and CSV keep the text as it is); when nothing needs
    escaping, which is nearly always, it is returned as it is, so the common path costs one scan.
    """
    from collections.abc import Mapping

    layers = analysis.layers
    names_ok = all(_safe(r.name) and all(map(_safe, r.inputs)) for r in layers)
    if names_ok and _safe(analysis.name) and all(map(_safe, analysis.notes)):
        return analysis
    if not names_ok:
        layers = [r if _safe(r.name) and all(map(_safe, r.inputs)) else
                  replace(r, name=printable(r.name), inputs=[printable(i) for i in r.inputs]) for r in layers]
    totals = analysis.totals
    memory = totals.get("memory") if isinstance(totals, Mapping) else None
    if not names_ok and isinstance(memory, Mapping):  # the layers named in the totals (the inference peak's)
        escaped = {k: printable(v) if isinstance(v, str) else v for k, v in memory.items()}
        if is_plain(totals):  # Totals and MemoryBudget (cnnsize.engine.result)
            totals = totals.replaced(memory=memory.replaced(**escaped))
        else:
            totals = {**totals, "memory": escaped}
    return replace(analysis, name=printable(analysis.name), notes=[printable(n) for n in analysis.notes],
                   layers=layers, totals=totals)


# every control character but newline and tab, and any escape sequence but the colours cnnsize's own renderers
# use (render/table.py: bold, yellow, dim, reset)
_UNSAFE_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
                               "|\x1b(?!\\[(?:0|1;33|1|2)m)")


def terminal_text(text: str) -> str:
    """Whole output for standard output: newlines and tabs kept, cnnsize's own colours kept, every other control
    character escaped. The last line of defence for every command's text (explain, fit, compare, sweep, specs,
    CSV on a terminal): the renderers escape names already, and this catches what any of them misses."""
    if not _UNSAFE_BUT_LINES.search(text):  # nearly always: one scan at C speed
        return text
    return _UNSAFE_BUT_LINES.sub(_escape, text)


def json_text(doc, indent: int | None = 2) -> str:
    """``doc`` as JSON text that every JSON reader accepts: never a bare ``NaN`` or ``Infinity`` (not JSON).

    A non-finite number cnnsize did not expect (a timing of zero runs, a ratio over zero) is written as ``null``,
    and a mapping at the top says which: ``"non_finite_as_null": ["totals.gflops", ...]``, so that the null is not
    read as "not measured"."""
    import json

    try:
        return json.dumps(doc, indent=indent, allow_nan=False) + "\n"
    except ValueError:
        pass
    paths: list[str] = []
    clean = _finite(doc, "", paths)
    if isinstance(clean, dict):
        clean["non_finite_as_null"] = paths
    return json.dumps(clean, indent=indent, allow_nan=False) + "\n"


def _finite(value, path: str, paths: list[str]):
    import math

    if isinstance(value, float) and not math.isfinite(value):
        paths.append(path or "(the value)")
        return None
    if isinstance(value, dict):
        return {k: _finite(v, f"{path}.{k}" if path else str(k), paths) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, f"{path}[{i}]", paths) for i, v in enumerate(value)]
    return value
