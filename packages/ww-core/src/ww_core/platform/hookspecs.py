"""The pluggy hooks an adapter implements (project and entry-point group ``ww``).

A third-party adapter is a module with functions decorated by ``ww_core.hookimpl`` and
an entry point ``[project.entry-points.ww] name = "module"``. Only ``ww_layers`` is
required; the others are optional.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pluggy

from ww_core.platform.adapter_options import AdapterOptions
from ww_core.platform.protocol import LayerMatrix

PROJECT = "ww"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec(firstresult=True)
def ww_layers(source: Any, options: AdapterOptions) -> Iterable[LayerMatrix] | None:
    """Return the layers of ``source`` in architecture order, or None if it is not yours.

    Recognize cheaply: check the object's type module (or ``sys.modules``) or the file
    suffix before importing your framework. ``options`` is read-only: ``fused_qkv``,
    ``trust_pickle``, ``exact`` (bools) and ``extra``, the options the user gave your adapter
    by its name (``extra={"<your name>": {...}}``). Loading must be lazy: put the tensor read
    inside each ``LayerMatrix.load``; quantized tensors are dequantized there.
    """


@hookspec
def ww_adapter_info() -> dict[str, Any]:  # type: ignore[empty-body]
    """Describe this adapter: ``name``, ``package``, ``handles`` (shown by ``ww plugins``), and optionally its hints

    ``suffixes`` (file suffixes it reads, lower case with the dot) and ``modules`` (top-level modules
    of the objects it reads), which name your package when one of those sources is not read.
    """


@hookspec(firstresult=True)
def ww_eigenvalues(layer: LayerMatrix, matrices: Sequence[Any], options: AdapterOptions) -> list[np.ndarray] | None:
    """Optionally compute each matrix's eigenvalues of WᵀW on the framework's own device.

    ``matrices`` are the (already sliced and scaled) 2-D numpy arrays; return one float64
    numpy array of squared singular values per matrix (ascending), or None to let core
    compute them. Never downcast below float32. When ``options.exact`` asks for a full SVD
    and your route is not one, return None. ``analyze`` and ``get_esd`` both ask this hook.
    """


@hookspec(firstresult=True)
def ww_write_weights(source: Any, weights: Mapping[str, np.ndarray], output: Any, options: Any) -> Any | None:
    """Optionally write new weights into ``source`` and return the updated model, or None if it is not yours.

    ``weights`` maps layer names (as your ``ww_layers`` names them, with the same ``options``) to
    arrays in the layer's canonical layout and shape; cast them to the stored dtype and layout.
    Return ``source`` itself when you changed it in place (torch modules, Keras models, NNX
    modules), a new object when the source is immutable (Flax params pytree, ONNX ModelProto), or
    the path of a new file written to ``output`` (a ``pathlib.Path``, never the input; None for
    in-memory sources) for a file source. Raise ``KeyError`` naming a layer you cannot write.
    Recognize the source before touching ``weights``.
    """
