"""Flax msgpack checkpoints (``flax.serialization.to_bytes``): structure scanned, each leaf read on load.

The scan records every leaf's byte range; listing reads only each array's header (shape,
dtype, buffer length, checked against each other; for an array Flax split into chunks, its
shape entries and every chunk's header). An array leaf loads through a ``MsgpackRef``
(ww_jax.file_refs) that reads its bytes alone, in any process. Memory stays bounded by the
largest layer; a file rewritten after listing is scanned again.
"""

from __future__ import annotations

import io
import mmap
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from math import prod
from pathlib import Path
from typing import Any, BinaryIO, Callable, NamedTuple, Sequence, Union

import numpy as np

from ww_core.platform.toolkit import open_regular, widen_to_float
from ww_jax.file_refs import CHANGED, StoredLeaves
from ww_jax.layouts import FlaxLayout, JaxWeight, role_from_names
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
#: The most bytes an array's (shape, dtype) header may take; ``LEAF_HEAD_BYTES`` from a leaf's start hold its headers.
HEADER_BYTES = 1 << 16
LEAF_HEAD_BYTES = HEADER_BYTES + 16

LeafPath = tuple[str, ...]
#: What the header parsers read: the memory-mapped file, or the bytes a worker read from a leaf's start.
Buffer = Union[bytes, mmap.mmap]


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


def stamp_of(info: os.stat_result) -> tuple[int, ...]:
    """What tells one version of a file from another on every machine that mounts it: inode, size, mtime and ctime (ns)."""
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def leaf_ranges(handle: BinaryIO, path: Path) -> dict[LeafPath, tuple[int, int]]:
    """The byte range of every leaf of the open checkpoint, from headers alone; a ValueError naming ``path`` if it is no checkpoint."""
    import msgpack

    ranges: dict[LeafPath, tuple[int, int]] = {}
    try:
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data[0] not in _MAP_TYPES:
                raise ValueError("its top level is not a map")
            end = _scan(data, 0, (), ranges)
            if end != len(data):
                raise ValueError(f"{len(data) - end} bytes follow the checkpoint")
    except RecursionError:
        raise ValueError(f"{path}: not a Flax msgpack checkpoint (maps nested too deeply)") from None
    except (ValueError, msgpack.UnpackException, IndexError) as exc:
        raise ValueError(f"{path}: not a Flax msgpack checkpoint ({type(exc).__name__}: {exc})") from None
    return ranges


class Checkpoint:
    """Byte ranges of a checkpoint's leaves, rescanned when the file changes on disk; ``stamp`` is the scanned version's."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp: tuple[int, ...] = ()
        self.ranges: dict[LeafPath, tuple[int, int]] = {}
        self.refresh()

    def refresh(self) -> None:
        """Scan the file's structure unless it is unchanged since the last scan."""
        if stamp_of(self.path.stat()) == self.stamp:
            return
        with open_regular(self.path) as handle:
            stamp = stamp_of(os.fstat(handle.fileno()))
            self.ranges, self.stamp = leaf_ranges(handle, self.path), stamp

    def decode(self, leaf: LeafPath) -> Any:
        """One leaf's value, decoded from its byte range alone; a ValueError naming the file and leaf if it is malformed."""
        from flax import serialization

        self.refresh()
        name = "/".join(leaf)
        if leaf not in self.ranges:
            raise KeyError(f"{self.path}: checkpoint no longer has {name!r}")
        start, end = self.ranges[leaf]
        with open_regular(self.path) as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                return serialization.msgpack_restore(data[start:end])
            except Exception as exc:  # lying shapes, unknown dtypes, malformed payloads raise many types
                raise ValueError(f"{self.path}: leaf {name!r} is not a valid array ({type(exc).__name__}: {exc})") from None

    def header(self, leaf: LeafPath) -> ArrayLeaf | None:
        """Shape, dtype name and byte spans of an array leaf from its headers alone, checked against its buffers; None for other leaves.

        Other leaves (scalars, strings) are decoded to find out; an array one (Flax's own types) gets no spans.
        """
        name = "/".join(leaf)
        start, end = self.ranges[leaf]
        with open_regular(self.path) as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                chunked = chunked_array(data, self.ranges, leaf)
                found = array_at(data, start, end) if chunked is None else None
            except ValueError as exc:
                raise ValueError(f"{self.path}: leaf {name!r} is not a valid array ({exc})") from None
        if chunked is not None:
            return chunked
        if found is not None:
            return ArrayLeaf(found.shape, found.dtype, (LeafSpan(leaf, start, end, found.dtype, found.shape),))
        value = self.decode(leaf)
        return ArrayLeaf(tuple(int(d) for d in value.shape), dtype_name(value), ()) if is_matrix(value) else None

    def reader(self, leaf: LeafPath) -> Callable[[], np.ndarray]:
        """A loader for one leaf."""
        return lambda: np.asarray(self.decode(leaf))


