"""Every counting convention against the tool itself, run in the same test on the same module.

For each bundled spec, cnnsize's executor builds the network (zero weights) and each tool measures it
as its documentation says; ``analyze(spec, count=NAME)`` must give the same total exactly, and the
same figure per layer where the tool reports per layer (torchinfo, fvcore, torchscan). Nothing here
is a copied number. The tools are the versions pinned in pyproject.toml's ``zoo`` extra.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import pytest

import cnnsize
from cnnsize.core.errors import CnnsizeError
from cnnsize.layers import REGISTRY
from cnnsize.passes import conventions
from cnnsize.spec.sources import bundled_names

from .conftest import need

pytestmark = pytest.mark.zoo

# every kind the bundled specs leave out, in two small networks: the rules for them are checked too
TOURS = {
    "tour_a": """
name: tour_a
input: [8, 12, 12]
layers:
  - conv: {name: conv, filters: 8, kernel: 3, pad: 1, bias: false}
  - deconv: {name: deconv, filters: 6, kernel: 3, stride: 2, pad: 1, output_pad: 1}
  - leaky_relu: {name: leaky}
  - upsample: {name: up_nearest, scale: 2}
  - avgpool: {name: avg, kernel: 3, stride: 2, pad: 1, ceil_mode: true, count_include_pad: false}
  - upsample: {name: up_bilinear, scale: 2, mode: bilinear}
  - gelu: {name: gelu}
  - layernorm: {name: ln}
  - zeropad: {name: pad, pad: 1}
  - softmax: {name: softmax}
  - adaptive_maxpool: {name: amax, output: 5}
  - identity: {name: ident}
  - global_maxpool: {name: gmax}
  - flatten: {name: flat}
  - fc: {name: fc, units: 4, bias: false}
  - softmax: {name: probs}
""",
    "tour_b": """
name: tour_b
input: [3, 10, 10]
layers:
  - locally_connected: {name: lc, filters: 4, kernel: 3}
  - relu6: {name: relu6, inplace: true}
  - conv: {name: conv1d_like, filters: 6, kernel: [1, 3]}
  - adaptive_avgpool: {name: aavg, output: [3, 2]}
  - sigmoid: {name: sig}
  - dropout: {name: drop, p: 0.0}
  - fc: {name: fc, units: 3}
""",
    # newer norms, activations, padding and views, a ConvNeXt-style channels-last MLP and Swin-style windows
    "tour_c": """
name: tour_c
input: [8, 10, 10]
layers:
  - reflectpad: {name: rpad, pad: 1}
  - groupnorm: {name: gn, groups: 2}
  - elu: {name: elu, alpha: 0.5}
  - replicatepad: {name: reppad, pad: [1, 2]}
  - instancenorm: {name: inorm}
  - prelu: {name: prelu}
  - conv: {name: dw, filters: 8, kernel: 3, groups: 8}
  - instancenorm: {name: inorm_affine, affine: true, track_running_stats: true}
  - prelu: {name: prelu_c, per_channel: true}
  - groupnorm: {name: gn_plain, groups: 4, affine: false}
  - channel_dropout: {name: cdrop, p: 0.2}
  - layer_scale: {name: ls}
  - stochastic_depth: {name: sd, p: 0.1}
  - add: {name: res, from: [sd, dw], inplace: true}
  - layernorm: {name: ln_c}
  - elu: {name: elu_inplace, inplace: true}
  - log_softmax: {name: logsm, axis: 0}
  - softmax: {name: sm_h, axis: 1}
  - permute: {name: hwc, dims: [1, 2, 0]}
  - roll: {name: roll, shifts: [1, 2], axes: [0, 1]}
  - window_partition: {name: wp, window: [2, 7]}
  - linear: {name: qkv, units: 24}
  - chunk: {name: q, chunks: 3, index: 0, axis: 2}
  - window_merge: {name: wm, window: [2, 7], size: [12, 14]}
  - layernorm: {name: ln_last, axis: last}
  - transpose: {name: tr, axes: [0, 2]}
  - contiguous: {name: cont}
  - reshape: {name: rs, shape: [8, 168]}
  - flatten: {name: flat, start: 0}
  - fc: {name: fc, units: 5}
""",
    # tokens and attention: ViT's patch embedding, class token, position embedding, multi-head attention; attention
    # written out with matmul and softmax, and with sdpa
    "tour_d": """
name: tour_d
input: [3, 8, 8]
layers:
  - patch_embed: {name: embed, filters: 8, patch: 2}
  - class_token: {name: cls}
  - pos_embed: {name: pos}
  - layernorm: {name: ln, axis: last}
  - mha: {name: attn, heads: 2}
  - mha: {name: attn_nobias, heads: 4, bias: false}
  - layer_scale: {name: ls, axis: last}
  - add: {name: res, from: [ls, pos]}
  - linear: {name: q, units: 8}
  - reshape: {name: qh0, shape: [17, 2, 4]}
  - permute: {name: qh, dims: [1, 0, 2]}
  - linear: {name: k, units: 8, bias: false, from: res}
  - reshape: {name: kh0, shape: [17, 2, 4]}
  - permute: {name: kh, dims: [1, 0, 2]}
  - sdpa: {name: sdpa, from: [qh, kh, kh]}
  - transpose: {name: kt, axes: [1, 2], from: kh}
  - matmul: {name: scores, from: [qh, kt]}
  - softmax: {name: probs, axis: 2}
  - matmul: {name: mix, from: [probs, kh]}
  - add: {name: both, from: [mix, sdpa]}
  - select: {name: first, axis: 0, index: 1}
  - select: {name: cls_out, axis: 0, index: 0}
  - linear: {name: head, units: 3}
