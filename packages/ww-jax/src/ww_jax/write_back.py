"""New canonical weights back into Flax/JAX sources, converted to Flax layouts: NNX modules in place,
pytrees and msgpack checkpoints as new ones (the input is never changed)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ww_core.platform.toolkit import to_stored, written_whole
from ww_jax.layouts import JaxWeight, canonical_name, layout
from ww_jax.nnx_modules import module_weights
from ww_jax.pytrees import tree_weights
from ww_jax.recurrent import split_stored, stack_cells

LeafPath = tuple[str, ...]


def _stored(weights: list[JaxWeight], new: Mapping[str, np.ndarray], where: str) -> dict[LeafPath, np.ndarray]:
    """Leaf path → new value in the stored layout, for every named layer (stacked gates split back); KeyError naming unknown ones."""
    found: dict[LeafPath, np.ndarray] = {}
    named = set()
    for weight in stack_cells(weights):
        name = canonical_name(weight.path)
        if name in new:
            named.add(name)
            found.update(split_stored(weight, to_stored(np.asarray(new[name]), layout(weight)[2], weight.shape)))
    missing = sorted(set(new) - named)
    if missing:
        raise KeyError(f"{where}: no layer named {missing}")
    return found


def write_module(module: Any, new: Mapping[str, np.ndarray]) -> Any:
    """Set each named ``nnx.Param`` (same dtype); returns the module."""
    weights = module_weights(module)
    stored = _stored(weights, new, f"flax.nnx {type(module).__name__}")
    for weight in weights:
        if weight.path in stored and weight.write is not None:
            weight.write(stored[weight.path])
    return module


def _like(original: Any, value: np.ndarray) -> Any:
    """``value`` as the same kind of array as ``original`` (jax or numpy) with its dtype."""
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(original, jax.Array):
        return jax.numpy.asarray(value, dtype=original.dtype)
    return np.asarray(value, dtype=np.asarray(original).dtype)


def _replaced(node: Any, path: LeafPath, stored: dict[LeafPath, np.ndarray]) -> Any:
    """A copy of ``node`` with the leaves at ``stored``'s paths replaced; untouched subtrees are shared."""
    if path in stored:
        return _like(node, stored[path])
    if isinstance(node, Mapping):
        items = {key: _replaced(value, (*path, str(key)), stored) for key, value in node.items()}
        return items if isinstance(node, dict) else type(node)(items)  # type: ignore[call-arg]  # e.g. FrozenDict
    if isinstance(node, (list, tuple)):
        values = [_replaced(value, (*path, str(i)), stored) for i, value in enumerate(node)]
        return values if isinstance(node, list) else type(node)(values)
    return node


def write_tree(tree: Any, new: Mapping[str, np.ndarray]) -> Any:
    """A new pytree (Linen variables: its ``params`` collection changed) with the named layers replaced."""
    prefix: LeafPath = ("params",) if isinstance(tree, Mapping) and "params" in tree else ()
    stored = _stored(tree_weights(tree, "pytree"), new, f"pytree {type(tree).__name__}")
    return _replaced(tree, (), {(*prefix, *path): value for path, value in stored.items()})


def write_msgpack(path: Path, new: Mapping[str, np.ndarray], output: Any) -> Path:
    """A new msgpack checkpoint at ``output``: the whole checkpoint, the named layers replaced."""
    from flax import serialization

    from ww_jax.msgpack_file import msgpack_weights

    if output is None:
        raise ValueError(f"{path}: no output path given for the new weights")
    restored = serialization.msgpack_restore(path.read_bytes())
    prefix: LeafPath = ("params",) if isinstance(restored, Mapping) and "params" in restored else ()
    stored = _stored(msgpack_weights(path), new, str(path))
    updated = _replaced(restored, (), {(*prefix, *leaf): value for leaf, value in stored.items()})
    with written_whole(output) as handle:  # a full disk never leaves half a .msgpack where the new model was to be
        handle.write(serialization.msgpack_serialize(updated, in_place=True))  # in place keeps key order (a copy sorts keys)
    return Path(output)
