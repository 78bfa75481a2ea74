"""The training step's work: each layer's backward MACs, the gradients of activations and of parameters apart, and
the step's total (``totals.training``), as torch.utils.flop_counter.FlopCounterMode counts a real step.

Each kind says what its backward does (LayerKind.backward_macs: a weighted layer's products again for the input's
gradient and for the weight's; matmul's and attention's two activation operands each; a grouped convolution's weight
gradient as torch counts it); this pass only says, layer by layer, which inputs require grad (something before them
trains: none for the first layers of a network or of a frozen prefix) and whether the layer's weights train. With
gradient accumulation (``accumulate`` micro-steps of the analysis' batch) a step is that many forwards and backwards.
With activation checkpointing (Analysis.checkpoint) the layers it recomputes run their forward again in backward
(``recomputed``; their MACs are ``recompute_macs``), and a segment the reentrant variant leaves untrained makes no
gradients.
"""

from __future__ import annotations

from typing import Any

from ..core.graph import INPUT
from ..core.numeric import human_bytes, human_count, is_int, tidy
from ..engine.result import Column

COLUMNS = [Column("input_grad_macs", "Input-grad MACs"), Column("weight_grad_macs", "Weight-grad MACs"),
           Column("backward_macs", "Backward MACs")]
RECOMPUTED = Column("recomputed", "Recomputed", lambda value: "yes" if value else "",
                    lambda key, members, row: any(m.get(key) for m in members))


def apply(analysis, accumulate: int = 1):
    """Fill input_grad_macs, weight_grad_macs and backward_macs in every row, their totals, and ``totals.training``
    (its precision is the memory estimate's)."""
    precision = analysis.totals["memory"]["precision"]
    rows = analysis.layers
    shapes = {r.name: r.output_shape for r in rows}
    requires: dict[str, bool] = {INPUT: False}  # whether a layer's output requires grad (an input's never does)
    params_train: dict[str, bool] = {}  # whether any of a layer's parameters trains
    weight_trains: dict[str, bool] = {}
    memo: dict[tuple, tuple] = {}
    totals = [0, 0]
    unknown: list[str] = []  # layers whose backward their kind cannot say
    beyond: list = []  # what weight gradients count beyond their forward's products (torch's grouped convolutions)
    nodes = {node.name: node for node in analysis.graph.nodes}
    checkpoint = analysis.checkpoint or {}
    untrained = checkpoint.get("untrained", set())
    for row in rows:
        node = nodes.get(row.name)
        if row.kind is None or node is None or row.kind.is_input:  # an input's row
            requires[row.name] = False
            row.add("input_grad_macs", None)
            row.add("weight_grad_macs", None)
            row.add("backward_macs", None)
            continue
        weight_trains[row.name], params_train[row.name] = (False, False) if row.name in untrained else \
            _trains(row, node, weight_trains, params_train)
        grads = tuple(requires[src] for src in row.inputs)
        trains = weight_trains[row.name]
        key = (row.kind, *(shapes[src] for src in row.inputs), grads, trains)
        found = memo.get(key)
        if found is None:
            found = memo[key] = row.kind.backward_macs([shapes[src] for src in row.inputs], row.output_shape,
                                                       analysis.batch, grads, trains)
        requires[row.name] = (params_train[row.name] or any(grads)) and row.kind.passes_gradient
        if None in found:  # a kind that cannot say (an opaque layer's measured forward): unknown, and so the totals
            unknown.append(row.name)
            for column in COLUMNS:
                row.add(column.key, None)
            continue
        activation_grads, weight_grads = map(tidy, found)  # formulas in their most readable form (ints as they are)
        row.add("input_grad_macs", activation_grads if any(grads) or activation_grads else None)
        row.add("weight_grad_macs", weight_grads)
        row.add("backward_macs", tidy(activation_grads + weight_grads))
        totals[0] += activation_grads
        totals[1] += weight_grads
        if is_int(weight_grads) and is_int(row.macs) and weight_grads > row.macs:
            beyond.append(weight_grads - row.macs)
    _unreached(rows, requires, totals)
    if unknown:
        named = ", ".join(unknown[:3]) + (", …" if len(unknown) > 3 else "")
        analysis.notes.append(f"Backward MACs unknown for {len(unknown)} layers whose forward work is known but not "
                              "how it is done (an opaque layer's forward torch measured at import, a constant "
                              f"computed from trained parameters): {named}; the training step's backward and step "
                              "totals are unknown (null).")
    input_grads, weight_grads = (None, None) if unknown else totals
    _totals(analysis, input_grads, weight_grads, accumulate, precision, _recompute(analysis, checkpoint))
    if beyond:
        analysis.notes.append(f"Backward MACs are torch's FlopCounterMode's: it counts a grouped convolution's weight "
                              f"gradient as groups × its forward products, {human_count(sum(beyond))} MACs beyond "
                              f"the forward's at {len(beyond)} layers (see docs/memory.md).")
    return analysis