""",
    # arithmetic written out, as imported networks have it: a normalization by hand (mean, sub, pow, add, div), each
    # scalar operation (ptflops counts x.add(c) and x.mul(c), the two it patches, and not in place), slices
    "tour_e": """
name: tour_e
input: [8, 10, 10]
layers:
  - conv: {name: c1, filters: 8, kernel: 3, pad: 1}
  - mean: {name: mu, axes: 0, keepdim: true}
  - sub: {name: centered, from: [c1, mu]}
  - scalar: {name: sq, op: pow, value: 2}
  - mean: {name: var, axes: 0, keepdim: true}
  - scalar: {name: eps, op: add, value: 0.00001}
  - scalar: {name: std, op: pow, value: 0.5}
  - div: {name: norm, from: [centered, std]}
  - scalar: {name: scale, op: mul, value: 2}
  - scalar: {name: shift, op: sub, value: 1}
  - scalar: {name: flip, op: rsub, value: 1}
  - scalar: {name: third, op: div, value: 3}
  - scalar: {name: add_i, op: add, value: 1, inplace: true}
  - scalar: {name: mul_i, op: mul, value: 0.5, inplace: true}
  - sub: {name: sub_i, from: [mul_i, norm], inplace: true}
  - div: {name: div_i, from: [sub_i, std], inplace: true}
  - slice: {name: part, axis: 0, start: 2, end: 6}
  - slice: {name: rows, axis: 1, step: 2}
  - mean: {name: pooled, axes: [1, 2]}
  - fc: {name: fc, units: 3}
""",
    # Swin beside specs/swin_t.yaml: v2's cosine attention and position-bias MLP, windows that pad the input, no
    # biases, odd sizes for patch merging; Video Swin's 3D windows, one shrunk to the input
    "tour_swin": """
name: tour_swin
input: [3, 20, 20]
layers:
  - conv: {name: embed, filters: 8, kernel: 2, stride: 2}
  - permute: {name: hwc, dims: [1, 2, 0]}
  - swin_attention: {name: attn_v2, heads: 2, window: 4, shift: 2, version: v2, cpb_hidden: 16}
  - layernorm: {name: ln, axis: last}
  - patch_merge: {name: merge}
  - linear: {name: reduce, units: 16, bias: false}
  - swin_attention: {name: attn_v1, heads: 4, window: 3, shift: 1, qkv_bias: false, proj_bias: false}
  - patch_merge: {name: merge_odd}
  - swin_attention: {name: attn_one, heads: 2, window: 7, shift: 3, version: v2, cpb_hidden: 8}
""",
    "tour_swin3d": """
name: tour_swin3d
input: [3, 4, 12, 12]
layers:
  - conv: {name: embed, filters: 8, kernel: [2, 4, 4], stride: [2, 4, 4]}
  - permute: {name: thwc, dims: [1, 2, 3, 0]}
  - swin_attention: {name: attn, heads: 2, window: [4, 2, 2], shift: [2, 1, 1], shrink: true}
  - patch_merge: {name: merge}
  - layernorm: {name: ln, axis: last}
""",
    # MaxViT's and MViT's fused kinds as cnnsize's executor builds them (their torchvision modules: further below)
    "tour_fused": """
name: tour_fused
input: [32, 8]
layers:
  - class_token: {name: cls}
  - mvit_pos_embed: {name: pos, size: [2, 4, 4]}
  - mvit_attention: {name: attn_v1, dim: 16, heads: 2, size: [2, 4, 4], kernel_q: 3, stride_q: [1, 2, 2],
                     kernel_kv: 3, stride_kv: [1, 2, 2]}
  - mvit_pool: {name: skip, size: [2, 4, 4], kernel: [1, 3, 3], stride: [1, 2, 2], from: pos}
  - linear: {name: widen, units: 16}
  - add: {name: res, from: [widen, attn_v1]}
  - mvit_attention: {name: attn_v2, dim: 16, heads: 2, size: [2, 2, 2], kernel_q: 3, kernel_kv: 3, stride_kv: 1,
                     residual_pool: true, rel_pos: true}
  - reshape: {name: groups, shape: [1, 9, 16]}
  - maxvit_attention: {name: window, heads: 2, size: 3}
