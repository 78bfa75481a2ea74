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
from ..layers.pool import adaptive_windows

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

    def rule(self, kind: str, variant: str | None, cause: str, train: bool = False) -> str | dict[str, str]:
        for key in (f"{kind}.{variant}" if variant else None, kind, cause, "*"):
            if train and key is not None and key in self.train_rules:
                return self.train_rules[key]
            if key is not None and key in self.rules:
                return self.rules[key]
        return "0"


_CONV = ("conv", "deconv", "locally_connected", "fc")
# what the module-hook tools count for a layer computed by a function (no module hook sees it): ptflops patches
# these functions of torch.nn.functional and these tensor operations; thop counts these products in a
# TorchFunctionMode outside its module rules; torchinfo and torchscan count no function at all
_PTFLOPS_FUNCTIONS = {
    **{f"F.{f}()": "inp" for f in ("relu", "prelu", "elu", "relu6", "gelu", "silu", "softmax")},
    **{f"F.{p}_pool{d}d()": "inp" for p in ("avg", "max", "adaptive_avg", "adaptive_max") for d in (1, 2, 3)},
    "F.interpolate()": "out", "F.upsample()": "out",
    **{f"{m}{f}()": "macs" for m in ("torch.", ".") for f in ("matmul", "mm", "bmm")},
    **{f"{m}{f}()": "out" for m in ("torch.", ".") for f in ("add", "mul")}}
_THOP_FUNCTIONS = {
    **{f"{m}()": "macs" for m in ("torch.matmul", ".matmul", "operator.matmul", "torch.bmm", ".bmm", "F.linear",
                                  "F.scaled_dot_product_attention")}}
