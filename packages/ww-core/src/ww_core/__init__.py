"""ww-core: judge a trained network from its weights alone (HT-SR spectral diagnostics).

One call: ``ww_core.analyze(source, **options) -> Results``. Sources are numpy mappings,
``.npz`` and ``.safetensors`` out of the box, and whatever installed adapters recognize.
The protocol (``LayerMatrix``, ``hookimpl``) imports instantly; the pipeline loads on first use.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from ww_core.adapter_options import AdapterOptions
from ww_core.hookspecs import hookimpl
from ww_core.options import AnalysisOptions
from ww_core.protocol import LayerKind, LayerLoadError, LayerMatrix, unanalyzable_reason

if TYPE_CHECKING:
    from ww_core.analysis import analyze, describe, get_esd
    from ww_core.cache import CacheWriteError
    from ww_core.comparison import Comparison, compare
    from ww_core.compat import WeightWatcher
    from ww_core.history import History, load_history
    from ww_core.model_distances import Distances, distances
    from ww_core.monitor import Monitor
    from ww_core.plugins import EmptyModelError, UnknownSourceError, list_adapters
    from ww_core.results import Results
    from ww_core.smoothing import svd_sharpness, svd_smoothing

try:
    __version__ = version("ww-core")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

#: Public names served lazily, with the module that defines them.
_LAZY = {
    "analyze": "ww_core.analysis",
    "describe": "ww_core.analysis",
    "get_esd": "ww_core.analysis",
    "Results": "ww_core.results",
    "WeightWatcher": "ww_core.compat",
    "compare": "ww_core.comparison",
    "Comparison": "ww_core.comparison",
    "distances": "ww_core.model_distances",
    "Distances": "ww_core.model_distances",
    "list_adapters": "ww_core.plugins",
    "Monitor": "ww_core.monitor",
    "History": "ww_core.history",
    "load_history": "ww_core.history",
    "svd_smoothing": "ww_core.smoothing",
    "svd_sharpness": "ww_core.smoothing",
    "UnknownSourceError": "ww_core.plugins",
    "EmptyModelError": "ww_core.plugins",
    "CacheWriteError": "ww_core.cache",
}

__all__ = [
    "AdapterOptions",
    "AnalysisOptions",
    "CacheWriteError",
    "Comparison",
    "Distances",
    "EmptyModelError",
    "History",
    "LayerKind",
    "LayerLoadError",
    "LayerMatrix",
    "Monitor",
    "Results",
    "UnknownSourceError",
    "WeightWatcher",
    "__version__",
    "analyze",
    "compare",
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
