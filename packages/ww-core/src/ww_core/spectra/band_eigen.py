"""Eigenvalues of a large float64 Gram matrix in two stages: dense → band → eigenvalues.

LAPACK's one-stage tridiagonal reduction (inside ``eigvalsh``) does half its flops as
memory-bound matrix-vector products. Reducing to a band of width ``BAND`` first does all
of them as matrix-matrix products (blocked Householder, as in LAPACK's two-stage solvers),
then LAPACK's band solver (dsbevd) finishes in O(n²·BAND). Both stages are backward
stable orthogonal transforms: the eigenvalues match ``eigvalsh`` to rounding.
"""

from __future__ import annotations

import numpy as np

from ww_core.spectra import blas

#: Band width of the intermediate matrix: wider makes the first stage faster, the second slower.
BAND = 48

#: Float64 entries widened at a time while the Gram matrix is accumulated (32 MiB).
GRAM_CHUNK_ENTRIES = 1 << 22

#: Gram columns updated per matrix product. The lower triangle is built from GEMM panels, not
#: dsyrk: multithreaded OpenBLAS dsyrk crashed (SIGSEGV) for a 20000×209 block of a 20000² layer.
GRAM_PANEL = 1024


def gram_lower(matrix: np.ndarray) -> np.ndarray:
    """Lower triangle of the float64 Gram matrix of ``matrix``'s smaller side (column-major).

    Accumulated over blocks of the longer side, each widened to float64 on its own, so a
    float32 layer is never copied whole.
    """
    rows, cols = matrix.shape
    side, length = min(rows, cols), max(rows, cols)
    gram = np.zeros((side, side), order="F")
    step = max(1, GRAM_CHUNK_ENTRIES // max(side, 1))
    for start in range(0, length, step):
        if cols <= rows:  # WᵀW = Σ Bᵀ·B over row blocks B; a C-order Bᵀ is column-major
            block = np.ascontiguousarray(matrix[start : start + step], dtype=np.float64).T
        else:  # W·Wᵀ = Σ B·Bᵀ over column blocks B
            block = np.asfortranarray(matrix[:, start : start + step], dtype=np.float64)
        accumulate_lower(block, gram)
    return gram


def accumulate_lower(block: np.ndarray, gram: np.ndarray) -> None:
    """Lower triangle of ``gram`` += block·blockᵀ (both column-major float64), one GEMM per panel of GRAM_PANEL columns.

    Each panel's product also fills the upper part of its diagonal square, which is never read:
    GRAM_PANEL/side extra work.
    """
    side = block.shape[0]
    for start in range(0, side, GRAM_PANEL):
        stop = min(start + GRAM_PANEL, side)
        blas.gemm(block[start:], block[start:stop], gram[start:, start:stop], alpha=1.0, beta=1.0, transpose_b=True)


def band_eigenvalues(lower: np.ndarray, band: int = BAND) -> np.ndarray:
    """Ascending eigenvalues of the symmetric matrix whose lower triangle is ``lower``.

    ``lower`` must be a column-major float64 square array; it is overwritten.
    """
    n = lower.shape[0]
    t = np.zeros((band, band), order="F")
    reflectors = np.zeros((n, band), order="F")
    products = np.empty((n, band), order="F")
    small = np.empty((band, band), order="F")
    for col in range(0, n, band):
        start = col + band
        rows = n - start
        if rows <= 1:  # what is left is already inside the band
            break
        count = min(rows, band)
        panel = lower[start:, col:start]
        factor = t[:count, :count]
        blas.householder_qr(panel[:, :count], factor)
        v = reflectors[:rows, :count]
        v[:] = panel[:, :count]
        v[:count] = np.tril(v[:count], -1) + np.eye(count)
        if count < band:  # a panel shorter than the band: Qᵀ reaches its remaining columns too
            rest = panel[:, count:]
            rest -= v @ (np.triu(factor).T @ (v.T @ rest))
        upper = np.triu(panel[:count])
        panel[:] = 0.0
        panel[:count] = upper
        _two_sided_update(lower[start:, start:], v, factor, products[:rows, :count], small[:count, :count])
    return blas.band_eigenvalues(_lower_band(lower, band))


def _two_sided_update(trailing: np.ndarray, v: np.ndarray, t: np.ndarray, x: np.ndarray, small: np.ndarray) -> None:
    """trailing ← Qᵀ·trailing·Q with Q = I − V·T·Vᵀ, as one symmetric rank-2k update.

    With X = A·V·T and Y = Tᵀ·Vᵀ·X: QᵀAQ = A − W·Vᵀ − V·Wᵀ where W = X − ½·V·Y.
    """
    blas.symm_lower(trailing, v, x)
    blas.trmm_upper(t, x, side="R", transpose=False)
    blas.gemm(v, x, small, alpha=1.0, beta=0.0, transpose_a=True)
    blas.trmm_upper(t, small, side="L", transpose=True)
    blas.gemm(v, small, x, alpha=-0.5, beta=1.0)
    blas.syr2k_lower(x, v, trailing, alpha=-1.0)


def _lower_band(lower: np.ndarray, band: int) -> np.ndarray:
    """LAPACK lower band storage: row d holds the d-th sub-diagonal."""
    n = lower.shape[0]
    width = min(band, n - 1)
    stored = np.zeros((width + 1, n), order="F")
    for d in range(width + 1):
        stored[d, : n - d] = np.diagonal(lower, -d)
    return stored


def gram_eigenvalues(matrix: np.ndarray, band: int = BAND) -> np.ndarray:
    """Ascending eigenvalues of the float64 Gram matrix of ``matrix``'s smaller side."""
    return band_eigenvalues(gram_lower(matrix), band)