# torchscan-flops on a weight layer: out·(2·fanin − 1 + bias), in its parts (the first holds the multiply-adds)
_SCAN_WEIGHTS = {"weight layers": "2*out*fanin", "bias adds": "bias*out", "first adds": "0 - out"}
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
               {"conv": "params*positions", "deconv": "params*positions", "patch_embed": "params*N*L",
                "maxvit_attention": "4*N*D*(D + 1)",
                "mvit_attention": "N*(3*E*D + 4*D + D*D + 2*hd*pools) + pool_macs",
                "mvit_pos_embed": "0",
                "mha": {"attention": "0"}, "*": "params*N",
                "swin_attention": {"attention": "0"},
                "swin_attention.v2": {"attention": "hidden*(3 + heads)"},
                "linear": {"weight layers": "(params - bias*D)*N", "bias adds": "bias*D*N"}}, hooks=True,
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
               {**dict.fromkeys(_CONV, "macs"), "bn": "inp*(1 + affine)", "layernorm": "inp*(4 + affine)",
                "maxvit_attention": "4*out*D + fvcore_einsums",
                "mvit_attention": "macs - rel_einsums + fvcore_rel_einsums + 5*norm_in",
                "global_avgpool.2": "inp", "adaptive_avgpool.2": "inp", "upsample.nearest.2": "out",
                "upsample.bilinear.2": "4*out", "groupnorm": "inp*(4 + affine)", "instancenorm": "inp*(4 + affine)",
                "linear": "macs", "patch_embed": "macs", "matmul": "macs", "mha": {"attention": "4*out*D"},
                "swin_attention": {"attention": "macs"}},
               functions={".mean()": "0", "torch.mean()": "0"}, train_rules={"bn": "inp*(4 + affine)"},
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
               {"conv": "macs + bias*out", "deconv": "macs + bias*out", "fc": "macs + bias*out",
                "maxvit_attention": "4*out*D + 4*out + N*heads*L*P",
                "mvit_attention": "macs - rel_einsums + 3*inp*D/E + out + norm_in",
                "mvit_pool": "2*inp - 2*N*D",
                "locally_connected": "macs", "bn": "inp*(1 + affine)", "layernorm": "inp",
                "relu": "2*inp", "relu6": "out", "leaky_relu": "out", "gelu": "2*inp", "silu": "inp", "softmax": "inp",
                "maxpool": "2*inp", "avgpool": "2*inp", "global_avgpool": "2*inp", "adaptive_avgpool": "2*inp",
                "global_maxpool": "2*inp", "adaptive_maxpool": "2*inp", "upsample": "2*out",
                "lrn": "3*inp + pooled", "groupnorm": "inp*(1 + affine)", "instancenorm": "inp*(1 + affine)",
                "elu": "2*inp", "prelu": "2*inp", "log_softmax": "0", "linear": "macs + bias*out",
                "patch_embed": "macs + bias*out", "matmul": "macs", "mha": "macs + (2 + 3*bias)*out + N*heads*L*L",
                "channel_dropout": "0", "stochastic_depth": "0",
                "scalar.add": "(1 - inplace)*out",
                "scalar.mul": "(1 - inplace)*out",
                "swin_attention": {"attention": "2*scores*D/heads", "softmax": "scores"},
                "swin_attention.v2": {"attention": "scores*D/heads + offsets*hidden*(2 + heads)",
                                      "bias adds": "offsets*hidden", "activations": "2*offsets*hidden",
                                      "softmax": "scores"}},
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
               {"conv": "macs + bias*out", "deconv": "macs + bias*out", "fc": "macs + bias*out",
                "maxvit_attention": "macs + 4*out",
                "mvit_attention": "macs + 3*inp*D/E + out",
                "locally_connected": "macs", "linear": "macs + bias*out", "patch_embed": "macs + bias*out",
                "matmul": "macs", "mha": {"attention": "4*out*D", "bias adds": "4*bias*out"},
                "swin_attention": {"attention": "macs",
                                   "bias adds": "(3*qkv_bias + proj_bias)*padded*D + offsets*hidden"}},
               per_layer=False,
               notes=("Swin's window attention: the linear ops add their biases on every token of the input padded "
                      "to whole windows (v2 zeroes k's third of the QKV bias and still adds it).",)),
    Convention("thop", "thop.profile(...)'s MACs (ultralytics-thop): multiply-adds without bias, norms, "
               "average pooling and softmax", "MACs",
               {**dict.fromkeys(_CONV, "macs"), "bn": "2*inp*(1 + affine)", "layernorm": "2*inp*(1 + affine)",
                "maxvit_attention": "macs",
                "mvit_attention": "macs + 4*norm_in",
                "softmax": "inp/axis*(3*axis - 1)", "log_softmax": "3*inp", "groupnorm": "2*inp*(1 + affine)",
                "instancenorm": "2*inp*(1 + affine)", "prelu": "inp", "linear": "macs", "patch_embed": "macs",
                "matmul": "macs", "sdpa": "macs", "mha": {"attention": "macs", "softmax": "N*heads*L*(3*L - 1)"},
                "avgpool": "windows + out", "global_avgpool": "windows + out",
                "adaptive_avgpool": "windows + out", "upsample.linear": "5*out", "upsample.bilinear": "11*out",
                "upsample.bicubic": "259*out", "upsample.trilinear": "31*out",
                "swin_attention": {"attention": "macs"}}, per_layer=False, hooks=True,
               functions=_THOP_FUNCTIONS,
               notes=("Swin's window attention has no module rule, so thop's function mode counts the F.linear and "
                      "matmul products inside it: cnnsize's MACs.",)),
    Convention("torchscan-flops", "torchscan.crawl_module(...)['totals']['module_flops']: a multiply and an add "
               "each, minus the first add", "FLOPs",
               {"conv": _SCAN_WEIGHTS, "deconv": {**_SCAN_WEIGHTS, "weight layers": "8*nd + 2*out*fanin"},
                "maxvit_attention": "8*out*D",
                "mvit_attention": "6*inp*D + 2*out*D + 2*pool_macs - pool_out + 8*norm_in + 2*norm_rows",
                "fc": _SCAN_WEIGHTS, "relu": "inp", "relu6": "2*inp", "leaky_relu": "4*inp",
                "tanh": "6*inp", "sigmoid": "4*inp", "dropout": "dropping*inp", "elu": "6*inp",
                "linear": _SCAN_WEIGHTS, "patch_embed": _SCAN_WEIGHTS,
                "mha": "4*out*(2*D - 1 + bias) + 1 + out + N*L*L*(2*D - heads) + N*heads*L*(3*L - 1) + out*(2*L - 1)",
                "channel_dropout": "0", "stochastic_depth": "0",
                "bn": "2*Cin + 2*inp + 2*affine*inp", "layernorm": "6*inp + 2*rows + 2*affine*inp",
                "maxpool": "out*(kscan - 1)", "avgpool": "out*(kscan - 1 + nd)", "adaptive_maxpool": "out*(K - 1)",
                "global_maxpool": "out*(K - 1)", "adaptive_avgpool": "out*(K - 1 + nd)",
                "global_avgpool": "out*(K - 1 + nd)",
                "swin_attention": {"attention": "0"},
                "swin_attention.v2": {"attention": "offsets*hidden*(3 + 2*heads) - offsets*heads",
                                      "bias adds": "offsets*hidden", "activations": "offsets*hidden"}}, hooks=True,
               notes=(_TORCHSCAN_SWIN, _TORCHSCAN_POOL,
                      "torchscan's pooling formulas (all three figures) fail on a window given as a list, as "
                      "torchvision's MViT gives its skip pooling's nn.MaxPool3d (and cnnsize's build, as torchvision "
                      "does): the value is unknown and left out of the totals, so mvit_pool counts nothing. A fused "
                      "attention counts the Linear, Conv3d and LayerNorm modules it holds, not its matrix products.")),
    Convention("torchscan-macs", "torchscan.crawl_module(...)['totals']['macs']", "MACs",
               {"conv": "out*fanin", "deconv": "4*nd + out*fanin", "fc": "out*fanin", "bn": "inp*(1 + affine)",
                "mha": {"attention": "0"},
                "maxvit_attention": "4*out*D",
                "mvit_attention": "3*inp*D + out*D + pool_macs",
                "linear": "out*fanin", "patch_embed": "out*fanin",
                "maxpool": "out*(kscan - 1)", "avgpool": "out*(kscan - 1 + nd)", "adaptive_maxpool": "out*(K - 1)",
                "global_maxpool": "out*(K - 1)", "adaptive_avgpool": "out*(K - 1 + nd)",
                "global_avgpool": "out*(K - 1 + nd)",
                "swin_attention": {"attention": "0"},
                "swin_attention.v2": {"attention": "offsets*hidden*(2 + heads)"}}, hooks=True,
               notes=(_TORCHSCAN_SWIN, _TORCHSCAN_POOL)),
    Convention("torchscan-dmas", "torchscan.crawl_module(...)['totals']['dmas']: memory accesses, in elements",
               "element accesses",
               {"conv": "out*fanin + params + out", "deconv": "5*nd + out*fanin + params + out",
                "maxvit_attention": "inp + 5*out + 4*D*(D + 1)",
                "mvit_attention": "inp + 3*D*(E + 1) + 3*inp*D/E + 2*out + D*(D + 1) + pool_macs + pool_params "
                                  "+ pool_out",
                "fc": "inp + params + out", "identity": "inp", "flatten": "2*inp",
                "relu": "inp + (1 - inplace)*out", "relu6": "inp + (1 - inplace)*out",
                "leaky_relu": "inp + 1 + (1 - inplace)*out", "sigmoid": "inp + out", "tanh": "2*inp + out",
                "dropout": "inp + 1 + (1 - inplace)*out", "bn": "inp + 2 + 2*Cin + 2*affine*Cin + out",
                "elu": "inp + 1 + (1 - inplace)*out", "linear": "inp + params + out",
                "patch_embed": "out*fanin + params + out", "channel_dropout": "0", "stochastic_depth": "0",
                "maxpool": "k*out + out", "avgpool": "k*out + out", "adaptive_maxpool": "K*out + out",
                "global_maxpool": "K*out + out", "adaptive_avgpool": "K*out + out",
                "global_avgpool": "K*out + out",
                "swin_attention": {"attention": "0"},
                "swin_attention.v2": {"attention": "2*offsets + 3*hidden + 3*offsets*hidden + hidden*heads "
                                                   "+ offsets*heads"}},
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
def _adaptive_k(n_in: tuple, n_out: tuple) -> Any:
    return prod(i // o if i % o == 0 else i % o + 1 for i, o in zip(n_in, n_out))


def _clipped_windows(kind, shape: tuple, out: tuple) -> Any:
    """thop's count: every window's inputs, clipped to the padded (or, without count_include_pad, the real) input."""
    _, kernel, stride, pads, _ = kind.geometry(shape)
    total = 1
    for size, n_out, k, s, (p, _) in zip(shape[1:], out[1:], kernel, stride, pads):
        lower, upper = (-p, size + p) if getattr(kind, "count_include_pad", True) else (0, size)
        total *= sum(max(min(i * s - p + k, upper) - max(i * s - p, lower), 0) for i in range(n_out))
    return total


_LAST_AXIS = ("linear", "patch_embed", "mha")  # kinds whose features are the output's last axis


def layer_facts(kind, ins: list[tuple], out: tuple, macs: Any, weights: Any, biases: Any, batch: Any) -> dict:
    """Everything a rule may read about one layer (see FACTS), for the batch."""

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
    name = kind.kind
    if name in _LAST_AXIS:  # features on the last axis: weights per output feature
        facts["fanin"] = weights // out[-1] if weights and out[-1] else 0
    if name == "layernorm":  # over the channels or the last axis
        facts["rows"] = n_in // kind.features(x)
    if name in ("softmax", "log_softmax"):
        facts["axis"] = x[kind.axis]
    if name in ("maxpool", "avgpool"):
        _, kernel, *_ = kind.geometry(x)
        facts["k"] = prod(kernel)
        if name == "avgpool":
            facts["windows"] = _clipped_windows(kind, x, out) * x[0] * batch
    elif "pool" in name and len(out) > 1:  # adaptive and global pooling
        facts["K"] = _adaptive_k(x[1:], out[1:])
        facts["windows"] = x[0] * prod(adaptive_windows(n, m)[0] for n, m in zip(x[1:], out[1:])) * batch
    elif name == "lrn":
        facts["pooled"] = (x[0] + kind.size - 1) * prod(x[1:]) * batch
    facts.update(kind.count_facts(ins, out, batch))  # the kind's own facts (count_fact_names)
    return facts


def variant_of(kind, out: tuple) -> str | None:
    """The part of a kind's settings a rule may depend on: the upsampling mode, the pooling's spatial axes, the
    operation of a `scalar` layer."""
    if kind.kind == "upsample":
        return f"{kind.mode}.{len(out) - 1}" if len(out) == 3 else kind.mode
    if kind.kind in ("global_avgpool", "adaptive_avgpool"):
        return str(len(out) - 1)
    if kind.kind == "scalar":  # x.add(c), x.mul(c): ptflops patches these two methods only
        return kind.op
    if kind.kind == "swin_attention":  # v2's cosine attention and position-bias MLP count otherwise
        return kind.version
    return None


def rule_for(conv: Convention, kind, out: tuple, function: str | None = None,
             train: bool = False) -> str | dict[str, str]:
    if not kind.called:  # a module the forward never runs: no tool's hook, trace or mode sees it
        return "0"
    call, _, inside = (function or "").partition(" in ")
    if function is not None and (not inside or conv.exact_types) and (f"{call}()" in conv.functions or conv.hooks):
        return conv.functions.get(f"{call}()", "0")  # no module the tool sees: what it counts for the function
    variant = variant_of(kind, out)
    if variant and "." in variant:  # upsample.nearest.2 falls back to upsample.nearest, then upsample
        for key in (f"{kind.kind}.{variant}", f"{kind.kind}.{variant.split('.')[0]}"):
            if key in conv.rules:
                return conv.rules[key]
        variant = None
    return conv.rule(kind.kind, variant, getattr(kind, "cause", "other"), train)


# The kinds whose rules tests/test_conventions_zoo.py has checked against every tool (the bundled specs and the
# tour networks). A kind added since is refused by the tools' conventions, with a message, until it is checked:
# a tool's figure is never guessed. ``torch`` (2 × cnnsize's MACs, FlopCounterMode) covers every kind.
CHECKED_KINDS = frozenset({
    "adaptive_avgpool", "adaptive_maxpool", "add", "avgpool", "bn", "channel_shuffle", "chunk", "concat", "conv",
    "deconv", "dropout", "fc", "flatten", "gelu", "global_avgpool", "global_maxpool", "hardsigmoid", "hardswish",
    "identity", "layernorm", "leaky_relu", "locally_connected", "lrn", "maxpool", "mul", "relu", "relu6", "sigmoid",
    "silu", "softmax", "tanh", "upsample", "zeropad",
    # tokens, attention, newer norms and activations, views (tests/test_conventions_zoo.py's tour_c and tour_d)
    "channel_dropout", "class_token", "contiguous", "elu", "groupnorm", "instancenorm", "layer_scale", "linear",
    "log_softmax", "matmul", "mha", "patch_embed", "permute", "pos_embed", "prelu", "reflectpad", "replicatepad",
    "reshape", "roll", "sdpa", "select", "stochastic_depth", "transpose", "window_merge", "window_partition",
    # elementwise arithmetic, means and slices (tour_e and _arithmetic_module)
    "div", "mean", "scalar", "slice", "sub",
    # Swin's window attention and patch merging (torchvision's swin_t, swin_v2_t, swin3d_t, specs/swin_t.yaml,
    # tour_swin and tour_swin3d)
    "patch_merge", "swin_attention",
    # MaxViT's and MViT's fused modules (tests/test_conventions_zoo.py's small MaxVit and MViT networks)
    "maxvit_attention", "mvit_attention", "mvit_pool", "mvit_pos_embed",
    # parameters no forward calls (tests/test_conventions_zoo.py's test_unused_parameters_against_the_tool)
    "unused"})


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
        if conv.name != "torch" and r.kind.kind == "opaque":
            raise SpecError(f"the {name} convention has no rule for 'opaque' layers ({r.name}, {r.kind.op}): "
                            f"it holds only what torch's FlopCounterMode measured, not the module {name} would see",
                            hint="--count torch (or the default) covers opaque layers; import without opaque mode "
                                 "to see why the operation is not representable")
        if conv.name != "torch" and r.kind.kind not in CHECKED_KINDS and r.kind.kind not in conv.rules:
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

    names = [n for n in CONVENTIONS if n != DEFAULT]
    lines = ["| kind (cause) | " + " | ".join(f"`{n}`" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for kind in sorted(REGISTRY):
        cls = REGISTRY[kind]
        cells = []
        for n in names:
            rules = CONVENTIONS[n].rules
            own = sorted(k for k in rules if k.split(".")[0] == kind and k != kind)
            text = _rule_text(CONVENTIONS[n].rule(kind, None, cls.cause))
            cell = text if not own else "; ".join([*(f"{_variant_text(k)}: {_rule_text(rules[k])}" for k in own),
                                                   f"else {text}"])
            if kind not in CHECKED_KINDS and n not in (DEFAULT, "torch") and not own and kind not in rules:
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
    tools = [f"- `{c.name}` ({c.unit}): {c.tool}." + "".join(" " + n for n in c.notes) for c in CONVENTIONS.values()]
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
