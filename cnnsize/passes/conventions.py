"""Counting conventions: what each tool counts for each layer kind, written once.

Every layer kind declares its ``cause`` (macs, normalization, activations, pooling, ...) in its own
file. Here each convention says, per layer kind (or per cause, or ``*`` for the rest), what that tool
counts, as a small arithmetic expression over a layer's facts (``macs``, ``out``, ``in``, ``bias`` ...,
see FACTS). The same table drives ``report --count NAME``, ``cnnsize conventions`` and the table in
docs/conventions.md (``python -m cnnsize.passes.conventions`` prints it), so code and documentation cannot drift.

Each rule was read off the tool's source (the version pinned in the ``zoo`` extra) and is checked by
tests/test_conventions_zoo.py, which runs the tool itself on the module cnnsize builds from every
bundled spec. Figures are at the analysis' batch; ptflops and torchscan measure one image.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import CnnsizeError, SpecError, unknown_name
from ..core.numeric import human_count, prod
from ..core.text import num
from ..engine.result import VIEWS, Column
from ..layers import REGISTRY

# the causes a difference from the default is split into, in the order they are shown; "flops unit" is the
# second operation of each multiply-add that FLOP counts (torch, torchscan-flops) count; "first adds" the add of each
# output's first product, which torchscan-flops leaves out (a multiply and an add each, minus the first add)
CAUSES = ("flops unit", "bias adds", "first adds", "normalization", "activations", "pooling", "elementwise", "softmax",
          "attention", "upsampling", "dropout", "views", "weight layers", "other")

FACTS = {
    "N": "the batch",
    "macs": "the layer's multiply-accumulates (cnnsize's figure), for the batch",
    "out": "elements of the output, for the batch",
    "inp": "elements of the first input, for the batch",
    "params": "the layer's parameters (weights + biases)",
    "bias": "1 if the layer has a bias, else 0",
    "affine": "1 if a normalization has a scale and shift, else 0",
    "inplace": "1 if the layer overwrites its input, else 0",
    "C": "output channels (or features)",
    "Cin": "input channels",
    "positions": "output positions (out / C), for the batch",
    "fanin": "weights per output channel (K·K·C_in/groups for a convolution)",
    "nd": "spatial axes",
    "k": "window size (the product of the kernel) of a pooling layer",
    "K": "torchscan's adaptive window: per axis n/m where m divides n, else n mod m + 1; multiplied",
    "windows": "inputs summed by an average pool over all its windows, padding clipped as thop clips it, for the batch",
    "rows": "positions a layer norm normalizes (inp / the normalized axis), for the batch",
    "pooled": "LRN's padded squares: (C + size − 1)·H·W, for the batch",
    "dropping": "1 if dropout's p > 0, else 0",
    "L": "tokens per sample: the output's positions along every axis but the last (a token layer's L)",
    "D": "the output's last axis (a token layer's features)",
    "heads": "attention heads (mha, swin_attention, maxvit_attention, mvit_attention), else 0",
    "axis": "the size of the input axis a softmax normalizes",
}


@dataclass(frozen=True)
class Convention:
    """One tool's way of counting: its headline figure per layer, by layer kind, cause or ``*`` (the rest)."""

    name: str
    tool: str  # what the figure is in the tool's own terms
    unit: str
    # a rule is an expression, or for a composite layer (Swin's attention) a dict of expressions by cause, its parts
    # (the first holds the layer's own multiply-adds), so ``cnnsize conventions`` splits its difference by cause
    rules: dict[str, str | dict[str, str]]
    per_layer: bool = True  # the tool reports per layer (module)
    notes: tuple[str, ...] = field(default=())
    # a layer the source network computes with a function (the spec's ``function``) counts what ``functions`` says
    # for that function ("F.relu()"); else, for a tool that hooks modules, nothing
    hooks: bool = False
    functions: dict[str, str] = field(default_factory=dict)
    # the tool hooks modules by exact type: a function a subclass' forward calls ("F.conv3d in nn.Conv3d") counts
    # as a function; tools that hook subclasses count such a layer as the module
    exact_types: bool = False
    # what the tool counts otherwise for a network in training mode (fvcore's batch norm: its layer-norm handle);
    # the tools not listed count the same in both modes, or put the network in eval themselves (ptflops, torchscan)
    train_rules: dict[str, str | dict[str, str]] = field(default_factory=dict)
    # the tool traces the forward and drops what no output needs (torch.jit's dead code elimination: fvcore): a
    # layer only ``discarded`` values need counts nothing
    drops_discarded: bool = False
    # the convention is another's rules in another unit (ultralytics: thop's MACs as FLOPs, 2 each)
    like: str | None = None

    def rule(self, own: dict, variant: str | None, cause: str, train: bool = False) -> str | dict[str, str]:
        """The rule for a layer: the kind's own (``own``, its ``count_rules``: this convention's name, with
        ``.VARIANT`` for a variant of its settings, `` train`` for training mode), else its cause's, else ``*``."""
        for key in (f"{self.name}.{variant}" if variant else None, self.name):
            if key is not None and train and f"{key} train" in own:
                return own[f"{key} train"]
            if key is not None and key in own:
                return own[key]
        for key in (cause, "*"):
            if train and key in self.train_rules:
                return self.train_rules[key]
            if key in self.rules:
                return self.rules[key]
        return "0"


