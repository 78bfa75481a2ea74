"""Turn a loaded spec (mappings with locations) into a Graph of Nodes.

Expansion resolves ``repeat``, reusable ``blocks``, ``if`` parts, variables and
expressions, gives every layer a stable readable name (``layer3.2.conv1``),
resolves ``from:`` references, and checks each layer's parameters. Every error
raised here carries the spec location and the layer's name.

Blocks are defined once under ``blocks:`` with ``args`` (``~`` marks a required
one) and ``layers``; a use such as ``bottleneck: {name: layer1.0, width: 64}``
expands the block's layers under the prefix ``layer1.0.`` (an unnamed use is
``bottleneck1``, ...; a block marked ``inline: true`` adds no prefix). Inside a block,
``from: in`` names the block's input, and arguments are variables. The layer
count is computed before anything expands, so a hostile spec cannot blow up.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import chain, cycle
from typing import Any

from ..core.errors import CnnsizeError, LimitExceeded, Location, SpecError, closest, unknown_name
from ..core.expr import MAX_NAME, evaluate, interpolate, shorten, shown
from ..core.graph import INPUT, Graph, Node
from ..core.numeric import is_int
from ..layers.base import COMMON_KEYS, REGISTRY, Ctx, InputTensor, LayerKind, convert
from .load import LocDict, LocList

TOP_KEYS = ("name", "input", "inputs", "layers", "fit", "notes", "description", "source", "vars", "blocks")
REPEAT_KEYS = ("repeat", "layers", "name", "block", "args", "first")
BLOCK_KEYS = ("args", "layers", "description", "inline")
RESERVED = ("repeat", "if", "in", INPUT)
BLOCK_INPUT = "in"
FIT_RULES = ("exact", "floor")
MAX_LAYERS = 1_000_000
MAX_INPUT_DIMS = 4  # (C, D, H, W)
MAX_NOTES = 100_000  # characters of notes
MAX_INPUTS = 64  # named inputs of one spec


class _Scope:
    """Names and counters of one level of nesting (the spec, or one repetition)."""

    def __init__(self, prefix: str, parent: _Scope | None, variables: dict, aliases: dict | None = None):
        self.prefix = prefix
        self.parent = parent
        self.vars = variables
        self.aliases = aliases or {}
        self.counters: dict[str, int] = {}


class Expander:
    def __init__(self, source: str, max_layers: int = MAX_LAYERS, variables: dict | None = None,
                 input_shape: tuple | dict | None = None, fit: str | None = None):
        self.source = source
        # the inputs' shapes to expand for: one (the first input's) or a mapping of input names to shapes
        self.input_override = input_shape if isinstance(input_shape, dict) or input_shape is None \
            else {None: input_shape}
        self.first_input = INPUT  # the first input's name; a spec's inputs: names each
        self.input_names: dict[str, Location] = {}  # every input's name and where the spec declares it
        self.fit_override = fit
        self.shapes: dict[str, tuple] = {}  # output shapes worked out for in.channels, by layer name
        self.read_shapes = False
        self.max_layers = max_layers
        self.overrides = dict(variables or {})
        self.nodes: list[Node] = []
        self.names: dict[str, Node] = {}
        self.aliases: dict[str, str] = {}  # block instance name -> its output layer
        self.weak: set[str] = set()  # aliases of named repeats, which a layer's own name replaces
        self.blocks: dict[str, dict] = {}
        self.block_locs: dict[str, Location] = {}
        self.globals: dict[str, Any] = {}
        self.stack: list[str] = []  # blocks being expanded (to refuse recursion)
        self.work = 0
        self.last = INPUT
        self.kinds_seen: dict[tuple, Any] = {}  # (kind class, settings) -> the one layer kind object for them
        self.settled: dict[tuple, tuple] = {}  # (id of a settings mapping, kind) -> (mapping, kind object, trainable)

    # -- the whole spec --------------------------------------------------------------
    def graph(self, doc: Any) -> Graph:
        if doc is None:
            raise SpecError("the spec is empty", hint="write a mapping with 'input' and 'layers'",
                            location=Location(self.source))
        if not isinstance(doc, dict):
            raise SpecError(f"the top level of a spec must be a mapping, got {_type(doc)}",
                            hint="start with 'name:', 'input:' and 'layers:'", location=_loc(doc, self.source))
        self._check_keys(doc, TOP_KEYS, "top-level key", hint=_ultralytics_hint(doc))
        for key in ("input", "layers"):
            if key not in doc and (key != "input" or "inputs" not in doc):
                raise SpecError(f"missing '{key}'", hint=_TOP_HINTS[key], location=_loc(doc, self.source))
        if "input" in doc and "inputs" in doc:
            raise SpecError("the spec has both 'input' and 'inputs'",
                            hint="write 'input: [3, 224, 224]' for one input, or name each under 'inputs:'",
                            location=_key_loc(doc, "inputs", self.source))
        variables = self._variables(doc)
        self.globals = variables
        self._read_blocks(doc)
        fit = doc.get("fit", "exact")
        if fit not in FIT_RULES:
            raise unknown_name("fit rule", fit, FIT_RULES).at(_key_loc(doc, "fit", self.source))
        shapes = self.declared_inputs(doc, variables)
        input_shape = next(iter(shapes.values()))
        self.first_input = next(iter(shapes))
        self.last = self.first_input
        given = self.input_override or {}
        self.shape_input = given.get(self.first_input, given.get(None)) or input_shape
        self.fit = self.fit_override or fit
        for name, shape in list(shapes.items())[1:]:  # the others: nodes of their own, first
            node = Node(name=name, kind=InputTensor({"shape": tuple(given.get(name, shape))}), inputs=[],
                        loc=self.input_names[name], trainable=False)
            self.nodes.append(node)
            self.names[name] = node
        layers = doc["layers"]
        if not isinstance(layers, list):
            raise SpecError(f"'layers' must be a list, got {_type(layers)}",
                            location=_key_loc(doc, "layers", self.source))
        self.check_size(layers, _key_loc(doc, "layers", self.source))
        self.expand_list(layers, _Scope("", None, variables))
        if "inputs" in doc:
            self._check_inputs_read(doc)
        notes = self._notes(doc)
        name = doc.get("name", "spec")
        if not isinstance(name, (str, int, float)) or isinstance(name, bool):
            raise SpecError(f"'name' must be text, got {_type(name)}", location=_key_loc(doc, "name", self.source))
        if len(str(name)) > MAX_NAME:
            raise LimitExceeded(f"the spec's name is {len(str(name)):,} characters long, more than the {MAX_NAME} "
                                "allowed", location=_key_loc(doc, "name", self.source))
        graph = Graph(name=str(name), input_shape=input_shape, nodes=self.nodes, fit=fit, source=self.source,
                      notes=notes, input_loc=self.input_names[self.first_input],
                      variables=variables, input_name=self.first_input)
        graph.topology  # noqa: B018 - worked out now, as part of parsing, and kept with the graph
        if self.read_shapes:
            source, max_layers, overrides = self.source, self.max_layers, self.overrides

            def reexpand(shapes: dict, fit_rule: str) -> Graph:
                again = Expander(source, max_layers, overrides, input_shape=shapes, fit=fit_rule).graph(doc)
                again.input_shape, again.fit = tuple(shapes.get(again.input_name, again.input_shape)), fit_rule
                return again

            graph.reexpand = reexpand
        return graph

    def declared_inputs(self, doc: Any, variables: dict) -> dict[str, tuple]:
        """Each input's shape by name: ``input: [3, 224, 224]`` (one, named input), or ``inputs:`` naming several
        (``{image: [3, H, W], mask: [1, H, W]}``), the first of which the analysis walks from."""
        if "inputs" not in doc:
            loc = _key_loc(doc, "input", self.source)
            self.input_names[INPUT] = loc
            return {INPUT: self.input_shape(doc["input"], loc, variables)}
        raw, where = doc["inputs"], _key_loc(doc, "inputs", self.source)
        if not isinstance(raw, dict) or not raw:
            raise SpecError(f"'inputs' must map names to shapes, got {_type(raw)}",
                            hint="e.g. inputs: {image: [3, 224, 224], mask: [1, 224, 224]}", location=where)
        if len(raw) > MAX_INPUTS:
            raise LimitExceeded(f"the spec declares {len(raw):,} inputs, more than the {MAX_INPUTS} allowed",
                                location=where)
        shapes = {}
        for name, value in raw.items():
            loc = _key_loc(raw, name, self.source)
            if not isinstance(name, str) or not name or "." in name or name in RESERVED[:3] or name in REGISTRY \
                    or len(name) > MAX_NAME or not name.isprintable():
                raise SpecError(f"input name {shown(name)} cannot name an input",
                                hint="name each input with a word that is not a layer kind, 'in', 'if' or "
                                     "'repeat', without dots (image, mask)", location=loc)
            self.input_names[name] = loc
            shapes[name] = self.input_shape(value, loc, variables, f"input '{name}'")
        return shapes

    def input_text(self, name: str) -> str:
        """An input as messages name it: "the input" where there is one, else by its name."""
        return "the input" if len(self.input_names) == 1 else f"input '{name}'"

    def _check_inputs_read(self, doc: Any) -> None:
        """An input that no layer reads is an error (a misspelt 'from', or an input the network does not take); one
        that only a part left out reads (``if: aux``, an imported network's other outputs) is read."""
        read = {src for node in self.nodes for src in node.inputs}
        if len(read & set(self.input_names)) < len(self.input_names):
            read |= _named_in_from(doc.get("layers"), 0)
        for name, loc in self.input_names.items():
            if name not in read:
                raise SpecError(f"no layer reads input '{name}'",
                                hint=f"read it with 'from: {name}' (a merge: from: [a, {name}]), or leave it out of "
                                     "'inputs'", location=loc)

    def shape_of(self, name: str) -> tuple:
        """The output shape of an already expanded layer (for in.channels), worked out once per layer."""

        self.read_shapes = True
        first = self.first_input
        if name == first:
            return self.shape_input
        if name not in self.shapes:
            ctx = Ctx(fit=self.fit)
            for node in self.nodes[len(self.shapes):]:  # in order: every input comes first
                ins = [self.shape_input if src == first else self.shapes[src] for src in node.inputs]
                try:
                    self.shapes[node.name] = tuple(node.kind.output_shape(ins, ctx))
                except CnnsizeError as exc:
                    raise exc.at(node.loc, node.name)
                if node.name == name:
                    break
        return self.shapes[name]

    def _notes(self, doc) -> list[str]:
        """The spec's notes as a list of texts: one text, a list of them, or nothing (a number is text too)."""
        notes = doc.get("notes")
        if notes is None:
            return []
        items = notes if isinstance(notes, list) else [notes]
        out = []
        for index, note in enumerate(items):
            if isinstance(note, (dict, list)):
                where = notes.loc_of(index) if isinstance(notes, LocList) else _key_loc(doc, "notes", self.source)
                raise SpecError(f"a note must be text, got {_type(note)}",
                                hint="write notes as text or a list of texts", location=where)
            out.append("" if note is None else str(note) if not isinstance(note, bool) else str(note).lower())
        if sum(map(len, out)) > MAX_NOTES:
            raise LimitExceeded(f"the notes are {sum(map(len, out)):,} characters long, more than the {MAX_NOTES:,} "
                                "allowed", location=_key_loc(doc, "notes", self.source))
        return out

    def _variables(self, doc) -> dict:
        raw = doc.get("vars", {}) or {}
        if not isinstance(raw, dict):
            raise SpecError("'vars' must be a mapping of names to values", location=_key_loc(doc, "vars", self.source))
        for key in self.overrides:
            if key not in raw:
                raise unknown_name("spec variable", key, raw.keys()).at(_key_loc(doc, "vars", self.source))
        out: dict[str, Any] = {}
        for key, value in raw.items():
            loc = _key_loc(raw, key, self.source)
            if key in self.overrides:
                out[key] = self.overrides[key]
                continue
            try:
                out[key] = evaluate(value, out, f"vars: {key}") if isinstance(value, str) else value
            except CnnsizeError as exc:
                raise exc.at(loc)
        return out

    def _read_blocks(self, doc) -> None:
        raw = doc.get("blocks", {}) or {}
        if not isinstance(raw, dict):
            raise SpecError("'blocks' must be a mapping of block names to {args, layers}",
                            location=_key_loc(doc, "blocks", self.source))
        for name, body in raw.items():
            loc = _key_loc(raw, name, self.source)
            if name in REGISTRY or name in RESERVED:
                raise SpecError(f"block name '{name}' is taken by a layer kind or keyword",
                                hint="give the block another name", location=loc)
            if not isinstance(body, dict) or not isinstance(body.get("layers"), list) or not body["layers"]:
                raise SpecError(f"block '{name}' needs a mapping with a non-empty 'layers' list",
                                hint="write e.g. 'block: {args: {width: ~}, layers: [...]}'", location=loc)
            self._check_keys(body, BLOCK_KEYS, f"key of block '{name}'")
            args = body.get("args", {}) or {}
            if not isinstance(args, dict):
                raise SpecError(f"the args of block '{name}' must be a mapping of names to defaults "
                                "(~ for a required one)", location=_key_loc(body, "args", self.source))
            self.blocks[name] = body
            self.block_locs[name] = loc

    def input_shape(self, value, loc: Location, variables: dict, what: str = "'input'") -> tuple:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_INPUT_DIMS:
            raise SpecError(f"{what} must be a list of 1 to {MAX_INPUT_DIMS} sizes such as [3, 224, 224] "
                            f"(channels, height, width), got {shown(value)}", location=loc)
        out = []
        for v in value:
            if isinstance(v, str):
                try:
                    v = evaluate(v, variables, "input")
                except CnnsizeError as exc:
                    raise exc.at(loc)
            if isinstance(v, float) and v.is_integer() and 1 <= v < 2**53:
                v = int(v)  # exact: floats stand for integers only below 2^53
            if isinstance(v, float) and v.is_integer() and v >= 2**53:
                raise SpecError(f"input size {shown(v)} is a decimal number too large to stand for an exact integer",
                                hint="write the integer in full (floats are exact only below 2^53)", location=loc)
            if isinstance(v, bool) or not is_int(v) or v < 1:
                raise SpecError(f"input sizes must be positive integers, got {shown(v)}", location=loc)
            out.append(v)
        return tuple(out)

    # -- limits ------------------------------------------------------------------------
    def check_size(self, items, loc: Location) -> None:
        """Count the layers a list expands to before expanding anything."""
        total = self._count(items, 0)
        if total > self.max_layers:
            raise LimitExceeded(f"the spec expands to {total:,} layers, more than the limit of {self.max_layers:,}",
                                hint=_layers_hint(self.max_layers), location=loc)

    def _count(self, items, depth: int, memo: dict | None = None) -> int:
        """An upper bound of the layers a list expands to (an ``if`` counts its larger side)."""
        if depth > 50:
            raise SpecError("repeats and blocks nested more than 50 deep")
        memo = {} if memo is None else memo
        total = 0
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and "repeat" in item:
                n: Any = item.get("repeat")
                if isinstance(n, str):
                    try:
                        n = evaluate(n, self.globals)
                    except CnnsizeError:
                        n = 1  # depends on block arguments: the running guard in add_layer counts it
                if is_int(n) and n > 0:
                    if isinstance(item.get("block"), str) and item["block"] in self.blocks:
                        total += n * self._block_count(item["block"], depth + 1, memo)
                    else:
                        total += n * self._count(item.get("layers"), depth + 1, memo)
            elif isinstance(item, dict) and "if" in item:
                total += max(self._count(item.get("layers"), depth + 1, memo),
                             self._count(item.get("else"), depth + 1, memo))
            else:
                key = item if isinstance(item, str) else next(iter(item), None) if isinstance(item, dict) else None
                if isinstance(key, str) and key in self.blocks:
                    total += self._block_count(key, depth + 1, memo)
                else:
                    total += 1
            if total > self.max_layers:
                return total
        return total

    def _block_count(self, name: str, depth: int, memo: dict) -> int:
        if name not in memo:
            memo[name] = None
            memo[name] = self._count(self.blocks[name]["layers"], depth, memo)
        elif memo[name] is None:
            raise SpecError(f"block '{name}' uses itself", hint="blocks cannot be recursive",
                            location=self.block_locs[name])
        return memo[name]

    # -- layers ------------------------------------------------------------------------
    def expand_list(self, items: list, scope: _Scope) -> None:
        for index, item in enumerate(items):
            loc = items.loc_of(index) if isinstance(items, LocList) else Location(self.source)
            self.expand_item(item, scope, loc)

    def expand_item(self, item: Any, scope: _Scope, loc: Location) -> None:
        if isinstance(item, str):
            if item in self.blocks:
                self.use_block(item, {}, scope, loc)
            else:
                self.add_layer(item, None, scope, loc)
            return
        if not isinstance(item, dict) or not item:
            raise SpecError(f"a layer must be a name such as 'relu' or a mapping such as 'conv: {{...}}', "
                            f"got {_type(item)}", location=loc)
        if "repeat" in item:
            self.expand_repeat(item, scope, loc)
            return
        if "if" in item:
            self.expand_if(item, scope, loc)
            return
        if len(item) != 1:
            keys = list(item)
            kinds = [k for k in keys if k in REGISTRY or k in self.blocks]
            hint = ("put the settings inside the layer's mapping, e.g. 'conv: {filters: 8, kernel: 3}'"
                    if kinds else None)
            if not kinds:
                raise self.unknown_kind(keys[0]).at(loc)
            raise SpecError(f"a layer entry must have exactly one key (its kind), got {', '.join(map(str, keys))}",
                            hint=hint, location=loc)
        kind, body = next(iter(item.items()))
        where = _key_loc(item, kind, self.source) if isinstance(item, LocDict) else loc
        if isinstance(kind, str) and kind in self.blocks:
            self.use_block(kind, body, scope, where)
        else:
            self.add_layer(kind, body, scope, where)

    def kinds(self) -> list[str]:
        return sorted(REGISTRY) + sorted(self.blocks) + ["repeat", "if"]

    def unknown_kind(self, kind: Any) -> CnnsizeError:
        """An unknown kind: a torch module's name gets its kind, any other the closest few (not all 80)."""

        torch_kind = LayerKind.for_torch_name(kind) if isinstance(kind, str) else None
        return unknown_name("layer kind", kind, self.kinds(), aka={kind: torch_kind} if torch_kind else None,
                            more="cnnsize specs --kinds lists them")

    def expand_if(self, item: dict, scope: _Scope, loc: Location) -> None:
        """``{if: condition, layers: [...], else: [...]}``: an optional part of a block or spec."""
        self._check_keys(item, ("if", "layers", "else"), "key of an 'if' part")
        cond = item["if"]
        if isinstance(cond, str):
            cond = self._eval(cond, scope, _key_loc(item, "if", self.source), "if")
        if not isinstance(cond, bool):
            raise SpecError(f"an 'if' condition must be true or false, got {shown(cond)}",
                            location=_key_loc(item, "if", self.source))
        for key in ("layers", "else"):
            if key in item and not isinstance(item[key], list):
                raise SpecError(f"'{key}' of an 'if' part must be a list of layers",
                                location=_key_loc(item, key, self.source))
        if "layers" not in item:
            raise SpecError("an 'if' part needs a 'layers' list", location=loc)
        self.expand_list(item["layers"] if cond else item.get("else", []), scope)

    def use_block(self, bname: str, body: Any, scope: _Scope, loc: Location,
                  name: str | None = None, extra: dict | None = None) -> None:
        """Expand one use of a block under its own name prefix; its arguments become variables."""
        block = self.blocks[bname]
        if body is None:
            body = {}
        declared = block.get("args", {}) or {}
        raw_args, arg_locs = self._block_args(bname, body, declared, extra, loc)
        if bname in self.stack:
            raise SpecError(f"block '{bname}' uses itself", hint="blocks cannot be recursive", location=loc)
        inline = block.get("inline", False) is True
        instance = self._block_instance(bname, body, inline, scope, loc, name)
        if "from" in body:
            self.last = self._block_input(body, scope, instance, loc)
        variables = self._block_variables(bname, declared, raw_args, arg_locs, scope.vars, instance, loc)
        inner = _Scope(scope.prefix if inline else instance + ".", scope, variables, {BLOCK_INPUT: self.last})
        if inline:
            inner.counters = scope.counters
        self.stack.append(bname)
        try:
            self.expand_list(block["layers"], inner)
        finally:
            self.stack.pop()
        if not inline:
            self.aliases[instance] = self.last

    def _block_args(self, bname: str, body: Any, declared: dict, extra: dict | None,
                    loc: Location) -> tuple[dict, dict]:
        """The arguments written at a block's use (and ``extra`` from a repeat), each where it is written.

        Checked against the block's declared arguments before anything expands, so a misspelt one is named
        with the valid ones rather than silently ignored.
        """
        if not isinstance(body, dict):
            raise SpecError(f"the arguments of block '{bname}' must be a mapping such as {{width: 64}}, "
                            f"got {shown(body)}", location=loc)
        raw_args = {k: v for k, v in body.items() if k not in ("name", "from")}
        arg_locs = {k: _key_loc(body, k, self.source) for k in raw_args}
        for k, v in (extra or {}).items():
            raw_args[k], arg_locs[k] = v, loc
        for key in raw_args:
            if key not in declared:
                raise unknown_name(f"argument of block '{bname}'", key, declared).at(arg_locs[key])
        return raw_args, arg_locs

    def _block_instance(self, bname: str, body: dict, inline: bool, scope: _Scope, loc: Location,
                        name: str | None) -> str:
        """The name prefix of a block's layers: the enclosing prefix (inline), the given name, or bname1, 2..."""
        label = name if name is not None else body.get("name")
        if inline:
            if label is not None:
                raise SpecError(f"block '{bname}' is inline: its layers take names at the place of use",
                                hint="drop 'name' (or the block's 'inline: true')", location=loc)
            return scope.prefix.rstrip(".") or bname
        if label is not None:
            return self._named_instance(label, scope, loc, name)
        while True:  # the first free number: a name given earlier may have taken bname1
            scope.counters[bname] = scope.counters.get(bname, 0) + 1
            instance = f"{scope.prefix}{bname}{scope.counters[bname]}"
            if instance not in self.names and instance not in self.aliases:
                return instance

    def _named_instance(self, label: Any, scope: _Scope, loc: Location, name: str | None) -> str:
        """A block use's written name (``{expr}`` evaluated), which must be new: it becomes an alias."""
        if not isinstance(label, (str, int)) or isinstance(label, bool):
            raise SpecError(f"a block name must be a string, got {shown(label)}", location=loc)
        instance = scope.prefix + (self._name(label, scope.vars, loc) if name is None else str(label))
        _check_name(instance, loc)
        if instance in self.names or instance in self.aliases:
            raise SpecError(f"name '{instance}' is used twice", hint="give each block use its own name",
                            location=loc)
        return instance

    def _block_input(self, body: dict, scope: _Scope, instance: str, loc: Location) -> Any:
        """The one tensor a block's ``from:`` names (a block has one input)."""
        try:
            refs = self.inputs_for(body, scope)
        except CnnsizeError as exc:
            raise exc.at(_key_loc(body, "from", self.source), instance)
        if len(refs) != 1:
            raise SpecError(f"a block takes one input, got {len(refs)}", location=loc, layer=instance)
        return refs[0]

    def _block_variables(self, bname: str, declared: dict, raw_args: dict, arg_locs: dict, caller_vars: dict,
                         instance: str, loc: Location) -> dict:
        """The variables inside a block: the globals, its input's shape, and each argument given or defaulted.

        Given arguments evaluate in the caller's scope; defaults in the block's own, so a default may use an
        earlier argument or the input's shape.
        """
        variables = dict(self.globals)
        variables[BLOCK_INPUT] = _InputShape(self, self.last)
        for key, default in declared.items():
            if key in raw_args:
                value = self._arg(raw_args[key], caller_vars, arg_locs[key], key)
            elif default is None:
                required = [k for k, d in declared.items() if d is None]
                raise SpecError(f"block '{bname}' is missing argument '{key}'",
                                hint="required arguments: " + ", ".join(required), location=loc, layer=instance)
            else:
                value = self._arg(default, variables, _key_loc(declared, key, self.source), key)
            variables[key] = value
        return variables

    def _arg(self, value: Any, variables: dict, loc: Location, setting: str | None = None) -> Any:
        try:
            if isinstance(value, str):
                return evaluate(value, variables, setting)
            if isinstance(value, list):
                return [evaluate(v, variables, setting) if isinstance(v, str) else v for v in value]
        except CnnsizeError as exc:
            raise exc.at(loc)
        return value

    def expand_repeat(self, item: dict, scope: _Scope, loc: Location) -> None:
        self._check_keys(item, REPEAT_KEYS, "repeat key")
        n = item["repeat"]
        if isinstance(n, str):
            n = self._eval(n, scope, _key_loc(item, "repeat", self.source), "repeat")
        if isinstance(n, bool) or not is_int(n) or n < 1:
            raise SpecError(f"repeat must be a positive integer, got {shown(n)}",
                            location=_key_loc(item, "repeat", self.source))
        if "block" in item:
            self.repeat_block(item, n, scope, loc)
            return
        body = item.get("layers")
        if not isinstance(body, list) or not body:
            raise SpecError("repeat needs a non-empty 'layers' list (or a 'block' to use)", location=loc)
        for key in ("args", "first"):
            if key in item:
                raise SpecError(f"'{key}' goes with 'block:' in a repeat", location=_key_loc(item, key, self.source))
        prefix_name = item.get("name")
        for i in range(n):
            self._tick(loc)
            variables = {**scope.vars, "i": i}
            if prefix_name is not None:
                label = self._name(prefix_name, variables, loc)
                # a name with {expr} is the whole prefix of each repetition (denselayer{i + 1})
                label = label if "{" in str(prefix_name) else f"{label}.{i}"
                inner = _Scope(f"{scope.prefix}{label}.", scope, variables)
            else:
                inner = _Scope(scope.prefix, scope, variables)
                inner.counters = scope.counters  # auto names keep counting: conv2, conv3, ...
                inner.repeat_index = i  # type: ignore[attr-defined]
            self.expand_list(body, inner)
            template = self._template(body) if prefix_name is None and i + 1 < n else None
            if template is not None:
                self._stamp(template, scope, n - i - 1, loc)
                break
        self._alias_repeat(prefix_name, scope)

    def _template(self, body: list) -> list[tuple] | None:
        """The layers of a repeat's body as every repetition makes them, when each is a plain layer that reads
        the one before, takes an automatic name and has settings without expressions (checked once, in the
        first repetition): (name counter's kind, layer kind object, location, trainable, function) per layer.
        None when any item needs the scope (a name, 'from', 'shares', a block, a nested repeat or 'if')."""
        out = []
        for index, item in enumerate(body):
            kind, settings = (item, None) if isinstance(item, str) else \
                next(iter(item.items())) if isinstance(item, dict) and len(item) == 1 else (None, None)
            if not isinstance(kind, str) or kind in self.blocks or kind not in REGISTRY:
                return None
            mapping = _NO_SETTINGS if settings is None else settings
            known = self.settled.get((id(mapping), kind))
            if known is None or known[0] is not mapping or any(k in mapping for k in ("name", "from", "shares")):
                return None
            cls = REGISTRY[kind]
            if not cls.min_inputs <= 1 <= cls.max_inputs:
                return None
            loc = body.loc_of(index) if isinstance(body, LocList) else Location(self.source)
            where = _key_loc(item, kind, self.source) if isinstance(item, LocDict) else loc
            out.append((kind, known[1], where, known[2], _function(mapping)))
        return out

    def _stamp(self, template: list[tuple], scope: _Scope, times: int, loc: Location) -> None:
        """``times`` more repetitions of a body that ``_template`` read: only the names and the links differ."""
        if not self._stamp_at_once(template, scope, times):
            self._stamp_each(template, scope, times, loc)

    def _stamp_at_once(self, template: list[tuple], scope: _Scope, times: int) -> bool:
        """The repetitions in one go where no limit is reached and no automatic name among them is taken (the usual
        case): each kind's names are its counter's next numbers in turn. False, with nothing done, otherwise."""
        nodes, counters, prefix = self.nodes, scope.counters, scope.prefix
        if self.work + times > 4 * self.max_layers or len(nodes) + times * len(template) > self.max_layers:
            return False
        per_repetition: dict[str, int] = {}  # kind -> its layers in one repetition
        nths = []  # per layer of the body, which of its kind's layers in a repetition it is
        for kind, *_ in template:
            per_repetition[kind] = nth = per_repetition.get(kind, 0) + 1
            nths.append(nth)
        start = {kind: counters.get(kind, 0) for kind in per_repetition}
        columns = [[f"{prefix}{kind}{number}" for number in range(start[kind] + nth, start[kind] + nth +
                                                                   times * per_repetition[kind], per_repetition[kind])]
                   for (kind, *_), nth in zip(template, nths)]  # per layer of the body, its name in each repetition
        order = [name for repetition in zip(*columns) for name in repetition]
        fresh = set(order)
        if len(fresh) < len(order) or not fresh.isdisjoint(self.names) or not fresh.isdisjoint(self.aliases):
            return False
        made = [Node(name, layer, [src], where, trainable, None, (), function) for name, src,
                (_, layer, where, trainable, function) in zip(order, chain((self.last,), order), cycle(template))]
        self.names.update(zip(order, made))
        nodes.extend(made)
        counters.update((kind, start[kind] + times * count) for kind, count in per_repetition.items())
        self.work += times
        self.last = order[-1]
        return True

    def _stamp_each(self, template: list[tuple], scope: _Scope, times: int, loc: Location) -> None:
        """The repetitions one by one, each name checked (a layer named so takes the next number) and the limits
        met where they are reached."""
        counters, names, aliases, nodes, prefix = scope.counters, self.names, self.aliases, self.nodes, scope.prefix
        last, add_node, limit = self.last, nodes.append, 4 * self.max_layers
        for _ in range(times):
            self.work += 1  # as _tick, inline: the loop runs once per repetition of the largest specs
            if self.work > limit:
                self._tick(loc)
            room = self.max_layers - len(nodes)
            if room < len(template):
                raise LimitExceeded(f"the spec expands to more than {self.max_layers:,} layers",
                                    hint=_layers_hint(self.max_layers), location=template[room][2])
            for kind, layer, where, trainable, function in template:
                counters[kind] = count = counters.get(kind, 0) + 1
                name = f"{prefix}{kind}{count}"
                while name in names or name in aliases:  # taken by a layer named so: the next number
                    counters[kind] = count = count + 1
                    name = f"{prefix}{kind}{count}"
                names[name] = node = Node(name, layer, [last], where, trainable, None, (), function)
                add_node(node)
                last = name
        self.last = last

    def repeat_block(self, item: dict, n: int, scope: _Scope, loc: Location) -> None:
        """``{repeat: 3, name: layer1, block: bottleneck, args: {...}, first: {...}}``: layer1.0, layer1.1, ..."""
        bname = item["block"]
        if not isinstance(bname, str) or bname not in self.blocks:
            raise unknown_name("block", bname, self.blocks).at(_key_loc(item, "block", self.source))
        if "layers" in item:
            raise SpecError("a repeat has either 'layers' or 'block', not both", location=loc)
        args = item.get("args", {}) or {}
        first = item.get("first", {}) or {}
        for key, value in (("args", args), ("first", first)):
            if not isinstance(value, dict):
                raise SpecError(f"'{key}' must be a mapping of block arguments",
                                location=_key_loc(item, key, self.source))
            if "name" in value or "from" in value:
                raise SpecError(f"'{key}' holds block arguments; put 'name' on the repeat",
                                location=_key_loc(item, key, self.source))
        prefix_name = item.get("name")
        for i in range(n):
            self._tick(loc)
            inner = _Scope(scope.prefix, scope, {**scope.vars, "i": i})
            inner.counters = scope.counters
            body = LocDict(args)
            body.loc, body.key_locs = loc, dict(getattr(args, "key_locs", {}))
            if i == 0:
                body.update(first)
                body.key_locs.update(getattr(first, "key_locs", {}))
            name = None
            if prefix_name is not None:
                label = self._name(prefix_name, inner.vars, loc)
                name = label if "{" in str(prefix_name) else f"{label}.{i}"
            self.use_block(bname, body, inner, loc, name=name)
        self._alias_repeat(prefix_name, scope)

    def _alias_repeat(self, prefix_name: Any, scope: _Scope) -> None:
        """A named repeat (``layer2``) stands for the output of its last repetition in 'from:'."""
        if prefix_name is not None and "{" not in str(prefix_name):
            full = scope.prefix + str(prefix_name)
            if full not in self.names and full not in self.aliases:
                self.aliases[full] = self.last
                self.weak.add(full)  # a later layer may still take the name

    def _tick(self, loc: Location) -> None:
        self.work += 1
        if self.work > 4 * self.max_layers:
            raise LimitExceeded(f"the spec expands to more than {4 * self.max_layers:,} repetitions",
                                hint="lower the repeat counts", location=loc)

    def add_layer(self, kind: Any, body: Any, scope: _Scope, loc: Location) -> Node:
        if not isinstance(kind, str) or kind not in REGISTRY:
            raise self.unknown_kind(kind).at(loc)
        cls = REGISTRY[kind]
        if body is None:
            body = _NO_SETTINGS
        if not isinstance(body, dict):
            raise SpecError(f"the settings of '{kind}' must be a mapping such as {{kernel: 3}}, got {shown(body)}",
                            location=loc)
        name = self.name_for(kind, body, scope, loc)
        try:
            known = self.settled.get((id(body), kind))
            if known is not None and known[0] is body:  # the same settings again (a repeat): checked already
                layer, trainable = known[1], known[2]
            else:
                layer, trainable = self.settings(cls, kind, body, scope)
            inputs = self.inputs_for(body, scope, name)
            function = _function(body)
        except CnnsizeError as exc:
            raise exc.at(loc, name)
        if not cls.min_inputs <= len(inputs) <= cls.max_inputs:
            raise SpecError(f"{kind} takes {cls.min_inputs} to {cls.max_inputs} inputs, got {len(inputs)}",
                            location=loc, layer=name)
        if len(self.nodes) >= self.max_layers:
            raise LimitExceeded(f"the spec expands to more than {self.max_layers:,} layers",
                                hint=_layers_hint(self.max_layers), location=loc)
        shares, ties = self.shared(body, kind, scope, loc, name) if "shares" in body else (None, ())
        discarded = body.get("discarded", False)
        if not isinstance(discarded, bool):
            raise SpecError(f"discarded must be true or false, got {shown(discarded)}", location=loc, layer=name)
        node = Node(name=name, kind=layer, inputs=inputs, loc=loc, trainable=trainable, shares=shares, ties=ties,
                    function=function, discarded=discarded)
        for src in inputs:
            if src != self.first_input and self.names[src].discarded:
                raise SpecError(f"'{name}' reads '{src}', which is discarded (no output needs it)",
                                hint=f"leave out 'discarded' on '{src}', or read another layer", location=loc,
                                layer=name)
        self.nodes.append(node)
        self.names[name] = node
        self.last = name
        return node

    def shared(self, body: dict, kind: str, scope: _Scope, loc: Location, name: str) -> tuple[str | None, tuple]:
        """(whole, ties): ``shares: other`` names the earlier layer of the same kind whose parameters this layer
        uses; ``shares: {weight: other}`` the earlier layer whose weight (or bias) this layer's is, the rest its
        own (tied weights), as ((tensor, layer), ...) naming the layer that counts each."""
        ref = body["shares"]
        if isinstance(ref, dict):
            return None, self.tied(ref, scope, loc, name)
        if not isinstance(ref, str):
            raise SpecError(f"'shares' names an earlier layer, or maps weight/bias to one, got {shown(ref)}",
                            hint="e.g. shares: conv1, or shares: {weight: conv1}", location=loc, layer=name)
        other = self.shared_layer(ref, scope, loc, name)
        if other in self.input_names or self.names[other].kind.kind != kind:
            found = self.input_text(other) if other in self.input_names else f"a {self.names[other].kind.kind}"
            raise SpecError(f"'shares' names '{other}', {found}, not a {kind}",
                            hint="a layer shares the parameters of an earlier layer of its own kind", location=loc,
                            layer=name)
        return self.names[other].shares or other, ()

    def shared_layer(self, ref: Any, scope: _Scope, loc: Location, name: str) -> str:
        if not isinstance(ref, str):
            raise SpecError(f"'shares' names an earlier layer, got {shown(ref)}", location=loc, layer=name)
        try:
            return self.resolve(interpolate(ref, scope.vars), scope)
        except CnnsizeError as exc:
            raise SpecError(exc.message.replace("'from'", "'shares'"), hint=exc.hint, location=loc,
                            layer=name) from None

    def tied(self, refs: dict, scope: _Scope, loc: Location, name: str) -> tuple:
        """``shares: {weight: a, bias: b}``: each tensor named to the layer that counts it (following that
        layer's own sharing, so a chain of ties ends at the one layer that holds the tensor)."""
        try:
            self._check_keys(refs, ("weight", "bias"), "tensor in 'shares'")
        except CnnsizeError as exc:
            raise exc.at(loc, name)
        if not refs:
            raise SpecError("'shares' maps no tensor", hint="e.g. shares: {weight: conv1}", location=loc, layer=name)
        found = []
        for tensor, ref in refs.items():
            other = self.shared_layer(ref, scope, loc, name)
            if other in self.input_names:
                raise SpecError(f"'shares' gives the {tensor} of {self.input_text(other)}, which holds none",
                                hint="name an earlier layer", location=loc, layer=name)
            owner = self.names[other]
            found.append((tensor, owner.shares or dict(owner.ties).get(tensor, other)))
        return tuple(found)

    def settings(self, cls: Any, kind: str, body: dict, scope: _Scope) -> tuple[Any, bool]:
        """The layer kind object and the trainable flag for a layer's settings, checked and converted.

        Settings without expressions do not depend on the scope: they are remembered by the mapping
        itself, so a repeat of 100,000 layers checks each mapping of its body once.
        """
        self._check_keys(body, tuple(cls.params) + COMMON_KEYS, f"key for {kind}", hint=cls.setting_hint)
        values = {}
        for key, param in cls.params.items():
            if key in body:
                key_loc = _key_loc(body, key, self.source)
                try:
                    values[key] = convert(param, body[key], key,
                                          lambda text, loc=key_loc, key=key: self._eval(text, scope, loc, key))
                except CnnsizeError as exc:
                    raise exc.at(key_loc)
            elif param.required:
                example = ", ".join(f"{k}: ..." for k, p in cls.params.items() if p.required)
                raise SpecError(f"{kind} is missing '{key}'", hint=f"write {kind}: {{{example}}}")
        trainable = body.get("trainable", True)
        if isinstance(trainable, list) and trainable and set(trainable) <= {"weight", "bias"}:
            trainable = tuple(sorted(trainable, reverse=True))  # some parameters frozen: the ones that train
        elif not isinstance(trainable, bool):
            raise SpecError(f"trainable must be true, false or a list of the parameters that train ([weight] or "
                            f"[bias]), got {shown(trainable)}")
        layer = self.layer_kind(cls, values)
        if all(_scope_free(param, body[key]) for key, param in cls.params.items() if key in body):
            self.settled[(id(body), kind)] = (body, layer, trainable)  # holding body keeps its id unique
        return layer, trainable

    def layer_kind(self, cls: Any, values: dict) -> Any:
        """The kind object for these settings, one per distinct settings: layer kinds are read-only, and the
        analysis works each (kind, input shapes) out once, so the repeats of a block cost almost nothing."""
        key = (cls, *values.items())
        try:
            found = self.kinds_seen.get(key)
        except TypeError:  # an unhashable setting: no sharing
            return cls(values)
        if found is None or not _same_types(key, found[0]):
            found = self.kinds_seen[key] = (key, cls(values))
        return found[1]

    def name_for(self, kind: str, body: dict, scope: _Scope, loc: Location) -> str:
        raw = body.get("name")
        if raw is not None:
            if not isinstance(raw, (str, int)) or isinstance(raw, bool):
                raise SpecError(f"a layer name must be a string, got {shown(raw)}", location=loc)
            label = self._name(raw, scope.vars, _key_loc(body, "name", self.source))
            index = getattr(scope, "repeat_index", None)
            if "{" in str(raw):
                index = None  # the name already varies with the repetition, e.g. conv3_{i+1}
            name = f"{scope.prefix}{label}" + (f".{index}" if index is not None else "")
            _check_name(name, _key_loc(body, "name", self.source))
            if name in self.weak:
                del self.aliases[name]
                self.weak.discard(name)
            if name in self.names or name == INPUT or name in self.input_names or name in self.aliases:
                first = self.names[name].loc if name in self.names else None
                where = f" (first at line {first.line})" if first else ""
                raise SpecError(f"layer name '{name}' is used twice{where}",
                                hint="give each layer its own name", location=_key_loc(body, "name", self.source))
            return name
        while True:
            scope.counters[kind] = scope.counters.get(kind, 0) + 1
            name = f"{scope.prefix}{kind}{scope.counters[kind]}"
            if name not in self.names and name not in self.aliases:
                return name

    def inputs_for(self, body: dict, scope: _Scope, own: str | None = None) -> list[str]:
        if "from" not in body:
            return [self.last]
        raw = body["from"]
        refs = raw if isinstance(raw, list) else [raw]
        out = []
        for ref in refs:
            if not isinstance(ref, str):
                raise SpecError(f"'from' names earlier layers, got {shown(ref)}")
            ref = interpolate(ref, scope.vars, "from")
            if own is not None and (scope.prefix + ref == own or ref == own):
                raise SpecError(f"'from' names the layer itself ('{ref}'): a cycle",
                                hint="a layer can only read layers defined above it")
            out.append(self.resolve(ref, scope))
        return out

    def resolve(self, ref: str, scope: _Scope | None) -> str:
        """A layer name as written in the spec, looked up from the innermost scope outwards."""
        if ref == self.first_input or (ref in self.input_names and ref in self.names):
            return ref
        s = scope
        while s is not None:
            if ref in s.aliases:
                return s.aliases[ref]
            full = s.prefix + ref
            if full in self.names:
                return full
            if full in self.aliases:
                return self.aliases[full]
            s = s.parent
        known = [n for n in self.names if n not in self.input_names] + list(self.aliases)
        guess = closest(ref, known + list(self.input_names))
        hint = (f"did you mean '{guess}'? " if guess else "") + "'from' can only name layers defined above it"
        if len(self.input_names) > 1:  # several inputs: say which there are
            hint += f" or an input ({', '.join(self.input_names)})"
        raise SpecError(f"'from' names unknown layer '{ref}'", hint=hint)

    # -- helpers -----------------------------------------------------------------------
    def _name(self, raw: Any, variables: dict, loc: Location) -> str:
        """A name as written, with its ``{expr}`` parts filled in."""
        try:
            return interpolate(str(raw), variables)
        except CnnsizeError as exc:
            raise exc.at(loc)

    def _eval(self, text: str, scope: _Scope, loc: Location, setting: str | None = None):
        try:
            return evaluate(text, scope.vars, setting)
        except CnnsizeError as exc:
            raise exc.at(loc)

    def _check_keys(self, mapping: dict, allowed, what: str, hint=None) -> None:
        """Every key is one of ``allowed``; ``hint(key)`` may say what to write instead of another tool's name."""
        for key in mapping:
            if key not in allowed:
                loc = mapping.key_loc(key) if isinstance(mapping, LocDict) else Location(self.source)
                instead = hint(key) if hint is not None and isinstance(key, str) else None
                if instead:
                    raise SpecError(f"unknown {what} '{key}'", hint=f"{instead}; valid: {', '.join(sorted(allowed))}",
                                    location=loc)
                raise unknown_name(what, key, allowed).at(loc)


def _ultralytics_hint(doc: dict):
    """What to write for an Ultralytics model YAML (backbone: and head: lists of [from, repeats, module, args]),
    which is not a spec but translates to one."""
    if not ("backbone" in doc and "head" in doc):
        return None
    return lambda key: ("this is an Ultralytics model YAML, not a spec: size it with 'cnnsize report "
                        "ultralytics:yolov8n.yaml' (a config ultralytics ships) or write its spec with 'cnnsize "
                        "import FILE.yaml'")


_AXES = {1: ("features",), 2: ("channels", "length"), 3: ("channels", "height", "width"),
         4: ("channels", "depth", "height", "width")}


class _InputShape(Mapping):
    """``in`` inside a block: the shape of the block's input, by axis name (``in.channels``, ``in.height``,
    ``in.width``; ``in.length`` for 1-D, ``in.depth`` for 3-D, ``in.features`` once flat), worked out only
    when an expression reads it."""

    def __init__(self, expander: Expander, layer: str):
        self.expander, self.layer = expander, layer
        self._shape: tuple | None = None

    def _fields(self) -> dict:
        if self._shape is None:
            self._shape = self.expander.shape_of(self.layer)
        shape = self._shape
        return dict(zip(_AXES.get(len(shape), ()), shape))

    def __getitem__(self, key):
        return self._fields()[key]

    def __iter__(self):
        return iter(self._fields())

    def __len__(self):
        return len(self._fields())


def _named_in_from(value: Any, depth: int) -> set[str]:
    """Every name written in a 'from' anywhere under a layers list (parts not expanded included)."""
    found: set[str] = set()
    if depth > 60:
        return found
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if key == "from":
            found.update(v for v in (item if isinstance(item, list) else [item]) if isinstance(v, str))
        elif isinstance(item, (dict, list)):
            found |= _named_in_from(item, depth + 1)
    return found


def _layers_hint(limit: int) -> str:
    if limit < MAX_LAYERS:
        return "lower the repeat counts (the command line's limit; the Python API, cnnsize.analyze, " \
               f"sizes up to {MAX_LAYERS:,})"
    return "lower the repeat counts (or raise the limit with max_layers)"


def _check_name(name: str, loc: Location) -> None:
    if len(name) > MAX_NAME:
        raise LimitExceeded(f"the layer name '{shorten(name, 60)}' is {len(name):,} characters long, more than the "
                            f"{MAX_NAME} allowed", hint="use shorter names", location=loc)


_TOP_HINTS = {"input": "add e.g. 'input: [3, 224, 224]' (channels, height, width)",
              "layers": "add a 'layers:' list"}


def _type(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"'{shorten(value, 60)}'" if isinstance(value, str) else shown(value)


def _loc(value: Any, source: str) -> Location:
    return getattr(value, "loc", None) or Location(source)


def _key_loc(mapping: Any, key: str, source: str) -> Location:
    if isinstance(mapping, LocDict):
        return mapping.loc_of(key)
    return Location(source)


def expand(doc: Any, source: str = "<spec>", max_layers: int = MAX_LAYERS, variables: dict | None = None) -> Graph:
    """A loaded spec document as a Graph (raises SpecError with locations).

    ``variables`` override the spec's ``vars`` (e.g. ``{"aux": True}``); later vars follow them.
    """
    try:
        return Expander(source, max_layers, variables).graph(doc)  # reexpand is set where in.channels is read
    except CnnsizeError as exc:
        raise exc.at(Location(source))  # at least the file, where a deeper level knew no line


def _same_types(a: tuple, b: tuple) -> bool:
    """Whether two equal settings keys also agree in types (1 == 1.0 == True in Python)."""
    return all(type(x) is type(y) and (not isinstance(x, tuple) or _same_types(x, y)) for x, y in zip(a, b))


_NO_SETTINGS: dict = {}  # a bare '- relu': one shared, never written empty mapping


def _scope_free(param: Any, value: Any) -> bool:
    """Whether a setting means the same in every scope: no text that could be an expression of variables."""
    if param.type in ("choice", "str") or (param.type == "pads" and value in ("same", "valid")):
        return True
    return not (isinstance(value, str) or (isinstance(value, list) and any(isinstance(v, str) for v in value)))


def _function(body: dict) -> str | None:
    """``function: F.relu``: the source network computes this layer with that function or method, not a module
    (the importer writes it), so tools that hook modules do not see it (cnnsize.passes.conventions)."""
    value = body.get("function")
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 100 or not value.isprintable():
        raise SpecError(f"function must name the torch function or method the layer was, got {shown(value)}",
                        hint="write e.g. function: F.adaptive_avg_pool2d, or leave it out (a module)")
    return value
