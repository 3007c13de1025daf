"""Eigenvalues, conv slicing and scaling against numpy SVD and hand reasoning."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ww_core.spectra.matrices import conv_norm, conv_slices, fft_matrices, layer_matrices
from ww_core.spectra.spectrum import eigenvalues


def svd_evals(m: np.ndarray) -> np.ndarray:
    return np.sort(np.linalg.svd(np.asarray(m, dtype=np.complex128 if np.iscomplexobj(m) else np.float64), compute_uv=False) ** 2)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 40), cols=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_eigenvalues_are_squared_singular_values(rows: int, cols: int, seed: int) -> None:
    W = np.random.default_rng(seed).standard_normal((rows, cols)).astype(np.float32)
    (evals,) = eigenvalues([W])
    assert evals.dtype == np.float64 and len(evals) == min(rows, cols)
    assert np.all(evals >= 0) and np.all(np.diff(evals) >= 0)
    np.testing.assert_allclose(evals, svd_evals(W), rtol=1e-9, atol=1e-9 * svd_evals(W).max())


def test_exact_and_batched_paths_agree() -> None:
    rng = np.random.default_rng(1)
    mats = [rng.standard_normal((30, 20)) for _ in range(9)] + [rng.standard_normal((5, 50))]
    fast, exact = eigenvalues(mats), eigenvalues(mats, exact=True)
    assert [len(e) for e in fast] == [20] * 9 + [5]
    for a, b, m in zip(fast, exact, mats):
        np.testing.assert_allclose(a, svd_evals(m), rtol=1e-10)
        np.testing.assert_allclose(b, svd_evals(m), rtol=1e-10)


def test_rank_deficient_matrix_has_no_negative_eigenvalues() -> None:
    u = np.random.default_rng(2).standard_normal((50, 1))
    (evals,) = eigenvalues([u @ u.T])
    assert np.all(evals >= 0)
    assert np.count_nonzero(evals > 1e-8 * evals.max()) == 1


def test_complex_matrices() -> None:
    rng = np.random.default_rng(3)
    W = rng.standard_normal((12, 7)) + 1j * rng.standard_normal((12, 7))
    np.testing.assert_allclose(eigenvalues([W])[0], svd_evals(W), rtol=1e-10)


@pytest.mark.parametrize("shape", [(8, 3, 5), (8, 3, 3, 3), (4, 6, 2, 3, 2)])
def test_conv_slices_are_kernel_positions(shape: tuple[int, ...]) -> None:
    W = np.random.default_rng(4).standard_normal(shape)
    slices = conv_slices(W)
    assert len(slices) == int(np.prod(shape[2:]))
    assert all(s.shape == shape[:2] for s in slices)
    index = np.unravel_index(len(slices) - 1, shape[2:])
    np.testing.assert_array_equal(slices[-1], W[(slice(None), slice(None), *index)])


def test_conv_normalization_matches_the_reference_scaling() -> None:
    W = np.random.default_rng(5).standard_normal((16, 8, 3, 3))
    raw = layer_matrices(W, "conv2d", pool=True, conv2d_norm=False)
    pooled = layer_matrices(W, "conv2d", pool=True, conv2d_norm=True)
    sliced = layer_matrices(W, "conv2d", pool=False, conv2d_norm=True)
    assert conv_norm(9, True) == pytest.approx(np.sqrt(0.5)) and conv_norm(9, False) == pytest.approx(np.sqrt(4.5))
    for r, p, s in zip(eigenvalues(raw), eigenvalues(pooled), eigenvalues(sliced)):
        np.testing.assert_allclose(p, 0.5 * r, rtol=1e-12)
        np.testing.assert_allclose(s, 4.5 * r, rtol=1e-12)


def test_dense_and_embedding_are_one_matrix_kept_in_float32() -> None:
    """No whole-layer float64 copy: spectra widen large float32 layers block by block."""
    W = np.arange(12, dtype=np.float32).reshape(3, 4)
    for kind in ("dense", "embedding"):
        (m,) = layer_matrices(W, kind, pool=True, conv2d_norm=True)
        assert m.dtype == np.float32 and m.shape == (3, 4)
    (m,) = layer_matrices(W.astype(np.int64), "dense", pool=True, conv2d_norm=True)
    assert m.dtype == np.float64
    with pytest.raises(ValueError, match="needs a 4-D"):
        layer_matrices(W, "conv2d", pool=True, conv2d_norm=True)


def test_conv_fft_spectrum_is_the_convolution_operators() -> None:
    """Parseval: the FFT ESD sums to grid² · ‖W‖²; and on a grid, it equals the explicit circular operator's spectrum."""
    rng = np.random.default_rng(6)
    W = rng.standard_normal((3, 2, 3, 3))
    mats = layer_matrices(W, "conv2d", pool=True, conv2d_norm=True, conv2d_fft=True)
    evals = np.concatenate(eigenvalues(mats))
    assert len(mats) == 32 * 32 and len(evals) == 32 * 32 * 2
    assert np.sum(evals) == pytest.approx(32 * 32 * np.sum(W**2), rel=1e-10)
    for n in (5, 8):  # the operator on the 32×32 grid is 3072×2048 (80 s of test): smaller grids check the same identity
        grid_evals = np.concatenate(eigenvalues(fft_matrices(W, grid=n)))
        np.testing.assert_allclose(np.sort(grid_evals), svd_evals(circular_operator(W, n)), rtol=1e-8, atol=1e-8)


def circular_operator(W: np.ndarray, n: int) -> np.ndarray:
    """The (out·n·n, in·n·n) matrix of the circular convolution by W on an n×n grid, built column by column."""
    out_dim, in_dim, kh, kw = W.shape
    op = np.zeros((out_dim * n * n, in_dim * n * n))
    for c in range(in_dim):
        for a in range(n):
            for b in range(n):
                x = np.zeros((in_dim, n, n))
                x[c, a, b] = 1.0
                y = np.zeros((out_dim, n, n))
                for i in range(kh):
                    for j in range(kw):
                        y += np.einsum("oc,chw->ohw", W[:, :, i, j], np.roll(np.roll(x, i, axis=1), j, axis=2))
                op[:, c * n * n + a * n + b] = y.ravel()
    return op
