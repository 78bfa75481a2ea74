"""Swin Transformer's own layers: shifted-window attention (Swin, Swin V2, Video Swin) and patch merging.

Both work on channels-last tensors, (H, W, C) for images and (T, H, W, C) for video, as torchvision runs
them. Shifted-window attention is one layer standing for the whole of torchvision's ShiftedWindowAttention
module (padding, cyclic shift, window partition, QKV projection, attention with its relative position bias
and shift mask, output projection, and back). Its intermediate tensors are counted as the layer's
``scratch`` activations, one by one as torch makes them, so the activations stay torch's.
"""

from __future__ import annotations

from ..core.errors import SpecError
from ..core.numeric import Dim, ceil_div, fmt_num, is_int, prod
from .base import LOWER, Counts, LayerKind, Param, Saved, TorchModule, attention_backward, register

_TV = "torchvision.models.swin_transformer."
_TV3D = "torchvision.models.video.swin_transformer."


def _strides(sizes: list) -> list:
    """The strides of a contiguous tensor of these sizes."""
    out, step = [], 1
    for size in reversed(sizes):
        out.append(step)
        step *= size
    return out[::-1]


def _reshape_copies(sizes: list, strides: list, new: list) -> bool:
    """Whether torch's reshape of a tensor laid out as (sizes, strides) to ``new`` copies: it is a view when each new
    axis gathers old axes that lie one inside the other in memory (torch's computeStride; axes of size 1 ignored)."""
    old = [(s, st) for s, st in zip(sizes, strides) if s != 1]
    i = 0
    for n in (n for n in new if n != 1):
        chunk, size = [], 1
        while size < n and i < len(old):
            chunk.append(old[i])
            size *= old[i][0]
            i += 1
        if size != n or any(st1 != s2 * st2 for (_, st1), (s2, st2) in zip(chunk, chunk[1:])):
            return True
    return i != len(old)


def _window_copies(counts: list, window: list, batch: int, channels: int) -> tuple[bool, bool]:
    """Whether the window partition (view as (B, n1, w1, n2, w2, …, C), permute to (B, n…, w…, C), reshape to
    (B·windows, tokens, C)) and the window merge (the way back) each make a copy of the tokens."""
    nd = len(window)
    split = [batch, *[v for pair in zip(counts, window) for v in pair], channels]
    order = [0, *range(1, 2 * nd + 1, 2), *range(2, 2 * nd + 2, 2), 2 * nd + 1]
    base = _strides(split)
    # the partition's reshape may be a view of strided memory, but then QKV's matmul copies it: counted here either
    # way, as a copy unless the axes larger than 1 keep their order
    kept = [i for i in order if split[i] != 1]
    partition = kept != sorted(kept)
    windowed = [batch, *counts, *window, channels]
    base = _strides(windowed)
    back = [0, *[v for k in range(nd) for v in (1 + k, 1 + nd + k)], 2 * nd + 1]
    merge = _reshape_copies([windowed[i] for i in back], [base[i] for i in back],
                            [batch, *[c * w for c, w in zip(counts, window)], channels])
    return partition, merge


def _partition_is_view(counts: list, window: list, batch: int, channels: int) -> bool:
    """Whether the window partition's reshape is a view (of strided memory, where it is counted as a copy: QKV's
    F.linear copies it, and its base, the padded or rolled input, stays alive while the view does)."""
    nd = len(window)
    split = [batch, *[v for pair in zip(counts, window) for v in pair], channels]
    order = [0, *range(1, 2 * nd + 1, 2), *range(2, 2 * nd + 2, 2), 2 * nd + 1]
    strides = _strides(split)
    return not _reshape_copies([split[i] for i in order], [strides[i] for i in order],
                               [batch * prod(counts), prod(window), channels])


def _crop_copies(sizes: tuple, padded: tuple, batch: Dim) -> bool:
    """Whether ``x[:, :s1, :s2, …].contiguous()`` of a contiguous (batch, *padded, C) copies: it does unless the part
    is laid out contiguously (torch ignores axes of size 1)."""
    axes = [(batch, prod(padded))] + [(s, prod(padded[i + 1:])) for i, s in enumerate(sizes)]  # (size, stride / C)
    expected = 1
    for size, stride in reversed(axes):
        if not (is_int(size) and size == 1) and stride != expected:
            return True
        expected *= size
    return False


