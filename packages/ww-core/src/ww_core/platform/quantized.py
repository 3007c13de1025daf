"""Dequantization every quantized format needs: integer codes with a scale and a zero point, per tensor or per axis."""

from __future__ import annotations

from typing import Any

import numpy as np


def dequantize(codes: np.ndarray, scale: Any, zero_point: Any = 0, axis: int | None = None) -> np.ndarray:
    """``(codes - zero_point) * scale`` as float32, the weights the model computes with (formats store float32 or narrower scales).

    ``scale`` and ``zero_point`` are scalars (per tensor) or 1-D arrays with one value per index of ``axis``
    (per channel, ONNX ``DequantizeLinear``'s ``axis``); a length that does not fit is a ValueError.
    """
    codes = np.asarray(codes)
    scales, zeros = np.asarray(scale), np.asarray(zero_point)
    dtype = np.float32
    if axis is not None:
        axis = axis % codes.ndim
        shape = [1] * codes.ndim
        shape[axis] = codes.shape[axis]
        for what, values in (("scale", scales), ("zero_point", zeros)):
            if values.ndim == 1 and values.size != codes.shape[axis]:
                raise ValueError(f"{what} has {values.size} values along axis {axis} of shape {codes.shape}")
        scales = scales.reshape(shape) if scales.ndim == 1 else scales
        zeros = zeros.reshape(shape) if zeros.ndim == 1 else zeros
    elif scales.ndim or zeros.ndim:
        raise ValueError(f"per-channel scale or zero_point ({scales.shape}, {zeros.shape}) needs axis=")
    return ((codes.astype(dtype) - zeros.astype(dtype)) * scales.astype(dtype)).astype(dtype, copy=False)
