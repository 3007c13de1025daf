"""The ABI ``ww_core.spectra.blas`` assumes when it calls LAPACK through ctypes holds for the SciPy wheel installed here."""

from __future__ import annotations

import ctypes
import re

import numpy as np
import pytest
import scipy.linalg

from ww_core.spectra import blas

KIND = {"char": "c", "int": "i"}


def capsule_kinds(name: str) -> str:
    """The argument kinds SciPy's capsule declares: c = char*, i = int*, d = double* (its ``d`` typedef)."""
    module = blas.SIGNATURES[name][0]
    declared = blas._capsule_name(module.__pyx_capi__[name]).decode()
    arguments = re.fullmatch(r"void \((.*)\)", declared)
    assert arguments, declared
    kinds = []
    for argument in arguments.group(1).split(", "):
        assert argument.endswith(" *"), f"{name}: {argument!r} is not passed by pointer (Fortran convention)"
        base = argument[:-2]
        kinds.append(KIND.get(base) or ("d" if base.endswith("_d") else f"?{base}"))
    return "".join(kinds)


@pytest.mark.parametrize("name", sorted(blas.SIGNATURES))
def test_scipy_declares_the_signature_blas_py_assumes(name: str) -> None:
    """Every argument a pointer, integers C int (LP64), no hidden string-length arguments in the table."""
    assert capsule_kinds(name) == blas.SIGNATURES[name][1].replace(" ", "")


def test_integer_width_and_gil_release() -> None:
    assert ctypes.sizeof(ctypes.c_int) == 4 == np.dtype(np.int32).itemsize
    for name in blas.SIGNATURES:
        assert not blas._routine(name)._flags_ & ctypes._FUNCFLAG_PYTHONAPI, f"{name} would hold the GIL"


def _fortran(array: np.ndarray) -> np.ndarray:
    return np.asfortranarray(array, dtype=np.float64)


def test_each_routine_agrees_with_numpy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((6, 6)), rng.standard_normal((6, 4))
    sym = a + a.T
    c = _fortran(np.zeros((6, 4)))
    blas.symm_lower(_fortran(np.tril(sym)), _fortran(b), c)
    np.testing.assert_allclose(c, sym @ b, rtol=1e-12)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    c = _fortran(np.zeros((6, 6)))
    blas.syr2k_lower(_fortran(x), _fortran(y), c, alpha=0.5)
    np.testing.assert_allclose(np.tril(c), np.tril(0.5 * (x @ y.T + y @ x.T)), rtol=1e-12)
    c = _fortran(np.ones((4, 6)))
    blas.gemm(_fortran(b), _fortran(a), c, alpha=2.0, beta=1.0, transpose_a=True)
    np.testing.assert_allclose(c, 2.0 * b.T @ a + 1.0, rtol=1e-12)
    t, m = np.triu(rng.standard_normal((4, 4))), rng.standard_normal((6, 4))
    out = _fortran(m)
    blas.trmm_upper(_fortran(t), out, side="R", transpose=False)
    np.testing.assert_allclose(out, m @ t, rtol=1e-12)
    panel, tee = _fortran(rng.standard_normal((8, 3))), _fortran(np.zeros((3, 3)))
    original = panel.copy()
    blas.householder_qr(panel, tee)
    v = np.tril(panel, -1) + np.eye(8, 3)
    q = np.eye(8) - v @ tee @ v.T
    np.testing.assert_allclose(q @ np.vstack([np.triu(panel[:3]), np.zeros((5, 3))]), original, atol=1e-12)
    np.testing.assert_allclose(blas.symmetric_eigenvalues(_fortran(np.tril(sym))), np.linalg.eigvalsh(sym), atol=1e-12)
    band_matrix = np.diag(rng.standard_normal(7)) + np.diag(rng.standard_normal(6), -1)
    band_matrix = band_matrix + np.tril(band_matrix, -1).T
    band = _fortran(np.vstack([np.diag(band_matrix), np.append(np.diag(band_matrix, -1), 0.0)]))
    np.testing.assert_allclose(blas.band_eigenvalues(band), scipy.linalg.eigvalsh(band_matrix), atol=1e-12)
