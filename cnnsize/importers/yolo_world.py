"""The open-vocabulary YOLO configs' modules for cnnsize.importers.yolo: YOLO-World's C2fAttn, ImagePoolingAttn and
WorldDetect (ultralytics.nn.tasks.WorldModel) and YOLOE's YOLOEDetect and YOLOESegment (YOLOEModel), each written as
the layers torch runs in the model's default eval forward; and the ResNet classifiers' ResNetLayer.

cnnsize.importers.yolo imports this module and hands itself over (``modules(kit)``): its blocks and helpers (the
Conv block, conv_settings, the DFL, dist2bbox) are read from ``kit``, so that neither module imports the other's
names at load time (no import circle).

The classes' text embeddings are an input of these models' predict that the image does not give: WorldModel reads
its placeholder ``txt_feats`` (a tensor of 80 × 512 it holds outside its parameters and buffers, random until
set_classes) and YOLOEModel, given no prompt, makes ``torch.zeros(1, 80, 512)`` in each forward. Both are written
as a ``const_tensor`` layer (``txt_feats``: held; ``cls_pe``: made), of 80 classes as the models make them whatever the
YAML's nc."""

from __future__ import annotations

from functools import partial
from types import ModuleType
from typing import Any

from ..core.errors import SpecError

TEXT_CLASSES, TEXT_WIDTH = 80, 512  # WorldModel's txt_feats and YOLOEModel's zeros: (1, 80, 512)


def world_text(t: Any) -> str:
    """The layer holding the text features C2fAttn reads now: WorldModel's txt_feats, then what each
    ImagePoolingAttn row makes of them. Written on first use, with the copy WorldDetect reads (ori_txt_feats, the
    clone predict makes before any row runs)."""
    if not t.text:
        t.layers += [{"const_tensor": {"name": "txt_feats", "shape": [TEXT_CLASSES, TEXT_WIDTH], "from": "input"}},
                     {"cat": {"name": "txt_feats_clone", "axis": 0, "from": ["txt_feats"], "function": ".clone"}}]
        t.text = "txt_feats"
    return t.text


def c2fattn_block(kit: ModuleType, t: Any, n: int, text: str) -> dict:
    """C2fAttn with n bottlenecks: C2f's cv1, halves and bottlenecks, then MaxSigmoidAttnBlock on the last (its
    embedding is the map itself, ec = the hidden width c): the text's guide (gl, a Linear), each cell's product
    with each class's guide per head, its max over the classes, / √hc, + the learned bias per head, sigmoid, · 1.0
    (the unlearned scale: a new tensor), times a 3×3 Conv of the map; all joined, cv2."""
    t.use("Bottleneck", {}, lambda: kit.bottleneck_block(t))
    joined = ["y0", "y1", *(f"m.{j}" for j in range(n)), "attn.out"]
    hw = "in.height * in.width"
    last = f"m.{n - 1}"
    return {"args": {"c2": None, "c": None, "nh": None, "hc": None, "root": None, "shortcut": False, "g": 1},
            "layers": [{"Conv": {"name": "cv1", "c2": "2 * c"}},
                       {"chunk": {"name": "y0", "chunks": 2, "index": 0, "from": "cv1"}},
                       {"chunk": {"name": "y1", "chunks": 2, "index": 1, "from": "cv1"}},
                       {"repeat": n, "name": "m", "block": "Bottleneck",
                        "args": {"c2": "c", "c_": "c", "shortcut": "shortcut", "g": "g"}},
                       {"linear": {"name": "attn.gl", "units": "c", "from": text}},
                       {"reshape": {"name": "attn.guide", "shape": [TEXT_CLASSES, "nh", "hc"]}},
                       {"permute": {"name": "attn.guide_t", "dims": [1, 2, 0]}},
                       {"reshape": {"name": "attn.embed", "shape": ["nh", "hc", hw], "from": last}},
                       {"transpose": {"name": "attn.embed_t", "axes": [1, 2]}},
                       {"matmul": {"name": "attn.scores", "from": ["attn.embed_t", "attn.guide_t"]}},
                       {"reduce": {"name": "attn.max", "op": "max", "axes": [2]}},
                       {"reshape": {"name": "attn.aw", "shape": ["nh", "in.height", "in.width"]}},
                       {"scalar": {"name": "attn.scaled", "op": "div", "value": "root"}},
                       {"bias_add": {"name": "attn.bias", "shape": ["nh", 1, 1]}},
                       {"sigmoid": {"name": "attn.sigmoid"}},
                       {"scalar": {"name": "attn.weight", "op": "mul", "value": 1.0}},
                       {"Conv": {"name": "attn.proj_conv", "c2": "c", "k": 3, "p": 1, "act": False, "from": last}},
                       {"reshape": {"name": "attn.heads", "shape": ["nh", "hc", "in.height", "in.width"]}},
                       {"reshape": {"name": "attn.aw_1", "shape": ["nh", 1, "in.height", "in.width"],
                                    "from": "attn.weight"}},
                       {"mul": {"name": "attn.weighted", "from": ["attn.heads", "attn.aw_1"]}},
                       {"reshape": {"name": "attn.out", "shape": ["c", "in.height", "in.width"]}},
                       {"concat": {"name": "cat", "from": joined}},
                       {"Conv": {"name": "cv2", "c2": "c2"}}]}


