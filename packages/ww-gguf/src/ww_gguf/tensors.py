"""Read one tensor (or one expert of a stacked tensor) from a GGUF file and dequantize it with gguf."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType, quants

from ww_core.platform.toolkit import TensorRef, file_version, open_regular
from ww_gguf.header import Header, TensorInfo, read_header

#: Plain float types read directly (little-endian); BF16 as its bit pattern, widened exactly.
_FLOATS: dict[GGMLQuantizationType, np.dtype[Any]] = {
    GGMLQuantizationType.F32: np.dtype("<f4"),
    GGMLQuantizationType.F16: np.dtype("<f2"),
    GGMLQuantizationType.F64: np.dtype("<f8"),
    GGMLQuantizationType.BF16: np.dtype("<u2"),
}
#: Integer tensors hold token ids or indices, never weight matrices.
INTEGER_TYPES = frozenset({GGMLQuantizationType.I8, GGMLQuantizationType.I16, GGMLQuantizationType.I32, GGMLQuantizationType.I64})


class GGUFFile:
    """A GGUF file's header, parsed again before a read when the file changed on disk since."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.header = read_header(path)
        self.stamp = self._stamp()

    def _stamp(self) -> tuple[int, int]:
        info = self.path.stat()
        return info.st_size, info.st_mtime_ns

    def current(self, name: str) -> tuple[Header, TensorInfo]:
        """The up-to-date header and the entry of tensor ``name``."""
        if self._stamp() != self.stamp:
            self.header, self.stamp = read_header(self.path), self._stamp()
        for tensor in self.header.tensors:
            if tensor.name == name:
                return self.header, tensor
        raise KeyError(f"{self.path}: the file no longer holds tensor {name!r}")


@lru_cache(maxsize=8)
def _opened(path: str, version: tuple[int, ...]) -> GGUFFile:
    """This process's parsed header of ``path``, once per file version (a header can hold a whole tokenizer)."""
    return GGUFFile(Path(path))


def unpermute(array: np.ndarray, heads: int | None) -> np.ndarray:
    """Undo llama.cpp's rotary row order: rows (heads, 2, half) were stored as (heads, half, 2); None leaves the array."""
    if heads is None:
        return array
    rows = array.shape[0]
    if rows % (2 * heads):
        raise ValueError(f"{rows} rows do not split into {heads} heads of even size")
    return array.reshape(heads, rows // heads // 2, 2, *array.shape[1:]).swapaxes(1, 2).reshape(array.shape)


@dataclass(frozen=True)
class GGUFTensorRef(TensorRef):
    """Tensor ``name`` of the GGUF file ``path`` (``part`` of ``parts`` slices of its first axis: one MoE expert),
    dequantized, rotary rows restored for ``heads``: picklable, so a process-pool or cluster worker reads it itself."""

    path: str
    name: str
    part: int | None = None
    parts: int = 1
    heads: int | None = None

    def read(self) -> np.ndarray:
        header, tensor = _opened(self.path, file_version(self.path)).current(self.name)
        return unpermute(read_tensor(header, tensor, self.part, self.parts), self.heads)


def read_tensor(header: Header, tensor: TensorInfo, part: int | None = None, parts: int = 1) -> np.ndarray:
    """Dequantize ``tensor`` (or slice ``part`` of its first axis, read alone) into a float array of numpy shape."""
    shape = tensor.shape
    start, nbytes = tensor.offset, tensor.nbytes
    if part is not None:
        nbytes //= parts
        start += part * nbytes
        shape = shape[1:]
    with open_regular(header.path) as handle:
        handle.seek(header.data_start + start)
        raw = np.fromfile(handle, dtype=np.uint8, count=nbytes)
    if raw.size != nbytes:
        raise ValueError(f"{header.path}: tensor {tensor.name!r} is truncated ({raw.size} of {nbytes} bytes)")
    ggml_type = GGMLQuantizationType(tensor.ggml_type)
    if ggml_type in _FLOATS:
        values = raw.view(_FLOATS[ggml_type]).reshape(shape)
        if ggml_type == GGMLQuantizationType.BF16:
            return (values.astype(np.uint32) << 16).view(np.float32)
        return values.astype(np.float32) if ggml_type == GGMLQuantizationType.F16 else values
    try:
        return np.asarray(quants.dequantize(raw.reshape(*shape[:-1], -1), ggml_type)).reshape(shape)
    except NotImplementedError as exc:
        raise ValueError(f"tensor {tensor.name!r} is {ggml_type.name}, which the installed gguf package cannot dequantize") from exc