# what the module-hook tools count for a layer computed by a function (no module hook sees it): ptflops patches
# these functions of torch.nn.functional and these tensor operations; thop counts these products in a
# TorchFunctionMode outside its module rules; torchinfo and torchscan count no function at all
_PTFLOPS_FUNCTIONS = {
    **dict.fromkeys(("F.relu()", "F.prelu()", "F.elu()", "F.relu6()", "F.gelu()", "F.silu()", "F.softmax()"), "inp"),
    **{f"F.{p}_pool{d}d()": "inp" for p in ("avg", "max", "adaptive_avg", "adaptive_max") for d in (1, 2, 3)},
    "F.interpolate()": "out", "F.upsample()": "out",
    **dict.fromkeys(("torch.matmul()", "torch.mm()", "torch.bmm()", ".matmul()", ".mm()", ".bmm()"), "macs"),
    **dict.fromkeys(("torch.add()", "torch.mul()", ".add()", ".mul()"), "out")}
_THOP_FUNCTIONS = {
    **{f"{m}()": "macs" for m in ("torch.matmul", ".matmul", "operator.matmul", "torch.bmm", ".bmm", "F.linear",
                                  "F.scaled_dot_product_attention", "torch.einsum")}}
_TORCHSCAN_POOL = ("torchscan's flops and macs read a pooling window given as one number (nn.MaxPool2d(3); a spec's "
                   "kernel: 3) as that many elements, not 3×3 (the kscan fact); a window given as a tuple (kernel: "
                   "[3, 3]) as its product. cnnsize's executor and importer keep the form the network has.")
_TORCHSCAN_SWIN = ("torchscan measures leaf modules only: Swin's window attention (whose qkv and proj never run as "
                   "modules) counts 0, but for v2's position-bias MLP (two Linears and an in-place ReLU, once per "
                   "call).")