""",
}
# every kind's own examples (LayerKind.examples, in the kind's file) run through the nine tools too
EXAMPLES = {name: {"name": name, "input": shape, "layers": layers, "fit": "floor"}
            for kind in REGISTRY.values() for name, (shape, layers) in kind.examples.items()}
SPECS = bundled_names() + list(TOURS) + list(EXAMPLES)
# the bundled detectors on ResNet-50 and VGG-16 (35 to 255 GMACs: each tool's forward on CPU takes long): -m slow;
# SSDlite and the 320 Faster R-CNN (detections and roi_align among the layers) stay in the zoo set
HEAVY = ("fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn",
         "retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2", "fcos_resnet50_fpn", "ssd300_vgg16",
         "maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2", "keypointrcnn_resnet50_fpn")


def _spec(name: str):
    return TOURS.get(name) or EXAMPLES.get(name) or name


def _leaf_names(model) -> set[str]:
    """Spec layers that hold no other spec layer in torch (a layer 'a' beside 'a.b' holds 'a.b' as a submodule)."""
    names = list(model.layer_modules)
    return {n for n in names if not any(o.startswith(n + ".") for o in names)}


@pytest.fixture(scope="module")
def built():
    torch = need("torch")
    cache: dict = {}

    def get(name):
        if name not in cache:
            cache.clear()  # one model at a time: the zoo's largest are hundreds of MB
            a = cnnsize.analyze(_spec(name))
            xs = tuple(torch.zeros(1, *shape) for shape in a.inputs.values())  # several inputs: a tuple
            cache[name] = (cnnsize.build(a).eval(), xs[0] if len(xs) == 1 else xs, a)
        return cache[name]

    return get


def _quiet(fn):
    out, err = contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO())
    with warnings.catch_warnings(), out, err:
        warnings.simplefilter("ignore")
        return fn()


def run_torchinfo(model, x):
    torchinfo = need("torchinfo")
    stats = _quiet(lambda: torchinfo.summary(model, input_data=list(x) if isinstance(x, tuple) else x, verbose=0))
    if not hasattr(model, "layer_modules"):  # not built by cnnsize: the total only
        return stats.total_mult_adds, None
    names = {id(m): n for n, m in model.layer_modules.items()}
    per_layer = {names[id(li.module)]: li.macs for li in stats.summary_list
                 if li.is_leaf_layer and id(li.module) in names}
    return stats.total_mult_adds, per_layer


def run_fvcore(model, x):
    fvcore = need("fvcore.nn")
    flops = fvcore.FlopCountAnalysis(model, x)
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    total = _quiet(flops.total)
    if not hasattr(model, "layer_modules"):
        return total, None
    by_module = flops.by_module()
    return total, {n: by_module.get(n, 0) for n in _leaf_names(model)}


def run_torch(model, x):
    torch = need("torch")
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as mode:
        model(*x) if isinstance(x, tuple) else model(x)
    return mode.get_total_flops(), None


def _ptflops(backend):
    def run(model, x):
        ptflops = need("ptflops")
        from ptflops.pytorch_ops import (
            bn_flops_counter_hook,
            linear_flops_counter_hook,
            multihead_attention_counter_hook,
        )

        from cnnsize.layers.nn.modules import ChannelLayerNorm, FlattenLinear, SelfAttention

        # the pytorch backend matches module types exactly: tell it that the executor's FlattenLinear,
        # ChannelLayerNorm and SelfAttention are the nn.Linear, nn.LayerNorm and nn.MultiheadAttention they
        # subclass (the hooks it uses for those)
        hooks = {FlattenLinear: linear_flops_counter_hook, ChannelLayerNorm: bn_flops_counter_hook,
                 SelfAttention: multihead_attention_counter_hook}
        several = {"input_constructor": lambda _: {"x": x}} if isinstance(x, tuple) else {}  # forward(x=(a, b))
        first = x[0] if isinstance(x, tuple) else x
        macs, _ = _quiet(lambda: ptflops.get_model_complexity_info(
            model, tuple(first.shape[1:]), as_strings=False, print_per_layer_stat=False, backend=backend,
            custom_modules_hooks=hooks if backend == "pytorch" else {}, **several))
        return macs, None

    return run


def run_thop(model, x):
    thop = need("thop")
    macs, _ = _quiet(lambda: thop.profile(model, inputs=x if isinstance(x, tuple) else (x,), verbose=False))
    return int(macs), None


def _torchscan(metric):
    def run(model, x):
        torchscan = need("torchscan")
        shapes = [tuple(t.shape[1:]) for t in x] if isinstance(x, tuple) else tuple(x.shape[1:])
        report = _quiet(lambda: torchscan.crawl_module(model, shapes))
        if not hasattr(model, "layer_modules"):
            return report["totals"][metric]["known_value"], None
        leaves = _leaf_names(model)
        per_layer = {layer["path"]: layer["metrics"][metric]["known_value"] for layer in report["layers"]
                     if layer["path"] in leaves and metric in layer["metrics"]}
        return report["totals"][metric]["known_value"], per_layer

    return run


TOOLS = {"torchinfo": run_torchinfo, "torch": run_torch, "fvcore": run_fvcore, "ptflops": _ptflops("pytorch"),
         "ptflops-aten": _ptflops("aten"), "thop": run_thop, "torchscan-flops": _torchscan("module_flops"),
         "torchscan-macs": _torchscan("macs"), "torchscan-dmas": _torchscan("dmas")}


def as_built(a, count: str):
    """The analysis counted as cnnsize's executor builds the network: every layer a module of its own. A bundled
    spec says where the network it describes computes a layer with a function (``function: F.relu``, as torchvision
    writes it); the executor builds that layer as a module, so the tools run on the build see it as one. The spec's
    own figures (the network's) are checked against torchvision's modules in test_bundled_spec_on_torchvision."""
    for row in a.layers:
        row.function = None
    return conventions.apply(a, count)


# kinds whose rules a test of their own checks against every tool, not a network of SPECS
CHECKED_APART = {"unused": "test_unused_parameters_against_the_tool"}


def test_every_checked_kind_is_run_against_every_tool():
    """The conventions' coverage is what the kinds declare (``tools_checked`` in each kind's own class): every kind
    declaring it sits in a network of SPECS, which test_convention_reproduces_tool runs through all nine tools, or
    has a test of its own here; and every kind those networks hold is declared checked (else it is refused)."""
    seen = {r.type for spec in SPECS for r in cnnsize.analyze(_spec(spec)).layers[1:] if not r.kind.is_input}
    declared = conventions.checked_kinds()
    assert sorted(declared - seen - set(CHECKED_APART)) == [], "checked kinds no network here runs through the tools"
    # a kind with rules for some tools only (contrastive: thop's) runs through those (test_convention_reproduces_tool)
    partial = {k for k in seen - declared if REGISTRY[k].rules_for_tools()}
    assert sorted(seen - declared - partial) == [], \
        "kinds these networks run through every tool: declare tools_checked = True"
    assert all(callable(globals().get(test)) for test in CHECKED_APART.values())


@pytest.mark.parametrize("count", list(TOOLS))
@pytest.mark.parametrize("spec", [pytest.param(s, marks=pytest.mark.slow) if s in HEAVY else s
                                  for s in SPECS])  # the spec varies slowest: each model is built once
def test_convention_reproduces_tool(count, spec, built):
    kinds = {r.type for r in cnnsize.analyze(_spec(spec)).layers[1:] if not r.kind.is_input}  # inputs: no kind
    # kinds not checked against every tool, less those holding a rule for this one (checked here, against it)
    unchecked = sorted(k for k in kinds - conventions.checked_kinds() if count not in REGISTRY[k].rules_for_tools())
    if unchecked and count != "torch":  # kinds not checked against this tool yet: refused in one line, never guessed
        with pytest.raises(CnnsizeError, match="no rule yet"):  # (docs/conventions.md's coverage lists them)
            cnnsize.analyze(_spec(spec), count=count)
        return
    model, x, _ = built(spec)
    total, per_layer = TOOLS[count](model, x)
    a = as_built(cnnsize.analyze(_spec(spec)), count)
    if per_layer:
        ours = {r.name: r.counted for r in a.layers[1:]}
        wrong = {n: (ours[n], v) for n, v in per_layer.items() if n in ours and ours[n] != v}
        assert not wrong, f"{count} on {spec}, per layer (cnnsize, tool): {dict(list(wrong.items())[:8])}"
    assert a.totals["counted"] == total, f"{count} on {spec}: cnnsize {a.totals['counted']}, tool {total}"


# torchvision's own modules, imported with cnnsize.from_torch: each tool runs on torchvision's network itself, for
# every model of torchvision's lists (classification, segmentation, video) that imports. These run in the default
# zoo set; the others with -m slow.
QUICK = ("alexnet", "vgg11_bn", "resnet18", "resnet50", "resnext50_32x4d", "googlenet", "mobilenet_v3_large",
         "squeezenet1_1", "mobilenet_v2", "densenet121", "inception_v3", "mnasnet0_5", "regnet_x_400mf",
         "wide_resnet50_2", "shufflenet_v2_x1_0", "efficientnet_b0", "convnext_tiny", "vit_b_16", "r3d_18",
         "fcn_resnet50", "swin_t")
# Where torchvision computes a layer with a function (F.relu in Inception's blocks, F.adaptive_avg_pool2d,
# x.mean([2, 3]), torch.flatten), the imported spec says so (``function: F.relu``) and each convention counts what
# its tool counts for that function: module hooks see none of it, ptflops counts the functions it patches.


def _torchvision_cases():
    from .test_import_zoo import CLASSIFICATION, SEGMENTATION, VIDEO

    for family, names in (("classification", CLASSIFICATION), ("segmentation", SEGMENTATION), ("video", VIDEO)):
        for name in names:
            marks = [] if name in QUICK else [pytest.mark.slow]
            for count in TOOLS:
                yield pytest.param(count, family, name, marks=marks, id=f"{name}-{count}")


def _called_again(model, x) -> set[str]:
    """The modules of a network that its forward calls more than once."""
    torch = need("torch")
    calls: dict[str, int] = {}

    def hook(name):
        def record(module, args, out):
            calls[name] = calls.get(name, 0) + 1
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return {n for n, c in calls.items() if c > 1}


def _torchvision_run(count, model, x) -> tuple:
    """The tool's total on torchvision's network and, where it reports per layer, its figure per leaf module by
    module name (the names the importer gives those layers)."""
    leaves = {n for n, m in model.named_modules() if not list(m.children())}
    if count == "torchinfo":
        names = {id(m): n for n, m in model.named_modules()}
        stats = _quiet(lambda: need("torchinfo").summary(model, input_data=x, verbose=0))
        return stats.total_mult_adds, {names[id(li.module)]: li.macs for li in stats.summary_list
                                       if li.is_leaf_layer and id(li.module) in names}
    if count == "fvcore":
        flops = need("fvcore.nn").FlopCountAnalysis(model, x)
        flops.unsupported_ops_warnings(False)
        flops.uncalled_modules_warnings(False)
        total = _quiet(flops.total)
        by_module = flops.by_module()
        return total, {n: by_module.get(n, 0) for n in leaves}
    if count.startswith("torchscan-"):
        metric = {"torchscan-flops": "module_flops", "torchscan-macs": "macs", "torchscan-dmas": "dmas"}[count]
        report = _quiet(lambda: need("torchscan").crawl_module(model, tuple(x.shape[1:])))
        return report["totals"][metric]["known_value"], {
            layer["path"]: layer["metrics"][metric]["known_value"] for layer in report["layers"]
            if layer["path"] in leaves and metric in layer["metrics"]}
    return TOOLS[count](model, x)


@pytest.fixture(scope="module")
def torchvision_model():
    """torchvision's network (no weights), its imported spec and an input; one network at a time, built once.
    A network that does not import (cnnsize.from_torch names the operation) is skipped: the import zoo test
    (tests/test_import_zoo.py) holds it."""
    torch, tv = need("torch"), need("torchvision")
    from .test_import_zoo import input_shape

    cache: dict = {}

    def get(family, name):
        if name not in cache:
            cache.clear()
            kwargs = {"weights": None, **({"weights_backbone": None} if family == "segmentation" else {})}
            if name in ("googlenet", "inception_v3"):
                kwargs.update(aux_logits=False, init_weights=False)
            module = {"classification": tv.models, "segmentation": tv.models.segmentation,
                      "video": tv.models.video}[family]
            model = getattr(module, name)(**kwargs).eval()
            shape = input_shape(family, name)
            try:
                imported = cnnsize.from_torch(model, shape)
            except cnnsize.CnnsizeError as exc:
                imported = exc
            cache[name] = (model, imported, torch.zeros(1, *shape))
        model, imported, x = cache[name]
        if isinstance(imported, cnnsize.CnnsizeError):
            pytest.skip(f"{name} does not import: {imported.one_line()}")
        return model, imported, x

    return get


@pytest.mark.parametrize("count,family,name", list(_torchvision_cases()))
def test_convention_on_torchvision(count, family, name, torchvision_model):
    """The same conventions on torchvision's networks, run on torchvision's modules themselves, in total and per
    layer (a layer the importer named after a leaf module) where the tool reports per layer. The one amount worked
    out from the network: what FlopCounterMode cannot see in nn.MultiheadAttention's fused inference path (see
    below). torchscan's reading of a pooling window given as one number (nn.MaxPool2d(3): 3 elements, not 9) is
    the convention's (the ``kscan`` fact), checked here on every torchvision network that pools so."""
    model, imported, x = torchvision_model(family, name)
    total, per_layer = _torchvision_run(count, model, x)
    a = cnnsize.analyze(imported.spec, count=count)
    expected = a.totals["counted"]
    if per_layer:
        ours = {r.name: r.counted for r in a.layers[1:]}
        # a module called more than once (a ResNet bottleneck's one ReLU, three times) is several layers of the
        # spec, and torchscan reports it by its last call: compared in the total only
        again = _called_again(model, x)
        compared = [n for n in per_layer if n in ours and n not in again]
        wrong = {n: (ours[n], per_layer[n]) for n in compared if ours[n] != per_layer[n]}
        assert compared and not wrong, f"{count} on {name}, per layer (cnnsize, tool): {dict(list(wrong.items())[:8])}"
    if count == "torch" and any(isinstance(m, need("torch").nn.MultiheadAttention) for m in model.modules()):
        # at inference nn.MultiheadAttention runs torch._native_multi_head_attention, a fused kernel without a FLOP
        # formula: FlopCounterMode counts nothing for the whole layer (cnnsize's executor runs the math path)
        expected -= sum(2 * r.macs for r in a.layers if r.type == "mha")
    assert total == expected, f"{count} on torchvision's {name}: tool {total}, cnnsize {expected}"


