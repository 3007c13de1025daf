"""The two-stage band eigensolver against known spectra and an independent SVD."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ww_core.spectra import band_eigen, blas, spectrum


def with_singular_values(singular: np.ndarray, rows: int, cols: int, seed: int) -> np.ndarray:
    """A rows×cols matrix U·diag(s)·Vᵀ with random orthonormal U, V: its Gram spectrum is s²."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((rows, len(singular))))
    v, _ = np.linalg.qr(rng.standard_normal((cols, len(singular))))
    return (u * singular) @ v.T


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 120), cols=st.integers(1, 120), band=st.integers(1, 20), seed=st.integers(0, 2**16))
def test_spectrum_equals_squared_singular_values(rows: int, cols: int, band: int, seed: int) -> None:
    """Every panel count, short last panel and orientation, against numpy's SVD."""
    W = np.random.default_rng(seed).standard_normal((rows, cols)).astype(np.float32)
    evals = band_eigen.gram_eigenvalues(W, band=band)
    expected = np.sort(np.linalg.svd(W.astype(np.float64), compute_uv=False) ** 2)
    assert len(evals) == min(rows, cols) and np.all(np.diff(evals) >= 0)
    np.testing.assert_allclose(evals, expected, rtol=0, atol=1e-12 * expected.max())


def test_known_spectrum_with_repeats_zeros_and_a_wide_range() -> None:
    singular = np.concatenate([np.full(40, 3.0), np.logspace(-4, 2, 150), np.zeros(10)])
    W = with_singular_values(singular, 300, 200, seed=1)
    evals = band_eigen.gram_eigenvalues(W, band=16)
    np.testing.assert_allclose(evals, np.sort(singular**2), rtol=0, atol=1e-11 * 1e4)
    top = np.sort(singular**2)[-100:]
    np.testing.assert_allclose(evals[-100:], top, rtol=1e-12)


def test_wide_and_strided_inputs_give_the_transposes_spectrum() -> None:
    rng = np.random.default_rng(2)
    W = rng.standard_normal((90, 4, 70)).astype(np.float32)[:, 1, :]  # non-contiguous view
    transposed = np.ascontiguousarray(W.T)
    np.testing.assert_allclose(band_eigen.gram_eigenvalues(W, band=8), band_eigen.gram_eigenvalues(transposed, band=8), rtol=1e-12)
    np.testing.assert_allclose(band_eigen.gram_eigenvalues(W.T, band=8), band_eigen.gram_eigenvalues(W, band=8), rtol=1e-12)


def test_gram_accumulated_over_many_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a few rows (or columns) sum to the whole Gram matrix."""
    rng = np.random.default_rng(3)
    for W in (rng.standard_normal((101, 17)).astype(np.float32), rng.standard_normal((13, 97))):
        whole = band_eigen.gram_lower(W)
        monkeypatch.setattr(band_eigen, "GRAM_CHUNK_ENTRIES", 50)
        pieces = band_eigen.gram_lower(W)
        monkeypatch.undo()
        W64 = W.astype(np.float64)
        expected = W64.T @ W64 if W.shape[1] <= W.shape[0] else W64 @ W64.T
        np.testing.assert_allclose(np.tril(pieces), np.tril(expected), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.tril(whole), np.tril(expected), rtol=1e-12, atol=1e-12)


def test_large_matrices_take_the_band_path_and_match_eigvalsh(monkeypatch: pytest.MonkeyPatch) -> None:
    """spectrum.eigenvalues routes big real matrices here; results agree with LAPACK's one-stage solver."""
    calls: list[tuple[int, ...]] = []
    real = band_eigen.gram_eigenvalues

    def spy(matrix: np.ndarray, band: int = band_eigen.BAND) -> np.ndarray:
        calls.append(matrix.shape)
        return real(matrix, band)

    monkeypatch.setattr(spectrum, "gram_eigenvalues", spy)
    monkeypatch.setattr(spectrum, "BAND_MIN_SIDE", 200)
    rng = np.random.default_rng(4)
    big, small = rng.standard_normal((260, 230)).astype(np.float32), rng.standard_normal((50, 40))
    evals_big, evals_small = spectrum.eigenvalues([big, small])
    assert calls == [(260, 230)]
    big64 = big.astype(np.float64)
    np.testing.assert_allclose(evals_big, np.linalg.eigvalsh(big64.T @ big64), rtol=0, atol=1e-12 * evals_big.max())
    assert len(evals_small) == 40


def test_blas_rejects_views_that_are_not_column_major() -> None:
    gram = np.zeros((4, 4), order="F")
    with pytest.raises(ValueError, match="not a column-major view"):
        blas.gemm(np.zeros((4, 6)), np.zeros((6, 4), order="F"), gram, alpha=1.0, beta=0.0)  # C order: rows are not unit-stride
    with pytest.raises(TypeError, match="float64"):
        blas.gemm(np.zeros((4, 6), dtype=np.float32, order="F"), np.zeros((6, 4), order="F"), gram, alpha=1.0, beta=0.0)


@pytest.mark.parametrize("n", [0, 1, 2, 37, 200])
def test_lapack_symmetric_eigenvalues_read_the_lower_triangle_only(n: int) -> None:
    """dsyevd through ctypes gives a known spectrum; the upper triangle is never read."""
    rng = np.random.default_rng(n)
    known = np.sort(rng.standard_normal(n) * 10.0 ** rng.integers(-3, 3, n))
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    dense = (q * known) @ q.T
    lower = np.asfortranarray(np.tril(dense) + np.triu(np.full((n, n), np.nan), 1))
    evals = blas.symmetric_eigenvalues(lower)
    np.testing.assert_allclose(evals, known, rtol=0, atol=1e-12 * max(1.0, float(np.abs(known).max(initial=0))))


@pytest.mark.parametrize(("n", "width"), [(1, 0), (5, 1), (60, 7), (120, 30)])
def test_lapack_band_eigenvalues_match_the_dense_matrix(n: int, width: int) -> None:
    rng = np.random.default_rng(width)
    dense = np.zeros((n, n))
    for d in range(width + 1):
        diagonal = rng.standard_normal(n - d)
        dense += np.diag(diagonal, -d) + (np.diag(diagonal, d) if d else 0)
    stored = np.asfortranarray([np.concatenate([np.diagonal(dense, -d), np.zeros(d)]) for d in range(width + 1)])
    np.testing.assert_allclose(blas.band_eigenvalues(stored), np.linalg.eigvalsh(dense), rtol=0, atol=1e-12 * np.abs(dense).sum())


def test_lapack_eigenvalues_reject_what_they_cannot_take() -> None:
    with pytest.raises(ValueError, match="square"):
        blas.symmetric_eigenvalues(np.zeros((3, 4), order="F"))
    with pytest.raises(ValueError, match="column-major"):
        blas.symmetric_eigenvalues(np.zeros((4, 4))[:, ::2][:2])


def test_a_lone_float32_layer_below_the_band_side_is_never_widened_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dense layers keep float32 up to the Gram, which is accumulated over float64 blocks on either solver path."""
    import tracemalloc

    monkeypatch.setattr(band_eigen, "GRAM_CHUNK_ENTRIES", 1 << 14)
    W = np.random.default_rng(5).standard_normal((4000, 64), dtype=np.float32)
    tracemalloc.start()
    try:
        (evals,) = spectrum.eigenvalues([W])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < W.size * 8 / 2  # a float64 copy of the layer would be W.size·8 bytes
    W64 = W.astype(np.float64)
    np.testing.assert_allclose(evals, np.linalg.eigvalsh(W64.T @ W64), rtol=0, atol=1e-12 * evals.max())
