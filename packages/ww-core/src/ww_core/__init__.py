"""ww-core: judge a trained network from its weights alone (HT-SR spectral diagnostics).

One call: ``ww_core.analyze(source, **options) -> Results``. Sources are numpy mappings,
``.npz`` and ``.safetensors`` out of the box, and whatever installed adapters recognize.
The protocol (``LayerMatrix``, ``hookimpl``) imports instantly; the pipeline loads on first use.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import warnings
from importlib import import_module
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ww_core.platform.adapter_options import AdapterOptions
from ww_core.platform.hookspecs import hookimpl
from ww_core.platform.protocol import LayerKind, LayerLoadError, LayerMatrix, unanalyzable_reason
from ww_core.platform.version import __version__
from ww_core.results.options import AnalysisOptions

if TYPE_CHECKING:
    from ww_core.compat import WeightWatcher
    from ww_core.models.comparison import Comparison, compare
    from ww_core.models.correlation import Correlation, correlate
    from ww_core.models.model_distances import Distances, distances
    from ww_core.models.smoothing import svd_sharpness, svd_smoothing
    from ww_core.pipeline.analysis import analyze, describe, get_esd
    from ww_core.pipeline.cache import CacheWriteError
    from ww_core.pipeline.plugins import EmptyModelError, UnknownSourceError, list_adapters
    from ww_core.results.results import Results
    from ww_core.training.history import History, load_history
    from ww_core.training.monitor import Monitor, TrainingStopped

#: Public names served lazily, with the module that defines them.
_LAZY = {
    "analyze": "ww_core.pipeline.analysis",
    "describe": "ww_core.pipeline.analysis",
    "get_esd": "ww_core.pipeline.analysis",
    "Results": "ww_core.results.results",
    "WeightWatcher": "ww_core.compat",
    "compare": "ww_core.models.comparison",
    "Comparison": "ww_core.models.comparison",
    "correlate": "ww_core.models.correlation",
    "Correlation": "ww_core.models.correlation",
    "distances": "ww_core.models.model_distances",
    "Distances": "ww_core.models.model_distances",
    "list_adapters": "ww_core.pipeline.plugins",
    "Monitor": "ww_core.training.monitor",
    "TrainingStopped": "ww_core.training.monitor",
    "History": "ww_core.training.history",
    "load_history": "ww_core.training.history",
    "svd_smoothing": "ww_core.models.smoothing",
    "svd_sharpness": "ww_core.models.smoothing",
    "UnknownSourceError": "ww_core.pipeline.plugins",
    "EmptyModelError": "ww_core.pipeline.plugins",
    "CacheWriteError": "ww_core.pipeline.cache",
}

__all__ = [
    "AdapterOptions",
    "AnalysisOptions",
    "CacheWriteError",
    "Comparison",
    "Correlation",
    "Distances",
    "EmptyModelError",
    "History",
    "LayerKind",
    "LayerLoadError",
    "LayerMatrix",
    "Monitor",
    "Results",
    "TrainingStopped",
    "UnknownSourceError",
    "WeightWatcher",
    "__version__",
    "analyze",
    "compare",
    "correlate",
    "describe",
    "distances",
    "get_esd",
    "hookimpl",
    "list_adapters",
    "load_history",
    "svd_sharpness",
    "svd_smoothing",
    "unanalyzable_reason",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ww_core' has no attribute {name!r}")


#: Public module paths that moved when ww-core's modules were grouped by stage (docs/writing-adapters.md), served
#: under their old names until the next minor version (0.2): importing one warns (DeprecationWarning) and gives the module itself.
MOVED_MODULES = {
    "ww_core.toolkit": "ww_core.platform.toolkit",
    "ww_core.hookspecs": "ww_core.platform.hookspecs",
    "ww_core.plots": "ww_core.views.plots",
    "ww_core.signals": "ww_core.training.signals",
    "ww_core.threads": "ww_core.pipeline.threads",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old public module path to the module at its new path (the same module object, not a copy)."""

    def find_spec(self, fullname: str, path: Any, target: ModuleType | None = None) -> ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED_MODULES else None

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        new = MOVED_MODULES[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; the old path goes away in ww-core 0.2", DeprecationWarning, stacklevel=2)
        return import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The module was executed under its new path already."""


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
