"""Matrix dimensions of a layer from its canonical shape alone (no weights loaded)."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod


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