def msgpack_weights(path: Path) -> list[JaxWeight]:
    """Describe every float matrix leaf of a msgpack checkpoint (its ``params`` collection when present).

    Array leaves carry a ``MsgpackRef`` to their bytes (chunks included), so any process reads them itself.
    """
    checkpoint = Checkpoint(path)
    leaves = list(checkpoint.ranges)
    prefix_len = 1 if any(leaf[:1] == ("params",) for leaf in leaves) else 0
    weights = []
    for leaf in leaves:
        if prefix_len and leaf[:1] != ("params",):
            continue
        header = checkpoint.header(leaf)
        if header is None or len(header.shape) < 2:
            continue
        found = role_from_names(leaf[prefix_len:], len(header.shape))
        if found is None:
            continue
        file_ref = (
            MsgpackRef(str(path.absolute()), checkpoint.stamp, header.spans, header.shape if header.chunked else ())
            if header.spans
            else None
        )
        reader = checkpoint.reader(leaf)
        weights.append(JaxWeight(leaf[prefix_len:], found[0], header.shape, reader, found[1], "msgpack", header.dtype, file_ref=file_ref))
    return weights


@dataclass(frozen=True)
class LeafSpan:
    """One plain array leaf of a msgpack checkpoint as listed: its pytree path, the byte range of the whole leaf, dtype name and shape."""

    leaf: LeafPath
    start: int
    end: int
    dtype: str
    shape: tuple[int, ...]


class ArrayLeaf(NamedTuple):
    """An array leaf as listed: shape, dtype name, and the spans of its bytes (one; or the flat chunks Flax split it into)."""

    shape: tuple[int, ...]
    dtype: str
    spans: tuple[LeafSpan, ...]

    @property
    def chunked(self) -> bool:
        """True when ``spans`` are chunks of the flat array, not the array itself."""
        return len(self.spans) > 0 and self.spans[0].shape != self.shape


def chunked_array(data: mmap.mmap, ranges: dict[LeafPath, tuple[int, int]], leaf: LeafPath) -> ArrayLeaf | None:
    """An array Flax split into chunks (``{"__msgpack_chunked_array__", "shape", "chunks"}``) from its headers alone; None for other leaves.

    A ValueError says what is malformed: a shape entry that is no count, a chunk that is no flat array or has another dtype,
    chunks that do not hold the shape's elements.
    """
    import msgpack

    if leaf not in ranges or data[ranges[leaf][0]] not in _MAP_TYPES:
        return None
    dims: list[int] = []
    while (key := (*leaf, "shape", str(len(dims)))) in ranges:
        start, end = ranges[key]
        dim = msgpack.unpackb(data[start:end]) if end - start <= 9 else None
        if type(dim) is not int or dim < 0:
            raise ValueError(f"shape entry {len(dims)} is no count")
        dims.append(dim)
    spans: list[LeafSpan] = []
    while (key := (*leaf, "chunks", str(len(spans)))) in ranges:
        found = array_at(data, *ranges[key])
        if found is None or len(found.shape) != 1 or (spans and found.dtype != spans[0].dtype):
            raise ValueError(f"chunk {len(spans)} is no flat array of the chunks' dtype")
        spans.append(LeafSpan(key, *ranges[key], found.dtype, found.shape))
    if not spans or sum(span.shape[0] for span in spans) != prod(dims):
        raise ValueError(f"its chunks do not hold the {prod(dims)} elements of shape {tuple(dims)}")
    return ArrayLeaf(tuple(dims), spans[0].dtype, tuple(spans))


