"""The house's contract: who may import whom inside cnnsize, checked on every import, deferred ones included.

``python -m tools.check_layers`` exits 1 naming each breach; ``.ci/run`` and tests/test_layers.py run it. The rules:

- **Layers.** Each module belongs to one layer of ``LAYERS`` (lowest first) and imports only modules of its own
  layer or of layers below it: the result model never reaches a pass or a renderer, the importers never reach the
  executor, nothing but the command line and the front door reaches the pipelines.
- **No circle.** The graph of module imports (top-level and inside functions alike) has no cycle.
- **No front door inside.** No module imports ``cnnsize`` itself (the package's ``__init__``), which would load
  the whole API from below; modules import what they use from where it lives.
- **Deferred imports are for heavy packages.** An import inside a function that names a cnnsize module is
  allowed only where that module pulls in a heavy third-party package at its top (torch, onnx, pandas, sympy,
  matplotlib; ``HEAVY``) or from the command line and the front door, which load each command's code on first use
  so that start-up stays fast.

Imports under ``if TYPE_CHECKING:`` are for the type checker: they may reach a layer above (an annotation names
what holds the module), but they count for circles, so that no two modules need each other even to be typed.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "cnnsize"

# lowest first; a module is in the first layer one of whose prefixes it starts with
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("cnnsize.core", "cnnsize.calc")),
    ("kinds", ("cnnsize.layers",)),
    ("spec", ("cnnsize.spec",)),
    ("engine", ("cnnsize.engine",)),
    ("passes", ("cnnsize.passes",)),
    ("render", ("cnnsize.render",)),
    ("importers", ("cnnsize.importers",)),
    ("executor", ("cnnsize.executor",)),
    ("pipelines", ("cnnsize.api", "cnnsize.bundled")),
    ("front door", ("cnnsize.cli", "cnnsize.__main__", "cnnsize")),
]
HEAVY = ("torch", "onnx", "onnxruntime", "pandas", "sympy", "matplotlib", "numpy", "torchvision", "igraph")
# where loading on first use is the point, so that a command pays only for what it uses: each command's code
# (cnnsize.cli.*), the package's lazy attributes (cnnsize), the pipelines (cnnsize.api: an importer, the executor or
# a pass only when asked for) and the passes' dispatcher (cnnsize.passes: each pass when asked for)
LAZY_ALLOWED = ("cnnsize.cli", "cnnsize", "cnnsize.api", "cnnsize.passes")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    deferred: bool
    typing: bool = False  # under ``if TYPE_CHECKING:``: counted for circles only


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise SystemExit(f"{module}: in no layer of tools/check_layers.py's LAYERS; add it to one")


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _module_level(tree: ast.Module) -> set[int]:
    """The statements run when the module is imported: its body, and inside its try, if and with blocks (not
    inside functions or classes)."""
    found: set[int] = set()
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        found.add(id(node))
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            stack += [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
            stack += [s for h in getattr(node, "handlers", []) for s in h.body]
    return found


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The cnnsize modules an import statement loads (a name imported from a package may be a submodule)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]
    out = []
    for name in names:
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in known and name != module:
            out.append(name)
    return out


def imports(root: Path = ROOT) -> tuple[dict[str, Path], list[Edge], dict[str, bool]]:
    """Every module, every import edge between them, and which modules import a heavy package at their top."""
    files = {module_name(p, root): p for p in sorted((root / PACKAGE).rglob("*.py"))}
    known = set(files)
    edges: list[Edge] = []
    heavy: dict[str, bool] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skip = _type_checking_lines(tree)
        top = _module_level(tree)
        heavy[module] = False
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if node.lineno in skip:
                edges += [Edge(module, target, node.lineno, False, True)
                          for target in _targets(node, module, path.name == "__init__.py", known)]
                continue
            deferred = id(node) not in top
            if not deferred and isinstance(node, ast.Import):
                heavy[module] |= any(a.name.split(".")[0] in HEAVY for a in node.names)
            if not deferred and isinstance(node, ast.ImportFrom) and not node.level:
                heavy[module] |= (node.module or "").split(".")[0] in HEAVY
            for target in _targets(node, module, path.name == "__init__.py", known):
                edges.append(Edge(module, target, node.lineno, deferred))
    changed = True
    while changed:  # a module that loads a heavy module when imported is heavy too
        changed = False
        for e in edges:
            if not e.deferred and not e.typing and heavy.get(e.target) and not heavy[e.source]:
                heavy[e.source] = changed = True
    return files, edges, heavy


def cycles(edges: list[Edge]) -> list[list[str]]:
    """The import graph's strongly connected components of more than one module (Tarjan's, iterative)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def breaches(root: Path = ROOT) -> list[str]:
    files, edges, heavy = imports(root)
    out = []
    for e in (e for e in edges if not e.typing):
        where = f"{files[e.source].relative_to(root)}:{e.line}"
        if e.target == PACKAGE and e.source != f"{PACKAGE}.__main__" and not e.source.startswith(f"{PACKAGE}.cli"):
            out.append(f"{where}: {e.source} imports the front door '{PACKAGE}'; import from where the name lives")
            continue
        if layer_of(e.target) > layer_of(e.source):
            out.append(f"{where}: {e.source} ({LAYERS[layer_of(e.source)][0]}) imports {e.target} "
                       f"({LAYERS[layer_of(e.target)][0]}), a layer above it")
        lazy_ok = e.source in LAZY_ALLOWED or e.source.startswith("cnnsize.cli.")
        if e.deferred and not heavy.get(e.target) and not lazy_ok:
            out.append(f"{where}: {e.source} imports {e.target} inside a function; import it at the top "
                       f"(deferred imports are for modules that load {', '.join(HEAVY[:6])}, ...)")
    for component in cycles(edges):
        out.append("import circle: " + " -> ".join(component))
    return out


def main() -> int:
    found = breaches()
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} breach(es) of the layers' contract (tools/check_layers.py)", file=sys.stderr)
        return 1
    print("the layers' contract holds: no circle, no import upward, deferred imports only for heavy packages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
