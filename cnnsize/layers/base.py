"""What every layer kind is: a small class with its parameters and its arithmetic.

A kind declares its parameters (with types and defaults) and answers, for given
input shapes: the output shape, the counts (weights, biases, buffers,
connections, multiply-adds), the receptive field step, whether its output is a
new tensor, and how to build it in torch. Shapes are tuples (C, *spatial), or
(features,) once flat; each dimension is an int or a sympy expression.

A kind also says which torch modules and functions it stands for (``torch_modules``,
``torch_functions``) and how to read its settings back from one traced call (``from_torch``):
cnnsize.importers.torch_import walks the fx graph and asks the registry, holding no list of kinds itself.
Likewise for ONNX: ``onnx_ops`` names the operators a kind stands for and ``from_onnx(OnnxCall)`` reads its
settings back from one node's attributes and inputs (cnnsize.importers.onnx_import).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import chain
from operator import add, sub
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from ..core.errors import CnnsizeError, SpecError, Unrepresentable, unknown_name
from ..core.expr import describe, shown
from ..core.numeric import Dim, all_int, dmax, dmin, is_int, is_symbolic, prod
from ..core.plain import Plain
from .registry import Registry

Shape = tuple  # (C, *spatial) or (features,)
REQUIRED: Any = object()
COMMON_KEYS = ("name", "from", "trainable", "shares", "function", "discarded")
# PyTorch's names of settings a spec writes otherwise (nn.Conv2d(out_channels=8, kernel_size=3, padding=1)),
# suggested for a kind with that setting; and those a spec leaves out, the layer's input shape giving them
TORCH_SETTING_NAMES = {"out_channels": "filters", "kernel_size": "kernel", "padding": "pad", "out_features": "units",
                       "output_padding": "output_pad", "num_heads": "heads", "scale_factor": "scale",
                       "output_size": "output", "num_groups": "groups", "elementwise_affine": "affine",
                       "dim": "axis"}
FROM_THE_INPUT = ("in_channels", "in_features", "num_features", "normalized_shape", "num_channels", "embed_dim")
# What a layer's output is at inference (LayerKind.storage): a tensor of its own; its input's storage read another
# way, or the input itself (flatten, chunk, slice, dropout at inference); or its input's storage written over
NEW, VIEW, IN_PLACE = "new tensor", "view", "in place"
LOWER, FLOAT32, PROMOTE = "lower", "float32", "promote"  # autocast: how torch runs a kind (LayerKind.autocast)
# The kinds the importers write for a role rather than for a torch or ONNX operation they map: the network's output
# where it is not the last layer (a pass-through), parameters no forward uses, an operation no kind represents
PASS_KIND, UNUSED_KIND, OPAQUE_KIND = "identity", "unused", "opaque"


class Ctx(Plain):
    """Analysis-wide settings a layer needs: the fit rule and collected symbolic conditions.

    ``conditions`` holds (room, stride) pairs that must divide exactly, ``bounds`` rooms that must be >= 0;
    both only fill up when sizes are symbolic (see cnnsize.core.symbolic).
    """

    __slots__ = FIELDS = ("fit", "conditions", "bounds")

    def __init__(self, fit: str = "exact", conditions: list | None = None, bounds: list | None = None):
        self.fit = fit
        self.conditions: list = [] if conditions is None else conditions
        self.bounds: list = [] if bounds is None else bounds


class Counts(Plain):
    """Per-sample counts of one layer. Connections follow the LeNet table's convention. Read-only.

    A composite layer's intermediate tensors are not here but in ``LayerKind.scratch`` (some are made once per
    call, and torch's copies depend on the batch). ``frozen``: of the weights, elements that never train (an
    opaque module's parameters frozen in torch)."""

    __slots__ = FIELDS = ("weights", "biases", "buffers", "connections", "macs", "frozen")
    __hash__ = Plain.hashed

    def __init__(self, weights: Dim = 0, biases: Dim = 0, buffers: Dim = 0, connections: Dim = 0, macs: Dim = 0,
                 frozen: Dim = 0):
        self.weights, self.biases, self.buffers = weights, biases, buffers
        self.connections, self.macs, self.frozen = connections, macs, frozen


_new_tuple = tuple.__new__  # makes a named tuple from its values without the keyword handling of its __new__


class RF(NamedTuple):
    """Receptive field per spatial axis: size, effective stride (jump), start.

    ``start`` is the input coordinate of the first pixel seen by the first
    output unit; negative values lie in the padding. A named tuple: immutable, and
    cheap to make, as the analysis makes one per windowed layer.
    """

    size: tuple
    stride: tuple
    start: tuple

    @classmethod
    def identity(cls, nd: int) -> RF:
        return cls((1,) * nd, (1,) * nd, (0,) * nd)

    def window(self, kernel: tuple, stride: tuple, pad_lo: tuple, dilation: tuple) -> RF:
        """The field after a sliding window with these per-axis settings.

        The analysis runs this once per windowed layer: images (two axes) take a path written out by hand, a
        third of the general one's time."""
        size, jump, start = self
        if len(jump) == 2:
            (s0, s1), (j0, j1), (b0, b1) = size, jump, start
            (k0, k1), (t0, t1), (p0, p1), (d0, d1) = kernel, stride, pad_lo, dilation
            return _new_tuple(RF, ((s0 + d0 * (k0 - 1) * j0, s1 + d1 * (k1 - 1) * j1), (j0 * t0, j1 * t1),
                                   (b0 - p0 * j0, b1 - p1 * j1)))
        return RF(tuple([s + d * (k - 1) * j for s, j, k, d in zip(size, jump, kernel, dilation)]),
                  tuple([j * st for j, st in zip(jump, stride)]),
                  tuple([b - p * j for b, j, p in zip(start, jump, pad_lo)]))

    @staticmethod
    def union(fields: list[RF]) -> RF:
        """The field covering every path into a merge (the largest span, aligned by start)."""
        if len(fields) == 1:
            return fields[0]
        starts = [f.start for f in fields]
        ends = [tuple(map(add, f.start, f.size)) for f in fields]
        strides = [f.stride for f in fields]
        if all_int([*chain(*starts, *ends, *strides)]):  # exact ints: the builtins
            start, end, stride = tuple(map(min, *starts)), tuple(map(max, *ends)), tuple(map(max, *strides))
        else:  # formulas: sympy's Min and Max
            start, end, stride = tuple(map(dmin, *starts)), tuple(map(dmax, *ends)), tuple(map(dmax, *strides))
        return RF(tuple(map(sub, end, start)), stride, start)

    def to_dict(self) -> dict:
        return {"size": list(self.size), "stride": list(self.stride), "start": list(self.start)}


