"""Importers: a torch module (torch.fx on meta tensors) or an ONNX file to a spec. They never change what they
read and never reach the executor; both write specs through one writer (cnnsize.spec.write)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import passes
from ..spec.sources import load_graph
from ..spec.write import to_yaml


def analyze_spec(spec: dict, *, variables: dict | None = None, layout: str | None = None, **kwargs: Any):
    """An imported spec's analysis, with cnnsize.analyze's keyword arguments (the passes included)."""
    count_mode = kwargs.pop("count_mode", None) or "eval"
    return passes.analyze(load_graph(spec, variables=variables), layout=layout, count_mode=count_mode, **kwargs)


@dataclass
class ImportedSpec:
    """An imported model: ``spec`` (a dict cnnsize.analyze takes) and ``yaml`` (the same, as spec text, written
    when first asked for)."""

    spec: dict
    checked: Any = field(default=None, repr=False, compare=False)  # the analysis the import checked shapes with
    mode: str = "eval"  # the module's mode when read (train or eval): what analyze(..., count=...) counts it in
    _yaml: str | None = field(default=None, repr=False, compare=False)

    @property
    def yaml(self) -> str:
        if self._yaml is None:
            self._yaml = to_yaml(self.spec)
        return self._yaml

    def analyze(self, **kwargs: Any):
        """The analysis of the imported spec (keyword arguments as for cnnsize.analyze)."""
        if not kwargs and self.checked is not None:
            return self.checked  # the one from_torch made to check the shapes: the same spec, the same defaults
        return analyze_spec(self.spec, **kwargs)
