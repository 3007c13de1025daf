"""The shapes of weight tensors: each kind's canonical rank, matrix dimensions from a shape alone, float widening."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

#: Every kind core understands, with the number of array dimensions of its canonical layout.
KIND_NDIM: dict[str, int] = {"dense": 2, "embedding": 2, "conv1d": 3, "conv2d": 4, "conv3d": 5}


def widen_to_float(array: np.ndarray) -> np.ndarray:
    """float32/float64 kept; narrower floats (f16, bf16) and integers of up to 4 bytes become float32, wider ones float64."""
    if array.dtype == np.float64 or array.dtype == np.float32:
        return array
    return array.astype(np.float32 if array.dtype.itemsize <= 4 else np.float64)


@dataclass(frozen=True)
class MatrixDims:
    """N = max(out, in), M = min(out, in), rf = kernel positions, per-slice matrix shape."""

    N: int
    M: int
    rf: int

    @property
    def Q(self) -> float:
        return self.N / self.M if self.M else float("nan")

    def num_evals(self, pool: bool = True) -> int:
        """Eigenvalues in one ESD: rf·M when conv slices are pooled, else M."""
        return self.rf * self.M if pool else self.M


def matrix_dims(shape: tuple[int, ...]) -> MatrixDims:
    """Dims of a canonical (out, in, *kernel) or (rows, cols) shape."""
    out_dim, in_dim = shape[0], shape[1]
    rf = prod(shape[2:]) if len(shape) > 2 else 1
    return MatrixDims(N=max(out_dim, in_dim), M=min(out_dim, in_dim), rf=rf)
