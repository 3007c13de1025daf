"""Flax msgpack checkpoints (``flax.serialization.to_bytes``): structure scanned, each leaf decoded on load.

The scan records every leaf's byte range; ``load`` decodes only that range with
``flax.serialization.msgpack_restore``, so memory stays bounded by the largest layer. A
file rewritten after listing is scanned again before a leaf is read.
"""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ww_jax.layouts import JaxWeight, role_from_names
from ww_jax.pytrees import dtype_name, is_matrix

_CHUNKED = "__msgpack_chunked_array__"
_MAP_TYPES = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}

LeafPath = tuple[str, ...]


def _scan(unpacker: Any, data: mmap.mmap, path: LeafPath, out: dict[LeafPath, tuple[int, int]]) -> None:
    start = unpacker.tell()
    if data[start] not in _MAP_TYPES:
        unpacker.skip()
        out[path] = (start, unpacker.tell())
        return
    keys = []
    for _ in range(unpacker.read_map_header()):
        key = str(unpacker.unpack())
        keys.append(key)
        _scan(unpacker, data, (*path, key), out)
    if _CHUNKED in keys:  # one large array split into chunks: a single leaf
        for key in keys:
            out.pop((*path, key), None)
        out[path] = (start, unpacker.tell())


class Checkpoint:
    """Byte ranges of a checkpoint's leaves, rescanned when the file changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp: tuple[int, int] = (-1, -1)
        self.ranges: dict[LeafPath, tuple[int, int]] = {}
        self.refresh()

    def refresh(self) -> None:
        """Scan the file's structure unless it is unchanged since the last scan."""
        import msgpack

        info = self.path.stat()
        stamp = (info.st_size, info.st_mtime_ns)
        if stamp == self.stamp:
            return
        ranges: dict[LeafPath, tuple[int, int]] = {}
        try:
            with self.path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                if data[0] not in _MAP_TYPES:
                    raise ValueError("its top level is not a map")
                unpacker = msgpack.Unpacker(handle, raw=False, max_buffer_size=len(data))
                _scan(unpacker, data, (), ranges)
                if unpacker.tell() != len(data):
                    raise ValueError(f"{len(data) - unpacker.tell()} bytes follow the checkpoint")
        except RecursionError:
            raise ValueError(f"{self.path}: not a Flax msgpack checkpoint (maps nested too deeply)") from None
        except (ValueError, msgpack.UnpackException, IndexError) as exc:
            raise ValueError(f"{self.path}: not a Flax msgpack checkpoint ({type(exc).__name__}: {exc})") from None
        self.stamp, self.ranges = stamp, ranges

    def decode(self, leaf: LeafPath) -> Any:
        """One leaf's value, decoded from its byte range alone; a ValueError naming the file and leaf if it is malformed."""
        from flax import serialization

        self.refresh()
        name = "/".join(leaf)
        if leaf not in self.ranges:
            raise KeyError(f"{self.path}: checkpoint no longer has {name!r}")
        start, end = self.ranges[leaf]
        with self.path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                return serialization.msgpack_restore(data[start:end])
            except Exception as exc:  # lying shapes, unknown dtypes, malformed payloads raise many types
                raise ValueError(f"{self.path}: leaf {name!r} is not a valid array ({type(exc).__name__}: {exc})") from None

    def reader(self, leaf: LeafPath) -> Callable[[], np.ndarray]:
        """A loader for one leaf."""
        return lambda: np.asarray(self.decode(leaf))


def msgpack_weights(path: Path) -> list[JaxWeight]:
    """Describe every float matrix leaf of a msgpack checkpoint (its ``params`` collection when present)."""
    checkpoint = Checkpoint(path)
    leaves = list(checkpoint.ranges)
    prefix_len = 1 if any(leaf[:1] == ("params",) for leaf in leaves) else 0
    weights = []
    for leaf in leaves:
        if prefix_len and leaf[:1] != ("params",):
            continue
        value = checkpoint.decode(leaf)
        if not is_matrix(value):
            continue
        shape = tuple(int(d) for d in value.shape)
        found = role_from_names(leaf[prefix_len:], len(shape))
        if found is not None:
            weights.append(JaxWeight(leaf[prefix_len:], found[0], shape, checkpoint.reader(leaf), found[1], "msgpack", dtype_name(value)))
    return weights
