"""Lazy readers for ONNX tensors: embedded bytes decoded on call, external data memory-mapped."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from ww_core.toolkit import bf16_to_float32, widen_to_float

Loader = Callable[[], np.ndarray]


def is_external(tensor: onnx.TensorProto) -> bool:
    """True when the tensor's bytes live in a separate file."""
    return tensor.data_location == onnx.TensorProto.EXTERNAL


def _external_array(tensor: onnx.TensorProto, base_dir: Path | None) -> np.ndarray:
    info = {entry.key: entry.value for entry in tensor.external_data}
    if base_dir is None:
        raise ValueError(f"tensor {tensor.name!r} is stored in external file {info.get('location')!r}; analyze the .onnx path instead")
    named = PurePath(info["location"])
    if named.is_absolute() or ".." in named.parts:  # confined by name; links inside the folder are followed (HF cache blobs)
        raise ValueError(f"tensor {tensor.name!r}: external data location {info['location']!r} lies outside the model folder {base_dir}")
    location = base_dir / named
    shape = tuple(tensor.dims)
    bf16 = tensor.data_type == onnx.TensorProto.BFLOAT16
    dtype = np.dtype("<u2") if bf16 else np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).newbyteorder("<")
    offset = int(info.get("offset", 0))
    if "length" in info and int(info["length"]) != dtype.itemsize * int(np.prod(shape)):
        raise ValueError(f"tensor {tensor.name!r}: external length {info['length']} does not match shape {shape}")
    raw = np.memmap(location, dtype=dtype, mode="r", offset=offset, shape=shape)
    return bf16_to_float32(np.asarray(raw)) if bf16 else widen_to_float(raw)


def loader(tensor: onnx.TensorProto, base_dir: Path | None, transpose: bool = False, index: tuple[int | slice, ...] = ()) -> Loader:
    """A function that reads ``tensor`` (then picks ``index``, then swaps the first two axes) when called."""

    def load() -> np.ndarray:
        array = _external_array(tensor, base_dir) if is_external(tensor) else widen_to_float(numpy_helper.to_array(tensor))
        array = array[index] if index else array
        return np.swapaxes(array, 0, 1) if transpose else array

    return load