def _functions_module():
    """A network that computes most of its layers with functions and methods, as hand-written models do."""
    torch = need("torch")
    import torch.nn.functional as F

    class Functions(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Linear(8, 5)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv(x)), 2)
            x = F.gelu(torch.add(x, F.interpolate(F.avg_pool2d(x, 2), scale_factor=2)))
            t = x.flatten(2).transpose(1, 2)  # 64 tokens of 8
            a = F.softmax(torch.matmul(t, t.transpose(1, 2)), dim=-1)
            t = (a @ t).transpose(1, 2).reshape(x.shape)
            x = F.adaptive_avg_pool2d(t.relu(), 2) + F.adaptive_max_pool2d(t, 2)
            return self.fc(torch.flatten(x.mean([2, 3]), 1))

    return Functions().eval()


@pytest.mark.parametrize("count", list(TOOLS))
def test_function_layers_against_the_tool(count):
    """Every layer but the conv and the fc is a function or method: the imported spec marks each (``function``)
    and each convention counts what its tool counts for that function, checked on the torch module itself."""
    torch = need("torch")
    model = _functions_module()
    imported = cnnsize.from_torch(model, (3, 16, 16))
    marked = {body.get("function") for layer in imported.spec["layers"] for body in layer.values()}
    assert {"F.relu", "F.max_pool2d", "torch.add", "operator.matmul", ".mean", "torch.flatten"} <= marked
    total, _ = TOOLS[count](model, torch.zeros(1, 3, 16, 16))
    assert cnnsize.analyze(imported.spec, count=count).totals["counted"] == total