class _Timeline:
    """The tensors of one pass as torch makes and frees them, to find the most alive at once (elements).

    A tensor lives from its operator until the last name bound to it is rebound or the forward returns (Python
    frees a temporary at the end of its statement). In training autograd keeps what the backward needs (``keep``):
    alive to the end of the forward, then until its backward has run (``kept``). ``inner`` is a copy an operator
    makes of a strided operand (matmul's of q, kᵀ and v for the batched product): freed inside the operator in a
    no-grad forward, so no tensor of the model sees it; kept for the backward in training."""

    def __init__(self, training: bool) -> None:
        self.training = training
        self.alive: dict[str, Dim] = {}
        self.kept: dict[str, Dim] = {}
        self.live: Dim = 0
        self.peak: Dim = 0
        self.forward_peak: Dim | None = None  # set when the backward starts
        self.saved: Dim = 0  # all that autograd keeps
        self.made: Dim = 0  # every floating-point tensor the forward makes, for the check against ``steps``

    def new(self, name: str, size: Dim, keep: bool = False, inner: bool = False) -> None:
        self.made += size if self.forward_peak is None else 0
        if inner and not self.training:
            return
        self.live += size
        self.peak = max(self.peak, self.live)
        if self.training and (keep or inner):
            self.kept[name] = size
            self.saved += size
        else:
            self.alive[name] = size

    def free(self, *names: str) -> None:
        for name in names:
            self.live -= self.alive.pop(name, 0)

    def assign(self, name: str, size: Dim, keep: bool = False) -> None:
        """``name = op(…)``: the new tensor is made while the one bound to ``name`` is alive, which goes after."""
        old = self.alive.pop(name, 0)
        self.new(name, size, keep)
        self.live -= old

    def keep(self, name: str, label: str = "") -> None:
        """Autograd keeps the tensor bound to ``name`` (in training), as ``label``."""
        if self.training and name in self.alive:
            self.kept[label or name] = size = self.alive.pop(name)
            self.saved += size

    def rebind(self, name: str, to: str) -> None:
        """``to = name``: the tensor bound to ``to`` goes (unless kept), the one bound to ``name`` takes its place."""
        self.free(to)
        if name in self.alive:
            self.alive[to] = self.alive.pop(name)

    def temporary(self, name: str, size: Dim) -> None:
        """A tensor freed as soon as it is made (the scalars the mask's regions are filled from)."""
        self.new(name, size)
        self.free(name)

    def backward(self) -> None:
        """The forward has returned: what autograd kept is all that is alive; the backward's peak is counted anew."""
        self.forward_peak, self.alive = self.peak, dict(self.kept)
        self.live = self.peak = self.saved

    def release(self, *names: str) -> None:
        """Their backward has run: autograd lets the tensors it kept for it go."""
        self.free(*names)


def _text(shape) -> str:
    return "×".join(str(v) for v in shape)


