"""Flax msgpack checkpoints (``flax.serialization.to_bytes``): structure scanned once, each leaf decoded on load.

The scan records every leaf's byte range in a memory map; ``load`` decodes only that range
with ``flax.serialization.msgpack_restore``, so memory stays bounded by the largest layer.
"""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ww_jax.layouts import JaxWeight, role_from_names
from ww_jax.pytrees import is_float_matrix

_CHUNKED = "__msgpack_chunked_array__"
_MAP_TYPES = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}

Leaf = tuple[tuple[str, ...], int, int]


def _scan(unpacker: Any, data: mmap.mmap, path: tuple[str, ...], out: list[Leaf]) -> None:
    start = unpacker.tell()
    if data[start] not in _MAP_TYPES:
        unpacker.skip()
        out.append((path, start, unpacker.tell()))
        return
    mark = len(out)
    keys = []
    for _ in range(unpacker.read_map_header()):
        key = str(unpacker.unpack())
        keys.append(key)
        _scan(unpacker, data, (*path, key), out)
    if _CHUNKED in keys:  # one large array split into chunks: a single leaf
        del out[mark:]
        out.append((path, start, unpacker.tell()))


def _decode(path: Path, start: int, end: int) -> Any:
    from flax import serialization

    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return serialization.msgpack_restore(data[start:end])


def _reader(path: Path, start: int, end: int) -> Callable[[], np.ndarray]:
    return lambda: np.asarray(_decode(path, start, end))


def msgpack_weights(path: Path) -> list[JaxWeight]:
    """Describe every float matrix leaf of a msgpack checkpoint (its ``params`` collection when present)."""
    import msgpack

    leaves: list[Leaf] = []
    try:
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            unpacker = msgpack.Unpacker(handle, raw=False, max_buffer_size=len(data))
            _scan(unpacker, data, (), leaves)
    except (ValueError, msgpack.UnpackException, IndexError) as exc:
        raise ValueError(f"{path}: not a Flax msgpack checkpoint ({type(exc).__name__}: {exc})") from exc
    if any(leaf_path[:1] == ("params",) for leaf_path, _, _ in leaves):
        leaves = [(leaf_path[1:], start, end) for leaf_path, start, end in leaves if leaf_path[:1] == ("params",)]
    weights = []
    for leaf_path, start, end in leaves:
        value = _decode(path, start, end)
        if not is_float_matrix(value):
            continue
        shape = tuple(int(d) for d in value.shape)
        found = role_from_names(leaf_path, len(shape))
        if found is not None:
            weights.append(JaxWeight(leaf_path, found[0], shape, _reader(path, start, end), found[1], "msgpack"))
    return weights