def _arithmetic_module():
    """A network that writes its arithmetic out with operators, methods and functions, as hand-written models do:
    x - y, x / y, c - x, x ** c, x + c, x.mean(...), torch.mean, torch.sub, torch.div, in-place -= and *=, slices
    by indexing, torch.split and narrow."""
    torch = need("torch")

    class Arithmetic(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Linear(2, 5)

        def forward(self, x):
            x = self.conv(x)
            c = x - x.mean(1, keepdim=True)
            var = torch.mean(c ** 2, dim=1, keepdim=True)
            y = c / (var + 1e-5) ** 0.5
            y = 1 - y.mul(2).add(1)  # ptflops counts .mul and .add (it patches them), not the others
            y = torch.sub(y, c).div(3)
            y = torch.div(y, y.mean(1, keepdim=True) + 1)
            y -= c
            y *= 0.5
            y = y[:, 2:6]
            a, b = torch.split(y, 2, dim=1)
            z = torch.mul(a.narrow(2, 0, 8) - b[:, :, ::2], 0.5)
            z = z.sub(z.mean(3, keepdim=True)) / 2
            return self.fc(z.mean([2, 3]))

    return Arithmetic().eval()


@pytest.mark.parametrize("count", list(TOOLS))
def test_arithmetic_layers_against_the_tool(count):
    """sub, div, scalar, mean and slice layers as the importer writes them (``function``: operator.sub, .mean,
    torch.split ...): each convention counts what its tool counts on the torch module itself, in total and per
    module where the tool reports per module."""
    torch = need("torch")
    model = _arithmetic_module()
    imported = cnnsize.from_torch(model, (3, 16, 16))
    kinds = {kind for layer in imported.spec["layers"] for kind in layer}
    marked = {body.get("function") for layer in imported.spec["layers"] for body in layer.values()}
    assert {"sub", "div", "scalar", "mean", "slice"} <= kinds
    assert {"operator.sub", "operator.truediv", "operator.pow", ".mul", ".add", "torch.mul", ".mean", "torch.mean",
            "torch.sub", "torch.div", "operator.isub", "operator.imul", "operator.getitem", "torch.split",
            ".narrow"} <= marked
    total, per_layer = _torchvision_run(count, model, torch.zeros(1, 3, 16, 16))
    a = cnnsize.analyze(imported.spec, count=count)
    if per_layer:
        ours = {r.name: r.counted for r in a.layers[1:]}
        compared = {n: (ours[n], v) for n, v in per_layer.items() if n in ours}
        assert set(compared) == {"conv", "fc"} and all(o == v for o, v in compared.values()), compared
    assert a.totals["counted"] == total, f"{count}: cnnsize {a.totals['counted']}, tool {total}"


def _tiny_torchvision(name: str):
    """Small networks of torchvision's own MaxViT and MViT classes (torchvision's modules, small dims): every part of
    maxvit_t, mvit_v1_b and mvit_v2_s that cnnsize imports as one fused kind (RelativePositionalMultiHeadAttention;
    MultiscaleAttention with q pooled or not, v2's relative positions and residual pooling; the skip Pool;
    PositionalEncoding), in the default zoo set. The full models run with -m slow."""
    tv = need("torchvision")
    from torchvision.models.video.mvit import MSBlockConfig

    # sizes where fvcore's einsum figures are rounded (more than 4 significant digits; see its convention's notes)
    if name == "tiny_maxvit":  # an MBConv and a window and a grid attention per stage, windows of 3×3
        return tv.models.maxvit.MaxVit((48, 48), stem_channels=8, partition_size=3, block_channels=[16, 32],
                                       block_layers=[1, 1], head_dim=8, stochastic_depth_prob=0.0,
                                       num_classes=5), (3, 48, 48)
    v2 = name == "tiny_mvit_v2"  # mvit_v2_s's settings, else mvit_v1_b's, on 4 frames of 64×64
    kernel_q, stride_q = ([3, 3, 3], [1, 1, 1]) if v2 else ([], [])
    blocks = [MSBlockConfig(1, 8, 8 if v2 else 16, kernel_q, [3, 3, 3], stride_q, [1, 4, 4]),
              MSBlockConfig(2, 8 if v2 else 16, 16, [3, 3, 3], [3, 3, 3], [1, 2, 2], [1, 2, 2]),
              MSBlockConfig(2, 16, 32, kernel_q, [3, 3, 3], stride_q, [1, 1, 1])]
    return tv.models.video.MViT((64, 64), 4, blocks, residual_pool=v2, residual_with_cls_embed=v2, rel_pos_embed=v2,
                                proj_after_attn=v2, num_classes=5), (3, 4, 64, 64)


@pytest.fixture(scope="module")
def tiny_torchvision():
    """A small network of _tiny_torchvision, its imported spec and an input; built once."""
    torch = need("torch")
    cache: dict = {}

    def get(family, name):
        if name not in cache:
            model, shape = _tiny_torchvision(name)
            cache[name] = (model.eval(), cnnsize.from_torch(model, shape), torch.zeros(1, *shape))
        return cache[name]

    return get


@pytest.mark.parametrize("count", list(TOOLS))
@pytest.mark.parametrize("name", ["tiny_maxvit", "tiny_mvit_v1", "tiny_mvit_v2"])
def test_convention_on_small_torchvision_attention(name, count, tiny_torchvision):
    """MaxViT's and MViT's fused kinds against every tool, run on torchvision's modules: the checks of
    test_convention_on_torchvision, on small networks of the same classes."""
    _, imported, _ = tiny_torchvision("small", name)
    kinds = {r.type for r in cnnsize.analyze(imported.spec).layers}
    fused = {"tiny_maxvit": {"maxvit_attention"}, "tiny_mvit_v1": {"mvit_attention", "mvit_pool", "mvit_pos_embed"},
             "tiny_mvit_v2": {"mvit_attention", "mvit_pool"}}[name]
    assert fused <= kinds
    test_convention_on_torchvision(count, "small", name, tiny_torchvision)


# The bundled specs named after a torchvision model are that model: each tool's figure for the bundled name is the
# tool run on torchvision's own module (no weights, eval mode, the spec's input). A representative part runs in the
# default zoo set (pooling windows given as one number, F.relu, F.adaptive_avg_pool2d, x.mean, torch.cat and
# torch.flatten); the rest with -m slow (one to three minutes per network for the nine tools on a shared machine).
BUNDLED_QUICK = ("alexnet", "resnet18", "mobilenet_v2", "googlenet", "squeezenet1_1", "shufflenet_v2_x1_0")


def _bundled_cases():
    """Every bundled spec whose name is a torchvision model (test_import_zoo's lists of them) × every tool."""
    from .test_import_zoo import CLASSIFICATION, SEGMENTATION, VIDEO

    for family, names in (("classification", CLASSIFICATION), ("segmentation", SEGMENTATION), ("video", VIDEO)):
        for name in (n for n in bundled_names() if n in names):
            marks = [] if name in BUNDLED_QUICK else [pytest.mark.slow]
            for count in TOOLS:
                yield pytest.param(count, family, name, marks=marks, id=f"{name}-{count}")


@pytest.fixture(scope="module")
def torchvision_network():
    """torchvision's network of a bundled name (no weights, eval mode) and an input of the spec's shape; built once."""
    torch, tv = need("torch"), need("torchvision")
    cache: dict = {}

    def get(family, name):
        if name not in cache:
            cache.clear()
            module = {"classification": tv.models, "segmentation": tv.models.segmentation,
                      "video": tv.models.video}[family]
            kwargs = {"weights": None, **({"weights_backbone": None} if family == "segmentation" else {}),
                      **({"init_weights": False} if name in ("googlenet", "inception_v3") else {})}
            model = getattr(module, name)(**kwargs).eval()
            cache[name] = (model, torch.zeros(1, *cnnsize.analyze(name).input_shape))
        return cache[name]

    return get


@pytest.mark.parametrize("count,family,name", list(_bundled_cases()))
def test_bundled_spec_on_torchvision(count, family, name, torchvision_network):
    """``cnnsize report NAME --count TOOL`` is the tool's figure on torchvision.models.NAME itself: the bundled spec
    is written as torchvision's module is (functions where its forward calls one, F.relu, F.adaptive_avg_pool2d,
    torch.cat; pooling windows given as one number), in total and per layer where the tool reports per layer."""
    model, x = torchvision_network(family, name)
    total, per_layer = _torchvision_run(count, model, x)
    a = cnnsize.analyze(name, count=count)
    expected = a.totals["counted"]
    if count == "torch" and any(isinstance(m, need("torch").nn.MultiheadAttention) for m in model.modules()):
        expected -= sum(2 * r.macs for r in a.layers if r.type == "mha")  # the fused path (see above)
    if per_layer:
        ours = {r.name: r.counted for r in a.layers[1:]}
        again = _called_again(model, x)
        wrong = {n: (ours[n], v) for n, v in per_layer.items() if n in ours and n not in again and ours[n] != v}
        assert not wrong, f"{count} on {name}, per layer (cnnsize, tool): {dict(list(wrong.items())[:8])}"
    assert expected == total, f"{count} on torchvision's {name}: cnnsize {expected}, tool {total}"


def _reuse_classes(nn):
    """The reuse patterns users write: a module called more than once (two Linears called four times, a
    convolution applied three times, a container calling its child twice), and one weight held by two modules."""

    class Reused(nn.Module):  # torchinfo's "too many linear" pattern: two Linears, four calls
        def __init__(self, bias):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(10, 10, bias=bias), nn.Linear(10, 10, bias=bias)

        def forward(self, x):
            return self.fc2(self.fc1(self.fc2(self.fc1(x))))

    class Recursive(nn.Module):  # torchinfo's RecursiveNet: one conv applied three times
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(8, 8, 3, padding=1)

        def forward(self, x):
            for _ in range(3):
                x = self.conv1(x)
            return x

    class Container(nn.Module):  # a child Sequential called twice, a Linear inside it
        def __init__(self):
            super().__init__()
            self.block = nn.Sequential(nn.Linear(5, 5), nn.ReLU())
            self.head = nn.Linear(5, 3)

        def forward(self, x):
            return self.head(self.block(self.block(x)))

    class Tied(nn.Module):  # two modules, one weight (bias-free, as tied embeddings are)
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(6, 6, bias=False), nn.Linear(6, 6, bias=False)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x).relu())

    return Reused, Recursive, Container, Tied