CONVENTIONS: dict[str, Convention] = {c.name: c for c in [
    Convention("cnnsize", "cnnsize's MACs: one multiply-add per weight use; nothing else", "MACs", {"*": "macs"}),
    Convention("torch", "torch.utils.flop_counter.FlopCounterMode's total (matmul-like ops, 2 per multiply-add)",
               "FLOPs", {"*": "2*macs"}),
    Convention("torchinfo", "torchinfo.summary(...).total_mult_adds: parameters × output positions for convolutions, "
               "parameters × batch for every other module with parameters", "mult-adds",
               {"*": "params*N"}, hooks=True,
               notes=("Counts leaf modules only: a layer whose name is a prefix of another's ('a' and 'a.b') "
                      "holds a submodule in torch and is left out.",
                      "nn.Linear on tokens: its parameters once per sample, not per token.",
                      "Swin's window attention calls F.linear with its qkv and proj weights, so those submodules "
                      "never run and the attention module (not a leaf) counts 0; v2's position-bias MLP runs as "
                      "modules on a (1, 2w−1, 2w−1, 2) table, so its Linears count their parameters once per call, "
                      "whatever the batch.",
                      "Only parameters named weight or bias count: MaxViT's relative position table, MViT's relative "
                      "position tables, and MViT's position embeddings and class token (torchvision's "
                      "PositionalEncoding) count nothing; a fused attention counts the Linear, Conv3d and LayerNorm "
                      "modules it holds.")),
    Convention("fvcore", "fvcore.nn.FlopCountAnalysis(...).total(): one per multiply-add, plus its norm, "
               "adaptive average pool and upsample handles (2D only)", "flops",
               {},
               functions={".mean()": "0", "torch.mean()": "0"},
               drops_discarded=True,
               notes=("In training mode (train=True) a batch norm counts as fvcore's layer-norm handle, "
                      "inp·(4 + affine).",
                      "nn.MultiheadAttention: the four projections only; the attention products run inside "
                      "aten::scaled_dot_product_attention, which fvcore has no handle for (so sdpa counts 0).",
                      "Swin's window attention: its two linear and two matmul ops, cnnsize's MACs (v2's "
                      "position-bias MLP included); the softmax, bias and mask adds count nothing.",
                      "An einsum (MaxViT's QKᵀ and attention·V, MViT v2's h and w relative positions) is read from the "
                      "text of numpy's einsum_path, which prints its cost (2 per multiply-add) to 4 significant "
                      "digits: fvcore counts that rounded figure, halved (fvcore_einsums, fvcore_rel_einsums).",)),
    Convention("ptflops", "ptflops.get_model_complexity_info(..., backend='pytorch')'s MACs, an integer: module "
               "hooks by exact type plus patched functionals (which modules call again)", "MACs",
               {"softmax": "inp"},
               per_layer=False, hooks=True, functions=_PTFLOPS_FUNCTIONS, exact_types=True,
               notes=("The pytorch backend hooks modules by exact type (a subclass of nn.Linear counts nothing "
                      "unless passed in custom_modules_hooks) and also patches torch.nn.functional: nn.ReLU, "
                      "nn.GELU and the pooling and upsampling modules call the patched functions, so they are "
                      "counted twice; nn.LayerNorm is counted once per element (its 'affine' attribute is "
                      "elementwise_affine, which ptflops does not read).",
                      "Of the arithmetic with a constant it counts only x.add(c) and x.mul(c) (and torch.add, "
                      "torch.mul), the methods it patches, one per element and not in place; x + c, x - c, c - x, "
                      "x / c, x ** c, x - y, x / y, means and slices count nothing.",
                      "Swin's window attention: ptflops leaves F.linear unpatched (commented out in its source), so "
                      "the QKV and output projections count nothing; it patches Tensor.matmul but not the @ "
                      "operator, so v2's QKᵀ counts nothing while attention·V counts; F.softmax counts its input; "
                      "v2's position-bias MLP counts as modules (a bias add per row, nn.ReLU twice), once per call.",
                      "torch.einsum is not patched (MaxViT's QKᵀ and attention·V, MViT v2's h and w relative positions "
                      "count 0) but torch.matmul is; F.softmax is (MaxViT's) but the Tensor.softmax method is not "
                      "(MViT's); nn.MaxPool3d (MViT's skip pooling) counts its input twice, hook and patched "
                      "F.max_pool3d.",)),
    Convention("ptflops-aten", "ptflops.get_model_complexity_info(..., backend='aten')'s MACs: aten convolution "
               "and matrix products, with bias adds", "MACs",
               {},
               per_layer=False,
               notes=("Swin's window attention: the linear ops add their biases on every token of the input padded "
                      "to whole windows (v2 zeroes k's third of the QKV bias and still adds it).",)),
    Convention("thop", "thop.profile(...)'s MACs (ultralytics-thop): multiply-adds without bias, norms, "
               "average pooling and softmax", "MACs",
               {"softmax": "inp/axis*(3*axis - 1)"}, per_layer=False, hooks=True,
               functions=_THOP_FUNCTIONS,
               notes=("Swin's window attention has no module rule, so thop's function mode counts the F.linear and "
                      "matmul products inside it: cnnsize's MACs.",)),
    Convention("ultralytics", "ultralytics' model.info() GFLOPs (utils.torch_utils.get_flops) × 1e9: thop's MACs "
               "× 2, profiled by thop on one-stride-tall proxy images and extrapolated to the size (exactly, for "
               "every YOLO config: the counts are linear in the stride cells, or quadratic with attention)", "FLOPs",
               {}, per_layer=False, hooks=True, like="thop",
               notes=("ultralytics' YAML comments and model cards quote it at 640×640 (yolov8n: 8.7 GFLOPs); its "
                      "difference from FlopCounterMode's figure is thop's: the batch norms and the softmaxes of "
                      "modules (docs/import.md gives it per YOLO config).",)),
    Convention("torchscan-flops", "torchscan.crawl_module(...)['totals']['module_flops']: a multiply and an add "
               "each, minus the first add", "FLOPs",
               {"dropout": "dropping*inp"}, hooks=True,
               notes=(_TORCHSCAN_SWIN, _TORCHSCAN_POOL,
                      "torchscan's pooling formulas (all three figures) fail on a window given as a list, as "
                      "torchvision's MViT gives its skip pooling's nn.MaxPool3d (and cnnsize's build, as torchvision "
                      "does): the value is unknown and left out of the totals, so mvit_pool counts nothing. A fused "
                      "attention counts the Linear, Conv3d and LayerNorm modules it holds, not its matrix products.")),
    Convention("torchscan-macs", "torchscan.crawl_module(...)['totals']['macs']", "MACs",
               {}, hooks=True,
               notes=(_TORCHSCAN_SWIN, _TORCHSCAN_POOL)),
    Convention("torchscan-dmas", "torchscan.crawl_module(...)['totals']['dmas']: memory accesses, in elements",
               "element accesses",
               {"dropout": "inp + 1 + (1 - inplace)*out"},
               hooks=True, notes=(_TORCHSCAN_SWIN,)),
]}
DEFAULT = "cnnsize"


