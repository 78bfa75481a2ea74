"""Turn a loaded spec (mappings with locations) into a Graph of Nodes.

Expansion resolves ``repeat``, variables and expressions, gives every layer a
stable readable name, and checks each layer's parameters. Every error raised
here carries the spec location and the layer's name.
"""

from __future__ import annotations

from typing import Any

from ..errors import CnnsizeError, LimitExceeded, Location, SpecError, closest, unknown_name
from ..graph import INPUT, Graph, Node
from ..layers.base import COMMON_KEYS, REGISTRY, convert
from ..numeric import is_int
from .expr import evaluate, interpolate
from .load import LocDict, LocList

TOP_KEYS = ("name", "input", "layers", "fit", "notes", "description", "source", "vars")
FIT_RULES = ("exact", "floor")
MAX_LAYERS = 1_000_000
MAX_INPUT_DIMS = 4  # (C, D, H, W)


class _Scope:
    """Names and counters of one level of nesting (the spec, or one repetition)."""

    def __init__(self, prefix: str, parent: _Scope | None, variables: dict):
        self.prefix = prefix
        self.parent = parent
        self.vars = variables
        self.counters: dict[str, int] = {}


class Expander:
    def __init__(self, source: str, max_layers: int = MAX_LAYERS):
        self.source = source
        self.max_layers = max_layers
        self.nodes: list[Node] = []
        self.names: dict[str, Node] = {}
        self.last = INPUT

    # -- the whole spec --------------------------------------------------------------
    def graph(self, doc: Any) -> Graph:
        if doc is None:
            raise SpecError("the spec is empty", hint="write a mapping with 'input' and 'layers'",
                            location=Location(self.source))
        if not isinstance(doc, dict):
            raise SpecError(f"the top level of a spec must be a mapping, got {_type(doc)}",
                            hint="start with 'name:', 'input:' and 'layers:'", location=_loc(doc, self.source))
        self._check_keys(doc, TOP_KEYS, "top-level key")
        for key in ("input", "layers"):
            if key not in doc:
                raise SpecError(f"missing '{key}'", hint=_TOP_HINTS[key], location=_loc(doc, self.source))
        variables = self._variables(doc)
        fit = doc.get("fit", "exact")
        if fit not in FIT_RULES:
            raise unknown_name("fit rule", fit, FIT_RULES).at(_key_loc(doc, "fit", self.source))
        input_shape = self.input_shape(doc["input"], _key_loc(doc, "input", self.source), variables)
        layers = doc["layers"]
        if not isinstance(layers, list):
            raise SpecError(f"'layers' must be a list, got {_type(layers)}",
                            location=_key_loc(doc, "layers", self.source))
        self.check_size(layers, _key_loc(doc, "layers", self.source))
        self.expand_list(layers, _Scope("", None, variables))
        notes = doc.get("notes", [])
        if isinstance(notes, str):
            notes = [notes]
        name = doc.get("name", "spec")
        return Graph(name=str(name), input_shape=input_shape, nodes=self.nodes, fit=fit, source=self.source,
                     notes=[str(n) for n in notes], input_loc=_key_loc(doc, "input", self.source),
                     variables=variables)

    def _variables(self, doc) -> dict:
        raw = doc.get("vars", {}) or {}
        if not isinstance(raw, dict):
            raise SpecError("'vars' must be a mapping of names to values", location=_key_loc(doc, "vars", self.source))
        out: dict[str, Any] = {}
        for key, value in raw.items():
            loc = _key_loc(raw, key, self.source)
            try:
                out[key] = evaluate(value, out) if isinstance(value, str) else value
            except CnnsizeError as exc:
                raise exc.at(loc)
        return out

    def input_shape(self, value, loc: Location, variables: dict) -> tuple:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_INPUT_DIMS:
            raise SpecError(f"'input' must be a list of 1 to {MAX_INPUT_DIMS} sizes such as [3, 224, 224] "
                            f"(channels, height, width), got {value!r}", location=loc)
        out = []
        for v in value:
            if isinstance(v, str):
                try:
                    v = evaluate(v, variables)
                except CnnsizeError as exc:
                    raise exc.at(loc)
            if isinstance(v, bool) or not is_int(v) or v < 1:
                raise SpecError(f"input sizes must be positive integers, got {v!r}", location=loc)
            out.append(v)
        return tuple(out)

    # -- limits ------------------------------------------------------------------------
    def check_size(self, items, loc: Location) -> None:
        """Count the layers a list expands to before expanding anything."""
        total = self._count(items, 0)
        if total > self.max_layers:
            raise LimitExceeded(f"the spec expands to {total:,} layers, more than the limit of {self.max_layers:,}",
                                hint="lower the repeat counts (or raise the limit with max_layers)", location=loc)

    def _count(self, items, depth: int) -> int:
        if depth > 50:
            raise SpecError("repeats nested more than 50 deep")
        total = 0
        for item in items:
            if isinstance(item, dict) and "repeat" in item:
                n = item.get("repeat")
                body = item.get("layers")
                if is_int(n) and n > 0 and isinstance(body, list):
                    inner = self._count(body, depth + 1)
                    total += n * inner
            else:
                total += 1
            if total > self.max_layers:
                return total
        return total

    # -- layers ------------------------------------------------------------------------
    def expand_list(self, items: list, scope: _Scope) -> None:
        for index, item in enumerate(items):
            loc = items.loc_of(index) if isinstance(items, LocList) else Location(self.source)
            self.expand_item(item, scope, loc)

    def expand_item(self, item: Any, scope: _Scope, loc: Location) -> None:
        if isinstance(item, str):
            self.add_layer(item, None, scope, loc)
            return
        if not isinstance(item, dict) or not item:
            raise SpecError(f"a layer must be a name such as 'relu' or a mapping such as 'conv: {{...}}', "
                            f"got {_type(item)}", location=loc)
        if "repeat" in item:
            self.expand_repeat(item, scope, loc)
            return
        if len(item) != 1:
            keys = list(item)
            kinds = [k for k in keys if k in REGISTRY]
            hint = ("put the settings inside the layer's mapping, e.g. 'conv: {filters: 8, kernel: 3}'"
                    if kinds else None)
            if not kinds:
                raise unknown_name("layer kind", keys[0], self.kinds()).at(loc)
            raise SpecError(f"a layer entry must have exactly one key (its kind), got {', '.join(map(str, keys))}",
                            hint=hint, location=loc)
        kind, body = next(iter(item.items()))
        self.add_layer(kind, body, scope, _key_loc(item, kind, self.source) if isinstance(item, LocDict) else loc)

    def kinds(self) -> list[str]:
        return sorted(REGISTRY) + ["repeat"]

    def expand_repeat(self, item: dict, scope: _Scope, loc: Location) -> None:
        allowed = ("repeat", "layers", "name")
        self._check_keys(item, allowed, "repeat key")
        n = item["repeat"]
        if isinstance(n, str):
            n = self._eval(n, scope, _key_loc(item, "repeat", self.source))
        if isinstance(n, bool) or not is_int(n) or n < 1:
            raise SpecError(f"repeat must be a positive integer, got {n!r}",
                            location=_key_loc(item, "repeat", self.source))
        body = item.get("layers")
        if not isinstance(body, list) or not body:
            raise SpecError("repeat needs a non-empty 'layers' list", location=loc)
        prefix_name = item.get("name")
        for i in range(n):
            variables = {**scope.vars, "i": i}
            if prefix_name is not None:
                label = interpolate(str(prefix_name), variables)
                inner = _Scope(f"{scope.prefix}{label}.{i}.", scope, variables)
            else:
                inner = _Scope(scope.prefix, scope, variables)
                inner.counters = scope.counters  # auto names keep counting: conv2, conv3, ...
                inner.repeat_index = i  # type: ignore[attr-defined]
            self.expand_list(body, inner)

    def add_layer(self, kind: Any, body: Any, scope: _Scope, loc: Location) -> Node:
        if not isinstance(kind, str) or kind not in REGISTRY:
            raise unknown_name("layer kind", kind, self.kinds()).at(loc)
        cls = REGISTRY[kind]
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise SpecError(f"the settings of '{kind}' must be a mapping such as {{kernel: 3}}, got {body!r}",
                            location=loc)
        name = self.name_for(kind, body, scope, loc)
        try:
            self._check_keys(body, tuple(cls.params) + COMMON_KEYS, f"key for {kind}")
            values = {}
            for key, param in cls.params.items():
                if key in body:
                    key_loc = _key_loc(body, key, self.source)
                    try:
                        values[key] = convert(param, body[key], key,
                                              lambda text, loc=key_loc: self._eval(text, scope, loc))
                    except CnnsizeError as exc:
                        raise exc.at(key_loc)
                elif param.required:
                    example = ", ".join(f"{k}: ..." for k, p in cls.params.items() if p.required)
                    raise SpecError(f"{kind} is missing '{key}'", hint=f"write {kind}: {{{example}}}")
            inputs = self.inputs_for(body, scope)
            trainable = body.get("trainable", True)
            if not isinstance(trainable, bool):
                raise SpecError(f"trainable must be true or false, got {trainable!r}")
            layer = cls(values)
        except CnnsizeError as exc:
            raise exc.at(loc, name)
        if not cls.min_inputs <= len(inputs) <= cls.max_inputs:
            raise SpecError(f"{kind} takes {cls.min_inputs} to {cls.max_inputs} inputs, got {len(inputs)}",
                            location=loc, layer=name)
        node = Node(name=name, kind=layer, inputs=inputs, loc=loc, trainable=trainable)
        self.nodes.append(node)
        self.names[name] = node
        self.last = name
        return node

    def name_for(self, kind: str, body: dict, scope: _Scope, loc: Location) -> str:
        raw = body.get("name")
        if raw is not None:
            if not isinstance(raw, (str, int)) or isinstance(raw, bool):
                raise SpecError(f"a layer name must be a string, got {raw!r}", location=loc)
            label = interpolate(str(raw), scope.vars)
            index = getattr(scope, "repeat_index", None)
            if "{" in str(raw):
                index = None  # the name already varies with the repetition, e.g. conv3_{i+1}
            name = f"{scope.prefix}{label}" + (f".{index}" if index is not None else "")
            if name in self.names or name == INPUT:
                first = self.names[name].loc if name in self.names else None
                where = f" (first at line {first.line})" if first else ""
                raise SpecError(f"layer name '{name}' is used twice{where}",
                                hint="give each layer its own name", location=_key_loc(body, "name", self.source))
            return name
        while True:
            scope.counters[kind] = scope.counters.get(kind, 0) + 1
            name = f"{scope.prefix}{kind}{scope.counters[kind]}"
            if name not in self.names:
                return name

    def inputs_for(self, body: dict, scope: _Scope) -> list[str]:
        if "from" not in body:
            return [self.last]
        raw = body["from"]
        refs = raw if isinstance(raw, list) else [raw]
        out = []
        for ref in refs:
            if not isinstance(ref, str):
                raise SpecError(f"'from' names earlier layers, got {ref!r}")
            out.append(self.resolve(interpolate(ref, scope.vars), scope))
        return out

    def resolve(self, ref: str, scope: _Scope | None) -> str:
        """A layer name as written in the spec, looked up from the innermost scope outwards."""
        if ref == INPUT:
            return INPUT
        s = scope
        while s is not None:
            if s.prefix + ref in self.names:
                return s.prefix + ref
            s = s.parent
        guess = closest(ref, list(self.names) + [INPUT])
        hint = (f"did you mean '{guess}'? " if guess else "") + "'from' can only name layers defined above it"
        raise SpecError(f"'from' names unknown layer '{ref}'", hint=hint)

    # -- helpers -----------------------------------------------------------------------
    def _eval(self, text: str, scope: _Scope, loc: Location):
        try:
            return evaluate(text, scope.vars)
        except CnnsizeError as exc:
            raise exc.at(loc)

    def _check_keys(self, mapping: dict, allowed, what: str) -> None:
        for key in mapping:
            if key not in allowed:
                loc = mapping.key_loc(key) if isinstance(mapping, LocDict) else Location(self.source)
                raise unknown_name(what, key, allowed).at(loc)


_TOP_HINTS = {"input": "add e.g. 'input: [3, 224, 224]' (channels, height, width)",
              "layers": "add a 'layers:' list"}


def _type(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", LocDict: "a mapping", list: "a list", LocList: "a list", str: f"'{value}'"}.get(
        type(value), repr(value))


def _loc(value: Any, source: str) -> Location:
    return getattr(value, "loc", None) or Location(source)


def _key_loc(mapping: Any, key: str, source: str) -> Location:
    if isinstance(mapping, LocDict):
        return mapping.loc_of(key)
    return Location(source)


def expand(doc: Any, source: str = "<spec>", max_layers: int = MAX_LAYERS) -> Graph:
    """A loaded spec document as a Graph (raises SpecError with locations)."""
    try:
        return Expander(source, max_layers).graph(doc)
    except CnnsizeError as exc:
        raise exc.at(Location(source))  # at least the file, where a deeper level knew no line
