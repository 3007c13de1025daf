"""Parameter pytrees (Linen variables, ``nnx.State`` dicts, plain nested dicts/lists of arrays) in insertion order."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Callable

import numpy as np

from ww_jax.layouts import JaxWeight, role_from_names


def params_of(tree: Any) -> Any:
    """The ``params`` collection of Linen variables or a train state; the tree itself otherwise."""
    return tree["params"] if isinstance(tree, Mapping) and "params" in tree else tree


def leaves(tree: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, leaf) in insertion order — module order for Flax — unlike ``jax.tree_util`` (which sorts keys)."""
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from leaves(value, (*prefix, str(key)))
    elif isinstance(tree, (list, tuple)):
        for position, value in enumerate(tree):
            yield from leaves(value, (*prefix, str(position)))
    else:
        yield prefix, tree


def is_matrix(leaf: Any) -> bool:
    """An array of rank >= 2 (jax, numpy or anything with shape and dtype); integer ones are listed as skipped."""
    shape, dtype = getattr(leaf, "shape", None), getattr(leaf, "dtype", None)
    return shape is not None and dtype is not None and len(shape) >= 2


def dtype_name(leaf: Any) -> str:
    """The leaf's dtype name ("float32", "bfloat16", "int32"), for ``unanalyzable_reason``."""
    return np.dtype(leaf.dtype).name


def _constant(leaf: Any) -> Callable[[], np.ndarray]:
    return lambda: np.asarray(leaf)


def tree_weights(tree: Any, framework_type: str) -> list[JaxWeight]:
    """Describe every matrix leaf of a parameter tree; roles come from path names."""
    weights = []
    for path, leaf in leaves(params_of(tree)):
        if not is_matrix(leaf):
            continue
        shape = tuple(int(d) for d in leaf.shape)
        found = role_from_names(path, len(shape))
        if found is not None:
            weights.append(JaxWeight(path, found[0], shape, _constant(leaf), found[1], framework_type, dtype_name(leaf)))
    return weights


def contains_jax_array(tree: Any, jax_array_type: type) -> bool:
    """True when any leaf of a nested dict/list is a ``jax.Array``."""
    return any(isinstance(leaf, jax_array_type) for _, leaf in leaves(tree))
