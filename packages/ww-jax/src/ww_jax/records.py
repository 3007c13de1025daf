"""JAX weights → LayerMatrix records in module order, a recurrent cell's gate kernels stacked first (ww_jax.recurrent)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ww_core.platform.toolkit import LayerMatrix, unanalyzable_reason
from ww_jax.layouts import JaxWeight, Transform, as_float_array, canonical_name, flax_layout
from ww_jax.recurrent import stack_cells


def to_layers(weights: list[JaxWeight], origin: str) -> list[LayerMatrix]:
    """LayerMatrix records with canonical names (the '/'-joined pytree path kept as ``framework_path``), in module order.

    A weight with a ``file_ref`` loads through it (a picklable reference a process-pool or cluster worker reads itself).
    """
    layers: list[LayerMatrix] = []
    for weight in stack_cells(weights):
        kind, canonical, converts = flax_layout(weight)
        load = weight.file_ref.laid_out(converts) if weight.file_ref is not None else _converted(weight.read, converts.apply)
        layers.append(
            LayerMatrix(
                name=canonical_name(weight.path),
                index=len(layers),
                kind=kind,
                shape=tuple(int(d) for d in canonical),
                load=load,
                origin=origin,
                framework_type=weight.framework_type,
                skip=unanalyzable_reason(weight.dtype, tuple(int(d) for d in canonical)),
                framework_path=weight.stored_path or "/".join(weight.path),
            )
        )
    return layers


def _converted(read: Callable[[], np.ndarray], transform: Transform) -> Callable[[], np.ndarray]:
    return lambda: np.ascontiguousarray(transform(as_float_array(read())))