def itemsize(dtype: str) -> int:
    """Bytes per element of a dtype name flax writes; a TypeError for one numpy does not know."""
    return _ITEMSIZE.get(dtype) or np.dtype(dtype).itemsize


class ArrayAt(NamedTuple):
    """A plain array leaf: its shape and dtype name as flax wrote them, and where its raw C-order bytes lie."""

    shape: tuple[int, ...]
    dtype: str
    offset: int
    nbytes: int


def array_at(data: Buffer, start: int, end: int) -> ArrayAt | None:
    """The array leaf at ``start`` (its header checked against its buffer, which is never read); None for other leaves.

    A ValueError says what is malformed; ``data`` may be the whole file or the bytes from ``start`` on (an IndexError when they stop short).
    """
    payload = _ndarray_payload(data, start, end)
    return None if payload is None else _array_header(data, *payload)


def _ndarray_payload(data: Buffer, start: int, end: int) -> tuple[int, int] | None:
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


def _array_header(data: Buffer, start: int, end: int) -> ArrayAt:
    """Shape, dtype name and buffer of a packed (shape, dtype, buffer) triple, checked against the buffer's length (never read)."""
    import msgpack

    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=HEADER_BYTES)
    unpacker.feed(data[start : min(end, start + HEADER_BYTES)])
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
        size = itemsize(dtype)
    except TypeError:
        raise ValueError(f"unknown dtype {dtype!r}") from None
    needed = size * int(np.prod(shape, dtype=object))
    if needed != held or at + 1 + width + held > end:
        raise ValueError(f"shape {tuple(shape)} of {dtype} needs {needed} bytes, the buffer holds {held}")
    return ArrayAt(tuple(shape), dtype, at + 1 + width, held)


@dataclass(frozen=True)
class MsgpackRef(StoredLeaves):
    """Array leaves of the Flax msgpack checkpoint ``path`` at the byte ranges listed when the file's version was ``stamp``.

    ``chunked`` is the shape of an array Flax split into flat chunks (``spans``, joined and reshaped); () otherwise.
    """

    path: str
    stamp: tuple[int, ...]
    spans: tuple[LeafSpan, ...]
    chunked: tuple[int, ...] = ()
    layout: FlaxLayout = field(default_factory=FlaxLayout)

    def stored(self) -> list[np.ndarray]:
        with open_regular(self.path) as handle:
            version = stamp_of(os.fstat(handle.fileno()))
            spans = self.spans if version == self.stamp else self._relocated(handle, version)
            if not self.chunked:
                return [_as_float(_read_leaf(handle, self.path, span, np.empty(_nbytes(span), np.uint8)), span) for span in spans]
            raw = np.empty(sum(_nbytes(span) for span in spans), np.uint8)  # the chunks read into one buffer, not joined after
            at = 0
            for span in spans:
                at += _read_leaf(handle, self.path, span, raw[at:]).nbytes
        return [_as_float(raw, replace(spans[0], shape=self.chunked))]

    def _relocated(self, handle: io.BufferedReader, version: tuple[int, ...]) -> tuple[LeafSpan, ...]:
        """The spans where the file at ``version`` now holds the listed leaves; a ValueError naming the file for a leaf gone or changed."""
        ranges = _ranges(self.path, version)
        if not self.chunked:
            return tuple(_moved(self.path, ranges, span) for span in self.spans)
        leaf = self.spans[0].leaf[:-2]  # chunks lie at <array>/chunks/<i>
        name, listed = "/".join(leaf), f"{self.spans[0].dtype} {self.chunked}"
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                found = chunked_array(data, ranges, leaf)
            except ValueError as exc:
                raise ValueError(f"{self.path}: leaf {name!r} is no valid array now ({exc}; {CHANGED})") from None
        if found is None:
            raise ValueError(f"{self.path}: holds no chunked leaf {name!r} any more ({CHANGED})")
        if (found.dtype, found.shape) != (self.spans[0].dtype, self.chunked):
            raise ValueError(f"{self.path}: leaf {name!r} is {found.dtype} {found.shape} now, listed as {listed} ({CHANGED})")
        return found.spans

    def beside(self, others: Sequence[StoredLeaves]) -> MsgpackRef | None:
        same_file = all(isinstance(o, MsgpackRef) and (o.path, o.stamp) == (self.path, self.stamp) and not o.chunked for o in others)
        if self.chunked or not same_file:
            return None
        return replace(self, spans=self.spans + tuple(span for o in others for span in o.spans))  # type: ignore[attr-defined]


