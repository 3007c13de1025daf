"""The reference's two experimental whole-model spectra: ``intra`` (products of consecutive layers) and ``stacked``.

weightwatcher 0.7.7 defines both by its iterators; this module computes the same eigenvalues from
the layers' matrices as ``get_Weights`` returns them, so ``WeightWatcher`` can fit them like any layer.
Where the reference's randomness is unseeded (``sparsify``'s 0/1 mask) the mask comes from ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from ww_core.models.reference_distances import weight_matrices
from ww_core.platform.protocol import LayerMatrix
from ww_core.spectra.shapes import matrix_dims

#: The reference's name of the one stacked row.
STACKED_NAME = "Stacked Layer"


@dataclass(frozen=True)
class ProductSpectrum:
    """Eigenvalues the reference fits for a product or stacked matrix, with that matrix's N and M."""

    evals: np.ndarray
    N: int
    M: int


def _components(layer: LayerMatrix) -> int:
    """How many top eigenvalues the reference keeps for a layer's spectrum (its ``num_components``: M·rf)."""
    return matrix_dims(layer.shape).num_evals(True)


def _top_values(matrix: np.ndarray, keep: int) -> np.ndarray:
    values = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)
    return np.sort(values)[-keep:] if keep < values.size else np.sort(values)


def _aligned(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Transpose the pair so that ``first @ second`` runs over a dimension they share, as the reference aligns them."""
    dims = [*first.shape, *second.shape]
    repeated = list(dims)
    for value in set(dims):
        repeated.remove(value)
    if not repeated:
        return first, second
    shared = max(repeated)
    first = first if first.shape[1] == shared else first.T
    second = second if second.shape[0] == shared else second.T
    return first, second


def intra_spectra(
    layers: Sequence[LayerMatrix], *, sparsify: bool, seed: int, conv2d_norm: bool
) -> list[tuple[LayerMatrix, LayerMatrix, ProductSpectrum]]:
    """(previous, layer, spectrum) for each consecutive pair of ``layers`` whose first matrices can be multiplied.

    X = W₀·W₁/(‖W₀‖·‖W₁‖), or W₀·S·W₁/(‖W₀‖·‖W₁‖ + √‖S‖) with a random 0/1 matrix S when ``sparsify``;
    a conv contributes its first kernel-position slice. As in the reference, the spectrum is X's
    singular values (not their squares), scaled by 1/√2 when the second layer is a normalized conv,
    and holds at most the second layer's M·rf of them.
    """
    rng = np.random.default_rng(seed)
    found = []
    for previous, layer in pairwise(layers):
        first, second = _aligned(weight_matrices(previous.weights(), previous.kind)[0], weight_matrices(layer.weights(), layer.kind)[0])
        if first.shape[1] != second.shape[0]:
            continue
        first, second = first.astype(np.float64), second.astype(np.float64)
        norm = float(np.linalg.norm(first) * np.linalg.norm(second))
        if sparsify:
            mask = rng.integers(0, 2, size=(second.shape[0], second.shape[0])).astype(np.float64)
            product = first @ mask @ second / (norm + math.sqrt(float(np.linalg.norm(mask))))
        else:
            product = first @ second / norm
        if conv2d_norm and layer.kind == "conv2d":
            product = product * math.sqrt(0.5)
        spectrum = ProductSpectrum(_top_values(product, _components(layer)), max(product.shape), min(product.shape))
        found.append((previous, layer, spectrum))
    return found


def stacked_spectrum(layers: Sequence[LayerMatrix]) -> ProductSpectrum:
    """The reference's stacked matrix and its top eigenvalues, as many as the first layer's M·rf.

    Each layer's matrices side by side, standardized as the reference does ((W − median of W) / each
    column's median absolute deviation), padded with zeros to the widest, all stacked.
    """
    if not layers:
        raise ValueError("stacked=True: no layer is selected")
    blocks = []
    for layer in layers:
        matrices = weight_matrices(layer.weights(), layer.kind)
        block = np.hstack(matrices).astype(np.float64) if len(matrices) > 1 else matrices[0].astype(np.float64)
        spread = np.median(np.abs(block - np.median(block, axis=0)), axis=0)  # each column's MAD, as scipy's default
        blocks.append((block - np.median(block)) / spread)
    width = max(block.shape[1] for block in blocks)
    stacked = np.vstack([np.pad(block, ((0, 0), (0, width - block.shape[1]))) for block in blocks])
    values = _top_values(stacked, _components(layers[0]))
    return ProductSpectrum(values**2, max(stacked.shape), min(stacked.shape))


def stand_in(evals: np.ndarray) -> np.ndarray:
    """A square matrix whose WᵀW has exactly these eigenvalues (diag √λ), so the usual pipeline fits them."""
    return np.diag(np.sqrt(np.clip(np.asarray(evals, dtype=np.float64), 0.0, None)))


def stacked_columns(layers: Sequence[LayerMatrix], spectrum: ProductSpectrum) -> dict[str, Any]:
    """The stacked row's identity and shape columns, as the reference reports them (id 0, type 'stacked', rf 1)."""
    first = layers[0]
    return {
        "layer_id": 0,
        "name": STACKED_NAME,
        "layer_type": "stacked",
        "N": spectrum.N,
        "M": spectrum.M,
        "Q": spectrum.N / spectrum.M,
        "rf": 1,
        "longname": first.framework_path or first.name,
    }


def intra_columns(
    previous: LayerMatrix, layer: LayerMatrix, spectrum: ProductSpectrum, id_of: Callable[[LayerMatrix], int]
) -> dict[str, Any]:
    """A layer pair's identity and shape columns, as the reference reports them: the second layer's id, type, rf and
    longname, the name ``"{id0} X {id1} "`` and ``Xflag``."""
    return {
        "layer_id": id_of(layer),
        "name": f"{id_of(previous)} X {id_of(layer)} ",
        "layer_type": layer.kind,
        "N": spectrum.N,
        "M": spectrum.M,
        "Q": spectrum.N / spectrum.M,
        "rf": matrix_dims(layer.shape).rf,
        "longname": layer.framework_path or layer.name,
        "Xflag": True,
    }
