"""Tensor → numpy, read only when core asks: the lazy loaders every layer carries."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

Loader = Callable[[], np.ndarray]


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A CPU numpy copy of ``tensor``; bf16/f16 (and integer) tensors widened to float32, float64 kept."""
    data = tensor.detach()
    if data.device.type == "meta":
        raise ValueError("tensor lives on the meta device and holds no data")
    if data.dtype != torch.float64:
        data = data.to(torch.float32)
    return data.cpu().numpy()


def loader(tensor: torch.Tensor, transpose: bool = False, rows: slice | None = None) -> Loader:
    """A function returning ``tensor`` (rows sliced, first two axes swapped) as numpy, read on call."""

    def load() -> np.ndarray:
        data = tensor if rows is None else tensor[rows]
        return to_numpy(data.transpose(0, 1) if transpose else data)

    return load


def canonical_shape(tensor: torch.Tensor, transpose: bool = False, rows: slice | None = None) -> tuple[int, ...]:
    """The shape ``loader`` with the same arguments returns, computed without reading data."""
    shape = list(tensor.shape)
    if rows is not None:
        shape[0] = len(range(*rows.indices(shape[0])))
    if transpose:
        shape[0], shape[1] = shape[1], shape[0]
    return tuple(shape)


def device_name(tensor: torch.Tensor) -> str:
    """Where the tensor lives, as LayerMatrix.device wants it (e.g. "cpu", "cuda:0")."""
    return str(tensor.device)