def _unreached(rows: list, requires: dict, totals: list) -> None:
    """Backward runs only from the outputs (the loss reads them), through kinds that pass a gradient: a layer that
    only feeds a detector's post-processing (``detections``: boxes, scores and labels never require grad), or a
    network whose output does not require grad, does no backward work. Its columns become 0, the totals less."""
    read = {src for row in rows for src in row.inputs}  # the loss reads the last output and every one nothing reads
    layers = [r for r in rows if r.kind is not None and not r.kind.is_input]
    reached = {r.name for r in layers if (r is layers[-1] or r.name not in read) and requires.get(r.name)}
    for row in reversed(rows):
        if row.name in reached and row.kind is not None and row.kind.passes_gradient:
            reached.update(src for src in row.inputs if requires.get(src))
    for row in rows:
        if row.name in reached or row.kind is None or row.kind.is_input or row.backward_macs is None:
            continue
        totals[0] -= row.input_grad_macs or 0
        totals[1] -= row.weight_grad_macs or 0
        row.add("input_grad_macs", None)
        row.add("weight_grad_macs", 0)
        row.add("backward_macs", 0)


def _trains(row, node, weight_trains: dict, params_train: dict) -> tuple[bool, bool]:
    """(whether the layer's weight trains, whether any of its parameters does): a layer sharing another's parameters
    (``shares``) or tying its weight to another's trains as that one does; ``trainable: [bias]`` trains no weight;
    a frozen layer (``--freeze-until``, ``trainable: false``) counts no trainable parameters."""
    if node.shares is not None:
        return weight_trains[node.shares], params_train[node.shares]
    tied = dict(node.ties).get("weight")
    parts = node.trainable if isinstance(node.trainable, tuple) else ("weight", "bias") if node.trainable else ()
    own = row.trainable_params != 0
    weight = weight_trains[tied] if tied is not None else own and "weight" in parts
    return bool(weight), bool(own or weight)


def _recompute(analysis, checkpoint: dict) -> Any:
    """The forward MACs checkpointing runs again, each layer marked ``recomputed`` (a column, with checkpointing)."""
    if not checkpoint:
        return 0
    recomputed = checkpoint["recomputed"]
    total: Any = 0
    for row in analysis.layers:
        flag = row.name in recomputed and row.kind is not None and not row.kind.is_input
        row.add(RECOMPUTED.key, flag)
        total += row.macs if flag else 0
    return tidy(total)


def _totals(analysis, input_grads: Any, weight_grads: Any, accumulate: int, precision: str, recompute: Any) -> None:
    t = analysis.totals
    known = input_grads is not None
    input_grads, weight_grads = tidy(input_grads), tidy(weight_grads)
    backward = tidy(input_grads + weight_grads) if known else None
    t["input_grad_macs"], t["weight_grad_macs"], t["backward_macs"] = input_grads, weight_grads, backward
    forward = t["macs"]
    step = tidy(accumulate * (forward + backward + recompute)) if known else None
    checkpoint = analysis.checkpoint
    t["training"] = {"precision": precision, "checkpoint": checkpoint and checkpoint["setting"],
                     "accumulate": accumulate, "forward_macs": forward, "backward_macs": backward,
                     "input_grad_macs": input_grads, "weight_grad_macs": weight_grads, "recompute_macs": recompute,
                     "step_macs": step}
    columns = list(COLUMNS)
    if checkpoint:
        t["training"].update(checkpoint_impl=checkpoint["impl"], checkpoint_segments=list(checkpoint["segments"]))
        if checkpoint["setting"] == "auto":
            t["training"]["checkpoint_chosen"] = checkpoint["chosen"]
        columns.append(RECOMPUTED)
        _checkpoint_notes(analysis, checkpoint, recompute)
    micro = f"{accumulate} micro-steps of batch {analysis.batch}" if accumulate > 1 else f"batch {analysis.batch}"
    redo = f" + recompute {human_count(recompute)}" if checkpoint else ""
    if not known:
        analysis.add_columns(columns, f"Training step ({precision}, {micro}): forward {human_count(forward)} MACs; "
                                      "backward unknown (opaque layers).")
        return
    analysis.add_columns(columns, f"Training step ({precision}, {micro}): forward {human_count(forward)} + backward "
                                  f"{human_count(backward)}{redo} MACs (input gradients {human_count(input_grads)}, "
                                  f"weight gradients {human_count(weight_grads)})"
                                  + (f" per micro-step; {human_count(step)} MACs a step." if accumulate > 1 else
                                     f" = {human_count(step)} MACs a step."))


def _checkpoint_notes(analysis, checkpoint: dict, recompute: Any) -> None:
    """One line saying what checkpointing wraps and costs, and one more where the reentrant variant trains nothing in
    a segment."""
    labels = checkpoint["segments"]
    if not labels:
        analysis.notes.append(f"Checkpointing ({checkpoint['setting']}): the step fits without it.")
        return
    shown = ", ".join(labels[:4]) + (", …" if len(labels) > 4 else "")
    memory = analysis.totals["memory"]
    setting = checkpoint["setting"] + (f": {checkpoint['chosen']}" if checkpoint["chosen"] != checkpoint["setting"]
                                       else "")
    analysis.notes.append(f"Checkpointing ({setting}, {checkpoint['impl']}): {len(labels)} segment"
                          f"{'s' if len(labels) != 1 else ''} ({shown}) keep only their inputs in forward and "
                          f"recompute {len(checkpoint['recomputed'])} layers in backward, {human_count(recompute)} "
                          "MACs "
                          f"(step peak {human_bytes(memory['training_step_peak_bytes'])}).")
    if checkpoint["untrained"]:
        analysis.notes.append(f"Reentrant checkpointing: {len(checkpoint['untrained'])} layers sit in segments none of "
                              "whose inputs requires grad; torch makes no gradients for their parameters (it warns "
                              "'None of the inputs have requires_grad=True'): they are counted as frozen. Use the "
                              "non-reentrant variant to train them.")
