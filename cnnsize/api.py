"""The pipelines: a spec (or a torch module, an ONNX file, a Graph) to a Graph, an Analysis with the passes asked
for, and what is built on it (explain, fit, compare, sweep, plot, the executor). The package's functions
(``cnnsize.analyze`` ...) and the command line call these; nothing below this layer resolves a spec.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import passes, render  # noqa: F401 - registers the analysis' views (Analysis.to_markdown, print(analysis), ...)
from .core.errors import SpecError
from .core.graph import Graph
from .core.numeric import no_gc
from .engine.result import VIEWS, Analysis
from .engine.walk import analyze_graph
from .spec import sources
from .spec.expand import expand
from .spec.sources import DEFAULT_MAX_LAYERS, is_onnx, is_torch_module


def compare(specs: Sequence[Any], *, input_shape: tuple | None = None, batch: int = 1, dtype: str = "float32",
            fit: str | None = None) -> list[dict]:
    """Totals of several specs, one record each, with ``<key>_ratio`` against the first spec.

    Each spec is anything ``cnnsize.analyze`` takes; ``input_shape`` (if given) applies to all of them.
    """
    from .render.views import RATIO_KEYS, _ratio, totals_record

    if not specs:
        raise SpecError("compare needs at least one spec")
    records = []
    for spec in specs:
        a = spec if isinstance(spec, Analysis) else analyze_graph(
            load_graph(spec), input_shape=input_shape, batch=batch, dtype=dtype, fit=fit)
        label = a.name if isinstance(spec, (Analysis, dict)) or not isinstance(spec, str) or "\n" in spec else spec
        records.append({"spec": label, "name": a.name, "input_shape": list(a.input_shape), "batch": a.batch,
                        "dtype": a.dtype, **totals_record(a)})
    first = records[0]
    for r in records:
        for key in RATIO_KEYS:
            r[f"{key}_ratio"] = _ratio(r[key], first[key])
    return records


def sweep_records(spec: Any, *, batch: Iterable[int] = (1,), input_shape: Iterable[tuple] | None = None,
                  dtype: Iterable[str] = ("float32",), variables: Mapping[str, Iterable[Any]] | None = None,
                  fit: str | None = None) -> list[dict]:
    """One record of totals per combination of the given settings (variables outermost, then input, batch, dtype).

    ``variables`` maps spec variables (``vars:``) to the values to try; an unknown name is an error.
    """
    from .render.views import totals_record

    variables = {k: list(v) for k, v in (variables or {}).items()}
    shapes = [None] if input_shape is None else [tuple(s) for s in input_shape]
    batches, dtypes = list(batch), list(dtype)
    for what, values in (("batch", batches), ("input_shape", shapes), ("dtype", dtypes), *variables.items()):
        if not values:
            raise SpecError(f"sweep: no values given for {what}")
    records = []
    names = list(variables)
    for combo in itertools.product(*(variables[k] for k in names)):
        chosen = dict(zip(names, combo))
        graph = load_graph(spec, variables=chosen or None)
        for shape in shapes:
            for b in batches:
                for d in dtypes:
                    a = analyze_graph(graph, input_shape=shape, batch=b, dtype=d, fit=fit)
                    records.append({**chosen, "input_shape": list(a.input_shape), "batch": b, "dtype": d,
                                    **totals_record(a)})
    return records


def sweep(spec: Any, *, batch: Iterable[int] = (1,), input_shape: Iterable[tuple] | None = None,
          dtype: Iterable[str] = ("float32",), variables: dict[str, Iterable[Any]] | None = None,
          fit: str | None = None):
    """Totals for every combination of the settings, as a pandas DataFrame (one row per combination).

        >>> cnnsize.sweep("resnet18", batch=[1, 32], dtype=["float32", "float16"])  # doctest: +SKIP
    """
    import pandas as pd

    from .render.views import _shape

    records = sweep_records(spec, batch=batch, input_shape=input_shape, dtype=dtype, variables=variables, fit=fit)
    frame = pd.DataFrame(records)
    frame["input_shape"] = frame["input_shape"].map(_shape)
    return frame


def onnx_graph(path: Any, input_shape: tuple | None = None, max_layers: int | None = None) -> Graph:
    """The Graph of an ONNX file, imported by cnnsize.importers.onnx_import (``input_shape`` sizes its dynamic axes)."""
    from .importers.onnx_import import from_onnx  # onnx is imported there, for an ONNX file only

    imported = from_onnx(path, input_shape=input_shape)
    graph = imported.graph  # expanded and checked by the import, within the layer limit
    if graph is None or (max_layers is not None and max_layers != DEFAULT_MAX_LAYERS):
        graph = expand(imported.spec, os.fspath(path), DEFAULT_MAX_LAYERS if max_layers is None else max_layers)
    if imported.symbolic_input is not None:  # dynamic axes: the graph's input in their symbols
        graph.input_shape = tuple(imported.symbolic_input)
    return graph


def load_graph(spec: Any, max_layers: int | None = None, variables: dict | None = None,
               input_shape: tuple | None = None) -> Graph:
    """A Graph from a path (a spec, or an ONNX file), a bundled name, YAML text, a dict, what ``from_torch``
    returns, or a Graph (see cnnsize.spec.sources.load_graph); ``input_shape`` sizes an ONNX file's dynamic axes."""
    if is_onnx(spec) and not (isinstance(spec, str) and "\n" in spec):
        return onnx_graph(spec, input_shape=input_shape, max_layers=max_layers)
    return sources.load_graph(spec, max_layers=max_layers, variables=variables)