@register("swin_attention")
class SwinAttention(LayerKind):
    """Shifted-window multi-head self-attention on a channels-last (H, W, C) or (T, H, W, C), as torchvision's
    ShiftedWindowAttention (``version: v1``), ShiftedWindowAttentionV2 (``v2``: cosine attention with a learned
    logit scale, the position bias from a 2-layer MLP of the log-spaced relative coordinates) and
    ShiftedWindowAttention3d compute it: pad to whole windows, roll by ``shift``, attend within each window with a
    learned relative position bias (a table of (2w−1)·… entries per head, indexed by a buffer of N² indices for
    the N tokens of a window), mask the pairs the roll brought together, project, and undo it all.

    A window as large as the padded input does not shift on that axis; with ``shrink`` (Video Swin) a window larger
    than the input shrinks to the input's size instead."""
    autocast = {"cpu": LOWER, "cuda": LOWER}  # its output projection: 16-bit
    onnx_none = ("a fused module of torchvision's Swin: its ONNX export is many operators, each imported as the kind "
                 "it is")
    tools_checked = True
    count_rules = {  # what each tool counts where its cause's rule does not say (cnnsize.passes.conventions)
        "torchinfo": {"attention": "0"},
        "torchinfo.v2": {"attention": "hidden*(3 + heads)"},
        "fvcore": {"attention": "macs"},
        "ptflops": {"attention": "2*scores*D/heads", "softmax": "scores"},
        "ptflops.v2": {
            "attention": "scores*D/heads + offsets*hidden*(2 + heads)",
            "bias adds": "offsets*hidden",
            "activations": "2*offsets*hidden",
            "softmax": "scores",
        },
        "ptflops-aten": {"attention": "macs", "bias adds": "(3*qkv_bias + proj_bias)*padded*D + offsets*hidden"},
        "thop": {"attention": "macs"},
        "torchscan-flops": {"attention": "0"},
        "torchscan-flops.v2": {
            "attention": "offsets*hidden*(3 + 2*heads) - offsets*heads",
            "bias adds": "offsets*hidden",
            "activations": "offsets*hidden",
        },
        "torchscan-macs": {"attention": "0"},
        "torchscan-macs.v2": {"attention": "offsets*hidden*(2 + heads)"},
        "torchscan-dmas": {"attention": "0"},
        "torchscan-dmas.v2": {"attention": "2*offsets + 3*hidden + 3*offsets*hidden + hidden*heads + offsets*heads"},
    }

    cause = "macs"
    weight_layer = True
    params = {"heads": Param("int", doc="attention heads (C must divide by it)"),
              "window": Param("ints", doc="window size, one number or one per spatial axis"),
              "shift": Param("ints_or_zero", 0, doc="cyclic shift before partitioning, per axis (0: none)"),
              "version": Param("choice", "v1", doc="v1: scaled dot-product; v2: cosine attention, MLP position bias",
                               choices=("v1", "v2")),
              "qkv_bias": Param("bool", True), "proj_bias": Param("bool", True),
              "cpb_hidden": Param("int", 512, doc="v2: hidden units of the position-bias MLP"),
              "shrink": Param("bool", False, doc="windows larger than the input shrink to it (Video Swin)")}
    torch_modules = (_TV + "ShiftedWindowAttention", _TV + "ShiftedWindowAttentionV2",
                     _TV3D + "ShiftedWindowAttention3d", "cnnsize.layers.nn.swin.SwinAttention")

    def count_variant(self, out):
        return self.version  # v2's cosine attention and position-bias MLP count otherwise

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if float(getattr(m, "attention_dropout", 0.0)) or float(getattr(m, "dropout", 0.0)):
            raise call.refuse("shifted-window attention with dropout", hint="build it with attention_dropout=0 and "
                                                                            "dropout=0, torchvision's default")
        own = getattr(m, "settings", None)
        if own is not None:  # cnnsize's own module, as build makes it
            return dict(own)
        v2 = hasattr(m, "logit_scale")
        settings = {"heads": m.num_heads, "window": list(m.window_size), "shift": list(m.shift_size),
                    "version": "v2" if v2 else "v1", "qkv_bias": m.qkv.bias is not None,
                    "proj_bias": m.proj.bias is not None, "shrink": len(m.window_size) == 3}
        if v2:
            settings["cpb_hidden"] = m.cpb_mlp[0].out_features
        return settings

    # -- geometry ---------------------------------------------------------------------------------------------
    def configured(self, x) -> tuple[tuple, tuple]:
        """(window, shift) per spatial axis as written."""
        nd = len(x) - 1
        if nd not in (2, 3):
            raise SpecError(f"swin_attention needs a channels-last (H, W, C) or (T, H, W, C), got {_text(x)}",
                            hint="permute to channels-last first, e.g. permute: {dims: [1, 2, 0]}")
        window = self.window if isinstance(self.window, tuple) else (self.window,) * nd
        shift = self.shift if isinstance(self.shift, tuple) else (self.shift,) * nd
        if len(window) != nd or len(shift) != nd:
            raise SpecError(f"window and shift need one entry per spatial axis ({nd}), got {list(window)} and "
                            f"{list(shift)}")
        if self.version == "v2" and nd != 2:
            raise SpecError("version v2 is 2D only (torchvision's ShiftedWindowAttentionV2)")
        if self.shrink and nd != 3:  # 2-D Swin pads the input to whole windows instead
            raise SpecError("shrink is 3D only (Video Swin's ShiftedWindowAttention3d); 2D Swin pads to whole "
                            "windows", hint="drop shrink")
        if any(is_int(s) and is_int(w) and s >= w for s, w in zip(shift, window)):
            raise SpecError(f"shift {list(shift)} must be smaller than the window {list(window)}")
        return window, shift

    def geometry(self, x) -> tuple[tuple, tuple, tuple]:
        """(window, shift, padded sizes) as torch runs this input."""
        window, shift = self.configured(x)
        sizes = x[:-1]
        if not all(map(is_int, (*x, *window, *shift))):
            raise SpecError(f"swin_attention needs sizes that are numbers, got {_text(x)}: whether torch pads, shifts "
                            "and copies on the way depends on their values",
                            hint="give the input as numbers; cnnsize fit scans many sizes")
        if self.shrink:  # Video Swin: a window not smaller than the input becomes the input, and does not shift
            pairs = [(n, 0) if n <= w else (w, s) for n, w, s in zip(sizes, window, shift)]
            window, shift = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
        padded = tuple(ceil_div(n, w) * w for n, w in zip(sizes, window))
        if not self.shrink:  # Swin: a window covering the padded input does not shift on that axis
            shift = tuple(0 if w >= p else s for s, w, p in zip(shift, window, padded))
        return window, shift, padded

    def output_shape(self, ins, ctx):
        x = ins[0]
        self.geometry(x)
        if is_int(x[-1]) and x[-1] % self.heads:
            raise SpecError(f"the channels ({x[-1]}) must be divisible by heads ({self.heads})")
        return tuple(x)

    def _sizes(self, x) -> dict:
        window, shift, padded = self.geometry(x)
        c, h, nd = x[-1], self.heads, len(window)
        n = prod(window)
        tokens = prod(padded)
        windows = prod(p // w for p, w in zip(padded, window))  # sizes are numbers here (geometry says so)
        table = prod(2 * w - 1 for w in self.configured(x)[0])
        return {"c": c, "h": h, "n": n, "tokens": tokens, "windows": windows, "attn": windows * h * n * n,
                "shifted": any(s != 0 for s in shift), "padded": tokens != prod(x[:-1]), "table": table, "nd": nd}

    # -- counts -----------------------------------------------------------------------------------------------
    def counts(self, ins, out):
        z = self._sizes(ins[0])
        c, h = z["c"], z["h"]
        weights = 4 * c * c + (z["table"] * h if self.version == "v1" else
                               2 * self.cpb_hidden + self.cpb_hidden * h + h)  # v2: the MLP and the logit scale
        biases = (3 * c if self.qkv_bias else 0) + (c if self.proj_bias else 0) + \
            (self.cpb_hidden if self.version == "v2" else 0)
        n = prod(self.configured(ins[0])[0])  # the index is of the window as written, even where it shrinks
        buffers = n * n + (2 * z["table"] if self.version == "v2" else 0)  # the index (and v2's coordinates)
        d = c // h
        macs = 4 * z["tokens"] * c * c + 2 * z["attn"] * d  # QKV and output projections; QKᵀ and attention·V
        return Counts(weights=weights, biases=biases, buffers=buffers, connections=macs, macs=macs)

    # what the counting tools see inside the module (cnnsize.passes.conventions): torchvision calls F.linear with
    # the qkv and proj weights, so those submodules never run as modules; v2's position-bias MLP runs as modules,
    # once per call
    count_fact_names = {
        "scores": "elements of QKᵀ, windows·heads·N² over the input padded to whole windows, for the batch",
        "padded": "tokens of the input padded to whole windows (the rows QKV and the projection run on), for the batch",
        "qkv_bias": "1 if the QKV projection has a bias, else 0",
        "proj_bias": "1 if the output projection has a bias, else 0",
        "offsets": "relative offsets in a window, (2w−1)·…: the rows v2's position-bias MLP runs on, once per call",
        "hidden": "hidden units of v2's position-bias MLP (0 for v1 and 3D)"}

    def int_buffers(self, ins, out):
        return prod(self.configured(ins[0])[0]) ** 2  # the relative position index

    def module_tree(self, ins, out):
        z = self._sizes(ins[0])  # the table (v2: the logit scale, the coordinates), the index on the module; qkv,
        c, h, hidden = z["c"], z["h"], self.cpb_hidden  # proj and v2's MLP (a Sequential) children
        index = self.int_buffers(ins, out)
        modules = [TorchModule(z["table"] * h, 0, index, leaf=False) if self.version == "v1" else
                   TorchModule(h, 2 * z["table"], index, leaf=False),
                   TorchModule(3 * c * c + 3 * c * int(self.qkv_bias)), TorchModule(c * c + c * int(self.proj_bias))]
        if self.version == "v2":
            modules += [TorchModule(0, leaf=False), TorchModule(3 * hidden), TorchModule(0), TorchModule(hidden * h)]
        return modules

    def count_facts(self, ins, out, batch):
        z = self._sizes(ins[0])
        return {"scores": z["attn"] * batch, "padded": z["tokens"] * batch, "qkv_bias": int(self.qkv_bias),
                "proj_bias": int(self.proj_bias), "offsets": z["table"],
                "hidden": self.cpb_hidden if self.version == "v2" else 0}

    def backward_macs(self, ins, out, batch, grads, trains):
        """As mha's (attention_backward) over the windows; v2's position-bias MLP, once per call, on a table of
        coordinates that requires no grad: its first linear's weight gradient, its second's input and weight
        gradients, where the layer trains."""
        z = self._sizes(ins[0])
        c = z["c"]
        activations, weights = attention_backward(z["tokens"] * c * c * batch, z["attn"] * (c // z["h"]) * batch,
                                                  any(grads), trains)
        if self.version == "v2" and trains:
            second = z["table"] * self.cpb_hidden * self.heads
            activations, weights = activations + second, weights + z["table"] * 2 * self.cpb_hidden + second
        return activations, weights

    def call_macs(self, ins, out):
        if self.version != "v2":
            return 0
        table = self._sizes(ins[0])["table"]
        return table * (2 * self.cpb_hidden + self.cpb_hidden * self.heads)  # the position-bias MLP, once per call

    def steps(self, x, batch: Dim = 1) -> tuple[list, list]:
        """(per-sample, per-call) element counts of every floating-point tensor torch makes, in order; the output
        is the last per-sample one, or a view of it. torch's reshapes copy only where a view cannot do: one window
        (of one sample) needs no partition copy, one head no head copies."""
        z = self._sizes(x)
        window, shift, padded = self.geometry(x)
        tc, attn, n, h = z["tokens"] * z["c"], z["attn"], z["n"], z["h"]
        shifted = z["shifted"]
        counts = [p // w for p, w in zip(padded, window)]
        nd = len(window)
        # window partition (…, count, w, …) to (count…, w…) and back: each a copy where torch's reshape cannot view
        generic = batch if is_int(batch) else 2  # a batch in symbols: as any batch above 1
        moves, moves_back = _window_copies(counts, list(window), generic, 2)
        mask_moves = _window_copies(counts, list(window), 1, 1)[0]
        one = is_int(batch) and batch == 1 and z["windows"] == 1  # one window in all: batch and heads fold as views
        heads = h != 1 and not one  # q, kᵀ and v copied for the batched matmul
        sample = [tc] + [tc] * shifted + [tc] * moves + [3 * tc]  # pad, roll, window partition, QKV
        if self.version == "v1":
            sample += [tc]  # q · scale
        else:  # F.normalize of q and of k: a norm, its clamp and the division each
            sample += [z["windows"] * h * n] * 2 + [tc] + [z["windows"] * h * n] * 2 + [tc]
        sample += [tc, tc] * heads + [attn]  # contiguous q and kᵀ for the batched matmul, QKᵀ
        sample += [attn] * (self.version == "v2")  # · logit scale
        sample += [attn] + [attn] * shifted + [attn]  # + position bias, + mask, softmax
        sample += [tc] * heads + [tc] + [tc] * (h != 1 and n != 1) + [tc]  # contiguous v, attention·V, heads merged,
        sample += [tc] * moves_back + [tc] * shifted  # projection, windows merged, roll back
        if z["padded"] and _crop_copies(x[:-1], padded, batch):  # the crop to the input's size, unless a view
            sample.append(prod(x))
        if self.version == "v1":
            call = [n * n * h] + [n * n * h] * (h != 1)  # the bias gathered from the table, made contiguous per head
        else:  # the MLP's hidden layer and its output, gathered, contiguous, 16·sigmoid
            call = [z["table"] * self.cpb_hidden, z["table"] * h, n * n * h] + [n * n * h] * (h != 1) + \
                [n * n * h] * 2
            call += [3 * z["c"]] * self.qkv_bias + [h, h]  # the bias with k's third zeroed, the clamped logit scale
        if shifted:  # the mask: zeros of the padded size, one scalar per region, windowed, pairwise, twice filled
            call += [z["tokens"], 3 ** nd, z["tokens"] * mask_moves, z["windows"] * n * n, z["windows"] * n * n,
                     z["windows"] * n * n]
        return sample, call

    def timeline(self, x, batch: int, training: bool) -> _Timeline:
        """torch's forward of this layer (cnnsize.layers.nn.swin.SwinAttention, torchvision's order) as a _Timeline:
        the tensors of ``steps`` with their lifetimes, beyond the caller's input."""
        z = self._sizes(x)
        window, _, padded = self.geometry(x)
        tc, h, n = z["tokens"] * z["c"] * batch, z["h"], z["n"]
        counts = [p // w for p, w in zip(padded, window)]
        moves, moves_back = _window_copies(counts, list(window), batch, 2)
        heads = h != 1 and not (batch == 1 and z["windows"] == 1)  # q, kᵀ and v copied for the batched matmul
        t = _Timeline(training)
        self._bias_timeline(t, z)
        t.new("x", tc)  # the pad, a copy even when nothing is added
        if z["shifted"]:
            t.assign("x", tc)  # the roll
        if moves and _partition_is_view(counts, list(window), batch, 2):
            t.new("windows", tc, inner=True)  # F.linear's copy of the strided windows (kept); their base stays
        else:
            if moves:
                t.assign("x", tc)  # the window partition
            t.keep("x", "windows")  # QKV's input
        if self.version == "v2" and self.qkv_bias:
            t.new("qkv_bias", 3 * z["c"])  # the bias with k's third zeroed
        t.new("qkv", 3 * tc)  # q, k and v are views of it, alive to the end
        if self.version == "v1":
            self._scores_v1(t, tc, z["attn"] * batch, heads)
        else:
            self._scores_v2(t, tc, z, batch, heads)
        t.assign("attn", z["attn"] * batch)  # + position bias
        if z["shifted"]:
            self._mask_timeline(t, z, window, padded)
            t.assign("attn", z["attn"] * batch)  # + mask
        t.assign("attn", z["attn"] * batch, keep=True)  # the softmax
        if heads:
            t.new("v copy", tc, inner=True)
        t.new("merged", tc)  # attention·V
        if h != 1 and n != 1:  # the heads merged: a copy; attention·V goes at the end of the statement
            t.assign("merged", tc)
        t.keep("merged", "merged")  # the projection's input
        t.rebind("merged", "x")  # x = …: the windows go
        t.assign("x", tc)  # the projection
        if moves_back:
            t.assign("x", tc)  # windows merged
        if z["shifted"]:
            t.assign("x", tc)  # the roll back
        if z["padded"] and _crop_copies(x[:-1], padded, batch):
            t.assign("x", prod(x) * batch)  # the crop to the input's size
        if training:
            self._backward_timeline(t, z, tc, heads, moves_back, batch)
        return t

    def _backward_timeline(self, t: _Timeline, z: dict, tc: Dim, heads: bool, moves_back: bool, batch: int) -> None:
        """The backward, its operators in autograd's order (the latest made first): the gradient of each
        intermediate tensor as it is made and freed, and what autograd kept, released as each backward runs. The
        output's gradient is the memory model's (held through the layer's backward), not counted here."""
        attn, h, n = z["attn"] * batch, z["h"], z["n"]
        t.backward()
        t.new("g", tc * z["padded"])  # the crop's: zeros of the padded size
        if z["shifted"]:
            t.assign("g", tc)  # rolled back
        if moves_back:
            t.assign("g", tc)  # the windows' order, made contiguous for the projection's product
        t.new("g merged", tc)  # the projection's
        t.free("g")
        t.release("merged")
        if h != 1 and n != 1:
            t.assign("g merged", tc)  # the heads apart again, contiguous for the batched product
        t.new("g v", tc)  # attention·V's
        t.new("g attn", attn)
        t.free("g merged")
        t.release("v copy")
        t.new("g scores", attn)  # the softmax's
        t.free("g attn")
        t.release("attn")
        if batch * z["windows"] != 1:
            t.new("g bias", z["n"] * z["n"] * h)  # summed over the windows, read at the end
        if self.version == "v2":  # · logit scale: the scores' gradient, and the scale's through their product
            t.new("g logits", attn)
            t.temporary("product", attn)
            t.free("g scores")
            t.release("scores", "scale")
            t.rebind("g logits", "g scores")
        t.new("g q", tc)  # QKᵀ's
        t.new("g k", tc)
        t.free("g scores")
        t.release("q copy", "k copy", "q", "k")
        if self.version == "v1":
            t.release("qkv")  # kᵀ, where the product kept a view of it
            t.assign("g q", tc)  # · scale
        else:  # each normalize's division and norm: four of their gradient's terms at once, then q's or k's
            for name in ("k", "q"):
                for term in range(4):
                    t.new(f"term {term}", tc)
                t.free("term 0", "term 1", "term 2", "term 3")
                t.release(f"{name} norm", f"{name} clamp", name)
        t.release("qkv")
        # select's gradient of q, k and v, each as large as QKV, summed into the first
        t.new("g qkv", 3 * tc)
        t.free("g v")
        t.temporary("g qkv k", 3 * tc)
        t.free("g k")
        t.temporary("g qkv q", 3 * tc)
        t.free("g q")
        t.assign("g qkv", 3 * tc)  # in the (windows, tokens, 3, heads, C/heads) order

    def _bias_timeline(self, t: _Timeline, z: dict) -> None:
        """The position bias, once per call, alive to the end of the forward."""
        n2h = z["n"] * z["n"] * z["h"]
        if self.version == "v2":  # the MLP's hidden layer (kept) and its output, then gathered and 16·sigmoid
            t.new("hidden", z["table"] * self.cpb_hidden, keep=True)
            t.new("table", z["table"] * z["h"])
            t.free("hidden")
        t.new("bias", n2h)  # gathered from the table
        if z["h"] != 1:
            t.assign("bias", n2h)  # made contiguous per head
        if self.version == "v2":
            t.new("sigmoid", n2h, keep=True)
            t.new("scaled", n2h)
            t.free("sigmoid", "table", "bias")

    def _scores_v1(self, t: _Timeline, tc: Dim, attn: Dim, heads: bool) -> None:
        """(q · scale) @ kᵀ: the scaled q goes at the end of the statement, unless the product keeps it."""
        t.new("q", tc, keep=not heads)
        if not heads:
            t.keep("qkv")  # kᵀ, a view of it
        if heads:
            t.new("q copy", tc, inner=True)
            t.new("k copy", tc, inner=True)
        t.new("attn", attn)
        t.free("q", "q copy", "k copy")

    def _scores_v2(self, t: _Timeline, tc: Dim, z: dict, batch: int, heads: bool) -> None:
        """normalize(q) @ normalize(k)ᵀ · clamp(logit scale).exp(): each normalize a norm, its clamp and a division."""
        t.keep("qkv")  # normalize's input
        rows = z["windows"] * z["h"] * z["n"] * batch
        for name in ("q", "k"):
            t.new(f"{name} norm", rows, keep=True)
            t.new(f"{name} clamp", rows, keep=True)
            t.free(f"{name} norm")
            t.new(name, tc, keep=not heads)
            t.free(f"{name} clamp")
        if heads:
            t.new("q copy", tc, inner=True)
            t.new("k copy", tc, inner=True)
        t.new("scores", z["attn"] * batch, keep=True)  # the logit scale's factor
        t.free("q", "k", "q copy", "k copy")
        t.new("clamped", z["h"])
        t.new("scale", z["h"], keep=True)
        t.free("clamped")
        t.new("attn", z["attn"] * batch)
        t.free("scale", "scores")

    @staticmethod
    def _mask_timeline(t: _Timeline, z: dict, window: tuple, padded: tuple) -> None:
        """The shift mask, once per call: zeros of the padded size filled one region at a time, windowed, the
        pairwise difference and its two fills (the boolean masks they read, a quarter of a float each, left out)."""
        t.new("mask", z["tokens"])
        for _ in range(3 ** z["nd"]):
            t.temporary("region", 1)
        if _window_copies([p // w for p, w in zip(padded, window)], list(window), 1, 1)[0]:
            t.assign("mask", z["tokens"])
        t.assign("mask", z["windows"] * z["n"] * z["n"])
        t.new("filled", z["windows"] * z["n"] * z["n"])
        t.new("mask out", z["windows"] * z["n"] * z["n"])
        t.free("filled")
        t.rebind("mask out", "mask")

    def scratch(self, ins, out, batch):
        sample, call = self.steps(ins[0], batch)
        return sum(sample) * batch + sum(call) - prod(out) * batch  # the output may be a view of the last one

    def transient(self, ins, out, batch, training):
        # the forward's worst moment, from its timeline: what autograd keeps and the output are counted apart
        t = self.timeline(ins[0], batch, training)
        peak = t.peak if t.forward_peak is None else t.forward_peak
        return max(peak - t.saved - prod(out) * batch, 0)

    def backward_transient(self, ins, out, batch):
        # the backward's worst moment, from its timeline: what autograd kept is counted apart
        t = self.timeline(ins[0], batch, True)
        return max(t.peak - t.saved, 0)

    def explain(self, ins, out, ctx):
        z = self._sizes(ins[0])
        window, shift, padded = self.geometry(ins[0])
        c, d = z["c"], z["c"] // z["h"]
        return [f"windows: padded {_text(padded)} / {_text(window)} = {fmt_num(z['windows'])} windows of "
                f"N = {fmt_num(z['n'])} tokens{', shifted by ' + _text(shift) if z['shifted'] else ''}",
                f"MACs: QKV and output projections 4·tokens·C² = 4·{fmt_num(z['tokens'])}·{fmt_num(c)}² = "
                f"{fmt_num(4 * z['tokens'] * c * c)}; QKᵀ and attention·V 2·windows·heads·N²·(C/heads) = "
                f"2·{fmt_num(z['windows'])}·{self.heads}·{fmt_num(z['n'])}²·{fmt_num(d)} = "
                f"{fmt_num(2 * z['attn'] * d)}"] + \
            ([f"MACs once per call, the position-bias MLP: {fmt_num(z['table'])} relative offsets · "
              f"(2·{self.cpb_hidden} + {self.cpb_hidden}·{self.heads}) = {fmt_num(self.call_macs(ins, out))}"]
             if self.version == "v2" else [])

    def receptive(self, rfs, ins, out):
        return None

    def saved(self, ins, out, trainable, device):
        z = self._sizes(ins[0])
        tc, attn, n, h = z["tokens"] * z["c"], z["attn"], z["n"], z["h"]

        def kept(heads: bool, batch_one: bool | None) -> list[Saved]:
            new = [tc]  # the windows, QKV's input; with heads, the batched matmuls read copies of q, kᵀ and v
            if self.version == "v1":  # q·scale and kᵀ (copies, or the scaled q and QKV itself), softmax's output, v
                new += ([tc, tc] if heads else [tc, 3 * tc]) + [attn] + [tc] * heads
            else:  # QKV (normalize's input), each normalize's norm and its clamp, q and kᵀ normalized (or their
                # copies), QKᵀ (the logit scale's factor), softmax's output, v
                new += [3 * tc] + [z["windows"] * h * n] * 4 + [tc, tc, attn, attn] + [tc] * heads
            new.append(tc)  # the heads merged, the projection's input
            return [Saved("new", v, batch_one=batch_one) for v in new]

        if h != 1 and z["windows"] == 1:  # one window: one sample's heads fold into views, a batch's are copied
            items = kept(False, True) + kept(True, False)
        else:
            items = kept(h != 1, None)
        window = self.configured(ins[0])[0]
        if len(window) == 3 and prod(window) != n != 1:  # a shrunk 3D window: its part of the index, copied (int64;
            # one position's is a view)
            items.append(Saved("new", n * n, itemsize=8, per_sample=False))
        if self.version == "v2":  # once per call: the position-bias MLP's hidden layer, its sigmoid, the logit scale
            items += [Saved("new", v, per_sample=False) for v in (z["table"] * self.cpb_hidden, n * n * h, h)]
        return items

    def build(self, ins, out):
        from .nn.swin import SwinAttention as Module

        return Module(ins[0][-1], self.configured(ins[0])[0], self.configured(ins[0])[1], self.heads,
                      version=self.version, qkv_bias=self.qkv_bias, proj_bias=self.proj_bias,
                      cpb_hidden=self.cpb_hidden, shrink=self.shrink, settings=self.values)


@register("patch_merge")
class PatchMerge(LayerKind):
    """Swin's patch merging of a channels-last (…, H, W, C): each 2×2 neighbourhood's four C-vectors side by side,
    (…, ⌈H/2⌉, ⌈W/2⌉, 4C), in the order (0, 0), (1, 0), (0, 1), (1, 1); an odd H or W is padded with zeros first.
    torch pads (a copy, even by nothing) and concatenates: two tensors, the first counted as scratch."""
    onnx_none = ("a fused module of torchvision's Swin: its ONNX export is Slice, Concat, LayerNormalization and "
                 "MatMul, each imported as the kind it is")
    tools_checked = True

    cause = "views"
    params = {}
    torch_modules = ("cnnsize.layers.nn.swin.PatchMerge", _TV3D + "PatchEmbed3d")
    torch_functions = ("_patch_merging_pad",)

    @classmethod
    def from_torch(cls, call):
        m = call.module
        if m is None or type(m).__name__ == "PatchMerge":
            return {}
        # torchvision's PatchEmbed3d (Video Swin): zero padding to whole patches, the patch conv, channels last and
        # its norm, as the layers they are
        x, patch = call.inputs[0][2:], tuple(m.tuple_patch_size)
        conv = m.proj
        steps = [("zeropad", {"pad": 0, "pad_end": [(p - n % p) % p for n, p in zip(x, patch)]}),
                 ("conv", {"filters": conv.out_channels, "kernel": list(patch), "stride": list(patch),
                           "bias": conv.bias is not None}),
                 ("permute", {"dims": [1, 2, 3, 0]})]
        norm = m.norm
        if type(norm).__name__ == "LayerNorm":
            steps.append(("layernorm", {"axis": "last", "eps": float(norm.eps),
                                        "affine": norm.weight is not None}))
        elif type(norm).__name__ != "Identity":
            raise call.refuse(f"PatchEmbed3d with a {type(norm).__name__} norm")
        return steps

    def output_shape(self, ins, ctx):
        x = ins[0]
        if len(x) < 3:
            raise SpecError(f"patch_merge needs a channels-last (…, H, W, C), got {_text(x)}",
                            hint="permute to channels-last first")
        return (*x[:-3], ceil_div(x[-3], 2), ceil_div(x[-2], 2), 4 * x[-1])

    def scratch(self, ins, out, batch):
        x = ins[0]
        return prod(x[:-3]) * (2 * ceil_div(x[-3], 2)) * (2 * ceil_div(x[-2], 2)) * x[-1] * batch  # the padded copy

    def transient(self, ins, out, batch, training):
        return self.scratch(ins, out, batch)  # the padded copy, while the concatenation reads it

    def receptive(self, rfs, ins, out):
        return None

    def build(self, ins, out):
        from .nn.swin import PatchMerge as Module

        return Module()


__all__ = ["PatchMerge", "SwinAttention"]