def _shared_modules():
    """Networks that call one module more than once or tie tensors across modules, as users write them and as
    torchinfo's own tests do (a Linear reused in a Sequential; two Linears called four times; a convolution applied
    recursively, as torchinfo's RecursiveNet; a container calling its children twice; tied weights)."""
    nn = need("torch.nn")

    Reused, Recursive, Container, Tied = _reuse_classes(nn)

    class TorchinfoRecursive(nn.Module):  # torchinfo 1.8's tests/fixtures/models.py RecursiveNet, rebuilt
        def __init__(self):
            super().__init__()
            self.conv1, self.activation = nn.Conv2d(64, 64, 3, 1, 1), nn.ReLU(True)

        def forward(self, x):
            for _ in range(3):
                x = self.conv1(self.activation(self.conv1(x)))
            return x

    class TorchinfoChild(nn.Module):  # torchinfo's ContainerChildModule, rebuilt
        def __init__(self):
            super().__init__()
            self._sequential = nn.Sequential(nn.Linear(5, 5), nn.Linear(5, 5))
            self._between = nn.Linear(5, 5)

        def forward(self, x):
            out = self._between(self._sequential(x))
            for layer in self._sequential:
                out = layer(out)
            out = self._sequential(x)
            for layer in self._sequential:
                out = layer(out)
            return out

    class TorchinfoContainer(nn.Module):  # torchinfo's ContainerModule, rebuilt
        def __init__(self):
            super().__init__()
            self._layers = nn.ModuleList([nn.Linear(5, 5), TorchinfoChild(), nn.Linear(5, 5)])

        def forward(self, x):
            for layer in self._layers:
                x = layer(x)
            return x

    class PartlyTied(nn.Module):  # two Linears, one weight, a bias each
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(6, 6), nn.Linear(6, 6)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x).relu())

    class TiedFunction(nn.Module):  # a module's weight read again by a function (a tied output projection)
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(6, 6)

        def forward(self, x):
            return torch.nn.functional.linear(self.a(x).relu(), self.a.weight)

    torch = need("torch")
    linear = nn.Linear(10, 10)
    return {"partly_tied": (PartlyTied(), (6,)), "tied_function": (TiedFunction(), (6,)),
            "torchinfo_recursive": (TorchinfoRecursive(), (64, 28, 28)), "torchinfo_container": (TorchinfoContainer(),
                                                                                                  (5,)),
            "sequential_reuse": (nn.Sequential(linear, nn.ReLU(), linear), (10,)),
            "two_linears_four_calls": (Reused(True), (10,)), "two_linears_four_calls_nobias": (Reused(False), (10,)),
            "recursive_conv": (Recursive(), (8, 6, 6)), "container": (Container(), (5,)), "tied": (Tied(), (6,))}


