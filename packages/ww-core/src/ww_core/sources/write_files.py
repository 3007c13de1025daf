"""Write new weights for core's own sources: a numpy mapping becomes a new dict; ``.npz`` and
``.safetensors`` files (or shard folders) become new files, every other tensor copied as it was."""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ww_core.platform.named_arrays import QKV, infer_kind, is_fused_qkv, module_path
from ww_core.platform.whole_files import written_whole
from ww_core.sources.safetensors_file import _DTYPES, read_header, shard_files, tensor_loader

#: Layer name → (stored key, row block of a fused q/k/v tensor or None for the whole tensor).
Names = dict[str, tuple[str, int | None]]


def layer_keys(keys: list[str], shapes: Mapping[str, tuple[int, ...]]) -> Names:
    """Layer name → where it is stored, for the keys ``layers_from_named`` reports as layers (fused q/k/v by either name)."""
    found: Names = {}
    for key in keys:
        shape = shapes[key]
        if infer_kind(key, shape) is None or 0 in shape:
            continue
        found[module_path(key)] = (key, None)
        if is_fused_qkv(key, shape):
            found.update({f"{module_path(key)}.{label}": (key, block) for block, label in enumerate(QKV)})
    return found


def _replacements(
    weights: Mapping[str, np.ndarray], names: Names, where: str, original: Callable[[str], np.ndarray]
) -> dict[str, np.ndarray]:
    """Stored key → new tensor; a q/k/v row block is written into a copy of its fused tensor (``original``)."""
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise KeyError(f"{where}: no layer named {unknown}")
    new: dict[str, np.ndarray] = {}
    for name, value in weights.items():
        key, block = names[name]
        if block is None:
            new[key] = np.asarray(value)
            continue
        fused = new[key] if key in new else np.array(original(key), dtype=np.float64)
        size = fused.shape[0] // len(QKV)
        fused[block * size : (block + 1) * size] = value
        new[key] = fused
    return new


def _cast(new: np.ndarray, like_shape: tuple[int, ...], dtype: np.dtype[Any], key: str) -> np.ndarray:
    if tuple(new.shape) != tuple(like_shape):
        raise ValueError(f"tensor {key!r}: new weights have shape {new.shape}, stored {like_shape}")
    return new.astype(dtype)


def write_mapping(arrays: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A new dict: the same arrays, the named layers replaced (in their stored dtype)."""
    names = layer_keys(list(arrays), {key: tuple(a.shape) for key, a in arrays.items()})
    new = _replacements(weights, names, "dict of numpy arrays", lambda key: arrays[key])
    return {key: _cast(new[key], a.shape, a.dtype, key) if key in new else a for key, a in arrays.items()}


def write_npz(path: Path, weights: Mapping[str, np.ndarray], output: Path) -> Path:
    """A new ``.npz`` at ``output``: every member of ``path``, the named layers replaced."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    with written_whole(output) as handle:
        np.savez(handle, **write_mapping(arrays, weights))  # type: ignore[arg-type]
    return output


def _to_bf16(values: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bit patterns (uint16), rounded to nearest even."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return (rounded >> np.uint32(16)).astype(np.uint16)


def _encode(new: np.ndarray, entry: dict[str, Any], key: str) -> bytes:
    shape = tuple(entry["shape"])
    if entry["dtype"] == "BF16":
        return _to_bf16(_cast(new, shape, np.dtype(np.float32), key)).astype("<u2").tobytes()
    return _cast(new, shape, _DTYPES[entry["dtype"]], key).tobytes()


def _write_shard(shard: Path, new: Mapping[str, np.ndarray], output: Path) -> None:
    table, data_start = read_header(shard)
    with shard.open("rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        metadata = json.loads(handle.read(header_size)).get("__metadata__")
    header: dict[str, Any] = {"__metadata__": metadata} if metadata is not None else {}
    blobs: list[bytes] = []
    offset = 0
    with shard.open("rb") as handle:
        for key, entry in sorted(table.items(), key=lambda item: item[1]["data_offsets"][0]):
            if key in new:
                blob = _encode(new[key], entry, key)
            else:
                start, end = entry["data_offsets"]
                handle.seek(data_start + start)
                blob = handle.read(end - start)
            header[key] = {"dtype": entry["dtype"], "shape": entry["shape"], "data_offsets": [offset, offset + len(blob)]}
            offset += len(blob)
            blobs.append(blob)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with written_whole(output) as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for blob in blobs:
            out.write(blob)


def write_safetensors(path: Path, weights: Mapping[str, np.ndarray], output: Path) -> Path:
    """A new safetensors file (or shard folder with its index) at ``output``, the named layers replaced."""
    shards = shard_files(path)
    tables = {shard: read_header(shard)[0] for shard in shards}
    floats = ("F64", "F32", "F16", "BF16")
    shapes = {key: tuple(entry["shape"]) for table in tables.values() for key, entry in table.items() if entry["dtype"] in floats}
    where = {key: (shard, entry) for shard, table in tables.items() for key, entry in table.items()}

    def original(key: str) -> np.ndarray:
        shard, entry = where[key]
        return np.asarray(tensor_loader(shard, entry, read_header(shard)[1])())

    new = _replacements(weights, layer_keys(list(shapes), shapes), str(path), original)
    if path.is_file():
        _write_shard(path, new, output)
        return output
    output.mkdir(parents=True, exist_ok=True)
    for shard in shards:
        _write_shard(shard, {key: value for key, value in new.items() if key in tables[shard]}, output / shard.name)
    for index in path.glob("*.safetensors.index.json"):
        shutil.copyfile(index, output / index.name)
    return output