def load(spec: Any, variables: dict | None = None) -> Graph:
    """Parse a spec (path, bundled name, YAML text or dict) into a layer Graph; ``variables`` override its vars."""
    with no_gc():
        return load_graph(spec, variables=variables)


def analyze(spec: Any, input_shape: tuple | dict | None = None, batch: int = 1, dtype: str = "float32",
            fit: str | None = None, *, optimizer: str = "adam", amp: bool = False, device: str = "cuda",
            freeze_until: str | None = None, variables: dict | None = None, count: str | None = None,
            traffic: bool = False, device_profile: Any = None, layout: str | None = None,
            count_mode: str | None = None, training: bool = False, accumulate: int | None = None, gpus: int = 1,
            sharding: str | None = None, gpus_per_node: int | None = None, precision: str | None = None,
            checkpoint: str | None = None, checkpoint_impl: str = "non-reentrant",
            device_memory: int | str | None = None, grad_scaler: bool = True,
            offload: str | None = None) -> Analysis:
    """Size a network: per-layer and total shapes, params, activations, connections, MACs, memory, RF.

    ``spec`` is a path, a bundled spec name (``"vgg16"``), YAML text, a dict, or a Graph.
    ``input_shape`` overrides the spec's input as (C, H, W), or several by name ({'image': (3, 224, 224),
    'mask': (1, 224, 224)}); ``fit`` is ``exact`` or ``floor``.
    ``optimizer`` (sgd, momentum, adam, adamw), ``precision`` (float32, bf16-mixed, fp16-mixed, bf16, fp16; ``amp``
    is fp16-mixed), ``device`` (cuda, cpu) and ``freeze_until``
    (a layer name: it and everything before it are frozen) shape the training memory estimate.
    ``variables`` override the spec's ``vars`` (e.g. ``{"aux": True}``). ``count`` names a counting
    convention (torchinfo, fvcore, ptflops, thop, torch, torchscan-flops, ...; see cnnsize.passes.conventions):
    every row and the totals then carry ``counted``, that tool's figure, for the network in ``count_mode``
    ("eval", or "train": fvcore counts a training-mode batch norm otherwise; default: the mode of the module
    ``from_torch`` read, else eval). ``traffic`` adds each layer's
    bytes read and written and its arithmetic intensity; ``device_profile`` (a bundled name such as "a100",
    a file, or a DeviceProfile) adds the roofline's ``predicted_seconds`` and ``bound`` (and implies traffic).
    An input that looks channels-last (32×32×3) is refused with the channels-first shape to use, unless
    ``layout`` is ``"hwc"`` (convert) or ``"chw"`` (keep). ``training`` adds each layer's backward MACs
    (``input_grad_macs``, ``weight_grad_macs``, ``backward_macs``) and ``totals["training"]``, the step's work;
    ``accumulate`` (implies training) is the micro-steps of ``batch`` samples a step accumulates gradients over: the
    step's work is that many forwards and backwards, and its memory peak holds the gradients between them.
    ``gpus`` and ``sharding`` (ddp, zero1, zero2, zero3, fsdp, hsdp; ``gpus_per_node`` for hsdp) add what each GPU
    holds and sends (``totals["training"]``: ``per_gpu_peak_bytes``, ``communication_bytes``, ``per_gpu``; see
    cnnsize.passes.sharding); ``batch`` is then each GPU's.
    ``checkpoint`` (implies training): activation checkpointing, ``"every:N"`` (the blocks, N to a segment, every
    segment but the last checkpointed, as checkpoint_sequential) or layer and block names joined by commas (each one
    segment) or "auto" (the every:N whose training budget fits ``device_memory``, bytes or "24GiB", with the fewest
    MACs recomputed), in torch.utils.checkpoint's ``checkpoint_impl`` variant ("non-reentrant", torch's advice, or
    "reentrant"): the memory of the step and ``totals["training"]["recompute_macs"]`` (see docs/memory.md).
    ``grad_scaler``: fp16-mixed's gradient scaler (its state counted); False with fp16-mixed is refused (fp16
    gradients underflow without one). ``offload`` ("optimizer" or "params"; cnnsize.passes.offload): what moves to
    host memory, as DeepSpeed's ZeRO-Offload does (``totals["training"]``: ``per_gpu_peak_bytes`` without it,
    ``offload_cpu_bytes``, ``offload_transfer_bytes``; on one GPU or with a ZeRO/FSDP ``sharding``).
    ``spec`` may also be what ``from_torch`` returns, or a
    torch ``nn.Module`` with its ``input_shape``: ``analyze(model, (3, 224, 224))`` is
    ``from_torch(model, (3, 224, 224)).analyze()`` with these options (the model is not changed).
    """
    if is_torch_module(spec) and input_shape is not None:  # torch is imported only here, for a module
        from .importers.torch_import import from_torch

        spec, input_shape = from_torch(spec, input_shape).spec, None  # one shape, or several (torch_inputs)
    with no_gc():
        graph = load_graph(spec, variables=variables)
        return passes.analyze(graph, input_shape=input_shape, batch=batch, dtype=dtype, fit=fit, optimizer=optimizer,
                              amp=amp, precision=precision, device=device, freeze_until=freeze_until,
                              layout=layout, count=count, checkpoint=checkpoint, checkpoint_impl=checkpoint_impl,
                              device_memory=device_memory, grad_scaler=grad_scaler,
                              count_mode=count_mode or getattr(spec, "mode", None) or "eval", traffic=traffic,
                              device_profile=device_profile, training=training, accumulate=accumulate, gpus=gpus,
                              sharding=sharding, gpus_per_node=gpus_per_node, offload=offload)