class Saved(Plain):
    """One tensor autograd keeps for the backward pass, per sample.

    ``of`` is ``"input"`` (the layer's input ``index``, whose storage may be shared with earlier
    layers), ``"output"``, or ``"new"`` (a tensor of its own with ``numel`` elements). ``itemsize``
    None means the activation dtype, ``"params"`` the parameters' (float32 under mixed precision); int64 indices
    are 8, a float32 statistic 4.
    """

    __slots__ = FIELDS = ("of", "numel", "itemsize", "index", "per_sample", "batch_one", "for_inputs")
    __hash__ = Plain.hashed

    def __init__(self, of: str, numel: Dim = 0, itemsize: int | str | None = None, index: int = 0,
                 per_sample: bool = True,
                 batch_one: bool | None = None, for_inputs: tuple = ()):
        self.of, self.numel, self.itemsize, self.index = of, numel, itemsize, index
        self.per_sample = per_sample  # False for per-channel statistics, which do not grow with the batch
        self.batch_one = batch_one  # True: kept only at batch 1, False: only above (torch folds one sample to views)
        # the inputs whose gradients need it, where torch keeps it only when one of them requires grad (a factor of a
        # product: x * mask keeps mask for x's gradient, and x only where mask requires grad); () always kept
        self.for_inputs = for_inputs


class TorchModule(NamedTuple):
    """One module of a layer's torch build as tools that walk ``model.modules()`` see it (accelerate's largest layer,
    DeepSpeed's largest layer): the parameters and floating-point buffers it holds itself (``recurse=False``), its
    int64 buffers apart (8 bytes each at any dtype: batch norm's ``num_batches_tracked``, attention's index tables),
    and whether it has no child modules."""

    params: Any
    buffers: Any = 0
    int_buffers: Any = 0
    leaf: bool = True


class Param(Plain):
    """One parameter of a layer kind: its type, default and a line of documentation. Read-only.

    ``type``: int, count, ints, ints_or_zero, pads, bool, float, fill (a number or ±inf),
    positive, probability, choice, str or size."""

    __slots__ = FIELDS = ("type", "default", "doc", "choices")
    __hash__ = Plain.hashed

    def __init__(self, type: str, default: Any = REQUIRED, doc: str = "", choices: tuple = ()):
        self.type, self.default, self.doc, self.choices = type, default, doc, choices

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


_TYPE_WORDS = {
    "int": "a positive integer", "count": "an integer >= 0", "ints": "a positive integer or a list of them",
    "pads": "an integer >= 0, a list of them, 'same' or 'valid'", "bool": "true or false",
    "float": "a number", "fill": "a number, or -inf or inf",
    "positive": "a positive number", "probability": "a number from 0 to 1", "str": "a string",
    "size": "a positive integer or a list of them",
    "ints_or_zero": "an integer >= 0 or a list of them",
}


def _also(hint: str | None, more: str) -> str:
    return f"{hint}; {more}" if hint else more


def _as_int(value: Any, minimum: int, what: str, evaluate) -> Dim:
    if isinstance(value, str):
        try:
            value = evaluate(value)
        except SpecError as exc:
            kind = "a positive integer" if minimum else "an integer >= 0"
            raise SpecError(exc.message, hint=_also(exc.hint, f"{what} must be {kind}")) from None
    if isinstance(value, bool) or not (is_int(value) or is_symbolic(value)):
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)  # exact: every integer below 2^53 is a float exactly
        elif isinstance(value, float) and value.is_integer():
            raise SpecError(f"{what} is the decimal number {shown(value)}, too large to stand for an exact integer",
                            hint="write the integer without a decimal point or exponent (floats are exact only "
                                 "below 2^53)")
        else:
            raise SpecError(f"{what} must be {'a positive integer' if minimum else 'an integer >= 0'}, "
                            f"got {shown(value)}")
    if is_int(value) and value < minimum:
        raise SpecError(f"{what} must be {'at least ' + str(minimum)}, got {value}")
    return value


def _to_int(param: Param, value: Any, what: str, evaluate) -> Dim:
    return _as_int(value, 1, what, evaluate)


def _to_count(param: Param, value: Any, what: str, evaluate) -> Dim:
    return _as_int(value, 0, what, evaluate)


def _to_ints(param: Param, value: Any, what: str, evaluate) -> Any:
    """A positive integer, or a non-empty list of them (one per spatial axis)."""
    if isinstance(value, list):
        if not value:
            raise SpecError(f"{what} must not be an empty list")
        return tuple(_as_int(v, 1, what, evaluate) for v in value)
    return _as_int(value, 1, what, evaluate)


def _to_ints_or_zero(param: Param, value: Any, what: str, evaluate) -> Any:
    """An integer >= 0 or a list of them: paddings and output paddings may be zero."""
    if isinstance(value, list):
        return tuple(_as_int(v, 0, what, evaluate) for v in value)
    return _as_int(value, 0, what, evaluate)


def _to_pads(param: Param, value: Any, what: str, evaluate) -> Any:
    """Like ``ints_or_zero``, plus torch's two padding words, kept as written for the kind to resolve."""
    if value in ("same", "valid"):
        return value
    return _to_ints_or_zero(param, value, what, evaluate)


def _to_bool(param: Param, value: Any, what: str, evaluate) -> bool:
    """A boolean, or an expression that evaluates to one (a block argument)."""
    if isinstance(value, str):
        try:
            value = evaluate(value)
        except SpecError as exc:
            raise SpecError(exc.message, hint=_also(exc.hint, f"{what} must be true or false")) from None
    if not isinstance(value, bool):
        raise SpecError(f"{what} must be true or false, got {shown(value)}")
    return value


