"""Passes: functions from an Analysis to an Analysis that add figures as declared columns (cnnsize.engine.result.
Column): a tool's counting convention, memory traffic, predicted latency. ``analyze`` is the walk plus the passes
asked for, which the pipelines (cnnsize.api) and an import's own ``analyze`` share.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import unknown_name
from ..core.graph import Graph
from ..engine.memory import MemoryOptions
from ..engine.result import Analysis
from ..engine.walk import analyze_graph


def apply(analysis: Analysis, *, count: str | None = None, count_mode: str = "eval", traffic: bool = False,
          device_profile: Any = None, training: bool = False, accumulate: int | None = None, gpus: int = 1,
          sharding: str | None = None, gpus_per_node: int | None = None, offload: str | None = None) -> Analysis:
    """The passes asked for, in the order their columns show: a tool's count, memory traffic, latency, the training
    step's work (``training``, or ``accumulate`` micro-steps a step).

    Each pass is imported when asked for (``cnnsize report`` without them never loads their tables)."""
    if count_mode not in ("eval", "train"):
        raise unknown_name("count mode", count_mode, ("eval", "train"))
    analysis.count_mode = count_mode
    if count is not None:
        from . import conventions

        conventions.apply(analysis, count, train=count_mode == "train")
    if traffic or device_profile is not None:
        from . import traffic as traffic_pass

        traffic_pass.apply(analysis)
    if device_profile is not None:
        from . import latency

        latency.apply(analysis, device_profile)
    several = gpus != 1 or sharding is not None or offload is not None
    if training or accumulate is not None or several or analysis.checkpoint is not None:
        from . import training as training_pass

        training_pass.apply(analysis, accumulate=check_accumulate(accumulate))
    if several:  # data parallel or sharded over ``gpus`` (cnnsize.passes.sharding)
        from . import sharding as sharding_pass

        sharding_pass.apply(analysis, gpus, sharding, gpus_per_node, offload)
    return analysis


def check_accumulate(accumulate: Any) -> int:
    """The micro-steps a training step accumulates (1 without accumulation), or one line saying what is wrong."""
    return 1 if accumulate is None else MemoryOptions(accumulate=accumulate).check().accumulate


def analyze(graph: Graph, *, count: str | None = None, count_mode: str = "eval", traffic: bool = False,
            device_profile: Any = None, training: bool = False, accumulate: int | None = None, gpus: int = 1,
            sharding: str | None = None, gpus_per_node: int | None = None, offload: str | None = None,
            **walk: Any) -> Analysis:
    """The graph sized (``walk``: the keyword arguments of cnnsize.engine.walk.analyze_graph) and the passes
    asked for applied."""
    return apply(analyze_graph(graph, accumulate=accumulate, **walk), count=count, count_mode=count_mode,
                 traffic=traffic, device_profile=device_profile, training=training, accumulate=accumulate, gpus=gpus,
                 sharding=sharding, gpus_per_node=gpus_per_node, offload=offload)