def estimators(spec: Any, *, input_shape: tuple | None = None, batch: int = 1, gpus_per_node: int = 1,
               nodes: int = 1, offload: str | None = None, **analyze_kwargs: Any) -> list:
    """What accelerate's ``estimate-memory`` (float32 and float16) and DeepSpeed's ZeRO-2 and ZeRO-3 estimators
    (on ``gpus_per_node`` × ``nodes`` GPUs; with ``offload`` "optimizer" or "params", or without) say for the
    network, each an Estimate with its figure, its parts and ``differences``: per part of cnnsize's training budget
    (one GPU, ``batch``), what cnnsize counts beyond it (see cnnsize.passes.estimators)."""
    from .passes import estimators as found

    analyze_kwargs.pop("amp", None)
    float32 = analyze(spec, input_shape, batch, **analyze_kwargs)
    mixed = analyze(spec, input_shape, batch, amp=True, **analyze_kwargs)
    if offload is not None:
        from .passes.offload import OFFLOADS

        if offload not in OFFLOADS:
            from .core.errors import unknown_name

            raise unknown_name("offload", offload, OFFLOADS)
    return found.estimators(float32, mixed, gpus_per_node, nodes, offload)


def plan(spec: Any, device: Any, *, batch: int = 32, gpus: int = 1, variables: dict | None = None,
         **options: Any) -> dict:
    """How to train ``spec`` on ``device`` (a bundled profile name such as "h100", a profile file or a
    DeviceProfile): every configuration of precision × accumulation × sharding with its per-GPU peak, whether it fits,
    its step's work and predicted time, fastest first, and the estimators (see cnnsize.passes.plan.plan for the
    ``options``: gpus_per_node, precision, accumulate, sharding, device_memory_size, find_max_batch, optimizer,
    freeze_until, input_shape, fit, every; ``optimizer`` and ``offload`` may be lists or "any" to search them too).
    ``batch``: the samples each GPU takes a step."""
    from .passes.plan import plan as planned

    with no_gc():
        return planned(load_graph(spec, variables=variables), device, batch=batch, gpus=gpus, **options)


def fit_sizes(spec: Any, min: int = 32, max: int = 1024, channels: int | None = None,  # noqa: A002
              rule: str = "exact"):
    """The square input sizes n in [min, max] at which every layer fits exactly (a FitSizes).

    ``rule="floor"`` lists the sizes at which the network runs with sizes rounded down (PyTorch's rule),
    ``rule="spec"`` uses the spec's own ``fit:``.

    ``.sizes`` lists them, ``.fits(n)``, ``.why_not(n)`` and ``.nearest(n)`` answer for any size;
    AlexNet (CS231n) fits at 227 and not at 224. Numeric only: sympy is not imported.

        >>> r = fit_sizes("alexnet_cs231n", 200, 260)
        >>> r.sizes, r.fits(224), r.nearest(224)
        ([227, 259], False, (195, 227))
    """
    from .engine import fitting

    fitting.check_range(min, max)
    return fitting.fit_sizes(load_graph(spec), min=min, max=max, channels=channels, rule=rule)


