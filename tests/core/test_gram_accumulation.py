"""The float64 Gram matrix is accumulated with GEMM panels, never dsyrk.

Multithreaded OpenBLAS dsyrk crashed (SIGSEGV) on a 20000×20000 float32 layer, whose Gram was
accumulated from 20000×209 float64 blocks (numpy's ``a @ a.T``, which calls dsyrk, too).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from ww_core.spectra import band_eigen, blas


@pytest.mark.parametrize("shape", [(300, 200), (200, 300), (1, 5), (5, 1), (2500, 40)])
def test_gram_lower_is_the_gram_matrix_without_dsyrk(shape: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    real = blas._routine

    def no_syrk(name: str) -> Any:
        assert name != "dsyrk", "the Gram matrix must not go through dsyrk"
        return real(name)

    monkeypatch.setattr(blas, "_routine", no_syrk)
    monkeypatch.setattr(band_eigen, "GRAM_CHUNK_ENTRIES", 4096)  # several blocks, several panels
    monkeypatch.setattr(band_eigen, "GRAM_PANEL", 64)
    W = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    wide = W.astype(np.float64)
    expected = wide.T @ wide if shape[0] >= shape[1] else wide @ wide.T
    np.testing.assert_allclose(np.tril(band_eigen.gram_lower(W)), np.tril(expected), rtol=1e-12, atol=1e-12)


CRASHED = """
import numpy as np
from ww_core.spectra import band_eigen
rng = np.random.default_rng(0)
block = np.asfortranarray(rng.standard_normal((20000, 209)))
gram = np.zeros((20000, 20000), order="F")
band_eigen.accumulate_lower(block, gram)
rows = rng.integers(0, 20000, 50)
cols = np.minimum(rows, rng.integers(0, 20000, 50))
expected = np.einsum("ij,ij->i", block[rows], block[cols])
assert np.allclose(gram[rows, cols], expected, rtol=1e-12, atol=1e-9), "wrong Gram entries"
print("ok")
"""


def test_the_block_shape_that_crashed_dsyrk_accumulates_with_every_blas_thread() -> None:
    """A 20000×209 float64 block into a 20000² Gram matrix, in a fresh process with BLAS on every core (3.2 GB, seconds)."""
    done = subprocess.run([sys.executable, "-c", CRASHED], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip() == "ok", f"exit {done.returncode}: {done.stderr[-2000:]}"
