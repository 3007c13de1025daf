"""The reference's per-layer distances (``WeightWatcher.distances``): 'raw', 'euclidean' and 'cka'.

'raw' is ‖W₁ − W₂‖_F over the whole tensor; 'euclidean' and 'cka' average over the layer's
matrices as ``get_Weights`` returns them (one for dense/embedding, each kernel-position slice of a
conv, made tall). CKA is the reference's uncentered ‖W₁ᵀW₂‖_F / √(‖W₁ᵀW₁‖_F·‖W₂W₂ᵀ‖_F).
"""

from __future__ import annotations

import numpy as np

from ww_core.spectra.matrices import CONV_KINDS, conv_slices

DISTANCE_METHODS = ("raw", "euclidean", "cka")

#: The reference adds this to a CKA denominator below it.
CKA_FLOOR = 1e-6


def weight_matrices(weights: np.ndarray, kind: str) -> list[np.ndarray]:
    """The layer's matrices as the reference's ``Wmats``: [W] for dense/embedding, conv slices transposed to rows ≥ columns."""
    if kind not in CONV_KINDS:
        return [weights]
    return [s.T if s.shape[0] < s.shape[1] else s for s in conv_slices(weights)]


def matrix_distance(a: np.ndarray, b: np.ndarray, method: str) -> float:
    """Euclidean (Frobenius) distance or uncentered CKA of two same-shape matrices."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if method in ("raw", "euclidean"):
        return float(np.linalg.norm(a - b))
    overlap = float(np.linalg.norm(a.T @ b))
    norm = float(np.sqrt(np.linalg.norm(a.T @ a) * np.linalg.norm(b @ b.T)))
    return overlap / (norm + CKA_FLOOR if norm < CKA_FLOOR else norm)


def layer_delta(a: np.ndarray, b: np.ndarray, kind: str, method: str) -> float:
    """The reference's ``delta_W`` of one layer pair under ``method``."""
    if method == "raw":
        return matrix_distance(a, b, method)
    pairs = list(zip(weight_matrices(a, kind), weight_matrices(b, kind), strict=True))
    return sum(matrix_distance(x, y, method) for x, y in pairs) / len(pairs)