def write_c2fattn(kit: ModuleType, t: Any, u: Any) -> Any:
    """C2fAttn(c2, ec, nh, gc=512, shortcut=False, g=1, e=0.5) as parse_model scales it: nh by the width (at least
    1, where the YAML's is above 1), ec replaced by the hidden width int(c2 · e) (the block's embedding: the map)."""
    c2 = t.width_of(u.args[0], u.row.locs[3])
    nh = kit._int(u.args[2], "nh")
    if nh > 1:
        nh = int(max(round(min(nh, t.max_channels // 2 // 32)) * t.width, 1))
    gc, shortcut, g, e = u.arg(3, 512), u.arg(4, False), kit._int(u.arg(5, 1), "groups"), u.arg(6, 0.5)
    c = int(c2 * e)
    if c % nh:
        raise SpecError(f"C2fAttn's hidden width {c} is not divisible by its {nh} heads")
    if kit._int(gc, "gc") != TEXT_WIDTH:
        raise SpecError(f"C2fAttn's guide width gc {gc} is not the text features' {TEXT_WIDTH}")
    t.use("Conv", {}, kit.conv_block)
    text = world_text(t)
    block = f"C2fAttn_{u.n}" + ("" if text == "txt_feats" else f"_{text.split('.')[1]}")  # reading a row's text
    t.layers.append(t.use(block, {"name": u.name, "c2": c2, "c": c, "nh": nh, "hc": c // nh, "root": (c // nh) ** 0.5,
                                  "shortcut": bool(shortcut), "g": g, "from": u.source()},
                          lambda: c2fattn_block(kit, t, u.n, text)))
    return c2


def write_image_pooling_attn(kit: ModuleType, t: Any, u: Any) -> Any:
    """ImagePoolingAttn(ec, ch, ct=512, nh=8, k=3): the text features attend to k × k max-pooled cells of each map
    (a 1×1 conv with bias to ec, an adaptive max pool, viewed as k² tokens), joined and transposed; query, key and
    value each a LayerNorm and a Linear; both einsums as torch runs them (bmm of permuted views, the second's
    output copied where reshape cannot view it); proj, · 1.0 (a new tensor), + the text. Its output is the new text
    features, which the C2fAttn rows after it read; its channels are parse_model's stale c2 (the row before's)."""
    ec = kit._int(u.args[0], "ec")
    ct, nh, k = kit._int(u.arg(1, TEXT_WIDTH), "ct"), kit._int(u.arg(2, 8), "nh"), kit._int(u.arg(3, 3), "k")
    if u.arg(4, False):
        raise SpecError("ImagePoolingAttn with a learned scale is not read yet")
    if ct != TEXT_WIDTH or ec % nh:
        raise SpecError(f"ImagePoolingAttn's ct {ct} must be the text's {TEXT_WIDTH}, its ec {ec} a multiple of nh")
    text, h, hc, tokens = world_text(t), u.name, ec // nh, k * k * len(u.sources)
    views = []
    for i, x in enumerate(u.sources):
        t.layers += [{"conv": {"name": f"{h}.projections.{i}", "filters": ec, "kernel": 1, "from": x}},
                     {"adaptive_maxpool": {"name": f"{h}.im_pools.{i}", "output": k}},
                     {"reshape": {"name": f"{h}.im_pools.{i}.view", "shape": [ec, k * k]}}]
        views.append(f"{h}.im_pools.{i}.view")
    t.layers += [{"cat": {"name": f"{h}.x_cat", "axis": 1, "from": views}},
                 {"transpose": {"name": f"{h}.x", "axes": [0, 1]}}]
    for part, source in (("query", text), ("key", f"{h}.x"), ("value", f"{h}.x")):
        t.layers += [{"layernorm": {"name": f"{h}.{part}.0", "axis": "last", "eps": 1e-5, "from": source}},
                     {"linear": {"name": f"{h}.{part}.1", "units": ec}}]
    n = TEXT_CLASSES
    t.layers += [{"reshape": {"name": f"{h}.q", "shape": [n, nh, hc], "from": f"{h}.query.1"}},
                 {"permute": {"name": f"{h}.q_t", "dims": [1, 0, 2]}},
                 {"reshape": {"name": f"{h}.k", "shape": [tokens, nh, hc], "from": f"{h}.key.1"}},
                 {"permute": {"name": f"{h}.k_t", "dims": [1, 2, 0]}},
                 {"matmul": {"name": f"{h}.aw", "from": [f"{h}.q_t", f"{h}.k_t"], "function": "torch.einsum"}},
                 {"scalar": {"name": f"{h}.aw_scaled", "op": "div", "value": hc ** 0.5}},
                 {"softmax": {"name": f"{h}.softmax", "axis": 2, "function": "F.softmax"}},
                 {"reshape": {"name": f"{h}.v", "shape": [tokens, nh, hc], "from": f"{h}.value.1"}},
                 {"permute": {"name": f"{h}.v_t", "dims": [1, 0, 2]}},
                 {"matmul": {"name": f"{h}.attended", "from": [f"{h}.softmax", f"{h}.v_t"],
                             "function": "torch.einsum"}},
                 {"permute": {"name": f"{h}.attended_t", "dims": [1, 0, 2]}},
                 {"contiguous": {"name": f"{h}.attended_copy"}},  # reshape copies the permuted view
                 {"reshape": {"name": f"{h}.attended_flat", "shape": [n, ec]}},
                 {"linear": {"name": f"{h}.proj", "units": ct}},
                 {"scalar": {"name": f"{h}.scaled", "op": "mul", "value": 1.0}},
                 {"add": {"name": f"{h}.text", "from": [f"{h}.scaled", text]}}]
    t.text = f"{h}.text"
    return t.ch[-1], f"{h}.text"


def write_world_detect(kit: ModuleType, t: Any, u: Any) -> Any:
    """WorldDetect(nc, embed, with_bn): per level the box branch (as Detect's) and the class branch (two 3×3 Conv, a
    1×1 conv to embed) with its contrastive head against the text copy, joined per level, flattened and joined along
    the anchors, split into boxes and scores, then Detect's eval decoding. The class count is the text's (80)."""
    embed, with_bn = kit._int(u.arg(1, 512), "embed"), bool(u.arg(2, False))
    if embed != TEXT_WIDTH:
        raise SpecError(f"WorldDetect's embed {embed} is not the text features' {TEXT_WIDTH}")
    t.use("Conv", {}, kit.conv_block)
    world_text(t)
    h, ch = u.name, u.c1
    c2, c3 = max(16, ch[0] // 4, t.reg_max * 4), max(ch[0], min(kit._int(u.arg(0, t.nc), "nc"), 100))
    no = 4 * t.reg_max + TEXT_CLASSES
    views = []
    for i, x in enumerate(u.sources):
        p = f"{h}.cv2.{i}"
        t.layers += [{"Conv": kit.conv_settings(f"{p}.0", c2, 3, source=x)},
                     {"Conv": kit.conv_settings(f"{p}.1", c2, 3)},
                     {"conv": {"name": f"{p}.2", "filters": 4 * t.reg_max, "kernel": 1}}]
        q = f"{h}.cv3.{i}"
        t.layers += [{"Conv": kit.conv_settings(f"{q}.0", c3, 3, source=x)},
                     {"Conv": kit.conv_settings(f"{q}.1", c3, 3)},
                     {"conv": {"name": f"{q}.2", "filters": embed, "kernel": 1}},
                     {"contrastive": {"name": f"{h}.cv4.{i}", "norm": "bn" if with_bn else "l2",
                                      "from": [f"{q}.2", "txt_feats_clone"]}},
                     {"concat": {"name": f"{h}.x.{i}", "from": [f"{p}.2", f"{h}.cv4.{i}"]}},
                     {"flatten": {"name": f"{h}.x.{i}.view", "start": 1}}]
        views.append(f"{h}.x.{i}.view")
    t.layers += [{"cat": {"name": f"{h}.x_cat", "axis": 1, "from": views}},
                 {"slice": {"name": f"{h}.boxes", "axis": 0, "start": 0, "end": 4 * t.reg_max, "from": f"{h}.x_cat"}},
                 {"slice": {"name": f"{h}.scores", "axis": 0, "start": 4 * t.reg_max, "end": no,
                            "from": f"{h}.x_cat"}}]
    return decode(kit, t, u, f"{h}.boxes", f"{h}.scores", TEXT_CLASSES)


def _conv_params(c1: int, c2: int, k: int) -> tuple[int, int]:
    """(parameters, buffers) of ultralytics' Conv: a bias-free conv and a batch norm."""
    return c1 * c2 * k * k + 2 * c2, 2 * c2 + 1


def _yoloe_unused(ch: list[int], c3: int, embed: int) -> list[tuple[str, int, int]]:
    """(name, parameters, buffers) of what YOLOEDetect holds for prompts its default forward does not run: reprta
    (Residual(SwiGLUFFN(embed, embed)): w12 to 4 · embed, w3 back from half that) and savpe (SAVPE(ch, c3, embed):
    per level two 3×3 Convs and a 1×1 Conv, then 1×1 and 3×3 convs with bias and a Conv and conv on the prompt)."""
    reprta = embed * 4 * embed + 4 * embed + 2 * embed * embed + embed
    params = buffers = 0
    for x in ch:
        for c1, k in ((x, 3), (c3, 3), (x, 1)):
            p, b = _conv_params(c1, c3, k)
            params, buffers = params + p, buffers + b
    p, b = _conv_params(32, 16, 3)
    params += 3 * c3 * embed + embed + 3 * c3 * 16 * 9 + 16 + 16 * 9 + 16 + p + 16 * 16 * 9 + 16
    return [("reprta", reprta, 0), ("savpe", params, buffers + b)]


def write_yoloe_detect(kit: ModuleType, t: Any, u: Any, segment: bool = False, proto26: bool = False) -> Any:
    """YOLOEDetect(nc, embed, with_bn), YOLOESegment and YOLOESegment26(nc, nm, npr, embed, with_bn) in YOLOEModel's
    default forward (no text or visual prompt, not fused): the class embeddings are torch.zeros(1, 80, 512) joined
    alone (get_cls_pe's torch.cat), made before the head runs; per level the box branch (as Detect's) and the class
    branch (Detect's, legacy or depthwise, ending in a 1×1 conv to embed) with its BNContrastiveHead against them;
    the segment heads' mask coefficients (cv5); an end-to-end head (end2end: True, YOLOE-26) runs the same again as
    its one-to-one copy (computed in eval, not decoded); Detect's eval decoding of the one-to-many head's 80
    classes (reg_max 1: no DFL), the mask coefficients joined after. YOLOESegment's Proto and YOLOESegment26's
    Proto26 (as Segment26's) are written first, as Segment's. Its reprta and savpe, which only prompts run, are
    ``unused`` layers."""
    nm = kit._int(u.arg(1, 32), "nm") if segment else 0
    if segment:
        npr = t.width_of(kit._int(u.arg(2, 256), "npr"), u.row.locs[3])
    embed = kit._int(u.arg(3 if segment else 1, 512), "embed")
    if embed != TEXT_WIDTH or not u.arg(4 if segment else 2, True):
        raise SpecError(f"YOLOE's heads take embed {TEXT_WIDTH} and with_bn true (its prompt-free embeddings' "
                        f"width), got {embed}")
    t.use("Conv", {}, kit.conv_block)
    h, ch = u.name, u.c1
    nc = kit._int(u.arg(0, t.nc), "nc")
    c3 = max(ch[0], min(nc, 100))
    if c3 > embed:
        raise SpecError(f"YOLOE's class branch width {c3} is above its embedding's {embed}")
    for name, weights, buffers in _yoloe_unused(ch, c3, embed):
        t.layers.append({"unused": {"name": f"{h}.{name}", "module": f"{h}.{name}", "weights": weights,
                                    "buffers": buffers, "from": u.sources[0]}})
    if proto26:
        kit.proto26(t, u, npr, nm)
    elif segment:
        p = f"{h}.proto"
        t.layers += [{"Conv": kit.conv_settings(f"{p}.cv1", npr, 3, source=u.sources[0])},
                     {"deconv": {"name": f"{p}.upsample", "filters": npr, "kernel": 2, "stride": 2}},
                     {"Conv": kit.conv_settings(f"{p}.cv2", npr, 3)},
                     {"Conv": kit.conv_settings(f"{p}.cv3", nm, 1)}]
    t.layers += [{"const_tensor": {"name": "cls_pe.zeros", "shape": [TEXT_CLASSES, TEXT_WIDTH], "held": False,
                                   "from": u.sources[0]}},
                 {"cat": {"name": "cls_pe", "axis": 0, "from": ["cls_pe.zeros"]}}]
    boxes, scores, mc = _yoloe_forward_head(kit, t, u, "", c3, embed, nm)
    if t.end2end:
        _yoloe_forward_head(kit, t, u, "one2one_", c3, embed, nm)
    decode(kit, t, u, boxes, scores, TEXT_CLASSES)
    if not segment:
        return 4 + TEXT_CLASSES, f"{h}.out"
    t.layers.append({"cat": {"name": f"{h}.segment_out", "axis": 0, "from": [f"{h}.out", mc]}})
    return 4 + TEXT_CLASSES + nm, f"{h}.segment_out"


def _yoloe_forward_head(kit: ModuleType, t: Any, u: Any, prefix: str, c3: int, embed: int,
                        nm: int) -> tuple[str, str, str]:
    """YOLOEDetect.forward_head (YOLOESegment's with its mask coefficients, ``nm`` above 0) on the branches named
    ``prefix``: the joined boxes, contrastive scores and mask coefficients ("" when none)."""
    h, ch = u.name, u.c1
    c2 = max(16, ch[0] // 4, t.reg_max * 4)
    boxes = kit._head_branches(t, h, u, f"{prefix}cv2", lambda c: [("0", c2, 3, 1), ("1", c2, 3, 1)],
                               4 * t.reg_max, f"{prefix}boxes")
    views = []
    for i, (x, c) in enumerate(zip(u.sources, ch)):
        convs = [("0", c3, 3, 1), ("1", c3, 3, 1)] if t.legacy else \
            [("0.0", c, 3, c), ("0.1", c3, 1, 1), ("1.0", c3, 3, c3), ("1.1", c3, 1, 1)]
        q, k = f"{h}.{prefix}cv3.{i}", f"{h}.{prefix}cv4.{i}"
        for j, (part, width, size, g) in enumerate(convs):
            t.layers.append({"Conv": kit.conv_settings(f"{q}.{part}", width, size, g=g,
                                                       source=x if j == 0 else None)})
        t.layers += [{"conv": {"name": f"{q}.2", "filters": embed, "kernel": 1}},
                     {"contrastive": {"name": k, "norm": "bn", "from": [f"{q}.2", "cls_pe"]}},
                     {"flatten": {"name": f"{k}.view", "start": 1, "function": ".reshape"}}]
        views.append(f"{k}.view")
    t.layers.append({"cat": {"name": f"{h}.{prefix}scores", "axis": 1, "from": views}})
    if not nm:
        return boxes, f"{h}.{prefix}scores", ""
    c5 = max(ch[0] // 4, nm)
    mc = kit._head_branches(t, h, u, f"{prefix}cv5", lambda c: [("0", c5, 3, 1), ("1", c5, 3, 1)], nm,
                            f"{prefix}mask_coefficient")
    return boxes, f"{h}.{prefix}scores", mc


def resnet_block(kit: ModuleType, t: Any) -> dict:
    """ResNetBlock: 1×1 Conv, 3×3 Conv at stride s, 1×1 Conv to e · c2 without activation, plus the input (or, where
    the stride or the width changes, a 1×1 Conv of it at stride s without activation: shortcut.0), F.relu."""
    t.use("Conv", {}, kit.conv_block)
    return {"args": {"c2": None, "s": 1, "e": 4, "proj": False},
            "layers": [{"Conv": {"name": "cv1", "c2": "c2"}},
                       {"Conv": {"name": "cv2", "c2": "c2", "k": 3, "s": "s", "p": 1}},
                       {"Conv": {"name": "cv3", "c2": "e * c2", "act": False}},
                       {"if": "proj", "layers": [
                           {"Conv": {"name": "shortcut.0", "c2": "e * c2", "s": "s", "act": False, "from": "in"}},
                           {"add": {"name": "add", "from": ["cv3", "shortcut.0"]}}]},
                       {"if": "not proj", "layers": [{"add": {"name": "add", "from": ["cv3", "in"]}}]},
                       {"relu": {"name": "relu", "function": "F.relu"}}]}


def write_resnet_layer(kit: ModuleType, t: Any, u: Any) -> Any:
    """ResNetLayer(c1, c2, s, is_first, n, e=4), unscaled as parse_model leaves it: the first a 7×7 Conv at stride 2
    and a 3×3 max pool at stride 2 (layer.0, layer.1); else n ResNetBlocks (layer.0 at stride s, the rest at 1)."""
    c1, c2 = kit._int(u.args[0], "c1"), kit._int(u.args[1], "c2")
    s, first = kit._int(u.arg(2, 1), "the stride"), bool(u.arg(3, False))
    n, e = kit._int(u.arg(4, 1), "n"), kit._int(u.arg(5, 4), "e")
    if c1 != u.c1[0]:
        raise SpecError(f"ResNetLayer's c1 {c1} is not its input's {u.c1[0]} channels")
    t.use("Conv", {}, kit.conv_block)
    if first:
        t.layers += [{"Conv": kit.conv_settings(f"{u.name}.layer.0", c2, 7, 2, 3, source=u.source())},
                     {"maxpool": {"name": f"{u.name}.layer.1", "kernel": 3, "stride": 2, "pad": 1}}]
        return c2, f"{u.name}.layer.1"
    src = u.source()
    for j in range(n):
        cin, stride = (c1, s) if j == 0 else (e * c2, 1)
        t.layers.append(t.use("ResNetBlock", {"name": f"{u.name}.layer.{j}", "c2": c2, "s": stride, "e": e,
                                              "proj": stride != 1 or cin != e * c2, "from": src},
                              lambda: resnet_block(kit, t)))
        src = f"{u.name}.layer.{j}"
    return e * c2, src


# torchvision's ResNets as ultralytics' TorchVision module holds them: the block, its expansion, blocks per stage
TORCHVISION_RESNETS = {"resnet18": ("basic", 1, (2, 2, 2, 2)), "resnet34": ("basic", 1, (3, 4, 6, 3)),
                       "resnet50": ("bottleneck", 4, (3, 4, 6, 3)), "resnet101": ("bottleneck", 4, (3, 4, 23, 3)),
                       "resnet152": ("bottleneck", 4, (3, 8, 36, 3))}


def torchvision_block(bottleneck: bool) -> dict:
    """torchvision's BasicBlock (3×3, 3×3) or Bottleneck (1×1, 3×3 at the stride, 1×1 to 4 · width), each conv
    without bias and batch-normed, ReLU in place between; the shortcut (downsample: a 1×1 conv at the stride and a
    batch norm, where the stride or the width changes) added into the last batch norm's output in place
    (out += identity), then ReLU in place."""
    convs = ([("conv1", "width", 1, 1), ("conv2", "width", 3, "s"), ("conv3", "4 * width", 1, 1)] if bottleneck else
             [("conv1", "width", 3, "s"), ("conv2", "width", 3, 1)])
    layers: list[dict] = []
    for j, (name, filters, k, stride) in enumerate(convs):
        layers += [{"conv": {"name": name, "filters": filters, "kernel": k, "stride": stride, "pad": k // 2,
                             "bias": False, **({"from": "in"} if j == 0 else {})}},
                   {"bn": {"name": f"bn{j + 1}", "eps": 1e-5}}]
        if j < len(convs) - 1:
            layers.append({"relu": {"name": f"relu{j + 1}", "inplace": True}})
    last = f"bn{len(convs)}"
    out = convs[-1][1]
    layers += [{"if": "down", "layers": [
                   {"conv": {"name": "downsample.0", "filters": out, "kernel": 1, "stride": "s", "bias": False,
                             "from": "in"}},
                   {"bn": {"name": "downsample.1", "eps": 1e-5}},
                   {"add": {"name": "add", "inplace": True, "from": [last, "downsample.1"]}}]},
               {"if": "not down", "layers": [{"add": {"name": "add", "inplace": True, "from": [last, "in"]}}]},
               {"relu": {"name": "relu", "inplace": True}}]
    return {"args": {"width": None, "s": 1, "down": False}, "layers": layers}


def write_torchvision(kit: ModuleType, t: Any, u: Any) -> Any:
    """TorchVision(c2, model, weights, unwrap, truncate, split) for torchvision's ResNets, unwrapped and truncated
    by 2 (the average pool and the fc) as the shipped classifier YAML asks: conv1, bn1, ReLU (in place), the max
    pool, then the four stages (m.0 .. m.7). The weights are not read (nothing is downloaded): they change no size."""
    c2, model = kit._int(u.args[0], "c2"), u.args[1]
    unwrap, truncate, split = bool(u.arg(3, True)), kit._int(u.arg(4, 2), "truncate"), bool(u.arg(5, False))
    if model not in TORCHVISION_RESNETS or not unwrap or truncate != 2 or split:
        raise SpecError(f"TorchVision reads torchvision's {', '.join(TORCHVISION_RESNETS)} unwrapped, truncated by 2 "
                        f"and not split; got {model!r}, unwrap {unwrap}, truncate {truncate}, split {split}")
    kind, expansion, stages = TORCHVISION_RESNETS[model]
    if c2 != 512 * expansion:
        raise SpecError(f"TorchVision's {model} ends with {512 * expansion} channels, the YAML says {c2}")
    h = f"{u.name}.m"
    t.layers += [{"conv": {"name": f"{h}.0", "filters": 64, "kernel": 7, "stride": 2, "pad": 3, "bias": False,
                           "from": u.source()}},
                 {"bn": {"name": f"{h}.1", "eps": 1e-5}},
                 {"relu": {"name": f"{h}.2", "inplace": True}},
                 {"maxpool": {"name": f"{h}.3", "kernel": 3, "stride": 2, "pad": 1}}]
    block, cin = f"TorchVision_{kind}", 64
    for i, n in enumerate(stages):
        width = 64 * 2 ** i
        for j in range(n):
            s = 2 if i and not j else 1
            t.layers.append(t.use(block, {"name": f"{h}.{4 + i}.{j}", "width": width, "s": s,
                                          "down": s != 1 or cin != width * expansion},
                                  lambda: torchvision_block(kind == "bottleneck")))
            cin = width * expansion
    return c2, f"{h}.7.{stages[-1] - 1}"


def decode(kit: ModuleType, t: Any, u: Any, boxes: str, scores: str, nc: int) -> Any:
    """Detect._inference: the anchors and strides of the maps, the DFL of the box logits, dist2bbox times the
    strides, joined with the scores' sigmoid."""
    h = u.name
    points = {"name": f"{h}.anchors", "strides": [1] * len(u.c1), "from": list(u.sources)}
    strides = {"name": f"{h}.strides", "strides": [1] * len(u.c1), "output": "strides", "from": list(u.sources)}
    t.layers += [{"anchors": points}, {"anchors": strides}]
    t.heads += [points, strides]
    dist = boxes
    if t.reg_max > 1:
        t.layers.append(t.use("DFL", {"name": f"{h}.dfl", "c1": t.reg_max, "from": dist}, kit.dfl_block))
        dist = f"{h}.dfl"
    kit._dist2bbox(t, h, dist)
    t.layers.append({"sigmoid": {"name": f"{h}.sigmoid", "from": scores}})
    t.layers.append({"cat": {"name": f"{h}.out", "axis": 0, "from": [f"{h}.dbox", f"{h}.sigmoid"]}})
    return 4 + nc, f"{h}.out"


def modules(kit: ModuleType) -> dict[str, tuple[int, int, Any]]:
    """module name -> (fewest args, most args, writer), as cnnsize.importers.yolo.MODULES, its helpers from ``kit``
    (that module)."""
    return {"C2fAttn": (3, 7, partial(write_c2fattn, kit)),
            "ImagePoolingAttn": (1, 5, partial(write_image_pooling_attn, kit)),
            "WorldDetect": (0, 3, partial(write_world_detect, kit)),
            "YOLOEDetect": (0, 3, partial(write_yoloe_detect, kit)),
            "YOLOESegment": (0, 5, partial(write_yoloe_detect, kit, segment=True)),
            "YOLOESegment26": (0, 5, partial(write_yoloe_detect, kit, segment=True, proto26=True)),
            "ResNetLayer": (4, 6, partial(write_resnet_layer, kit)),
            "TorchVision": (2, 6, partial(write_torchvision, kit))}
