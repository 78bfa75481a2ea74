"""Safe YAML loading that keeps a file:line:column on every mapping and list.

Only PyYAML's safe loader is used: tags such as ``!!python/object`` are
refused, duplicate keys are an error (PyYAML would silently keep the last),
the size aliases would expand to is measured so that "billion laughs" documents are refused early.
"""

from __future__ import annotations

import re
from typing import Any

from ..core.errors import LimitExceeded, Location, SpecError
from ..core.expr import shorten
from .pyyaml import yaml

MAX_SPEC_BYTES = 5_000_000
MAX_DEPTH = 100
MAX_EXPANDED_NODES = 2_000_000  # values in the document once every alias is written out
MAX_VALUES = 200_000  # YAML values (scalars, lists, mappings) written in a spec: about 5 s of loading
MAX_NUMBER_CHARS = 4300  # characters of one number: Python's own limit for int(text)

_FAST = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LocDict(dict):
    """A mapping from a spec, remembering where it and each of its values start."""

    loc: Location
    key_locs: dict
    name_locs: dict

    def loc_of(self, key: str) -> Location:
        """Where the value of ``key`` starts."""
        return self.key_locs.get(key, self.loc)

    def key_loc(self, key: str) -> Location:
        """Where ``key`` itself is written."""
        return self.name_locs.get(key, self.loc)


class LocList(list):
    """A list from a spec, remembering where it and each item start."""

    loc: Location
    item_locs: list

    def loc_of(self, index: int) -> Location:
        return self.item_locs[index] if index < len(self.item_locs) else self.loc


def _location(filename: str, node: yaml.Node) -> Location:
    mark = node.start_mark
    return Location(filename, mark.line + 1, mark.column + 1)


def _looks_deep(text: str) -> bool:
    """Whether the text may nest deeper than MAX_DEPTH (flow brackets or indentation), cheaply.

    libyaml's C parser recurses without a limit and crashes the process on very deep nesting, so
    such text goes to the pure-Python loader, whose depth check gives a clean error.
    """
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    if deepest > MAX_DEPTH // 2:
        return True
    indents = (len(line) - len(line.lstrip(" -")) for line in text.splitlines())
    return max(indents, default=0) > MAX_DEPTH


def _merge_sources(loader, value_node: yaml.Node, filename: str) -> list:
    """The mappings a YAML merge key names (``<<: *base`` or ``<<: [*a, *b]``); anything else is refused."""
    value = loader.construct_object(value_node, deep=True)
    sources = value if isinstance(value, list) else [value]
    if not sources or not all(isinstance(m, LocDict) for m in sources):
        raise SpecError("'<<' (a YAML merge key) takes a mapping or a list of mappings",
                        hint="write e.g. '<<: *base' where '&base' names a mapping",
                        location=_location(filename, value_node))
    return sources


def _mapping_key(loader, key_node: yaml.Node, out: LocDict, filename: str) -> str:
    """A key as a string: a plain scalar, written once (YAML would silently keep the last of two)."""
    key = loader.construct_object(key_node, deep=True)
    if not isinstance(key, (str, int, float, bool)) and key is not None:
        raise SpecError("a mapping key must be a plain name", location=_location(filename, key_node))
    key = str(key) if not isinstance(key, str) else key
    if key in out:
        first = out.key_locs[key]
        raise SpecError(f"duplicate key '{shorten(key, 60)}' (first at line {first.line})",
                        hint="remove one of them; YAML would silently keep only the last",
                        location=_location(filename, key_node))
    return key


def _apply_merges(out: LocDict, merged: list) -> None:
    """Add the merged mappings' keys with their own locations: a key written here wins, then the earlier source."""
    own = dict(out)
    out.clear()
    for source in merged:
        for key, value in source.items():
            if key not in out and key not in own:
                out[key] = value
                out.key_locs[key] = source.loc_of(key)
                out.name_locs[key] = source.key_loc(key)
    out.update(own)


def _construct_mapping(loader, node: yaml.Node, filename: str) -> LocDict:
    """A mapping that remembers where it, each key and each value are written, for messages."""
    if not isinstance(node, yaml.MappingNode):
        raise SpecError("expected a mapping", location=_location(filename, node))
    out = LocDict()
    out.loc = _location(filename, node)
    out.key_locs = {}
    out.name_locs = {}
    merged: list[LocDict] = []
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            merged.extend(_merge_sources(loader, value_node, filename))
            continue
        key = _mapping_key(loader, key_node, out, filename)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_locs[key] = _location(filename, value_node)
        out.name_locs[key] = _location(filename, key_node)
    if merged:
        _apply_merges(out, merged)
    return out


def _construct_sequence(loader, node: yaml.Node, filename: str) -> LocList:
    """A list that remembers where it and each item are written."""
    out = LocList(loader.construct_object(child, deep=True) for child in node.value)
    out.loc = _location(filename, node)
    out.item_locs = [_location(filename, child) for child in node.value]
    return out


def _check_number_length(node: yaml.Node, filename: str, hint: str | None = None) -> None:
    """Refuse a number past Python's own limit for int(text) with a located message, not Python's error."""
    text = str(node.value)
    if len(text) > MAX_NUMBER_CHARS:
        raise LimitExceeded(f"a number of {len(text):,} characters, more than the {MAX_NUMBER_CHARS:,} allowed",
                            hint=hint, location=_location(filename, node))