@pytest.mark.parametrize("count", list(TOOLS))
@pytest.mark.parametrize("net", ["torchinfo_recursive", "torchinfo_container", "sequential_reuse",
                                 "two_linears_four_calls", "two_linears_four_calls_nobias", "recursive_conv",
                                 "container", "tied", "partly_tied", "tied_function"])
def test_shared_layers_against_the_tool(net, count):
    """A layer that ``shares`` another's parameters reports 0 of them (they count once), but each tool sees the
    module's real weights on every call: the convention reads the owner's geometry. Each tool runs on the torch
    module itself; the import reads a copy (the module the tool ran on is left alone). torchinfo's container
    computes values its forward then discards (the first _sequential → _between chain): fvcore's torch.jit trace
    drops them (150 where the hooks and FlopCounterMode count 275), the imported spec marks them ``discarded``."""
    import copy

    torch = need("torch")
    model, shape = _shared_modules()[net]
    model.eval()
    total, per_layer = _torchvision_run(count, model, torch.zeros(1, *shape))
    imported = cnnsize.from_torch(copy.deepcopy(model), shape)
    assert any("shares" in body for layer in imported.spec["layers"] for body in layer.values())
    a = cnnsize.analyze(imported.spec, count=count)
    again = _called_again(model, torch.zeros(1, *shape))
    # fvcore attributes the ops of a network whose modules run more than once by its traced scopes, which do not
    # follow the module names there (torchinfo's container: _between's product under another name): the total only
    if per_layer and not (count == "fvcore" and again):
        ours = {r.name: r.counted for r in a.layers[1:]}
        wrong = {n: (ours[n], v) for n, v in per_layer.items() if n in ours and n not in again and ours[n] != v}
        assert not wrong, f"{count} on {net}, per layer (cnnsize, tool): {wrong}"
    assert a.totals["counted"] == total, f"{count} on {net}: cnnsize {a.totals['counted']}, tool {total}"


