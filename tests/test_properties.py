"""Property tests: generated specs against torch itself.

Valid specs (chains with side branches; random kernel, stride, pad, dilation, groups,
ceil mode, pooling kinds, fc heads) must give identical shapes, parameters, buffers,
MACs and activations in the analysis and in torch. Generated geometries, valid or not,
must be rejected by the analysis exactly when torch rejects them or the strict fit
rule applies.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import cnnsize  # noqa: E402
from cnnsize.core.errors import CnnsizeError  # noqa: E402
from cnnsize.layers import REGISTRY  # noqa: E402

F = torch.nn.functional
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def out_len(n: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    """PyTorch's output length of a sliding window (its documented formula, ceil mode included)."""
    room = n + 2 * p - d * (k - 1) - 1
    if not ceil:
        return room // s + 1
    out = -(-room // s) + 1
    return out - 1 if (out - 1) * s >= n + p else out


def _windowed(draw, sizes: tuple, *, max_kernel: int, dilate: bool, pool: bool) -> dict:
    """Kernel, stride, pad (and dilation) that torch accepts for this input, per axis or shared."""
    per_axis = len(sizes) > 1 and draw(st.booleans())
    axes = range(len(sizes)) if per_axis else [0]
    kernel, stride, pad, dilation = [], [], [], []
    for a in axes:
        n = min(sizes) if not per_axis else sizes[a]
        d = draw(st.integers(1, 2)) if dilate else 1
        k = draw(st.integers(1, max(1, min(max_kernel, (n - 1) // d + 1))))
        p = draw(st.integers(0, k // 2 if pool else 2))
        kernel.append(k)
        pad.append(p)
        dilation.append(d)
        stride.append(draw(st.integers(1, 3)))
    if not per_axis:
        kernel, stride, pad, dilation = kernel[0], stride[0], pad[0], dilation[0]
    out = {"kernel": kernel, "stride": stride, "pad": pad}
    if dilate:
        out["dilation"] = dilation
    return out


def _axis(value, a):
    return value[a] if isinstance(value, list) else value


def _after(sizes: tuple, geo: dict, ceil: bool = False) -> tuple:
    stride = geo.get("stride") or geo["kernel"]
    return tuple(out_len(n, _axis(geo["kernel"], a), _axis(stride, a), _axis(geo["pad"], a),
                         _axis(geo.get("dilation", 1), a), ceil) for a, n in enumerate(sizes))


def _draw_conv(draw, x: tuple, body: dict) -> tuple:
    groups = draw(st.sampled_from([g for g in range(1, x[0] + 1) if x[0] % g == 0]))
    geo = _windowed(draw, x[1:], max_kernel=5, dilate=True, pool=False)
    body.update(geo, filters=groups * draw(st.integers(1, 3)), groups=groups, bias=draw(st.booleans()))
    out = (body["filters"], *_after(x[1:], geo))
    if geo["stride"] == 1 and draw(st.integers(0, 3)) == 0:
        body["pad"], out = "same", (body["filters"], *x[1:])
    return out


def _draw_pool(draw, x: tuple, body: dict, kind: str) -> tuple:
    geo = _windowed(draw, x[1:], max_kernel=4, dilate=kind == "maxpool", pool=True)
    if draw(st.booleans()):
        geo.pop("stride")  # the default: the kernel
    ceil = draw(st.booleans())
    body.update(geo, ceil_mode=ceil)
    if kind == "avgpool":
        body["count_include_pad"] = draw(st.booleans())
    return (x[0], *_after(x[1:], geo, ceil))


def _draw_locally_connected(draw, x: tuple, body: dict) -> tuple:
    geo = _windowed(draw, x[1:], max_kernel=3, dilate=False, pool=False)
    body.update(geo, filters=draw(st.integers(1, 3)), bias=draw(st.booleans()))
    return (body["filters"], *_after(x[1:], geo))


def _draw_adaptive_avgpool(draw, x: tuple, body: dict) -> tuple:
    body["output"] = [draw(st.integers(1, n + 2)) for n in x[1:]]
    return (x[0], *body["output"])


def _draw_fc(draw, x: tuple, body: dict) -> tuple:
    body["units"] = draw(st.integers(1, 10))
    body["bias"] = draw(st.booleans())
    return (body["units"],)


def _draw_setting(key: str, strategy):
    """A layer of its input's shape with one drawn setting (lrn's size, bn's affine, inplace)."""
    def draw_it(draw, x: tuple, body: dict) -> tuple:
        body[key] = draw(strategy)
        return x
    return draw_it


# each kind's settings drawn so that the layer fits its input (x, batch axis left out), and its output's shape
_LAYER_DRAWS = {
    "conv": _draw_conv,
    "maxpool": lambda draw, x, body: _draw_pool(draw, x, body, "maxpool"),
    "avgpool": lambda draw, x, body: _draw_pool(draw, x, body, "avgpool"),
    "locally_connected": _draw_locally_connected,
    "adaptive_avgpool": _draw_adaptive_avgpool,
    "global_avgpool": lambda draw, x, body: (x[0],) + (1,) * (len(x) - 1),
    "flatten": lambda draw, x, body: (int(torch.tensor(x).prod()),),
    "fc": _draw_fc,
    "lrn": _draw_setting("size", st.integers(1, 5)),
    "bn": _draw_setting("affine", st.booleans()),
    "relu": _draw_setting("inplace", st.booleans()),
    "dropout": _draw_setting("inplace", st.booleans()),
    "leaky_relu": _draw_setting("inplace", st.booleans()),
}
_MERGES = [m for m in ("add", "concat") if m in REGISTRY]


def _kinds_for(x: tuple, shapes: dict) -> list[str]:
    """The kinds a layer on an input of shape ``x`` may be (spatial ones need spatial axes; a merge, two tensors)."""
    kinds = ["fc", "relu", "dropout", "bn", "sigmoid", "softmax", "leaky_relu", "tanh"]
    if len(x) > 1:
        kinds += ["conv", "conv", "conv", "maxpool", "avgpool", "flatten", "lrn", "adaptive_avgpool",
                  "global_avgpool"]
        if len(x) == 3:
            kinds.append("locally_connected")
    if _MERGES and len(shapes) >= 2:
        kinds.append("merge")
    return kinds


def _draw_merge(draw, x: tuple, src: str, body: dict, shapes: dict) -> tuple[str, tuple]:
    """An add or concat of ``src`` with an earlier tensor it fits (a relu where none does)."""
    kind = draw(st.sampled_from(_MERGES))
    others = [n for n, s in shapes.items() if n != src and (
        s == x if kind == "add" else (len(s) == len(x) and s[1:] == x[1:]))]
    if not others:
        return "relu", x
    other = draw(st.sampled_from(sorted(others)))
    body["from"] = [src, other]
    return kind, x if kind == "add" else (x[0] + shapes[other][0], *x[1:])


def _draw_layer(draw, name: str, shapes: dict, last: str, count: int) -> tuple[str, dict, tuple]:
    """One layer after the ``count`` drawn so far: (kind, settings, output shape), reading the last layer or,
    now and then, an earlier one (a side branch)."""
    src = last
    if count >= 2 and draw(st.integers(0, 4)) == 0:
        src = draw(st.sampled_from(sorted(shapes)))
    x = shapes[src]
    kind = draw(st.sampled_from(_kinds_for(x, shapes)))
    body: dict = {"name": name}
    if src != last:
        body["from"] = src
    if kind == "merge":
        kind, out = _draw_merge(draw, x, src, body, shapes)
    else:
        out = _LAYER_DRAWS.get(kind, lambda draw, x, body: x)(draw, x, body)
    return kind, body, out


@st.composite
def networks(draw):
    """A valid spec (fit: floor, as torch computes) and nothing else: every layer fits by construction."""
    nd = draw(st.sampled_from([2, 2, 2, 1]))
    shapes = {"input": (draw(st.integers(1, 6)), *(draw(st.integers(3, 14)) for _ in range(nd)))}
    layers = []
    last = "input"
    for i in range(draw(st.integers(1, 7))):
        name = f"l{i}"
        kind, body, out = _draw_layer(draw, name, shapes, last, len(layers))
        if min(out[1:], default=1) < 1:
            continue  # an empty output: torch refuses it (the invalid-geometry test covers this)
        layers.append({kind: body})
        shapes[name] = out
        last = name
    if not layers:
        layers.append({"relu": {"name": "l0"}})
        shapes["l0"] = shapes["input"]
    spec = {"name": "generated", "input": list(shapes["input"]), "fit": "floor", "layers": layers}
    return spec, shapes


# each generated network is built and run in torch: the default set validates 100, the slow set's twin 400 more
@settings(PROPERTY_SETTINGS, max_examples=100)
@given(networks(), st.integers(1, 2))
def test_generated_networks_match_torch(net, batch):
    check_generated_network(net, batch)


@pytest.mark.slow
@settings(PROPERTY_SETTINGS, max_examples=400)
@given(networks(), st.integers(1, 2))
def test_generated_networks_match_torch_long(net, batch):
    check_generated_network(net, batch)


def check_generated_network(net, batch):
    spec, shapes = net
    v = cnnsize.validate(spec, batch=batch, device="cpu", runs=0)
    assert v.mismatches() == [], spec
    for row in v.layers:  # the generator's own shapes agree too (a third, independent account)
        assert row.figures["output_shape"].measured == (batch, *shapes[row.name]), (row.name, spec)


# -- invalid geometries ------------------------------------------------------------------------
@st.composite
def geometries(draw):
    kind = draw(st.sampled_from(["conv", "conv", "maxpool", "avgpool", "locally_connected"]))
    c = draw(st.integers(1, 4))
    sizes = [draw(st.integers(1, 8)) for _ in range(2)]
    k = draw(st.integers(1, 9))
    s = draw(st.integers(1, 4))
    p = draw(st.integers(0, 5))
    body: dict = {"kernel": k, "stride": s, "pad": p}
    if kind == "conv":
        body.update(filters=draw(st.integers(1, 6)), groups=draw(st.integers(1, 4)), dilation=draw(st.integers(1, 3)))
        if draw(st.integers(0, 4)) == 0:
            body["pad"] = draw(st.sampled_from(["same", "valid"]))
    elif kind == "maxpool":
        body.update(dilation=draw(st.integers(1, 3)), ceil_mode=draw(st.booleans()))
    elif kind == "avgpool":
        body.update(ceil_mode=draw(st.booleans()))
    else:
        body.update(filters=draw(st.integers(1, 3)))
    fit = draw(st.sampled_from(["exact", "floor"]))
    return {"input": [c, *sizes], "fit": fit, "layers": [{kind: body}]}


def torch_output(spec: dict) -> tuple | None:
    """What torch itself makes of the layer (its own modules and functions), or None if it refuses."""
    (kind, b), = spec["layers"][0].items()
    c, h, w = spec["input"]
    x = torch.zeros(1, c, h, w)
    try:
        if kind == "conv":
            m = torch.nn.Conv2d(c, b["filters"], b["kernel"], b["stride"], b["pad"], b["dilation"], b["groups"])
        elif kind == "maxpool":
            m = torch.nn.MaxPool2d(b["kernel"], b["stride"], b["pad"], b["dilation"], ceil_mode=b["ceil_mode"])
        elif kind == "avgpool":
            m = torch.nn.AvgPool2d(b["kernel"], b["stride"], b["pad"], ceil_mode=b["ceil_mode"])
        else:
            def m(t):
                return F.unfold(F.pad(t, (b["pad"],) * 4), b["kernel"], stride=b["stride"])
        y = m(x)
    except (RuntimeError, ValueError):
        return None
    if kind == "locally_connected":
        oh = out_len(h, b["kernel"], b["stride"], b["pad"])
        ow = out_len(w, b["kernel"], b["stride"], b["pad"])
        assert y.shape[-1] == oh * ow  # unfold's own count of positions
        return (b["filters"], oh, ow)
    return tuple(y.shape[1:]) if y.numel() > 0 else None


def strict_rule_applies(spec: dict) -> bool:
    """True when the fit is exact and some axis leaves a remainder (W − F + 2P) mod S ≠ 0."""
    (kind, b), = spec["layers"][0].items()
    if spec["fit"] != "exact" or b.get("ceil_mode"):
        return False
    k, s, p, d = b["kernel"], b["stride"], b["pad"], b.get("dilation", 1)
    if p == "same":
        return False
    p = 0 if p == "valid" else p
    return any((n + 2 * p - d * (k - 1) - 1) % s != 0 for n in spec["input"][1:])


@PROPERTY_SETTINGS
@given(geometries())
def test_rejected_exactly_when_torch_rejects_or_the_strict_rule_applies(spec):
    truth = torch_output(spec)
    try:
        shape = cnnsize.analyze(spec).layers[-1].output_shape
    except CnnsizeError:
        shape = None
    if truth is None:
        assert shape is None, f"torch refuses {spec} but the analysis gives {shape}"
    elif strict_rule_applies(spec):
        assert shape is None, f"the strict fit rule should refuse {spec}"
    else:
        assert shape == truth, spec


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_pool_output_sizes_match_torch_exhaustively(pool):
    """Every small pooling geometry, ceil mode included (it allows a window to overhang the padded input)."""
    import itertools

    from cnnsize import calc

    for n, k, s, p, d, ceil in itertools.product(range(1, 7), range(1, 7), range(1, 4), range(0, 4), (1, 2),
                                                 (False, True)):
        if p > k // 2 or (pool == "avg" and d > 1):
            continue
        m = torch.nn.MaxPool1d(k, s, p, d, ceil_mode=ceil) if pool == "max" else torch.nn.AvgPool1d(k, s, p, ceil)
        try:
            truth = m(torch.zeros(1, 1, n)).shape[-1]
        except RuntimeError:
            truth = None
        try:
            ours = calc.pool_output_size(n, k, s, p, ceil_mode=ceil, dilation=d, fit="floor")
        except CnnsizeError:
            ours = None
        assert ours == truth, (n, k, s, p, d, ceil)
