"""Lazy readers for ONNX tensors: embedded bytes decoded on call, external data memory-mapped."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any, Callable

import numpy as np
import onnx
from onnx import numpy_helper

from ww_core.toolkit import BF16, FileSpan, Layout, bf16_to_float32, widen_to_float

Loader = Callable[[], np.ndarray]


def is_external(tensor: onnx.TensorProto) -> bool:
    """True when the tensor's bytes live in a separate file."""
    return tensor.data_location == onnx.TensorProto.EXTERNAL


def _external_place(tensor: onnx.TensorProto, base_dir: Path | None) -> tuple[Path, int, np.dtype[Any], tuple[int, ...]]:
    """Where an external tensor's bytes lie (file, offset), their stored dtype and shape; ValueError naming the problem."""
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
    return base_dir / named, int(info.get("offset", 0)), dtype, shape


def _external_array(tensor: onnx.TensorProto, base_dir: Path | None) -> np.ndarray:
    location, offset, dtype, shape = _external_place(tensor, base_dir)
    raw = np.memmap(location, dtype=dtype, mode="r", offset=offset, shape=shape)
    return bf16_to_float32(np.asarray(raw)) if tensor.data_type == onnx.TensorProto.BFLOAT16 else widen_to_float(raw)


def external_span(tensor: onnx.TensorProto, base_dir: Path | None, layout: Layout) -> FileSpan | None:
    """A picklable reference to an external tensor's bytes (a worker reads them itself); None when it has none or is malformed,
    so that the lazy loader raises the error for this one layer when it is read."""
    if not is_external(tensor):
        return None
    try:
        location, offset, dtype, shape = _external_place(tensor, base_dir)
    except (ValueError, KeyError):
        return None
    stored = BF16 if tensor.data_type == onnx.TensorProto.BFLOAT16 else dtype.str
    return FileSpan(str(location), offset, stored, shape, layout)


def loader(tensor: onnx.TensorProto, base_dir: Path | None, transpose: bool = False, index: tuple[int | slice, ...] = ()) -> Loader:
    """A function that reads ``tensor`` (then picks ``index``, then swaps the first two axes) when called.

    External data comes as a picklable ``FileSpan`` (docs/distributed.md); embedded bytes through a closure.
    """
    span = external_span(tensor, base_dir, Layout(pick=index, swap=transpose))
    if span is not None:
        return span

    def load() -> np.ndarray:
        array = _external_array(tensor, base_dir) if is_external(tensor) else widen_to_float(numpy_helper.to_array(tensor))
        array = array[index] if index else array
        return np.swapaxes(array, 0, 1) if transpose else array

    return load
