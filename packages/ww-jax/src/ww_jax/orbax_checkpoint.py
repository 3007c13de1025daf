"""Orbax checkpoints (``StandardCheckpointer``/``PyTreeCheckpointer`` items): shapes from metadata, each array restored alone.

Flax NNX state saves every variable as ``…/kernel/value``; the trailing ``value`` is dropped so
names equal the live module's (``blocks/0/kernel``). Linen variables keep their ``params``
collection only. Orbax stores trees with sorted keys, so layers come in natural name order.

Before Orbax reads anything, the checkpoint goes through the toolkit's gate: every array ``_METADATA``
names and every file in the folder resolves inside it, every file is a regular file, and no array
claims more than ``MAX_INFLATION`` times the bytes the whole checkpoint stores (zstd chunks are a
decompression layer like any other). absl's log lines never reach the terminal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from math import prod
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ww_core.platform.toolkit import (
    MAX_JSON_BYTES,
    check_confined,
    check_inflated,
    natural_key,
    open_regular,
    parse_json_object,
    read_limited,
    regular_file,
    widen_to_float,
)
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


@contextmanager
def _quiet_absl() -> Iterator[None]:
    """absl's WARNING lines (Orbax logs a few for a broken checkpoint) kept off the terminal: the error says it all."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _check_metadata_names(path: Path) -> None:
    """Every array ``_METADATA`` names lies inside the checkpoint: Orbax joins a leaf's keys into a path below the folder,
    and a key that is an absolute path (or climbs with ``..``) restored an array outside it."""
    what = f"{path / METADATA_FILE}"
    with open_regular(path / METADATA_FILE, path) as handle:
        document = parse_json_object(read_limited(handle, MAX_JSON_BYTES, what), what)
    tree = document.get("tree_metadata")
    for entry in tree.values() if isinstance(tree, dict) else ():
        keys = entry.get("key_metadata") if isinstance(entry, dict) else None
        if isinstance(keys, list):
            check_confined(path / ".".join(str(key.get("key", "")) if isinstance(key, dict) else "" for key in keys), path)


def _stored_bytes(path: Path) -> int:
    """The bytes the checkpoint folder holds, once every entry is checked to resolve inside it and every file to be regular."""
    total = 0
    for entry in sorted(path.rglob("*")):
        check_confined(entry, path)
        if not entry.is_dir():
            total += regular_file(entry).stat().st_size
    return total


def _metadata_tree(path: Path) -> Any:
    import orbax.checkpoint as ocp

    try:
        with _quiet_absl():
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
        with _quiet_absl():
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
    a worker process restores itself. The checkpoint is checked first (confinement, regular files, inflation)."""
    _check_metadata_names(path)
    stored = _stored_bytes(path)
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
        check_inflated(f"{path}: array {'/'.join(leaf)!r}", prod(shape) * np.dtype(meta.dtype).itemsize, stored)
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
