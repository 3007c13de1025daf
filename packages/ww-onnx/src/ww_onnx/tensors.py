"""Lazy readers for ONNX tensors: embedded bytes decoded on call, external data memory-mapped."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path, PurePath
from typing import Any, Callable

import numpy as np
import onnx
from onnx import numpy_helper

from ww_core.platform.toolkit import (
    BF16,
    FileSpan,
    Layout,
    bf16_to_float32,
    check_present,
    file_version,
    model_root,
    open_regular,
    regular_file,
    widen_to_float,
)

Loader = Callable[[], np.ndarray]


def is_external(tensor: onnx.TensorProto) -> bool:
    """True when the tensor's bytes live in a separate file."""
    return tensor.data_location == onnx.TensorProto.EXTERNAL


def _external_place(tensor: onnx.TensorProto, base_dir: Path | None) -> tuple[Path, int, np.dtype[Any], tuple[int, ...]]:
    """Where an external tensor's bytes lie (file, offset), their stored dtype and shape; ValueError naming the problem.

    The data file must be a regular file resolving inside the model (``model_root``: a cache snapshot's links lead into
    its repo's blobs) and hold every byte the tensor claims.
    """
    info = {entry.key: entry.value for entry in tensor.external_data}
    if base_dir is None:
        raise ValueError(f"tensor {tensor.name!r} is stored in external file {info.get('location')!r}; analyze the .onnx path instead")
    named = PurePath(info["location"])
    if named.is_absolute() or ".." in named.parts:  # confined by name; links inside the folder are followed (HF cache blobs)
        raise ValueError(f"tensor {tensor.name!r}: external data location {info['location']!r} lies outside the model folder {base_dir}")
    shape = tuple(tensor.dims)
    bf16 = tensor.data_type == onnx.TensorProto.BFLOAT16
    dtype = np.dtype("<u2") if bf16 else np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).newbyteorder("<")
    if "length" in info and int(info["length"]) != dtype.itemsize * int(np.prod(shape)):
        raise ValueError(f"tensor {tensor.name!r}: external length {info['length']} does not match shape {shape}")
    location, offset = regular_file(base_dir / named, model_root(base_dir)), int(info.get("offset", 0))
    if location.is_file():  # a missing file is named by the read
        held = max(location.stat().st_size - offset, 0)
        check_present(f"{location}: tensor {tensor.name!r} at offset {offset}", dtype.itemsize * int(np.prod(shape)), held)
    return location, offset, dtype, shape


def _external_array(tensor: onnx.TensorProto, base_dir: Path | None) -> np.ndarray:
    location, offset, dtype, shape = _external_place(tensor, base_dir)
    with open_regular(location) as handle:
        raw = np.memmap(handle, dtype=dtype, mode="r", offset=offset, shape=shape)
    return bf16_to_float32(np.asarray(raw)) if tensor.data_type == onnx.TensorProto.BFLOAT16 else widen_to_float(raw)


#: How often a read is tried again when the model or its data file changed while it was read.
_READ_TRIES = 3
_CHANGED = "(the file changed since its layers were listed)"


def _versions(model: str, data: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The model's and the data file's versions without the device number, which differs between machines mounting them."""
    return file_version(model)[1:], file_version(data)[1:]


@lru_cache(maxsize=4)
def _external_tensors(model: str, version: tuple[int, ...]) -> dict[str, onnx.TensorProto]:
    """This process's table of the external tensors of the ``.onnx`` file ``model`` at ``version``, by name, as listing finds them."""
    from ww_onnx.graph import flatten
    from ww_onnx.model import load_model

    return {name: tensor for name, tensor in flatten(load_model(Path(model)).graph)[1].items() if is_external(tensor)}


@dataclass(frozen=True)
class OnnxExternalSpan(FileSpan):
    """An external tensor's bytes at the place the ``.onnx`` file ``model`` gave when listed with versions ``stamp``.

    When the model or the data file has changed since (another version: inode, size, mtime or ctime), the model is read
    again and the tensor found by its ``tensor`` name, never read at the listing's offset; a tensor that is gone or has
    another dtype or shape is refused naming the files.
    """

    model: str = ""
    tensor: str = ""
    stamp: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())

    def read(self) -> np.ndarray:
        for _ in range(_READ_TRIES):
            versions = _versions(self.model, self.path)
            span = self if versions == self.stamp else self._current()
            array = FileSpan.read(span)
            if _versions(self.model, self.path) == versions:
                return array
        raise ValueError(f"{self.model}: kept changing while tensor {self.tensor!r} was read")

    def _current(self) -> FileSpan:
        """Where the model as it is now puts the tensor; a ValueError naming the model when it is gone or changed."""
        tensor = _external_tensors(self.model, file_version(self.model)[1:]).get(self.tensor)
        if tensor is None:
            raise ValueError(f"{self.model}: holds no external tensor {self.tensor!r} any more {_CHANGED}")
        location, offset, dtype, shape = _external_place(tensor, Path(self.model).parent)
        stored = BF16 if tensor.data_type == onnx.TensorProto.BFLOAT16 else dtype.str
        if (stored, shape) != (self.dtype, self.shape):
            current = f"{onnx.TensorProto.DataType.Name(tensor.data_type)} {list(shape)}"
            raise ValueError(f"{self.model}: tensor {self.tensor!r} is now {current}, listed as {self.listed} {_CHANGED}")
        return replace(self, path=str(location), offset=offset)

    @property
    def listed(self) -> str:
        """The dtype and shape listed, as ONNX names them (``FLOAT [48, 10]``)."""
        name = (
            "BFLOAT16" if self.dtype == BF16 else onnx.TensorProto.DataType.Name(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(self.dtype)))
        )
        return f"{name} {list(self.shape)}"


def external_span(tensor: onnx.TensorProto, model: Path | None, layout: Layout) -> FileSpan | None:
    """A picklable reference to an external tensor's bytes (a worker reads them itself); None when it has none or is malformed,
    so that the lazy loader raises the error for this one layer when it is read."""
    if not is_external(tensor) or model is None:
        return None
    try:
        location, offset, dtype, shape = _external_place(tensor, model.parent)
        stamp = _versions(str(model), str(location))
    except (ValueError, KeyError, OSError):
        return None
    stored = BF16 if tensor.data_type == onnx.TensorProto.BFLOAT16 else dtype.str
    return OnnxExternalSpan(str(location), offset, stored, shape, layout, model=str(model), tensor=tensor.name, stamp=stamp)


def loader(
    tensor: onnx.TensorProto, base_dir: Path | None, transpose: bool = False, index: tuple[int | slice, ...] = (), model: Path | None = None
) -> Loader:
    """A function that reads ``tensor`` (then picks ``index``, then swaps the first two axes) when called.

    External data of the ``.onnx`` file ``model`` comes as a picklable ``OnnxExternalSpan`` (docs/distributed.md); embedded
    bytes through a closure.
    """
    span = external_span(tensor, model, Layout(pick=index, swap=transpose))
    if span is not None:
        return span

    def load() -> np.ndarray:
        array = _external_array(tensor, base_dir) if is_external(tensor) else widen_to_float(numpy_helper.to_array(tensor))
        array = array[index] if index else array
        return np.swapaxes(array, 0, 1) if transpose else array

    return load