@lru_cache(maxsize=4)
def _ranges(path: str, version: tuple[int, ...]) -> dict[LeafPath, tuple[int, int]]:
    """This process's scan of ``path`` at ``version`` (a scan reads every header, so once per file version)."""
    with open_regular(path) as handle:
        if stamp_of(os.fstat(handle.fileno())) != version:
            raise ValueError(f"{path}: the file changed while it was being read")
        return leaf_ranges(handle, Path(path))


def _moved(path: str, ranges: dict[LeafPath, tuple[int, int]], span: LeafSpan) -> LeafSpan:
    """``span`` where ``ranges`` put its leaf now (its header is checked on reading); a ValueError naming the file if it is gone."""
    if span.leaf not in ranges:
        raise ValueError(f"{path}: holds no leaf {'/'.join(span.leaf)!r} any more ({CHANGED})")
    start, end = ranges[span.leaf]
    return replace(span, start=start, end=end)


def _nbytes(span: LeafSpan) -> int:
    """Bytes of the array ``span`` was listed as."""
    return itemsize(span.dtype) * prod(span.shape)


def _read_leaf(handle: io.BufferedReader, path: str, span: LeafSpan, into: np.ndarray) -> np.ndarray:
    """The raw bytes of the array at ``span``, read into the start of ``into`` (returned) once its header matches the listing."""
    name = "/".join(span.leaf)
    handle.seek(span.start)
    head = handle.read(min(span.end - span.start, LEAF_HEAD_BYTES))
    try:
        found = array_at(head, 0, span.end - span.start)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"{path}: leaf {name!r} is no valid array now ({type(exc).__name__}: {exc}; {CHANGED})") from None
    if found is None or (found.shape, found.dtype) != (span.shape, span.dtype):
        now = "no array" if found is None else f"{found.dtype} {found.shape}"
        raise ValueError(f"{path}: leaf {name!r} is {now} now, listed as {span.dtype} {span.shape} ({CHANGED})")
    handle.seek(span.start + found.offset)
    raw = into[: found.nbytes]
    got = handle.readinto(raw.data)
    if got != found.nbytes:
        raise ValueError(f"{path}: leaf {name!r} is cut short ({got} of {found.nbytes} bytes; {CHANGED})")
    return raw


def _as_float(raw: np.ndarray, span: LeafSpan) -> np.ndarray:
    """Raw native-order bytes as the array ``span`` describes, widened to float."""
    if span.dtype == "bfloat16":  # numpy has no bfloat16: its bit pattern, widened exactly
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(span.shape)
    return widen_to_float(raw.view(np.dtype(span.dtype)).reshape(span.shape))