def _to_float(param: Param, value: Any, what: str, evaluate) -> float:
    """A finite number: an infinite or NaN figure would poison every total downstream."""
    if isinstance(value, str):
        value = evaluate(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{what} must be a number, got {describe(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise SpecError(f"{what} must be a finite number, got {describe(value)}")
    return number


def _to_fill(param: Param, value: Any, what: str, evaluate) -> float:
    """A padding's constant: any number, -inf included (F.pad(x, pads, value=-inf) before a max pool), as it counts
    in no figure; not NaN."""
    if isinstance(value, float) and math.isinf(value):
        return value
    return _to_float(param, value, what, evaluate)


def _to_positive(param: Param, value: Any, what: str, evaluate) -> float:
    """An eps: torch's batch norm refuses 0 and below."""
    number = _to_float(param, value, what, evaluate)
    if number <= 0:
        raise SpecError(f"{what} must be a positive number, got {shown(value)}")
    return number


def _to_probability(param: Param, value: Any, what: str, evaluate) -> float:
    """A dropout p: torch refuses one outside [0, 1] only when the layer is built, so check it here."""
    number = _to_float(param, value, what, evaluate)
    if not 0 <= number <= 1:
        raise SpecError(f"{what} is a probability, from 0 to 1, got {shown(value)}")
    return number


def _to_choice(param: Param, value: Any, what: str, evaluate) -> Any:
    if value not in param.choices:
        raise unknown_name(what, value, param.choices)
    return value


def _to_str(param: Param, value: Any, what: str, evaluate) -> str:
    if not isinstance(value, str):
        raise SpecError(f"{what} must be a string, got {shown(value)}")
    return value


_CONVERTERS = {
    "int": _to_int, "count": _to_count, "ints": _to_ints, "size": _to_ints, "ints_or_zero": _to_ints_or_zero,
    "pads": _to_pads, "bool": _to_bool, "positive": _to_positive, "probability": _to_probability,
    "float": _to_float, "fill": _to_fill, "choice": _to_choice, "str": _to_str,
}
_LIST_TYPES = ("ints", "size", "ints_or_zero", "pads")


def convert(param: Param, value: Any, what: str, evaluate) -> Any:
    """Check and convert one raw spec value; ``evaluate`` turns expression strings into values."""
    if param.type in _LIST_TYPES and isinstance(value, str) and value not in ("same", "valid"):
        value = evaluate(value)  # a variable may hold a list, e.g. a block argument kernel: [1, 7]
        value = list(value) if isinstance(value, tuple) else value
    converter = _CONVERTERS.get(param.type)
    if converter is None:  # pragma: no cover
        raise CnnsizeError(f"internal: unknown parameter type {param.type}")
    return converter(param, value, what, evaluate)


def per_axis(value: Any, nd: int, what: str) -> tuple:
    """An int (same on every axis) or a list with one entry per spatial axis."""
    if isinstance(value, tuple):
        if len(value) != nd:
            raise SpecError(f"{what} has {len(value)} entries but the input has {nd} spatial axes",
                            hint=f"give one number or {nd}")
        return value
    return (value,) * nd


PASS_THROUGH: Any = object()  # from_torch's answer for a call whose output is its input's value (no layer)


class TorchCall(Plain):
    """One traced torch call as a layer kind sees it in ``LayerKind.from_torch`` (no torch types needed).

    ``module`` is the ``nn.Module`` called (None for a function or method), ``function`` the function,
    method or operator name (``"relu"``, ``"add_"``, ``"iadd"``, ``"view"``; for a module, its class name).
    ``args``/``kwargs`` are the call's arguments as traced, with every tensor replaced by its shape (a
    ``TensorArg``). ``inputs`` are the shapes (batch axis included, as torch has them) of the tensors computed
    by earlier layers, in argument order; ``attrs`` the tensors read from module attributes (parameters and
    buffers, e.g. ``self.weight`` passed to ``F.conv2d``). ``output`` is the output's shape; ``index`` the
    item taken from a call returning several values (``x.chunk(2, 1)[1]``: 1), else None.
    """

    FIELDS = ("module", "function", "args", "kwargs", "inputs", "output", "attrs", "index", "where", "contiguous",
              "out_contiguous", "view", "attrs_learned", "batch", "out_batch", "torch_inputs", "torch_output",
              "const_counts", "dtype_kept")

    def __init__(self, module: Any, function: str, args: tuple, kwargs: dict, inputs: list, output: tuple,
                 attrs: list | None = None, index: int | None = None, where: str = "", contiguous: list | None = None,
                 out_contiguous: bool = True, view: bool | None = None, attrs_learned: list | None = None,
                 batch: list | None = None, out_batch: tuple = (0, 1), torch_inputs: list | None = None,
                 torch_output: tuple = (), const_counts: list | None = None, dtype_kept: bool = True):
        self.module, self.function, self.args, self.kwargs, self.inputs, self.output = \
            module, function, args, kwargs, inputs, output
        self.attrs: list = [] if attrs is None else attrs
        # per attr: whether it is a parameter itself, or a view of one (gamma.view(1, -1, 1, 1)), not a tensor
        # computed from parameters and buffers (a relative position bias gathered from its table), nor a buffer
        self.attrs_learned: list = [] if attrs_learned is None else attrs_learned
        self.index, self.where = index, where  # where: fx node and module path, for messages
        self.contiguous: list = [] if contiguous is None else contiguous  # per input: in memory order in torch
        self.out_contiguous = out_contiguous  # whether the output is in memory order (a reshape of a strided input)
        self.view = view  # whether torch's output is a view of another tensor (None: not known)
        # where the batch is in each computed input as torch holds it, (torch axis, per-sample values merged into
        # that axis with the batch outermost: 1 where the axis is the batch alone), and in the output; empty where
        # every tensor has its batch alone in front. With a layout given, ``inputs`` and ``output`` are per-sample
        # shapes (a batch of 1 in front) and ``torch_inputs``/``torch_output`` torch's own
        self.batch: list = [] if batch is None else batch
        self.out_batch = out_batch
        self.torch_inputs: list = [] if torch_inputs is None else torch_inputs
        self.torch_output = torch_output
        # per attr: (parameters, buffers, MACs once per call, MACs per sample) it is computed from that no layer counts
        # yet, for a kind that counts them as its own (``counts_constants``)
        self.const_counts: list = [] if const_counts is None else const_counts
        self.dtype_kept = dtype_kept  # whether the output's dtype is every computed input's (x.to(x's own dtype))

    def arg(self, i: int, key: str, default: Any = None) -> Any:
        """Argument ``i`` (counting the input tensor of a function or method as 0), or keyword ``key``."""
        return self.args[i] if len(self.args) > i else self.kwargs.get(key, default)

    @property
    def inplace(self) -> bool:
        """Whether the call itself is the in-place form (``relu_``, ``x += y``, ``inplace=True``)."""
        f = self.function
        named = (f.endswith("_") and not f.endswith("__")) or (f.startswith("__i") and f.endswith("__")) or \
            f in ("iadd", "imul", "isub", "itruediv", "iand", "ior")
        module = self.module is not None and bool(getattr(self.module, "inplace", False))
        return named or module or bool(self.kwargs.get("inplace", False))

    @property
    def rank(self) -> int:
        """The rank of the first input (batch axis included)."""
        return len(self.inputs[0]) if self.inputs else 0

    def axis(self, dim: int, i: int = 0, merged: bool = False) -> int | None:
        """Torch's axis ``dim`` of input ``i`` as a per-sample axis (from 0), None for the batch axis; with
        ``merged``, an axis holding the batch and per-sample values together is the per-sample axis it holds (which a
        permute moves whole, but no index may pick from)."""
        at, inner = self.batch[i] if self.batch else (0, 1)
        rank = len(self.torch_inputs[i]) if self.batch else len(self.inputs[i])
        d = dim % rank
        if d == at:
            return d if merged and inner > 1 else None
        return d - 1 if d > at and inner == 1 else d

    def samples_kept(self) -> bool:
        """Whether a reshape keeps each sample's values apart: as many values before the batch in memory order in
        the output as in the input (the batch moves nowhere, nor mixes with a per-sample axis)."""
        if not self.batch:
            return bool(self.output) and bool(self.inputs) and self.output[0] == self.inputs[0][0]
        (a, _), (b, _) = self.batch[0], self.out_batch
        return prod(self.torch_inputs[0][:a]) == prod(self.torch_output[:b])

    def refuse(self, what: str, hint: str | None = None) -> Unrepresentable:
        """The one-line error for a call this kind cannot represent: what it is, then where it sits."""
        return Unrepresentable(f"cannot import {what} ({self.where})" if self.where else f"cannot import {what}",
                               hint=hint or "from_torch maps the torch modules and functions each layer kind "
                                            "declares; cnnsize.importers.torch_import.supported() lists them")


class TensorArg(Plain):
    """A tensor argument of a traced call: its shape (batch axis included) and whether a layer computed it."""

    __slots__ = FIELDS = ("shape", "computed")
    __hash__ = Plain.hashed

    def __init__(self, shape: tuple, computed: bool = True):
        self.shape, self.computed = shape, computed


class OnnxValue(Plain):
    """One input of an ONNX node as a layer kind sees it: ``shape`` (batch axis included, ints; None if unknown),
    ``value`` (the tensor as nested lists, for a constant the importer could read: attributes given as inputs,
    e.g. Clip's min and max; None otherwise), ``constant`` (an initializer or computed from them alone: a weight),
    ``producer`` (the OnnxCall of the node computing it, None for the input and constants), ``learned`` (a
    constant read from weights, not made of literal numbers: an unoptimized exporter feeds a zero bias, expanded
    from a literal 0, to a convolution without one)."""

    FIELDS = ("name", "shape", "value", "constant", "producer", "learned")

    def __init__(self, name: str, shape: tuple | None, value: Any = None, constant: bool = False,
                 producer: Any = None, learned: bool = False):
        self.name, self.shape, self.value, self.constant, self.producer = name, shape, value, constant, producer
        self.learned = learned  # read from a weight (an initializer, a Constant tensor), not from literal numbers

    @property
    def scalar(self) -> Any:
        """The value as one number (a 0-d or one-element constant), else None."""
        v = self.value
        while isinstance(v, list) and len(v) == 1:
            v = v[0]
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


class OnnxCall(Plain):
    """One ONNX node as a layer kind sees it in ``LayerKind.from_onnx`` (no onnx types needed).

    ``op`` is the operator (``"Conv"``), ``attrs`` its attributes as Python values, ``args`` every input in
    order (an OnnxValue; None for an input left out), ``outputs`` the output shapes (shape inference's, batch
    included), ``index`` the output asked for (Split's), ``node`` the node's name. ``fuse`` claims nodes that
    feed this one (Sigmoid × Mul as SiLU, MatMul + Add as a linear layer with a bias).
    """

    FIELDS = ("op", "attrs", "args", "outputs", "node", "index", "opset", "users", "proto", "buffer_inputs")

    def __init__(self, op: str, attrs: dict, args: list, outputs: list, node: str = "", index: int = 0,
                 opset: int = 0, users: Any = None, proto: Any = None, buffer_inputs: set | None = None):
        self.op, self.attrs, self.args, self.outputs, self.node, self.index, self.opset = \
            op, attrs, args, outputs, node, index, opset
        self.users = users  # value name -> number of nodes (and graph outputs) reading it
        self.proto = proto  # the onnx NodeProto, for the importer
        self.buffer_inputs: set = set() if buffer_inputs is None else buffer_inputs  # counted as buffers

    def mark_buffers(self, *positions: int) -> None:
        """Count these inputs' initializers as buffers (batch norm's running statistics), not parameters."""
        self.buffer_inputs.update(positions)

    @property
    def output(self) -> tuple:
        return self.outputs[self.index]

    @property
    def inputs(self) -> list:
        """The shapes of the inputs layers compute (not constants), in order, as TorchCall.inputs."""
        return [a.shape for a in self.args if a is not None and not a.constant]

    @property
    def computed(self) -> list:
        """The OnnxValues of the inputs layers compute, in order."""
        return [a for a in self.args if a is not None and not a.constant]

    @property
    def rank(self) -> int:
        return len(self.inputs[0]) if self.inputs else 0

    def arg(self, i: int) -> OnnxValue | None:
        return self.args[i] if len(self.args) > i else None

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def const(self, i: int, default: Any = None) -> Any:
        """Input ``i``'s value where it is a constant the importer read (an attribute given as an input)."""
        a = self.arg(i)
        return default if a is None or a.value is None else a.value

    def weight(self, i: int) -> tuple | None:
        """The shape of input ``i`` where it is a weight (a constant), else None."""
        a = self.arg(i)
        return a.shape if a is not None and a.constant else None

    def has_bias(self, i: int) -> bool:
        """Whether input ``i`` is given and read from weights (a zero bias made of literals is none)."""
        a = self.arg(i)
        return a is not None and (a.learned or not a.constant)

    def used_once(self, value: OnnxValue) -> bool:
        return self.users is not None and self.users.get(value.name, 0) == 1

    def fuse(self, settings: dict, inputs: list, absorbed: list) -> Fused:
        """This node with the nodes ``absorbed`` (OnnxCalls of its producers, read by nothing else) as one layer
        reading ``inputs`` (OnnxValues)."""
        return Fused(settings, list(inputs), list(absorbed))

    def refuse(self, what: str, hint: str | None = None) -> Unrepresentable:
        where = f" (node '{self.node}')" if self.node else ""
        return Unrepresentable(f"cannot import the ONNX operator {what}{where}",
                               hint=hint or "from_onnx maps the operators each layer kind declares; "
                                            "cnnsize.importers.onnx_import.supported() lists them, --opaque keeps "
                                            "others")


class Fused(Plain):
    """from_onnx's answer for a node that takes its producers with it (see OnnxCall.fuse)."""

    FIELDS = ("settings", "inputs", "absorbed", "kind")

    def __init__(self, settings: Any, inputs: list, absorbed: list, kind: str | None = None):
        self.settings, self.inputs, self.absorbed, self.kind = settings, inputs, absorbed, kind


# kind name -> class, each kind's module loaded on first use (see cnnsize.layers.registry)
REGISTRY: Registry[type[LayerKind]] = Registry()


def register(name: str):
    """Class decorator: make a layer kind available to specs under ``name``."""

    def wrap(cls):
        cls.kind = name
        REGISTRY.add(name, cls)
        return cls

    return wrap


class LayerKind:
    """Base of all layer kinds. Subclasses override what differs from an elementwise layer."""

    kind: ClassVar[str] = "?"
    params: ClassVar[dict[str, Param]] = {}
    weight_layer: ClassVar[bool] = False
    # settings the kind's build brings into the range torch takes itself (roll: shifts modulo the size), so the
    # executor does not refuse them for being beyond int64
    unbounded: ClassVar[tuple[str, ...]] = ()
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int] = 1
    # what the kind is for counting conventions (cnnsize.passes.conventions holds each tool's rule per cause):
    # macs, normalization, activations, pooling, elementwise, softmax, attention, upsampling, dropout, views
    cause: ClassVar[str] = "other"
    # facts only this kind has, for counting rules (name -> what it is; cnnsize.passes.conventions documents them beside
    # its FACTS): the values come from count_facts()
    count_fact_names: ClassVar[dict[str, str]] = {}
    # Whether backward reaches the layer's parameters: False for parameters no forward uses (``unused``), which
    # torch gives no gradient and optimizers no state, trainable or not.
    learns: ClassVar[bool] = True
    # False for a kind whose output never requires grad though its inputs do (a detector's post-processing: boxes,
    # scores and labels chosen by top-k and NMS): backward stops there (cnnsize.passes.training)
    passes_gradient: ClassVar[bool] = True
    # True for a kind whose output is made from its inputs' shapes alone, never their values (a grid of anchors):
    # it never requires grad, so autograd saves nothing for it, and for the layers after it only what they need
    constant: ClassVar[bool] = False  # (and made once per call whatever the batch: its activations do not grow)
    # The torch it stands for (from_torch): module classes by name (a name in torch.nn, or a dotted path such as
    # "cnnsize.layers.nn.modules.Add"; matched exactly, not subclasses), and functions, tensor methods and
    # operators by name ("relu", "relu_", "add", "iadd", "view"). Several kinds may name the same one: each is
    # asked in registration order and the first that gives settings wins.
    torch_modules: ClassVar[tuple[str, ...]] = ()
    torch_functions: ClassVar[tuple[str, ...]] = ()
    # True where from_torch reads a call whose batch axis moved (torch's reshape(B, N, 3, h, d).permute(2, 0, ...),
    # windows merged into the batch): its shapes are then per sample (a batch of 1 in front) and it reads torch's
    # axis numbers through TorchCall.axis. A kind acting on each sample alone (elementwise, the last axes, views)
    # says so; others (a convolution, batch norm) see their batch first or the import refuses
    batch_anywhere: ClassVar[bool] = False
    # Whether the kind counts as its own the parameters and buffers its constant inputs are computed from
    # (TorchCall.const_counts): the importer then takes them as counted
    counts_constants: ClassVar[bool] = False
    # The ONNX operators it stands for (from_onnx), by op_type ("Conv", "Relu"); asked in registration order too.
    onnx_ops: ClassVar[tuple[str, ...]] = ()
    # a kind with no onnx_ops says why (tests/test_onnx_import.py checks every kind has one or the other)
    onnx_none: ClassVar[str] = ""
    # Specs its tests run, name -> (input shape, layers): tests/test_layer_kinds.py checks each built in torch
    # (shapes, parameters, buffers, MACs, what autograd saves) and tests/test_conventions_zoo.py runs each through
    # the nine tools. torch_examples and onnx_examples do the same for its torch and ONNX mappings
    examples: ClassVar[dict[str, tuple[list, list]]] = {}
    # what its output is at inference: NEW, VIEW or IN_PLACE (storage adds an in-place setting's IN_PLACE)
    makes: ClassVar[str] = NEW
    # True where its output is one of several views that one torch call returns (chunk: torch's split): autograd
    # refuses to write such a view, or a view of it, in place when it requires grad
    several_views: ClassVar[bool] = False
    # False for layers that stand for what the source network holds but its forward never runs (unused
    # parameters): every counting tool, which sees only what runs, counts nothing for them
    called: ClassVar[bool] = True
    # True where this kind's rules in cnnsize.passes.conventions reproduce every tool (tests/test_conventions_zoo.py
    # runs the nine tools on a network holding it). Read from the kind's own class, never inherited
    # (checked_by_tools), so that a new kind is refused by the tools' conventions until its rules are checked
    tools_checked: ClassVar[bool] = False
    # What each tool counts for this kind where its cause's rule (cnnsize.passes.conventions) does not say: the
    # convention's name -> a rule over the facts, or for a composite layer a dict of rules by cause (its parts);
    # "NAME.VARIANT" for a variant of the kind's settings (count_variant), "NAME train" for training mode. Read from
    # the kind's own class, never inherited (rules_for_tools): log_softmax is not counted as softmax is
    count_rules: ClassVar[dict[str, Any]] = {}
    # the axis of the output its features are on, for the counting rules' fanin: 0 (channels), or -1 for a layer
    # acting on the last axis of tokens
    features_axis: ClassVar[int] = 0
    # True for a layer holding the figures torch measured for an operation no kind represents (opaque), not ones
    # computed from its settings: no tool's convention can count it, nor can ONNX's weights be matched to it
    measured: ClassVar[bool] = False
    # the smallest batch a training step of it can be measured at (batch norm: one sample has no variance)
    min_training_batch: ClassVar[int] = 1
    # How torch's autocast runs it, per device ("cpu", "cuda"), from torch's autocast lists: LOWER (its op is in the
    # 16-bit list: inputs and weights cast to 16 bits, a 16-bit output), FLOAT32 (in the float32 list: inputs cast up,
    # a float32 output), PROMOTE (in neither, but float32 parameters enter its arithmetic: a float32 output); a device
    # not named runs it in its inputs' widest type (autocast_width)
    autocast: ClassVar[dict[str, str]] = {}
    # True for a network input beside the first (a spec's ``inputs:``): given by the caller, not computed
    is_input: ClassVar[bool] = False

    if TYPE_CHECKING:  # a kind's settings (its params) are attributes set by __init__
        def __getattr__(self, name: str) -> Any: ...

    def __init__(self, values: Mapping[str, Any]):
        for key, param in self.params.items():
            setattr(self, key, values.get(key, param.default))
        self.values = dict(values)

    @classmethod
    def setting_hint(cls, key: str) -> str | None:
        """What to write instead of a setting this kind does not have, where it is PyTorch's name for one."""
        ours = TORCH_SETTING_NAMES.get(key)
        if ours in cls.params:
            return f"PyTorch's {key} is cnnsize's '{ours}'"
        if key in FROM_THE_INPUT:
            return f"leave {key} out: cnnsize takes it from the layer's input shape"
        return None

    @classmethod
    def torch_examples(cls) -> dict[str, tuple[Any, tuple]]:
        """torch models its mapping imports, name -> (a function making the nn.Module, the input shape per sample):
        tests/test_torch_mapping.py imports each and checks the figures against torch's. Imports torch."""
        return {}

    @classmethod
    def onnx_examples(cls) -> list[tuple]:
        """ONNX graphs its mapping imports, as tests/test_onnx_import.py's table has them: (id, input shape, nodes as
        (operator, inputs, attributes), initializers {name: numpy array}, the kinds expected, a torch.nn equivalent
        (class name, args, kwargs) or None); built and run with ONNX Runtime there. Imports numpy."""
        return []

    @classmethod
    def checked_by_tools(cls) -> bool:
        """Whether this very class declares its counting rules checked against the tools (``tools_checked``)."""
        return bool(cls.__dict__.get("tools_checked", False))

    @classmethod
    def rules_for_tools(cls) -> dict[str, Any]:
        """This very class' ``count_rules`` (a subclass has rules of its own or none)."""
        return cls.__dict__.get("count_rules", {})

    def latency_key(self) -> str | None:
        """The efficiency of a device profile that predicts this layer's time (cnnsize.passes.latency's
        EFFICIENCY_KEYS) where its cause does not say which; None for most kinds."""
        return None

    def count_variant(self, out: Shape) -> str | None:
        """The part of this layer's settings a counting rule may depend on ("nearest.2" for a 2-D nearest
        upsampling); None for most kinds."""
        return None

    @staticmethod
    def for_torch_name(name: str) -> str | None:
        """The kind standing for a torch module class named so ('Conv2d' -> conv, 'BatchNorm2d' -> bn): of several,
        the one the others derive from (conv, not the per-box box_conv)."""
        found = [(kind, cls) for kind, cls in REGISTRY.items()
                 if any(m.rsplit(".", 1)[-1].lower() == name.lower() for m in cls.torch_modules)]
        return next((kind for kind, cls in found if not any(cls is not other and issubclass(cls, other)
                                                            for _, other in found)), None)

    # -- arithmetic -------------------------------------------------------------
    def output_shape(self, ins: list[Shape], ctx: Ctx) -> Shape:
        return ins[0]

    def counts(self, ins: list[Shape], out: Shape) -> Counts:
        return Counts()

    def receptive(self, rfs: list[RF | None], ins: list[Shape], out: Shape) -> RF | None:
        return rfs[0]

    def count_facts(self, ins: list[tuple], out: tuple, batch: Any) -> dict[str, Any]:
        """Values of this kind's own ``count_fact_names`` for one layer, for the batch (cnnsize.passes.conventions)."""
        return {}

    def scratch(self, ins: list[Shape], out: Shape, batch: Dim) -> Dim:
        """Elements of the floating-point tensors a composite layer's torch module makes on the way to its output and
        reads again (Swin's window attention, MaxViT's and MViT's attention: QKᵀ, the softmax, the copies matmul and
        einsum make of strided operands), for the whole batch: some, a bias looked up from a table, are made once
        per call, and torch takes a view where an axis is 1, the batch's included, and copies otherwise. 0 for most
        kinds. They add to the layer's activations; where the output is a view of a larger tensor made on the way,
        the difference is scratch too. Validation measures them in a no-grad forward, as models run (see
        cnnsize.executor.validation._scratch)."""
        return 0

    def transient(self, ins: list[Shape], out: Shape, batch: Dim, training: bool) -> Dim:
        """Elements of a composite layer's intermediates (``scratch``) alive at once at its worst moment, beyond its
        inputs, its output and (``training``) what autograd saves, for the whole batch. The memory peaks hold them
        while the layer runs: at its place in the forward pass and, in training, in its backward (the gradients of
        those intermediates). 0 for most kinds. Attention's worst moment is an elementwise step on the attention
        matrix (QKᵀ + bias, the softmax, and in backward the softmax's gradient): its input and output at once."""
        return 0

    def backward_transient(self, ins: list[Shape], out: Shape, batch: Dim) -> Dim:
        """Elements alive at once at the worst moment of a composite layer's backward (its intermediates' gradients,
        and what it kept not yet let go), beyond what autograd saves for it and its output's gradient, for the whole
        batch. By default the forward's (``transient`` in training)."""
        return self.transient(ins, out, batch, True)

    def int_buffers(self, ins: list[Shape], out: Shape) -> Dim:
        """How many of ``counts``' buffers are int64 (8 bytes each whatever the dtype): batch norm's
        ``num_batches_tracked``, an attention's relative position index. 0 for most kinds."""
        return 0

    def param_shapes(self, ins: list[Shape], out: Shape) -> list[tuple]:
        """The shapes of the parameter tensors of the kind's torch build, in ``parameters()`` order (Adafactor
        factors a tensor by its last two axes). By default the weights and the biases each one vector: a kind whose
        weights are a matrix or more says so (where it does not, Adafactor's state is counted unfactored, more than
        torch keeps)."""
        counts = self.counts(ins, out)
        return [(n,) for n in (counts.weights, counts.biases) if n]

    def module_tree(self, ins: list[Shape], out: Shape) -> list[TorchModule]:
        """The modules of the kind's torch build, the layer's own first, each with the tensors it holds itself: one
        module without children holding everything, unless a kind builds a module with submodules (attention's
        projections are nn.Linear children, nn.MultiheadAttention holds its input projection itself)."""
        counts, ints = self.counts(ins, out), self.int_buffers(ins, out)
        return [TorchModule(counts.weights + counts.biases, counts.buffers - ints, ints)]

    def call_macs(self, ins: list[Shape], out: Shape) -> Dim:
        """Multiply-adds done once per call whatever the batch (Swin V2's position-bias MLP), beside ``counts``'
        per-sample ones."""
        return 0

    def backward_macs(self, ins: list[Shape], out: Shape, batch: Dim, grads: tuple[bool, ...],
                      trains: bool) -> tuple[Dim, Dim]:
        """(MACs of the activations' gradients, MACs of the parameters' gradients) of this layer in a training step's
        backward for the batch, as torch.utils.flop_counter.FlopCounterMode counts them. ``grads``: per input,
        whether it requires grad (something before it trains); ``trains``: whether its weights train. The default
        is a weighted layer's (linear, fc): every product is an activation times a weight, which backward does again
        for the input's gradient where the input requires grad and for the weight's where the weight trains (bias
        gradients are sums: no products). A kind whose products differ (two activations: matmul, attention; a
        grouped convolution's weight gradient) says its own (cnnsize.passes.training reads it)."""
        macs = self.forward_macs(ins, out, batch)
        if not macs:
            return 0, 0
        return (macs if any(grads) else 0), (macs if trains else 0)

    def forward_macs(self, ins: list[Shape], out: Shape, batch: Dim) -> Dim:
        """The layer's forward MACs for the batch (the row's ``macs``): its per-sample ones and its per-call ones."""
        return self.counts(ins, out).macs * batch + self.call_macs(ins, out)

    def field_step(self, ins: list[Shape]) -> tuple | None:
        """How ``receptive`` changes the field, where that depends on the input shapes alone, so the analysis
        can apply it without asking per layer: () keeps the field, (kernel, stride, low pads, dilation) is a
        sliding window (RF.window); None means ask ``receptive``."""
        return () if type(self).receptive is LayerKind.receptive else None

    def explain(self, ins: list[Shape], out: Shape, ctx: Ctx) -> list[str]:
        """The worked arithmetic of this layer's output size and counts, one step a line (none by default).

        Kinds with their own arithmetic (conv, pooling, fc) override this with the calculators of cnnsize.calc,
        so the steps and the analysis' figures come from the same formulas.
        """
        return []

    def output_axes(self, axes: tuple[str, ...] | None, ins: list[Shape], out: Shape) -> tuple[str, ...] | None:
        """What the output's axes are ('C', 'H', 'W'; 'T' tokens, 'D' features), given the first input's
        (``axes``; None when unknown), so that a report can say which axes each shape shows. The default keeps
        the input's where the rank is kept (convolutions, pooling, norms, elementwise layers) and calls a 1-D
        output features; a kind that moves or merges axes says how."""
        if axes is not None and len(axes) == len(out):
            return axes
        return ("D",) if len(out) == 1 else None

    def axes_note(self, axes: tuple[str, ...] | None, ins: list[Shape], out: Shape) -> str | None:
        """A note for the report where this layer, on input axes ``axes``, likely does other than was meant."""
        return None

    def block(self, ins: list[Shape]) -> tuple | None:
        """For a view: the elements of its input it covers, per sample and in the input's order, where they are one
        dense block (a range of the first axis whose size is not 1), as (start, stop); None otherwise. What torch's
        check of an in-place operation against its other inputs' memory reads (see cnnsize.engine.walk)."""
        return None

    @property
    def storage(self) -> str:
        """What this layer's output is at inference: the kind's ``makes``, IN_PLACE where it is set to work in
        place (``inplace: true``). The report shows it beside a row's activations; memory counts only NEW."""
        return IN_PLACE if self.makes == NEW and getattr(self, "inplace", False) else self.makes

    @property
    def materializes(self) -> bool:
        """Whether the output is a new tensor at inference (False for in-place layers and views)."""
        return self.storage == NEW

    @property
    def materializes_training(self) -> bool:
        """Whether the output is a new tensor in training mode (dropout differs from inference)."""
        return self.materializes

    def autocast_mode(self, ins: list[Shape], device: str) -> str | None:
        """Its op's autocast list on ``device`` (``autocast``); a kind whose op depends on its rank says so here."""
        return self.autocast.get(device)

    def autocast_width(self, ins: list[Shape], widths: tuple[int, ...], device: str) -> int:
        """Bytes per element of its output under mixed precision (autocast to a 16-bit type), given its inputs'
        (``widths``): its op's autocast list on that ``device`` (autocast_mode), else torch's type promotion."""
        mode = self.autocast_mode(ins, device)
        if mode == LOWER:
            return 2
        if mode in (FLOAT32, PROMOTE):
            return 4
        return max(widths, default=4)

    def saved(self, ins: list[Shape], out: Shape, trainable: bool, device: str) -> list[Saved]:
        """What autograd saves for backward when this layer's output requires grad.

        ``trainable``: the layer's own parameters require grad. ``device``: 'cpu' or 'cuda'
        (dropout's mask differs). What torch keeps only at batch 1 or only above says so in ``Saved.batch_one``.
        Parameters themselves are not listed: they stay resident anyway.
        """
        return []

    def summary(self) -> str:
        """Hyperparameters that differ from the defaults, for the report's type column."""
        parts = []
        for key, param in self.params.items():
            value = getattr(self, key)
            if param.required or value != param.default:
                if isinstance(value, tuple):
                    value = "x".join(str(v) for v in value)
                parts.append(f"{key}={value}")
        return ", ".join(parts)

    # -- torch ------------------------------------------------------------------
    @classmethod
    def from_torch(cls, call: TorchCall) -> dict | list | None:
        """This kind's settings for one traced call of a module or function it declares.

        Answers a dict of settings (defaults may be left out), a list of ``(kind, settings)`` steps for a call
        that takes several layers (each fed by the one before, e.g. a mean without keepdim: a global pool, then
        a flatten), ``PASS_THROUGH`` when the output is the input's value, or None when this call is not this
        kind's (another kind naming it is asked next). Raise ``call.refuse(...)`` to say why it cannot be one.
        The default reads a module's attributes named as the kind's parameters (``inplace``, ``p``, ``groups``)
        and a function's keyword arguments, with ``inplace`` from the call's in-place form.
        """
        settings = {}
        for key in cls.params:
            if call.module is not None and hasattr(call.module, key):
                settings[key] = plain(getattr(call.module, key))
            elif key in call.kwargs:
                settings[key] = plain(call.kwargs[key])
        if "inplace" in cls.params:
            settings["inplace"] = call.inplace
        return settings

    @classmethod
    def from_onnx(cls, call: OnnxCall) -> dict | list | Fused | None:
        """This kind's settings for one ONNX node of an operator it declares (``onnx_ops``), answered as
        ``from_torch`` answers (a dict, a list of steps, PASS_THROUGH, or None for another kind's node), or
        ``call.fuse(...)`` to take the nodes feeding it along. The default: the kind's defaults, with ``inplace``
        false (ONNX has no in-place operators)."""
        return {}

    def build(self, ins: list[Shape], out: Shape):  # pragma: no cover - overridden
        raise CnnsizeError(f"layer kind '{self.kind}' cannot be built in torch yet")


def plain(value: Any) -> Any:
    """A module attribute as a spec value: (3, 3) -> 3, (1, 7) -> [1, 7], floats and ints as they are."""
    if isinstance(value, (tuple, list)):
        values = [plain(v) for v in value]
        return values[0] if values and all(v == values[0] for v in values) else values
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        return float(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def spatial(shape: Shape) -> tuple:
    return tuple(shape[1:])


def require_spatial(kind: str, shape: Shape) -> int:
    """The number of spatial axes, or an error for a flat input."""
    nd = len(shape) - 1
    if nd < 1:
        raise SpecError(f"{kind} needs an input with spatial axes (C, H, W), got the flat shape {list(shape)}",
                        hint="move it before flatten/fc")
    return nd


def units(shape: Shape) -> Dim:
    return prod(shape)


def attention_backward(projection: Dim, product: Dim, input_grad: bool, trains: bool) -> tuple[Dim, Dim]:
    """The backward of self-attention between a QKV projection and an output projection of ``projection`` MACs each
    (one of Q, K, V; for the batch), with QKᵀ and attention·V of ``product`` MACs each, as FlopCounterMode counts it:
    the QKV projection's input gradient where the input requires grad; both products twice (their operands are
    activations, which require grad once anything before trains, the projection included) and the output
    projection's input gradient; the four projections' weight gradients where they train."""
    inside = input_grad or trains  # q, k, v and the attention output require grad
    return 3 * projection * input_grad + (4 * product + projection) * inside, 4 * projection * trains


class InputTensor(LayerKind):
    """A network input beside the first (``inputs: {image: [3, H, W], mask: [1, H, W]}``): a tensor the caller
    gives, held from the start to the end of the pass as the first input is. Not a registered kind: the spec's
    ``inputs:`` makes it, never a layer entry."""

    kind = "input"
    min_inputs = max_inputs = 0
    is_input = True
    learns = False
    called = False  # no tool counts anything for an input
    tools_checked = True  # (tests/test_conventions_zoo.py runs the nine tools on a bundled spec of two inputs)
    onnx_none = "an input is a graph input in ONNX"

    def __init__(self, values: Mapping[str, Any]):
        super().__init__(values)
        self.shape = tuple(values["shape"])

    def output_shape(self, ins: list[Shape], ctx: Ctx) -> Shape:
        return self.shape

    def receptive(self, rfs: list[RF | None], ins: list[Shape], out: Shape) -> RF | None:
        return RF.identity(len(out) - 1) if len(out) > 1 else None  # the field on this input starts here

    def field_step(self, ins: list[Shape]) -> tuple | None:
        return None

    def summary(self) -> str:
        return ""

    def build(self, ins: list[Shape], out: Shape):
        import torch.nn as nn

        return nn.Identity()  # a placeholder holding nothing: the executor passes the given tensor on
