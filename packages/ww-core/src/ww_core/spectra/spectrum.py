"""Eigenvalues of WᵀW (squared singular values of W, not divided by N), in float64."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Sequence

import numpy as np
import scipy.linalg

from ww_core.spectra import blas
from ww_core.spectra.band_eigen import gram_eigenvalues, gram_lower

#: A function from matrices to each one's eigenvalues of WᵀW (core's ``eigenvalues``, or an adapter's hook).
EigenvalueFn = Callable[[list[np.ndarray]], list[np.ndarray]]

#: Same-shape matrices are stacked into batches of at most this many float64 Gram entries.
BATCH_ENTRIES = 1 << 24

#: Real matrices whose smaller side is at least this use the two-stage (band) eigensolver,
#: one at a time; below it LAPACK's one-stage solver is as fast and batches.
BAND_MIN_SIDE = 2048


def _gram_eigenvalues(stack: np.ndarray) -> np.ndarray:
    """Ascending eigenvalues of a stack of Gram matrices, tiny negatives clipped to 0.

    Real Grams go to LAPACK one at a time through ``blas`` (GIL released, so parallel
    workers overlap); complex ones (``conv2d_fft``) to numpy's batched ``eigvalsh``.
    """
    complex_stack = np.iscomplexobj(stack)
    adjoint = np.swapaxes(stack.conj() if complex_stack else stack, -1, -2)  # real: no copy
    grams = np.matmul(adjoint, stack) if stack.shape[-2] >= stack.shape[-1] else np.matmul(stack, adjoint)
    if complex_stack:
        evals = np.linalg.eigvalsh(grams)
    else:  # each C-order symmetric Gram, transposed, is the column-major matrix LAPACK reads
        evals = np.stack([blas.symmetric_eigenvalues(gram.T) for gram in grams])
    return np.clip(evals, 0.0, None)


def svd_eigenvalues(matrix: np.ndarray) -> np.ndarray:
    """Ascending squared singular values from a full float64 SVD (the slow, exact path)."""
    wide = np.asarray(matrix)
    wide = wide.astype(np.complex128 if np.iscomplexobj(wide) else np.float64, copy=False)
    sv = scipy.linalg.svd(wide, compute_uv=False, check_finite=False)
    return np.sort(sv.astype(np.float64) ** 2)


def eigenvalues(matrices: Sequence[np.ndarray], *, exact: bool = False) -> list[np.ndarray]:
    """One ascending float64 array of min(out, in) eigenvalues of WᵀW per matrix.

    Default: float64 Gram of the smaller side, then a batched eigvalsh over same-shape
    matrices (conv slices). A lone real matrix (every dense layer) has its Gram accumulated
    from float64 blocks, so a float32 layer is never widened whole, and large ones take the
    two-stage band solver. ``exact`` uses a full SVD per matrix instead.
    """
    if exact:
        return [svd_eigenvalues(m) for m in matrices]
    result: list[np.ndarray | None] = [None] * len(matrices)
    groups: dict[tuple[tuple[int, ...], bool], list[int]] = defaultdict(list)
    for i, m in enumerate(matrices):
        if min(m.shape) >= BAND_MIN_SIDE and not np.iscomplexobj(m):
            result[i] = np.clip(gram_eigenvalues(m), 0.0, None)
            continue
        groups[(tuple(m.shape), bool(np.iscomplexobj(m)))].append(i)
    for (shape, is_complex), members in groups.items():
        if len(members) == 1 and not is_complex:
            result[members[0]] = np.clip(blas.symmetric_eigenvalues(gram_lower(matrices[members[0]])), 0.0, None)
            continue
        side = min(shape)
        per_batch = max(1, BATCH_ENTRIES // max(1, side * side))
        dtype = np.complex128 if is_complex else np.float64
        for start in range(0, len(members), per_batch):
            chunk = members[start : start + per_batch]
            stack = np.stack([np.asarray(matrices[i], dtype=dtype) for i in chunk])
            for i, evals in zip(chunk, _gram_eigenvalues(stack)):
                result[i] = evals
    return [r for r in result if r is not None]


def inverse_spectrum(evals: np.ndarray) -> np.ndarray:
    """Sorted 1/λ of sorted eigenvalues (the ``inverse`` option's spectrum); a zero eigenvalue becomes +inf."""
    with np.errstate(divide="ignore"):
        return np.sort(1.0 / evals)