def explain(spec: Any, input_shape: tuple | None = None, layer: str | None = None, fit: str | None = None,
            dtype: str = "float32"):
    """The worked arithmetic of every layer (or one ``layer``), e.g. "(227 − 11)/4 + 1 = 55" (an Explanation).

    ``input_shape`` may hold sympy symbols, as in ``analyze``; the steps are then formulas.

        >>> print(explain("lenet5", layer="C1"))          # doctest: +NORMALIZE_WHITESPACE
        C1: conv (filters=6, kernel=5)
          1×32×32 → 6×28×28
          height: (32 − 5)/1 + 1 = 28
          width: (32 − 5)/1 + 1 = 28
          params: (5·5·1 + 1)·6 = 156
          connections = MACs: 4704·5·5·1 = 117600
          activations: 6·28·28 = 4704
          memory: 4704·4 bytes = 18816 bytes
        <BLANKLINE>
    """
    from .engine import worked

    return worked.explain(load_graph(spec), input_shape=input_shape, layer=layer, fit=fit, dtype=dtype)


def plot(spec: Any, path: str | Path, **analyze_kwargs: Any) -> Path:
    """Analyze ``spec`` (anything ``analyze`` takes, or an Analysis) and write its plot to ``path``."""
    from .render.plot import save_plot  # matplotlib is imported there

    return save_plot(spec if isinstance(spec, Analysis) else analyze(spec, **analyze_kwargs), path)


def draw(spec: Any, path: str | Path | None = None, *, fmt: str | None = None, color: str = "macs",
         style: str = "graph", depth: int | None = None, **analyze_kwargs: Any) -> str:
    """A drawing of ``spec`` (anything ``analyze`` takes, or an Analysis): the text of an SVG, a self-contained
    HTML page, Graphviz DOT, Mermaid or TikZ picture (``fmt``, or from ``path``'s extension), written to ``path``
    (replaced whole or not at all) when given. ``color`` (macs, params, activations, memory, time) picks the figure
    the boxes are shaded by; ``depth`` folds blocks nested deeper than it (see Analysis.collapse)."""
    from .render.draw_formats import draw_text, format_of  # igraph is imported there

    kind = fmt or (format_of(path) if path is not None else "svg")
    analysis = spec if isinstance(spec, Analysis) else analyze(spec, **analyze_kwargs)
    text = draw_text(analysis, kind, color=color, style=style, depth=depth)
    if path is not None:
        _replace(Path(path), text)
    return text


def _draw_view(analysis: Analysis, fmt: str = "svg", **options: Any) -> str:
    """Analysis.draw: the drawing modules are loaded on first use, not by every import of the package."""
    from .render.draw_formats import draw_text

    return draw_text(analysis, fmt, **options)


VIEWS.setdefault("draw", _draw_view)


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it: the old file stays whole on any failure."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".cnnsize-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def executable(spec: Any) -> Analysis | Graph:
    """What the executor takes: an Analysis as given, else the spec's Graph (the executor sizes it)."""
    return spec if isinstance(spec, Analysis) else load_graph(spec)


def build(spec: Any, *, input_shape: tuple | None = None, fit: str | None = None, device: str = "cpu",
          dtype: str = "float32", init: bool = False):
    """The spec (or an Analysis) as an ``nn.Module`` whose submodules carry the spec's layer names.

    Built on the meta device, then allocated on ``device`` without random initialization
    (parameters are zero) unless ``init=True``.
    """
    from . import executor

    return executor.build(executable(spec), input_shape=input_shape, fit=fit, device=device, dtype=dtype,
                          init=init)


def validate(spec: Any, **kwargs: Any):
    """Run the network once and compare every figure of the analysis with what torch measures.

    Returns a :class:`cnnsize.executor.validation.Validation` (``.ok``, ``.to_frame()``, ``.to_dict()``).
    Keyword arguments: input_shape, fit, batch, device, dtype, runs, warmup, force, init, accumulate, precision,
    checkpoint, checkpoint_impl, device_memory, optimizer.
    """
    from . import executor

    return executor.validate(executable(spec), **kwargs)


def bench(spec: Any, **kwargs: Any):
    """Time the forward (and optionally backward) pass; see :func:`cnnsize.executor.timing.run_bench`."""
    from . import executor

    return executor.bench(executable(spec), **kwargs)
