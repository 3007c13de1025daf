"""Small GGUF files written with gguf's own GGUFWriter and quantizers, and byte patches that make them lie."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, quants

Tensors = dict[str, "np.ndarray | tuple[np.ndarray, GGMLQuantizationType]"]


def write_gguf(path: Path, tensors: Tensors, arch: str = "llama", metadata: dict[str, Any] | None = None) -> Path:
    """Write ``tensors`` to ``path``: numpy arrays as they are; (array, GGML type) quantized with gguf.quants,
    or stored as given when the array already holds the type's bytes (uint8)."""
    writer = GGUFWriter(path, arch)
    for key, value in (metadata or {}).items():
        if isinstance(value, str):
            writer.add_string(key, value)
        elif isinstance(value, list):
            writer.add_array(key, value)
        else:
            writer.add_uint32(key, int(value))
    for name, value in tensors.items():
        if isinstance(value, tuple):
            array, qtype = value
            stored = array if array.dtype == np.uint8 else quants.quantize(array.astype(np.float32), qtype)
            writer.add_tensor(name, stored, raw_dtype=qtype)
        else:
            writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def llama_permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's converter order for q/k rows: (heads, 2, half) rows stored as (heads, half, 2)."""
    return weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def patch_after(path: Path, marker: bytes, skip: int, fmt: str, value: int) -> None:
    """Overwrite the little-endian ``fmt`` field found ``skip`` bytes after the first ``marker`` in the file."""
    data = bytearray(path.read_bytes())
    at = data.index(marker) + len(marker) + skip
    data[at : at + struct.calcsize("<" + fmt)] = struct.pack("<" + fmt, value)
    path.write_bytes(bytes(data))


def patch_tensor(path: Path, name: str, field: str, value: int, n_dims: int = 2) -> None:
    """Make tensor ``name``'s header entry lie: ``field`` is ``n_dims``, ``dim0``, ``type`` or ``offset``."""
    skips = {"n_dims": (0, "I"), "dim0": (4, "Q"), "type": (4 + 8 * n_dims, "I"), "offset": (8 + 8 * n_dims, "Q")}
    skip, fmt = skips[field]
    encoded = name.encode()
    patch_after(path, struct.pack("<Q", len(encoded)) + encoded, skip, fmt, value)