@pytest.mark.parametrize("count", list(TOOLS))
def test_training_mode_against_the_tool(count):
    """A network in training mode: each tool run on the torch module in train mode gives the convention's figure
    with ``train=True`` (fvcore counts a batch norm in training as its layer-norm handle, inp·(4 + affine); the
    others count as in eval, or put the network in eval themselves: ptflops, torchscan). Batch norm, dropout with
    p > 0 and the kinds around them; the same module in eval mode gives the eval figure. A module imported in
    training mode is counted in training mode."""
    import copy

    torch, nn = need("torch"), need("torch.nn")
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(),
                          nn.Linear(8 * 6 * 6, 4), nn.BatchNorm1d(4, affine=False))
    spec = cnnsize.from_torch(model.eval(), (3, 8, 8)).spec
    a = cnnsize.analyze(spec)
    x = torch.zeros(2, 3, 8, 8)  # training-mode batch norm needs more than one value per channel
    for train in (False, True):
        model.train(train)
        total, _ = _torchvision_run(count, model, x)
        one_image = count.startswith(("ptflops", "torchscan"))  # these measure one image of the input
        expected = cnnsize.analyze(spec, batch=1 if one_image else 2)
        figure = sum(conventions.counted(expected, count, train=train), 0)
        assert figure == total, f"{count}, {'train' if train else 'eval'} mode: cnnsize {figure}, tool {total}"
        imported = cnnsize.from_torch(copy.deepcopy(model).train(train), (3, 8, 8))  # counted in the module's mode
        assert imported.mode == ("train" if train else "eval")
        batch = 1 if one_image else 2
        assert cnnsize.analyze(imported, count=count, batch=batch).totals["counted"] == total
    assert a.totals["params"] == sum(p.numel() for p in model.parameters())


def _unused_modules():
    """Networks holding parameters their forward never calls (issue 21): a spare Linear, a ModuleDict of choices of
    which one runs, and googlenet-style aux heads that an eval forward skips."""
    nn = need("torch.nn")

    class Spare(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.spare = nn.Conv2d(3, 4, 3), nn.Linear(7, 5)

        def forward(self, x):
            return self.conv(x).relu()

    class Choices(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 6, 3, padding=1)
            self.heads = nn.ModuleDict({"a": nn.Conv2d(6, 2, 1), "b": nn.Conv2d(6, 9, 3)})

        def forward(self, x):
            return self.heads["a"](self.stem(x))

    class Aux(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.aux = nn.Conv2d(3, 8, 3), nn.Sequential(nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4))

        def forward(self, x):
            y = self.body(x)
            return (y, self.aux(y)) if self.training else y

    return {"spare": Spare(), "choices": Choices(), "aux_heads": Aux()}


@pytest.mark.parametrize("count", list(TOOLS))
@pytest.mark.parametrize("net", ["spare", "choices", "aux_heads"])
def test_unused_parameters_against_the_tool(net, count):
    """Parameters no forward calls import as ``unused`` layers (params, no MACs); every tool, run on the module
    itself in eval mode, counts the same as cnnsize's convention for them."""
    import copy

    torch = need("torch")
    model = _unused_modules()[net].eval()
    x = torch.zeros(1, 3, 10, 10)
    total, per_layer = _torchvision_run(count, model, x)
    imported = cnnsize.from_torch(copy.deepcopy(model), (3, 10, 10))
    assert any("unused" in layer for layer in imported.spec["layers"])
    a = cnnsize.analyze(imported.spec, count=count)
    assert a.totals["params"] == sum(p.numel() for p in model.parameters())
    assert a.totals["counted"] == total, f"{count} on {net}: cnnsize {a.totals['counted']}, tool {total}"