def _depth_limited(base, filename: str):
    """``base`` with a nesting limit: the pure-Python composer recurses once per level."""
    class Loader(base):  # type: ignore[misc, valid-type]
        depth = 0

        def compose_node(self, parent, index):  # noqa: D401 - PyYAML hook (pure-Python loader only)
            Loader.depth += 1
            try:
                if Loader.depth > MAX_DEPTH:
                    event = self.peek_event()
                    raise SpecError(f"nesting deeper than {MAX_DEPTH} levels",
                                    hint="flatten the spec; use blocks and repeat for structure",
                                    location=Location(filename, event.start_mark.line + 1,
                                                      event.start_mark.column + 1))
                return super().compose_node(parent, index)
            finally:
                Loader.depth -= 1

    return Loader


def _make_loader(filename: str, base=_FAST):
    """A safe loader class for one file: located mappings and lists, limited numbers and nesting."""
    Loader = _depth_limited(base, filename)

    def construct_int(loader, node):
        _check_number_length(node, filename, hint="sizes have at most 4,300 digits")
        return yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)

    def construct_float(loader, node):
        _check_number_length(node, filename)
        return yaml.constructor.SafeConstructor.construct_yaml_float(loader, node)

    def construct_mapping(loader, node, deep=False):
        return _construct_mapping(loader, node, filename)

    def construct_sequence(loader, node, deep=False):
        return _construct_sequence(loader, node, filename)

    Loader.add_constructor("tag:yaml.org,2002:int", construct_int)
    Loader.add_constructor("tag:yaml.org,2002:float", construct_float)
    Loader.add_constructor("tag:yaml.org,2002:map", construct_mapping)
    Loader.add_constructor("tag:yaml.org,2002:seq", construct_sequence)
    Loader.add_constructor("tag:yaml.org,2002:omap", construct_mapping)
    return Loader


def load_yaml(text: str, filename: str = "<spec>") -> Any:
    """Parse YAML text into LocDict/LocList/scalars, or raise SpecError with a location."""
    if len(text) > MAX_SPEC_BYTES:
        raise LimitExceeded(f"spec is {len(text):,} bytes, more than the {MAX_SPEC_BYTES:,} allowed",
                            location=Location(filename))
    text = text.lstrip("\ufeff")
    _check_values(text, filename)
    loader = _make_loader(filename, yaml.SafeLoader if _looks_deep(text) else _FAST)(text)
    try:
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
            if len(docs) > 1:
                raise SpecError("a spec file holds one YAML document, found a second",
                                hint="remove the extra '---' section", location=Location(filename))
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark or exc.context_mark
        found = re.search(r"'([^']*)'", exc.problem or "")
        tag = (found.group(1) if found else "?").replace("tag:yaml.org,2002:", "!!")
        raise SpecError(f"YAML tag {tag} is not allowed: specs are loaded safely and cannot create objects",
                        hint="remove the tag", location=_mark_location(filename, mark)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or str(exc)).strip()
        hint = None
        lines = text.splitlines()
        if mark is not None and mark.line < len(lines) and "\t" in lines[mark.line]:
            hint = "indent with spaces; YAML does not allow tabs"
        raise SpecError(f"invalid YAML: {problem}" + (f" ({exc.context})" if exc.context else ""),
                        hint=hint, location=_mark_location(filename, mark)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", location=Location(filename)) from None
    finally:
        loader.dispose()
    doc = docs[0] if docs else None
    _check_expansion(doc, filename)
    return doc


def _check_values(text: str, filename: str) -> None:
    """Refuse, before building anything, a text of more than MAX_VALUES YAML values.

    Loading costs tens of microseconds per value (its location is kept), so 4.8 MB of ``[],`` would take
    most of a minute and gigabytes. A value starts after one of ``[{,:-`` or a line break: their count
    bounds the values from above and costs one pass at C speed; only above the limit are the parser's
    events counted (in C, stopping at the limit), so text full of commas in quotes is not refused.
    """
    rough = sum(map(text.count, "[{,:-\n"))
    if rough <= MAX_VALUES:
        return
    values = 0
    try:
        for event in yaml.parse(text, Loader=_FAST if not _looks_deep(text) else yaml.SafeLoader):
            if isinstance(event, (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent,
                                  yaml.AliasEvent)):
                values += 1
                if values > MAX_VALUES:
                    raise LimitExceeded(f"the spec holds more than {MAX_VALUES:,} YAML values",
                                        hint="use repeat and blocks for structure",
                                        location=_mark_location(filename, event.start_mark))
    except yaml.YAMLError:
        return  # the loader reports it, with its location


def _check_expansion(doc: Any, filename: str) -> None:
    """Refuse documents whose aliases would expand past MAX_EXPANDED_NODES ("billion laughs").

    The safe loader shares aliased values instead of copying them, so loading is cheap; but
    anything that walks the document (names, notes, JSON) would see every copy. Sizes are counted
    once per shared value, so this check is linear in the text.
    """
    memo: dict[int, int] = {}

    def size(value: Any) -> int:
        if not isinstance(value, (dict, list)):
            return 1
        key = id(value)
        if key not in memo:
            children = value.values() if isinstance(value, dict) else value
            memo[key] = 1 + sum(size(child) for child in children)
        return memo[key]

    total = size(doc)
    if total > MAX_EXPANDED_NODES:
        raise LimitExceeded(f"the YAML aliases expand to {total:,} values, more than the {MAX_EXPANDED_NODES:,} "
                            "allowed", hint="this looks like an alias bomb; use repeat or blocks for structure",
                            location=getattr(doc, "loc", None) or Location(filename))


def _mark_location(filename: str, mark) -> Location:
    if mark is None:
        return Location(filename)
    return Location(filename, mark.line + 1, mark.column + 1)
