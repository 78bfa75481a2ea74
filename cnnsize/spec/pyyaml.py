"""PyYAML, imported without the 10 to 18 ms its reader spends compiling one character class.

``yaml.reader`` compiles ``NON_PRINTABLE``, a negated class whose ranges reach U+10FFFF, as PyYAML is imported;
Python's regex compiler walks such ranges one code point at a time, which made it the largest single cost of
`cnnsize report`'s start-up (benchmarks/report_startup.py). The same class written as its complement (the
characters YAML does not allow, a few short ranges) compiles in about a millisecond and matches exactly the same
characters (tests/test_limits.py checks every code point). It is put in ``re``'s cache under the original
pattern, so that PyYAML's own ``re.compile`` finds it; where ``re`` keeps no such cache (another Python), PyYAML
compiles its own, as before. Only the pure-Python reader uses it (the deep-nesting fallback); the C loader, which
specs go through, never does. Nothing about loading changes: the safe loaders alone, as before.
"""

from __future__ import annotations

import re
import sys

# PyYAML's pattern (yaml/reader.py) and the same characters written as the complement of its ranges
NON_PRINTABLE = "[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010ffff]"
SAME_CHARACTERS = "[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x84\x86-\x9F\uD800-\uDFFF\uFFFE\uFFFF]"


def _seed() -> None:
    cache = getattr(re, "_cache", None)
    if "yaml" not in sys.modules and isinstance(cache, dict):
        cache.setdefault((str, NON_PRINTABLE, 0), re.compile(SAME_CHARACTERS))


_seed()

import yaml  # noqa: E402 - after the seeding above

__all__ = ["yaml"]
