"""Flax msgpack checkpoints (``flax.serialization.to_bytes``): structure scanned, each leaf decoded on load.

The scan records every leaf's byte range; listing reads only each array's header (shape,
dtype, buffer length, checked against each other), and ``load`` decodes only that range with
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
#: Flax's msgpack extension type for numpy arrays: a packed (shape, dtype name, buffer) triple.
_NDARRAY_EXT = 1
#: Extension headers: first byte → (bytes of the length field, or the fixed payload length as a negative number).
_EXT_LENGTH = {0xD4: -1, 0xD5: -2, 0xD6: -4, 0xD7: -8, 0xD8: -16, 0xC7: 1, 0xC8: 2, 0xC9: 4}
_BIN_LENGTH = {0xC4: 1, 0xC5: 2, 0xC6: 4}
#: Item sizes of the dtype names flax writes that numpy may not know by name.
_ITEMSIZE = {"bfloat16": 2}
_MAP_TYPES = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}

LeafPath = tuple[str, ...]


#: msgpack headers holding a length: first byte → (bytes of the length field, bytes between it and the payload).
_SIZED = {
    **{0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0)},  # bin
    **{0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0)},  # str
    **{0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1)},  # ext (a type byte before the payload)
}
#: msgpack objects of a fixed size: first byte → their length in bytes.
_FIXED = {
    **{0xCA: 5, 0xCB: 9},  # float32/64
    **{0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9, 0xD0: 2, 0xD1: 3, 0xD2: 5, 0xD3: 9},  # uint8-64, int8-64
    **{0xD4: 3, 0xD5: 4, 0xD6: 6, 0xD7: 10, 0xD8: 18},  # fixext 1-16
}


def _count(data: mmap.mmap, at: int, width: int) -> int:
    return int.from_bytes(data[at + 1 : at + 1 + width], "big")


def _skip(data: mmap.mmap, at: int) -> int:
    """The offset just past the msgpack object at ``at``, from headers alone (payloads are never read)."""
    remaining = 1
    while remaining:
        remaining -= 1
        first = data[at]
        if first <= 0x7F or first >= 0xE0 or first in (0xC0, 0xC2, 0xC3):
            at += 1
        elif first <= 0x9F:  # fixmap, fixarray
            remaining += (first & 0x0F) * (2 if first <= 0x8F else 1)
            at += 1
        elif first <= 0xBF:  # fixstr
            at += 1 + (first & 0x1F)
        elif first in _SIZED:
            width, gap = _SIZED[first]
            at += 1 + width + gap + _count(data, at, width)
        elif first in _FIXED:
            at += _FIXED[first]
        elif first in (0xDC, 0xDD, 0xDE, 0xDF):  # array16/32, map16/32
            width = 2 if first in (0xDC, 0xDE) else 4
            remaining += _count(data, at, width) * (2 if first >= 0xDE else 1)
            at += 1 + width
        else:
            raise ValueError(f"invalid msgpack byte 0x{first:02x} at offset {at}")
        if at > len(data):
            raise ValueError("truncated")
    return at


def _map_header(data: mmap.mmap, at: int) -> tuple[int, int]:
    """(entries, offset of the first key) of the map at ``at``."""
    first = data[at]
    if first <= 0x8F:
        return first & 0x0F, at + 1
    width = 2 if first == 0xDE else 4
    return _count(data, at, width), at + 1 + width


def _scan(data: mmap.mmap, start: int, path: LeafPath, out: dict[LeafPath, tuple[int, int]]) -> int:
    """Record the byte range of every leaf under the object at ``start``; returns the offset past it."""
    import msgpack

    if data[start] not in _MAP_TYPES:
        end = _skip(data, start)
        out[path] = (start, end)
        return end
    entries, at = _map_header(data, start)
    keys = []
    for _ in range(entries):
        key_end = _skip(data, at)
        key = str(msgpack.unpackb(data[at:key_end], raw=False))
        keys.append(key)
        at = _scan(data, key_end, (*path, key), out)
    if _CHUNKED in keys:  # one large array split into chunks: a single leaf
        for key in keys:
            out.pop((*path, key), None)
        out[path] = (start, at)
    return at


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
                end = _scan(data, 0, (), ranges)
                if end != len(data):
                    raise ValueError(f"{len(data) - end} bytes follow the checkpoint")
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

    def header(self, leaf: LeafPath) -> tuple[tuple[int, ...], str] | None:
        """Shape and dtype name of an array leaf from its header alone, checked against its buffer; None for other leaves.

        Leaves that are not plain arrays (scalars, strings, arrays chunked by flax) are decoded to find out.
        """
        name = "/".join(leaf)
        start, end = self.ranges[leaf]
        with self.path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            payload = _ndarray_payload(data, start, end)
            if payload is None:
                value = self.decode(leaf)
                return (tuple(int(d) for d in value.shape), dtype_name(value)) if is_matrix(value) else None
            try:
                return _array_header(data, *payload)
            except ValueError as exc:
                raise ValueError(f"{self.path}: leaf {name!r} is not a valid array ({exc})") from None

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
        header = checkpoint.header(leaf)
        if header is None or len(header[0]) < 2:
            continue
        shape = header[0]
        found = role_from_names(leaf[prefix_len:], len(shape))
        if found is not None:
            weights.append(JaxWeight(leaf[prefix_len:], found[0], shape, checkpoint.reader(leaf), found[1], "msgpack", header[1]))
    return weights


def _ndarray_payload(data: mmap.mmap, start: int, end: int) -> tuple[int, int] | None:
    """The byte range of a flax ndarray extension's payload at ``start``, or None when the leaf is something else."""
    size_bytes = _EXT_LENGTH.get(data[start])
    if size_bytes is None:
        return None
    if size_bytes < 0:
        code_at, length = start + 1, -size_bytes
    else:
        code_at = start + 1 + size_bytes
        length = int.from_bytes(data[start + 1 : code_at], "big")
    if data[code_at] != _NDARRAY_EXT:
        return None
    return code_at + 1, min(code_at + 1 + length, end)


def _array_header(data: mmap.mmap, start: int, end: int) -> tuple[tuple[int, ...], str]:
    """(shape, dtype name) of a packed (shape, dtype, buffer) triple, checked against the buffer's length; never reads the buffer."""
    import msgpack

    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=1 << 16)
    unpacker.feed(data[start : min(end, start + (1 << 16))])
    try:
        if unpacker.read_array_header() != 3:
            raise ValueError("not a (shape, dtype, buffer) triple")
        shape, dtype = unpacker.unpack(), unpacker.unpack()
    except (msgpack.OutOfData, msgpack.UnpackException, ValueError) as exc:
        raise ValueError(f"malformed array header: {type(exc).__name__}") from None
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape) or not isinstance(dtype, str):
        raise ValueError("malformed array header")
    at = start + unpacker.tell()
    if at >= end or data[at] not in _BIN_LENGTH:
        raise ValueError("no data buffer after the header")
    width = _BIN_LENGTH[data[at]]
    held = int.from_bytes(data[at + 1 : at + 1 + width], "big")
    try:
        itemsize = _ITEMSIZE.get(dtype) or np.dtype(dtype).itemsize
    except TypeError:
        raise ValueError(f"unknown dtype {dtype!r}") from None
    needed = itemsize * int(np.prod(shape, dtype=object))
    if needed != held or at + 1 + width + held > end:
        raise ValueError(f"shape {tuple(shape)} of {dtype} needs {needed} bytes, the buffer holds {held}")
    return tuple(shape), dtype
