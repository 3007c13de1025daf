"""BLAS/LAPACK calls on float64 sub-matrix views, through SciPy's public Cython function table.

``scipy.linalg.blas`` wrappers copy any array that is not contiguous, so a blocked in-place
update of a trailing sub-matrix would copy it at every step. SciPy also exports the raw
routines (``scipy.linalg.cython_blas`` / ``cython_lapack``, Fortran calling convention) for
compiled extensions; calling them through ctypes passes a view's pointer and leading
dimension instead. ctypes releases the GIL, so threads of a parallel run overlap; numpy's
``eigvalsh`` and SciPy's f2py LAPACK wrappers hold it, which serialized parallel workers.

ABI assumptions (``tests/core/test_blas_abi.py`` checks them against the installed SciPy):

- Fortran calling convention: every argument by pointer, matrices column-major. Each routine's
  argument kinds are in ``SIGNATURES`` and must equal what SciPy's capsule declares.
- Integers are C ``int`` (32 bits, LP64 BLAS), as SciPy's Cython API declares them; integer
  workspaces are ``np.int32``.
- Character flags are passed as ``char *`` without the hidden string-length arguments
  gfortran appends: SciPy's table omits them too, and these routines read one character of
  each flag (through LSAME) and never its length.
- The functions are called through ``ctypes.CFUNCTYPE``, which releases the GIL for the call.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Any, Callable

import numpy as np
import scipy.linalg.cython_blas
import scipy.linalg.cython_lapack

_pointer = ctypes.c_void_p
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_name = ctypes.pythonapi.PyCapsule_GetName
_capsule_name.restype = ctypes.c_char_p
_capsule_name.argtypes = [ctypes.py_object]

#: Each routine's module and argument kinds, c = char*, i = int*, d = double* (spaces only group them for reading).
SIGNATURES: dict[str, tuple[Any, str]] = {
    "dsymm": (scipy.linalg.cython_blas, "cc ii d di di d di"),
    "dsyr2k": (scipy.linalg.cython_blas, "cc ii d di di d di"),
    "dgemm": (scipy.linalg.cython_blas, "cc iii d di di d di"),
    "dtrmm": (scipy.linalg.cython_blas, "cccc ii d di di"),
    "dgeqrt3": (scipy.linalg.cython_lapack, "ii di di i"),
    "dsyevd": (scipy.linalg.cython_lapack, "cc i di d di ii i"),
    "dsbevd": (scipy.linalg.cython_lapack, "cc ii di d di di ii i"),
}


@lru_cache(maxsize=None)
def _routine(name: str) -> Callable[..., None]:
    """The Fortran routine ``name`` as a ctypes function taking only pointers."""
    module, kinds = SIGNATURES[name]
    capsule = module.__pyx_capi__[name]
    address = _capsule_pointer(capsule, _capsule_name(capsule))
    return ctypes.CFUNCTYPE(None, *([_pointer] * len(kinds.replace(" ", ""))))(address)


def _int(value: int) -> Any:
    return ctypes.byref(ctypes.c_int(value))


def _float(value: float) -> Any:
    return ctypes.byref(ctypes.c_double(value))


def _flag(letter: str) -> ctypes.c_char_p:
    return ctypes.c_char_p(letter.encode())


def _operand(array: np.ndarray) -> tuple[Any, Any]:
    """Pointer and leading dimension of a column-major float64 view (unit stride down columns)."""
    if array.dtype != np.float64 or array.ndim != 2:
        raise TypeError(f"BLAS operands must be 2-D float64 arrays, got {array.dtype} {array.shape}")
    rows, cols = array.shape
    column_stride = array.strides[1] // 8 if cols > 1 else max(rows, 1)
    if (rows > 1 and array.strides[0] != 8) or column_stride < max(rows, 1) or array.strides[1] % 8:
        raise ValueError(f"BLAS operand of shape {array.shape} and strides {array.strides} is not a column-major view")
    return _pointer(array.ctypes.data), _int(column_stride)


def symm_lower(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    """C ← A·B with A symmetric, read from its lower triangle."""
    rows, cols = b.shape
    _routine("dsymm")(_flag("L"), _flag("L"), _int(rows), _int(cols), _float(1.0), *_operand(a), *_operand(b), _float(0.0), *_operand(c))


def syr2k_lower(a: np.ndarray, b: np.ndarray, c: np.ndarray, *, alpha: float) -> None:
    """Lower triangle of C ← α(A·Bᵀ + B·Aᵀ) + C, in place."""
    rows, depth = a.shape
    _routine("dsyr2k")(
        _flag("L"), _flag("N"), _int(rows), _int(depth), _float(alpha), *_operand(a), *_operand(b), _float(1.0), *_operand(c),
    )  # fmt: skip


def gemm(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, *, alpha: float, beta: float, transpose_a: bool = False, transpose_b: bool = False
) -> None:
    """C ← α·op(A)·op(B) + β·C in place, op(X) = Xᵀ when ``transpose_x``."""
    rows, depth = (a.shape[1], a.shape[0]) if transpose_a else a.shape
    cols = b.shape[0] if transpose_b else b.shape[1]
    _routine("dgemm")(
        _flag("T" if transpose_a else "N"), _flag("T" if transpose_b else "N"), _int(rows), _int(cols), _int(depth),
        _float(alpha), *_operand(a), *_operand(b), _float(beta), *_operand(c),
    )  # fmt: skip


def trmm_upper(t: np.ndarray, b: np.ndarray, *, side: str, transpose: bool) -> None:
    """B ← B·T (side "R") or op(T)·B (side "L") in place, T upper triangular, op(T) = Tᵀ when ``transpose``."""
    rows, cols = b.shape
    _routine("dtrmm")(
        _flag(side), _flag("U"), _flag("T" if transpose else "N"), _flag("N"), _int(rows), _int(cols),
        _float(1.0), *_operand(t), *_operand(b),
    )  # fmt: skip


def householder_qr(panel: np.ndarray, t: np.ndarray) -> None:
    """Recursive QR of a tall ``panel`` in place (LAPACK dgeqrt3), with Q = I − V·T·Vᵀ.

    R lands on and above the diagonal, the unit-lower reflectors V below it, and the
    upper-triangular T in ``t``.
    """
    rows, cols = panel.shape
    if rows < cols or t.shape != (cols, cols):
        raise ValueError(f"householder_qr needs a tall panel and a square T, got {panel.shape} and {t.shape}")
    info = ctypes.c_int(0)
    _routine("dgeqrt3")(_int(rows), _int(cols), *_operand(panel), *_operand(t), ctypes.byref(info))
    _check(info, "dgeqrt3")


def _vector(array: np.ndarray) -> Any:
    return _pointer(array.ctypes.data)


def _check(info: ctypes.c_int, routine: str) -> None:
    if info.value:
        raise ArithmeticError(f"{routine} failed with info={info.value}")


def symmetric_eigenvalues(lower: np.ndarray) -> np.ndarray:
    """Ascending eigenvalues of the symmetric matrix whose lower triangle is the column-major ``lower``
    (LAPACK dsyevd, values only; ``lower`` is overwritten)."""
    n = lower.shape[0]
    if lower.shape != (n, n):
        raise ValueError(f"symmetric_eigenvalues needs a square matrix, got {lower.shape}")
    evals = np.empty(n)
    if n == 0:
        return evals
    info, optimal, int_size = ctypes.c_int(0), np.zeros(1), np.zeros(1, dtype=np.int32)
    routine = _routine("dsyevd")
    arguments = (_flag("N"), _flag("L"), _int(n), *_operand(lower), _vector(evals))
    routine(*arguments, _vector(optimal), _int(-1), _vector(int_size), _int(-1), ctypes.byref(info))  # workspace query
    _check(info, "dsyevd")
    work, int_work = np.empty(max(int(optimal[0]), 2 * n + 1)), np.empty(max(int(int_size[0]), 1), dtype=np.int32)
    routine(*arguments, _vector(work), _int(len(work)), _vector(int_work), _int(len(int_work)), ctypes.byref(info))
    _check(info, "dsyevd")
    return evals


def band_eigenvalues(band: np.ndarray) -> np.ndarray:
    """Ascending eigenvalues of a symmetric band matrix in LAPACK lower band storage
    (row d holds the d-th sub-diagonal, column-major; LAPACK dsbevd, values only; ``band`` is overwritten)."""
    width, n = band.shape[0] - 1, band.shape[1]
    evals = np.empty(n)
    if n == 0:
        return evals
    info, unused = ctypes.c_int(0), np.zeros(1)
    work, int_work = np.empty(2 * n), np.empty(1, dtype=np.int32)
    _routine("dsbevd")(
        _flag("N"), _flag("L"), _int(n), _int(width), *_operand(band), _vector(evals), _vector(unused), _int(1),
        _vector(work), _int(len(work)), _vector(int_work), _int(1), ctypes.byref(info),
    )  # fmt: skip
    _check(info, "dsbevd")
    return evals
