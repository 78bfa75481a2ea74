"""`cnnsize import MODULE:FACTORY`: trace a torch model with torch.fx and write the equivalent spec.

This imports MODULE and calls FACTORY() to make the model: it runs that code, on purpose, exactly
as ``python -c "import MODULE"`` would. Only import modules you trust.
"""

from __future__ import annotations

import importlib
import os
import sys

from ..errors import SpecError
from .common import parse_shape, write_output


def register(sub) -> None:
    p = sub.add_parser("import", help="write the spec of a torch model (MODULE:FACTORY), traced with torch.fx",
                       description="Import MODULE (running its code, as Python's import does), call FACTORY() "
                                   "to make an nn.Module, trace it with torch.fx and write the equivalent spec. "
                                   "An operation cnnsize cannot represent is an error naming it and where it is.")
    p.add_argument("target", metavar="MODULE:FACTORY", help="e.g. torchvision.models:resnet18 or mymodels:Net")
    p.add_argument("-i", "--input", default="3x224x224", help="input shape C x H x W (default 3x224x224)")
    p.add_argument("--name", help="the spec's name (default: FACTORY)")
    p.add_argument("-o", "--output", help="write the spec to this file instead of standard output")
    p.add_argument("--opaque", action="store_true",
                   help="keep an operation cnnsize cannot represent as an 'opaque' layer with the output shape, "
                        "params and MACs torch measured for it (it cannot be built or validated)")
    p.set_defaults(run=run)


def load_factory(target: str):
    """The callable named by 'package.module:attr' (the current folder is importable, as with python -m)."""
    module_name, colon, attr = target.partition(":")
    if not colon or not module_name or not attr:
        raise SpecError(f"'{target}' is not MODULE:FACTORY", hint="e.g. torchvision.models:resnet18")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(f"cannot import '{module_name}': {exc}") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            from ..errors import unknown_name

            raise unknown_name(f"name in {module_name}", part, [n for n in dir(obj) if not n.startswith("_")])
        obj = getattr(obj, part)
    return obj


def run(args) -> int:
    from ..executor import require_torch
    from ..torch_import import from_torch

    nn = require_torch().nn
    factory = load_factory(args.target)
    model = factory if isinstance(factory, nn.Module) else factory() if callable(factory) else None
    if not isinstance(model, nn.Module):
        raise SpecError(f"{args.target} did not give an nn.Module", hint="FACTORY() must return an nn.Module")
    imported = from_torch(model, parse_shape(args.input), name=args.name or args.target.rpartition(":")[2],
                          opaque=args.opaque)
    write_output(imported.yaml, args.output)
    return 0