def get(name: str) -> Convention:
    if name not in CONVENTIONS:
        raise unknown_name("counting convention", name, CONVENTIONS)
    return CONVENTIONS[name]


def all_facts() -> dict[str, str]:
    """FACTS and every layer kind's own facts (``count_fact_names``, filled by its ``count_facts``)."""

    found = dict(FACTS)
    for cls in REGISTRY.values():
        found.update({k: f"{v} ({cls.kind})" for k, v in cls.count_fact_names.items()})
    return found


# -- the rule language: + − × / and parentheses over FACTS, parsed with ast (never eval) ---------------------
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: _exact_div(a, b)}
_PARSED: dict[str, ast.AST] = {}


def _exact_div(a, b):
    if isinstance(a, int) and isinstance(b, int):
        q, r = divmod(a, b)
        if r:
            raise CnnsizeError(f"internal: a counting rule divides {a} by {b} unevenly")
        return q
    return a / b


def _parse(expr: str) -> ast.AST:
    tree = _PARSED.get(expr)
    if tree is None:
        tree = ast.parse(expr, mode="eval").body
        known = all_facts()
        for node in ast.walk(tree):
            ok = isinstance(node, (ast.BinOp, ast.Name, ast.Constant, ast.Load, *_OPS))
            if not ok or (isinstance(node, ast.Name) and node.id not in known) or \
                    (isinstance(node, ast.Constant) and not isinstance(node.value, int)):
                raise CnnsizeError(f"internal: counting rule '{expr}' uses {ast.dump(node)}")
        _PARSED[expr] = tree
    return tree


