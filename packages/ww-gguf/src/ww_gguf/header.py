"""GGUF header parsing with every count, length and offset checked against the file's size.

gguf's own ``GGUFReader`` trusts the header (a lying array length makes it loop for ever), so
the header is walked here; gguf supplies the type table and the dequantizers.
"""

from __future__ import annotations

import itertools
import mmap
import struct
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from ww_core.platform.toolkit import open_regular

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4
#: Numeric metadata arrays up to this length are kept (per-layer head counts); longer ones (vocabularies) are skipped.
MAX_KEPT_ARRAY = 4096
#: Arrays of arrays nest at most this deep (real files: one level); deeper is refused, never a RecursionError.
MAX_ARRAY_DEPTH = 32

#: GGUF metadata value types → struct format of one item (8 = string, 9 = array).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class GGUFError(ValueError):
    """A file that is not GGUF, or whose header lies about its contents."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's header entry: ``ne`` is GGML's dimension order (fastest first), the reverse of numpy's shape."""

    name: str
    ne: tuple[int, ...]
    ggml_type: int
    offset: int
    nbytes: int

    @property
    def shape(self) -> tuple[int, ...]:
        """The numpy (row-major) shape: ``ne`` reversed."""
        return tuple(reversed(self.ne))

    @property
    def type_name(self) -> str:
        """The GGML type's name (``Q4_K``, ``F16``)."""
        return GGMLQuantizationType(self.ggml_type).name


@dataclass(frozen=True)
class Header:
    """A GGUF file's metadata and tensor table; ``data_start`` is where tensor offsets count from."""

    path: Path
    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo]
    data_start: int
    file_size: int


class _Cursor:
    """Reads little-endian values from a buffer, refusing to step past its end."""

    def __init__(self, data: mmap.mmap, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def fail(self, problem: str) -> GGUFError:
        return GGUFError(f"{self.path}: not a valid GGUF file: {problem}")

    def take(self, count: int, what: str) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise self.fail(f"{what} at byte {self.pos} needs {count} bytes but the file has {len(self.data)}")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def unpack(self, fmt: str, what: str) -> Any:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))[0]

    def string(self, what: str) -> str:
        length = self.unpack("Q", f"{what} length")
        try:
            return self.take(length, what).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"{what} is not UTF-8 ({exc})") from exc

    def value(self, value_type: int, what: str, depth: int = 0) -> Any:
        if value_type in _SCALARS:
            return self.unpack(_SCALARS[value_type], what)
        if value_type == _STRING:
            return self.string(what)
        if value_type == _ARRAY:
            return self.array(what, depth + 1)
        raise self.fail(f"{what} has unknown value type {value_type}")

    def array(self, what: str, depth: int = 1) -> list[Any] | None:
        if depth > MAX_ARRAY_DEPTH:
            raise self.fail(f"{what.split('[')[0]} has arrays nested more than {MAX_ARRAY_DEPTH} deep")
        item_type = self.unpack("I", f"{what} item type")
        count = self.unpack("Q", f"{what} length")
        if item_type in _SCALARS:
            size = struct.calcsize("<" + _SCALARS[item_type])
            raw = self.take(count * size, f"{what} ({count} items)")
            return list(struct.unpack(f"<{count}{_SCALARS[item_type]}", raw)) if count <= MAX_KEPT_ARRAY else None
        if count > len(self.data) - self.pos:  # every string or array item takes at least 8 bytes
            raise self.fail(f"{what} claims {count} items but only {len(self.data) - self.pos} bytes remain")
        for position in range(count):
            self.value(item_type, f"{what}[{position}]", depth)
        return None


def read_header(path: Path) -> Header:
    """Parse and validate ``path``'s header and tensor table; no tensor data is read."""
    with open_regular(path) as handle:
        size = path.stat().st_size
        if size < 24:
            raise GGUFError(f"{path}: not a valid GGUF file: {size} bytes is shorter than a GGUF header")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _parse(_Cursor(data, path), size)


def _parse(cursor: _Cursor, size: int) -> Header:
    if cursor.take(4, "magic") != MAGIC:
        raise cursor.fail("it does not start with the GGUF magic bytes")
    version = cursor.unpack("I", "version")
    if version & 0xFFFF == 0 and version:
        raise cursor.fail("it is big-endian; only little-endian GGUF files are read")
    if version not in SUPPORTED_VERSIONS:
        raise cursor.fail(f"version {version} is not supported (only {SUPPORTED_VERSIONS})")
    tensor_count = cursor.unpack("Q", "tensor count")
    kv_count = cursor.unpack("Q", "metadata count")
    if tensor_count > size // 24 or kv_count > size // 12:
        raise cursor.fail(f"it claims {tensor_count} tensors and {kv_count} metadata entries, more than {size} bytes can hold")
    metadata: dict[str, Any] = {}
    for position in range(kv_count):
        key = cursor.string(f"metadata key {position}")
        metadata[key] = cursor.value(cursor.unpack("I", f"type of {key!r}"), f"metadata {key!r}")
    raw = [_tensor_entry(cursor, position) for position in range(tensor_count)]
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise cursor.fail(f"general.alignment {alignment!r} is not a power of two")
    data_start = -(-cursor.pos // alignment) * alignment
    tensors = [_checked(cursor, entry, data_start, size) for entry in raw]
    _check_unique_and_disjoint(cursor, tensors)
    return Header(cursor.path, version, metadata, tensors, data_start, size)


def _tensor_entry(cursor: _Cursor, position: int) -> tuple[str, tuple[int, ...], int, int]:
    name = cursor.string(f"tensor {position} name")
    n_dims = cursor.unpack("I", f"tensor {name!r} rank")
    if not 1 <= n_dims <= MAX_DIMS:
        raise cursor.fail(f"tensor {name!r} has {n_dims} dimensions (GGUF allows 1 to {MAX_DIMS})")
    ne = tuple(cursor.unpack("Q", f"tensor {name!r} dimension") for _ in range(n_dims))
    ggml_type = cursor.unpack("I", f"tensor {name!r} type")
    offset = cursor.unpack("Q", f"tensor {name!r} offset")
    return name, ne, ggml_type, offset


def _checked(cursor: _Cursor, entry: tuple[str, tuple[int, ...], int, int], data_start: int, size: int) -> TensorInfo:
    name, ne, ggml_type, offset = entry
    if ggml_type not in GGMLQuantizationType._value2member_map_:
        raise cursor.fail(f"tensor {name!r} has unknown GGML type {ggml_type}")
    block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    if ne[0] % block:
        type_name = GGMLQuantizationType(ggml_type).name
        raise cursor.fail(f"tensor {name!r} rows of {ne[0]} values are not whole {block}-value blocks of {type_name}")
    nbytes = prod(ne) // block * type_size
    if data_start + offset + nbytes > size:
        raise cursor.fail(f"tensor {name!r} data ({nbytes} bytes at offset {offset}) lies beyond the end of the {size}-byte file")
    return TensorInfo(name, ne, ggml_type, offset, nbytes)


def _check_unique_and_disjoint(cursor: _Cursor, tensors: list[TensorInfo]) -> None:
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise cursor.fail(f"tensor name {duplicate!r} appears twice")
    spans = sorted((t.offset, t.offset + t.nbytes, t.name) for t in tensors if t.nbytes)
    for (_, end, first), (start, _, second) in itertools.pairwise(spans):
        if start < end:
            raise cursor.fail(f"tensors {first!r} and {second!r} overlap")
