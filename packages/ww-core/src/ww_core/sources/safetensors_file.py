"""Read ``.safetensors`` files with numpy alone: parse the header, memory-map each tensor."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import pairwise
from math import prod
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ww_core.platform import shard_index
from ww_core.platform.named_arrays import natural_key, state_dict_reference_ids
from ww_core.platform.tensor_refs import BF16, FileSpan, file_version
from ww_core.platform.untrusted import MAX_JSON_BYTES, UntrustedDataError, model_root, open_regular, parse_json_object, regular_file

MAX_HEADER_BYTES = MAX_JSON_BYTES

_DTYPES: dict[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}


class SafetensorsError(ValueError):
    """A safetensors file whose header is malformed or lies about its data."""


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """The tensor table of ``path`` and the byte offset where tensor data starts, fully validated.

    Messages never quote the file's bytes (the path may be a link to any file): sizes and positions only.
    """
    try:
        with open_regular(path) as handle:
            file_size = os.fstat(handle.fileno()).st_size
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise SafetensorsError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
            (header_size,) = struct.unpack("<Q", prefix)
            if header_size > min(MAX_HEADER_BYTES, file_size - 8):
                limit = "the file's size" if file_size - 8 < MAX_HEADER_BYTES else f"the {MAX_HEADER_BYTES // (1024 * 1024)} MiB cap"
                raise SafetensorsError(f"{path}: not a safetensors file (its header length exceeds {limit}, {file_size} bytes in all)")
            raw = handle.read(header_size)
    except UntrustedDataError as exc:
        raise SafetensorsError(str(exc)) from None
    except OSError as exc:
        raise SafetensorsError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        table = parse_json_object(raw, f"{path}: header")
    except UntrustedDataError as exc:
        raise SafetensorsError(str(exc)) from None
    table.pop("__metadata__", None)
    data_start = 8 + header_size
    for name, entry in table.items():
        _validate_entry(path, name, entry, file_size - data_start)
    _check_no_overlap(path, table)
    return table, data_start


def _check_no_overlap(path: Path, table: dict[str, Any]) -> None:
    """Refuse two tensors sharing bytes (the safetensors library refuses them too): a write would alias both."""
    spans = sorted((entry["data_offsets"][0], entry["data_offsets"][1], name) for name, entry in table.items())
    spans = [span for span in spans if span[1] > span[0]]
    for (_, end, first), (start, _, second) in pairwise(spans):
        if start < end:
            raise SafetensorsError(f"{path}: tensors {first!r} and {second!r} overlap in the file's data")


def _validate_entry(path: Path, name: str, entry: Any, data_size: int) -> None:
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise SafetensorsError(f"{path}: tensor {name!r} has a malformed header entry")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise SafetensorsError(f"{path}: tensor {name!r} has unsupported dtype {dtype!r:.40}")
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
        raise SafetensorsError(f"{path}: tensor {name!r} has an invalid shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
        raise SafetensorsError(f"{path}: tensor {name!r} has invalid data_offsets {offsets!r}")
    start, end = offsets
    expected = prod(shape) * _DTYPES[dtype].itemsize
    if not 0 <= start <= end <= data_size:
        raise SafetensorsError(f"{path}: tensor {name!r} data_offsets {offsets} lie outside the file's {data_size} data bytes")
    if end - start != expected:
        raise SafetensorsError(f"{path}: tensor {name!r} spans {end - start} bytes but shape {shape} {dtype} needs {expected}")


def tensor_loader(path: Path, entry: dict[str, Any], data_start: int, name: str = "") -> FileSpan:
    """A picklable reference that memory-maps one tensor and widens it to float32/float64 when read.

    With the tensor's ``name`` it is a ``SafetensorsSpan``: read by name from the file as it is when read.
    """
    span = _file_span(str(path), entry, data_start)
    return SafetensorsSpan(span.path, span.offset, span.dtype, span.shape, tensor=name) if name else span


def _file_span(path: str, entry: dict[str, Any], data_start: int) -> FileSpan:
    """The bytes a header entry names, at the offset it gives."""
    dtype = BF16 if entry["dtype"] == "BF16" else _DTYPES[entry["dtype"]].str
    return FileSpan(path, data_start + entry["data_offsets"][0], dtype, tuple(entry["shape"]))


#: Reads of a file that keeps changing under them before giving up.
_READ_TRIES = 3


@lru_cache(maxsize=64)
def _header_of_version(path: str, version: tuple[int, ...]) -> tuple[dict[str, Any], int]:
    """``read_header`` once per process and file version (a worker reads many tensors of one shard)."""
    return read_header(Path(path))


def header(path: Path) -> tuple[dict[str, Any], int]:
    """``read_header``, parsed once per process and file version: listing, reference ids and reads share it
    (a header of 300 000 tensors was parsed twice per command)."""
    try:
        version = file_version(path)
    except OSError:
        return read_header(path)  # names the problem (missing, a link loop)
    return _header_of_version(str(path), version)


@dataclass(frozen=True)
class SafetensorsSpan(FileSpan):
    """A safetensors tensor found by its ``tensor`` name in the file's header when read, not at the listing's offset.

    A file rewritten after its layers were listed (a longer header shifts every offset) is read where the tensor
    now lies; a tensor that is gone or has another dtype or shape is refused naming the file, never read as other bytes.
    """

    tensor: str = ""

    def read(self) -> np.ndarray:
        for _ in range(_READ_TRIES):
            version = file_version(self.path)
            span = self._current(*_header_of_version(self.path, version))
            array = FileSpan.read(span)
            if file_version(self.path) == version:
                return array
        raise SafetensorsError(f"{self.path}: kept changing while tensor {self.tensor!r} was read")

    def _current(self, table: dict[str, Any], data_start: int) -> FileSpan:
        changed = "(the file changed since its layers were listed)"
        entry = table.get(self.tensor)
        if entry is None:
            raise SafetensorsError(f"{self.path}: holds no tensor {self.tensor!r} any more {changed}")
        now = _file_span(self.path, entry, data_start)
        if (now.dtype, now.shape) != (self.dtype, self.shape):
            listed = f"{'BF16' if self.dtype == BF16 else _dtype_name(self.dtype)} {list(self.shape)}"
            current = f"{entry['dtype']} {list(now.shape)}"
            raise SafetensorsError(f"{self.path}: tensor {self.tensor!r} is now {current}, listed as {listed} {changed}")
        return replace(now, layout=self.layout)


def _dtype_name(dtype: str) -> str:
    """The safetensors name of a numpy dtype string (``"<f4"`` → ``F32``)."""
    return next(name for name, known in _DTYPES.items() if known.str == dtype and name != "BF16")


def shard_files(path: Path) -> list[Path]:
    """The safetensors files of a file or directory, in index-file order when there is one.

    A folder's shards must be regular files resolving inside the model (``model_root``): a link out of it is refused.
    """
    index_file = _index_file(path)
    if index_file is not None:
        try:
            return shard_index.shard_files(index_file, _weight_map(index_file))
        except UntrustedDataError as exc:
            raise SafetensorsError(str(exc)) from None
    if path.is_dir():
        root = model_root(path)
        try:
            return [regular_file(shard, root) for shard in sorted(path.glob("*.safetensors"), key=lambda p: natural_key(p.name))]
        except UntrustedDataError as exc:
            raise SafetensorsError(str(exc)) from None
    return [path]


def _weight_map(index_file: Path) -> dict[str, str]:
    try:
        return shard_index.read_weight_map(index_file)
    except shard_index.ShardIndexError as exc:
        raise SafetensorsError(str(exc)) from None


def iter_tensors(path: Path) -> Iterator[tuple[str, tuple[int, ...], Callable[[], np.ndarray], str]]:
    """(name, shape, loader, dtype name) of every tensor across all shards, in natural name order.

    Integer and bool tensors (token ids, masks, quantization indices) are listed with their dtype,
    so they get a skipped row saying why (``protocol.unanalyzable_reason``).
    A tensor held by two shards, or named by the index but not held by its shard, is refused.
    """
    entries = []
    holders = shard_index.Holders(path)
    for shard in shard_files(path):
        table, data_start = header(shard)
        holders.add(shard, list(table))
        for name, entry in table.items():
            dtype = "bfloat16" if entry["dtype"] == "BF16" else _DTYPES[entry["dtype"]].name
            entries.append((name, tuple(entry["shape"]), tensor_loader(shard, entry, data_start, name), dtype))
    index_file = _index_file(path)
    if index_file is not None:
        holders.check_index(index_file, _weight_map(index_file))
    entries.sort(key=lambda item: natural_key(item[0]))
    return iter(entries)


def _index_file(path: Path) -> Path | None:
    """The Hugging Face shard index of a folder, if it has one."""
    if not path.is_dir():
        return None
    index_files = sorted(path.glob("*.safetensors.index.json"))
    return index_files[0] if index_files else None


def reference_ids(path: Path) -> dict[str, int]:
    """The ids weightwatcher 0.7.7 gives the tensors of a safetensors file or folder (its folder reader).

    With an index file: ``.weight`` keys from 0, shards in sorted name order, keys in index order;
    without: shard by shard in sorted name order, keys sorted, each shard starting after the
    running total of ids given so far is added once more (the reference's own counting).
    """
    index_file = _index_file(path)
    if index_file is not None:
        weight_map = _weight_map(index_file)
        ordered = [key for shard in sorted(set(weight_map.values())) for key, file in weight_map.items() if file == shard]
        return state_dict_reference_ids(ordered, start=0)
    shards = sorted(shard_files(path))
    ids: dict[str, int] = {}
    start = 0
    for shard in shards:
        start += len(ids)
        table, _ = header(shard)
        ids.update(state_dict_reference_ids(sorted(table), start))
    return ids


def is_safetensors(path: str | os.PathLike[str]) -> bool:
    """True for a ``.safetensors`` file or a directory holding some."""
    candidate = Path(path)
    if candidate.is_dir():
        return any(candidate.glob("*.safetensors"))
    return candidate.suffix == ".safetensors"