def evaluate(expr: str, facts: dict) -> Any:
    """The value of a rule for one layer's facts."""

    def walk(node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return facts[node.id]
        return _OPS[type(node.op)](walk(node.left), walk(node.right))

    return walk(_parse(expr))


# -- a layer's facts -------------------------------------------------------------------------------------------
def layer_facts(kind, ins: list[tuple], out: tuple, macs: Any, weights: Any, biases: Any, batch: Any) -> dict:
    """Everything a rule may read about one layer (see FACTS), for the batch. The facts that depend on what the kind
    is (a pooling window, a softmax's axis) come from the kind (count_facts)."""
    x = ins[0] if ins else out
    n_out, n_in = prod(out) * batch, prod(x) * batch
    facts = {"N": batch, "macs": macs, "out": n_out, "inp": n_in, "params": weights + biases,
             "bias": int(bool(getattr(kind, "bias", False))),
             "affine": int(bool(getattr(kind, "affine", False))), "inplace": int(bool(getattr(kind, "inplace", False))),
             "C": out[0], "Cin": x[0], "positions": n_out // out[0] if out[0] else 0,
             "fanin": weights // out[0] if weights and out[0] else 0, "nd": len(out) - 1,
             "k": 0, "K": 0, "windows": 0, "rows": n_in // x[0] if x[0] else 0, "pooled": 0,
             "dropping": int(getattr(kind, "p", 0) > 0), "L": prod(out[:-1]), "D": out[-1],
             "heads": getattr(kind, "heads", 0), "axis": 0}
    if kind.features_axis:  # features on another axis (the last, of tokens): weights per output feature
        facts["fanin"] = weights // out[kind.features_axis] if weights and out[kind.features_axis] else 0
    facts.update(kind.count_facts(ins, out, batch))  # the kind's own facts (count_fact_names) and its values of FACTS
    return facts


def rule_for(conv: Convention, kind, out: tuple, function: str | None = None,
             train: bool = False) -> str | dict[str, str]:
    if not kind.called:  # a module the forward never runs: no tool's hook, trace or mode sees it
        return "0"
    call, _, inside = (function or "").partition(" in ")
    if function is not None and (not inside or conv.exact_types) and (f"{call}()" in conv.functions or conv.hooks):
        return conv.functions.get(f"{call}()", "0")  # no module the tool sees: what it counts for the function
    own = type(kind).rules_for_tools()
    variant = kind.count_variant(out)
    if variant and "." in variant:  # upsample's nearest.2 falls back to nearest, then to the kind's rule
        for key in (f"{conv.name}.{variant}", f"{conv.name}.{variant.split('.')[0]}"):
            if key in own:
                return own[key]
        variant = None
    return conv.rule(own, variant, getattr(kind, "cause", "other"), train)


def checked_kinds() -> frozenset[str]:
    """The kinds whose rules tests/test_conventions_zoo.py has checked against every tool, as each kind declares
    (``tools_checked`` in its own class). A kind not checked is refused by the tools' conventions, with a message:
    a tool's figure is never guessed. ``torch`` (2 × cnnsize's MACs, FlopCounterMode) covers every kind."""
    return frozenset(name for name, cls in REGISTRY.items() if cls.checked_by_tools())


def _geometry(analysis) -> dict:
    """(weights, biases) of each layer that ``shares`` parameters, whole or some (``shares: {weight: a}``), by its
    name. Such a layer reports 0 of what it shares (each tensor counts once, at its owner), but every tool sees
    the module's real weights on each call: a module called again (torchinfo, ptflops, thop count every call) or
    one holding tied tensors (torchscan reads each module's weight shape)."""
    graph = getattr(analysis, "graph", None)
    if graph is None:
        return {}
    rows = {r.name: r for r in analysis.layers}
    found = {}
    for n in graph.nodes:
        if n.shares is not None and n.shares in rows:
            found[n.name] = (rows[n.shares].weights, rows[n.shares].biases)
        elif n.ties and n.name in rows:
            own = dict(n.ties)
            weights, biases = (rows[own[t]] if t in own else rows[n.name] for t in ("weight", "bias"))
            found[n.name] = (weights.weights, biases.biases)
    return found


def _discarded(analysis) -> set[str]:
    """The layers only ``discarded`` values need: what a trace keeps no more of than the outputs need."""
    graph = getattr(analysis, "graph", None)
    if graph is None or not any(n.discarded for n in graph.nodes):
        return set()
    readers = graph.consumers()
    needed: set[str] = set()
    for node in reversed(graph.nodes):  # the outputs (the last layer and every layer nothing reads, less the
        output = node is graph.nodes[-1] or not readers[node.name]  # discarded ones), and what they read
        if not node.discarded and (output or node.name in needed):
            needed.add(node.name)
            needed.update(node.inputs)
    return {n.name for n in graph.nodes if n.name not in needed}


def counted(analysis, name: str, split: bool = False, train: bool = False) -> list:
    """Each row's figure under a convention (the input row: 0); with ``split``, a rule in parts gives its parts;
    ``train``: as the tool counts the network in training mode (else in eval mode, as cnnsize sizes it)."""
    conv = get(name)
    if conv.like is not None:  # another convention's figures in this one's unit
        factor = unit_factor(conv) // unit_factor(get(conv.like))
        return [{c: factor * x for c, x in v.items()} if isinstance(v, dict) else factor * v
                for v in counted(analysis, conv.like, split, train)]
    if analysis.symbolic or not isinstance(analysis.batch, int):
        raise SpecError(f"the {name} convention counts a network of numeric sizes (the tools run it)",
                        hint="give a numeric input shape, e.g. --input 3x224x224")
    shapes = {r.name: r.output_shape for r in analysis.layers}
    geometry = _geometry(analysis)
    dead = _discarded(analysis) if conv.drops_discarded else set()
    out = [0]
    for r in analysis.layers[1:]:
        if conv.name == DEFAULT:
            out.append(r.macs)
            continue
        if r.name in dead:  # a value the forward discards, which the tool's trace drops
            out.append(0)
            continue
        if conv.name != "torch" and r.kind.measured:
            raise SpecError(f"the {name} convention has no rule for '{r.kind.kind}' layers ({r.name}, {r.kind.op}): "
                            f"it holds only what torch's FlopCounterMode measured, not the module {name} would see",
                            hint="--count torch (or the default) covers opaque layers; import without opaque mode "
                                 "to see why the operation is not representable")
        if conv.name != "torch" and not type(r.kind).checked_by_tools() and conv.name not in r.kind.rules_for_tools():
            raise SpecError(f"the {name} convention has no rule yet for '{r.kind.kind}' layers ({r.name}): "
                            f"how {name} counts them has not been checked against the tool",
                            hint="cnnsize's own count (the default) and --count torch cover every kind")
        ins = [shapes[s] for s in r.inputs]
        # a layer sharing another's parameters has their geometry (it reports 0)
        weights, biases = geometry.get(r.name, (r.weights, r.biases))
        facts = layer_facts(r.kind, ins, r.output_shape, r.macs, weights, biases, analysis.batch)
        out.append(rule_value(rule_for(conv, r.kind, r.output_shape, r.function, train), facts))
    return [sum(v.values(), 0) if isinstance(v, dict) else v for v in out] if not split else out


def rule_value(rule: str | dict[str, str], facts: dict) -> Any:
    """A rule's value, or for a rule in parts its value per cause."""
    return evaluate(rule, facts) if isinstance(rule, str) else {c: evaluate(e, facts) for c, e in rule.items()}


def apply(analysis, name: str, train: bool = False):
    """Fill ``counted`` in every row and the totals, and mark the analysis with the convention's name; ``train``:
    the tool's figures for the network in training mode."""
    values = counted(analysis, name, train=train)
    analysis.count_mode = "train" if train else "eval"
    for row, value in zip(analysis.layers, values):
        row.add("counted", value)
    t = analysis.totals
    t["counted"] = total = sum(values, 0)
    analysis.count = name
    analysis.add_columns([Column("counted", f"Counted ({name})")],
                         f"Counted as {name} (the network in {analysis.count_mode} mode): {num(total)} "
                         f"{get(name).unit} ({human_count(total)}); cnnsize's MACs: {num(t['macs'])}.")
    return analysis


# -- differences by cause ---------------------------------------------------------------------------------------
def unit_factor(conv: Convention) -> int:
    """How many of the convention's units one multiply-add is (2 for FLOP counts of both operations)."""
    return 2 if conv.unit == "FLOPs" else 1


def differences(analysis, name: str, train: bool = False) -> dict[str, Any]:
    """How the convention's total differs from cnnsize's MACs, by cause (nonzero causes only, in CAUSES order)."""
    conv = get(name)
    values = counted(analysis, name, split=True, train=train)
    found: dict[str, Any] = {}
    for r, value in zip(analysis.layers[1:], values[1:]):
        if not isinstance(value, dict):
            if value == r.macs:
                continue
            cause = getattr(r.kind, "cause", "other")
            if cause == "macs":  # what a weight layer's figure adds to its multiply-adds
                cause = "weight layers" if conv.unit == "element accesses" else "bias adds"
            value = {cause: value}
        # a rule in parts: its first part stands for the layer's multiply-adds, of which a FLOP count's second
        # operation is "flops unit", whatever the layer's cause
        unit = (unit_factor(conv) - 1) * r.macs
        parts = {"flops unit": unit, **value}
        first = next(iter(value))
        parts[first] -= r.macs + unit
        for cause, amount in parts.items():
            if amount:
                found[cause] = found.get(cause, 0) + amount
    return {c: found[c] for c in CAUSES if c in found}


def records(analysis, train: bool = False) -> list[dict]:
    """One record per convention: ``count``, ``unit``, ``total``, ``difference`` (total − cnnsize's MACs) and
    ``differences`` (that difference by cause), for ``cnnsize conventions`` and ``Analysis.conventions()``."""
    out: list[dict] = []
    for name, conv in CONVENTIONS.items():
        try:
            total = sum(counted(analysis, name, train=train), 0)
        except SpecError as exc:
            if "has no rule" not in exc.message:
                raise
            # a kind this tool's rules do not cover yet: said, not guessed
            out.append({"count": name, "unit": conv.unit, "total": None, "difference": None, "differences": {},
                        "mode": "train" if train else "eval", "note": exc.message})
            continue
        out.append({"count": name, "unit": conv.unit, "total": total, "difference": total - analysis.totals["macs"],
                    "differences": differences(analysis, name, train), "mode": "train" if train else "eval"})
    return out


def _variant_text(key: str) -> str:
    """'upsample.nearest.2' -> 'nearest 2D', 'global_avgpool.2' -> '2D'."""
    return " ".join(f"{p}D" if p.isdigit() else p for p in key.split(".")[1:])


def _rule_text(rule: str | dict[str, str]) -> str:
    """A rule in parts as one sum, each part named by its cause: 'macs (attention) + scores (softmax)'."""
    return rule if isinstance(rule, str) else " + ".join(f"{e} ({c})" for c, e in rule.items())


def rules_table() -> str:
    """docs/conventions.md's table: per layer kind, what each convention counts (generated from CONVENTIONS)."""

    names = [n for n in CONVENTIONS if n != DEFAULT and CONVENTIONS[n].like is None]  # the others say whose
    lines = ["| kind (cause) | " + " | ".join(f"`{n}`" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for kind in sorted(REGISTRY):
        cls = REGISTRY[kind]
        cells = []
        for n in names:
            rules = cls.rules_for_tools()
            own = sorted(k for k in rules if k.split(".")[0] == n and k != n)
            text = _rule_text(CONVENTIONS[n].rule(rules, None, cls.cause))
            cell = text if not own else "; ".join([*(f"{_variant_text(k)}: {_rule_text(rules[k])}" for k in own),
                                                   f"else {text}"])
            if not cls.checked_by_tools() and n not in (DEFAULT, "torch") and not own and n not in rules:
                cell = "refused: not checked yet"
            cells.append(cell.replace("*", "·"))
        lines.append(f"| `{kind}` ({cls.cause}) | " + " | ".join(cells) + " |")
    functions = ["A layer the source network computes with a function or method (the spec's `function`, which "
                 "`cnnsize import` writes) is one no module hook sees: "
                 + "; ".join(f"`{c.name}` counts " + (", ".join(f"{k[:-2]}: {v}" for k, v in c.functions.items())
                                                      + ", any other: 0" if c.functions else "nothing")
                             for c in CONVENTIONS.values() if c.hooks)
                 + ". The other conventions count it as the module it stands for. A call that a module "
                 "subclass' forward makes (`function: F.conv3d in nn.Conv3d`: torchvision's Conv3DSimple, which "
                 "the tracer enters) counts as that module for the tools that hook subclasses, and as the function "
                 "for " + ", ".join(f"`{c.name}`" for c in CONVENTIONS.values() if c.exact_types)
                 + ", which matches module types exactly.", ""]
    facts = [f"- `{k}`: {v}" for k, v in all_facts().items()]
    tools = [f"- `{c.name}` ({c.unit}): {c.tool}." + (f" Its rules are `{c.like}`'s." if c.like else "")
             + "".join(" " + n for n in c.notes) for c in CONVENTIONS.values()]
    parts = ["\n".join(lines), "", *functions, "Facts a rule reads:", "", *facts, "", "Conventions:", "", *tools]
    return "\n".join(parts) + "\n"


def frame(analysis, mode: str):
    """Every convention's total and its difference from cnnsize's MACs by cause, as a pandas DataFrame indexed by
    convention, for the network in ``mode`` (``Analysis.conventions()``)."""
    import pandas as pd

    rows = [{"count": r["count"], "unit": r["unit"], "total": r["total"], "difference": r["difference"],
             **r["differences"]} for r in records(analysis, train=mode == "train")]
    return pd.DataFrame(rows).set_index("count").fillna(0)


VIEWS["conventions"] = frame


if __name__ == "__main__":
    print(rules_table(), end="")
