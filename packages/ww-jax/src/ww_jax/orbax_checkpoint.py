"""Orbax checkpoints (``StandardCheckpointer``/``PyTreeCheckpointer`` items): shapes from metadata, each array restored alone.

Flax NNX state saves every variable as ``…/kernel/value``; the trailing ``value`` is dropped so
names equal the live module's (``blocks/0/kernel``). Linen variables keep their ``params``
collection only. Orbax stores trees with sorted keys, so layers come in natural name order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ww_core.platform.toolkit import natural_key, widen_to_float
from ww_jax.file_refs import CHANGED, StoredLeaves
from ww_jax.layouts import FlaxLayout, JaxWeight, role_from_names
from ww_jax.pytrees import dtype_name, is_matrix

LeafPath = tuple[str, ...]
METADATA_FILE = "_METADATA"


STEP_METADATA_FILE = "_CHECKPOINT_METADATA"


def is_orbax_item(path: Path) -> bool:
    """True for a folder Orbax wrote one PyTree item into (it holds ``_METADATA``)."""
    return path.is_dir() and (path / METADATA_FILE).is_file()


def item_folder(path: Path) -> Path | None:
    """The PyTree item of an Orbax item folder or of a CheckpointManager step folder; None for any other path.

    A step folder (``ckpt/100``) holding several PyTree items is refused naming them: pass one.
    """
    if is_orbax_item(path):
        return path
    if not (path.is_dir() and (path / STEP_METADATA_FILE).is_file()):
        return None
    items = sorted(child for child in path.iterdir() if is_orbax_item(child))
    if len(items) == 1:
        return items[0]
    if not items:
        raise ValueError(f"{path}: an Orbax checkpoint step holding no PyTree item")
    raise ValueError(f"{path}: an Orbax checkpoint step with several PyTree items; pass one of {', '.join(map(str, items))}")


def _leaves(tree: Any, prefix: LeafPath = ()) -> Iterator[tuple[LeafPath, Any]]:
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from _leaves(value, (*prefix, str(key)))
    elif isinstance(tree, (list, tuple)):
        for position, value in enumerate(tree):
            yield from _leaves(value, (*prefix, str(position)))
    else:
        yield prefix, tree


def _metadata_tree(path: Path) -> Any:
    import orbax.checkpoint as ocp

    try:
        metadata = ocp.PyTreeCheckpointer().metadata(path.absolute())
    except Exception as exc:  # orbax reports bad metadata as many types
        raise ValueError(f"{path}: not a readable Orbax checkpoint ({type(exc).__name__}: {exc})") from exc
    item = metadata.item_metadata if hasattr(metadata, "item_metadata") else metadata  # StepMetadata (orbax >= 0.11) or the tree
    tree = item.tree if hasattr(item, "tree") else item
    if not isinstance(tree, (Mapping, list, tuple)):
        raise ValueError(f"{path}: not a readable Orbax checkpoint (its metadata describes no tree)")
    return tree


def restore_leaf(path: Path, leaf: LeafPath) -> np.ndarray:
    """One array of the checkpoint, restored as numpy without reading any other."""
    import orbax.checkpoint as ocp

    item: Any = 0
    restore_args: Any = ocp.RestoreArgs(restore_type=np.ndarray)
    for key in reversed(leaf):
        item, restore_args = {key: item}, {key: restore_args}
    try:
        restored = ocp.PyTreeCheckpointer().restore(
            path.absolute(), args=ocp.args.PyTreeRestore(item=item, restore_args=restore_args, partial_restore=True)
        )
    except Exception as exc:  # tensorstore and orbax raise many types for missing or corrupt data
        raise ValueError(f"{path}: cannot restore {'/'.join(leaf)!r} ({type(exc).__name__}: {exc})") from exc
    for key in leaf:
        restored = restored[key]
    return np.asarray(restored)


def _reader(path: Path, leaf: LeafPath) -> Callable[[], np.ndarray]:
    return lambda: restore_leaf(path, leaf)


def orbax_weights(path: Path) -> list[JaxWeight]:
    """Describe every float matrix array of an Orbax item (its ``params`` collection when present), each with an ``OrbaxRef``
    a worker process restores itself."""
    leaves = [(leaf, meta) for leaf, meta in _leaves(_metadata_tree(path)) if leaf]
    if any(leaf[:1] == ("params",) for leaf, _ in leaves):
        leaves = [(leaf, meta) for leaf, meta in leaves if leaf[:1] == ("params",)]
        start = 1
    else:
        start = 0
    nnx_state = all(leaf[-1] == "value" and len(leaf) > 1 for leaf, _ in leaves)
    weights = []
    for leaf, meta in leaves:
        if not is_matrix(meta):
            continue
        names = leaf[start : len(leaf) - 1 if nnx_state else len(leaf)]
        shape = tuple(int(d) for d in meta.shape)
        found = role_from_names(names, len(shape))
        if found is not None:
            file_ref = OrbaxRef(str(path.absolute()), (leaf,), (shape,))
            weights.append(JaxWeight(names, found[0], shape, _reader(path, leaf), found[1], "orbax", dtype_name(meta), file_ref=file_ref))
    return sorted(weights, key=lambda weight: natural_key("/".join(weight.path)))


@dataclass(frozen=True)
class OrbaxRef(StoredLeaves):
    """Arrays ``leaves`` (stored pytree paths) of the Orbax checkpoint item ``path``, each restored alone, listed with ``shapes``."""

    path: str
    leaves: tuple[LeafPath, ...]
    shapes: tuple[tuple[int, ...], ...]
    layout: FlaxLayout = field(default_factory=FlaxLayout)

    def stored(self) -> list[np.ndarray]:
        arrays = []
        for leaf, shape in zip(self.leaves, self.shapes, strict=True):
            array = widen_to_float(restore_leaf(Path(self.path), leaf))
            if array.shape != shape:
                raise ValueError(f"{self.path}: array {'/'.join(leaf)!r} is {array.shape} now, listed as {shape} ({CHANGED})")
            arrays.append(array)
        return arrays

    def beside(self, others: Sequence[StoredLeaves]) -> OrbaxRef | None:
        if not all(isinstance(o, OrbaxRef) and o.path == self.path for o in others):
            return None
        leaves = self.leaves + tuple(leaf for o in others for leaf in o.leaves)  # type: ignore[attr-defined]
        return replace(self, leaves=leaves, shapes=self.shapes + tuple(shape for o in others for shape in o.shapes))  # type: ignore[attr-defined]
