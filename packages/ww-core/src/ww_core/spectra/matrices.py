"""From a canonical weight tensor to the 2-D matrices whose spectra are analyzed (docs/metrics.md)."""

from __future__ import annotations

from math import prod, sqrt

import numpy as np

from ww_core.spectra.shapes import KIND_NDIM, widen_to_float

#: FFT grid size per kernel axis for ``conv2d_fft`` (the reference's choice).
FFT_GRID = 32

CONV_KINDS = ("conv1d", "conv2d", "conv3d")


def conv_slices(weights: np.ndarray) -> list[np.ndarray]:
    """The rf kernel-position slices W[:, :, i, j, ...] of an (out, in, *kernel) tensor, each (out, in)."""
    out_dim, in_dim = weights.shape[:2]
    flat = weights.reshape(out_dim, in_dim, -1)
    return [flat[:, :, k] for k in range(flat.shape[2])]


def conv_norm(rf: int, pool: bool) -> float:
    """The reference's conv scaling: sqrt(1/2) per slice when pooled, sqrt(rf/2) when sliced."""
    return sqrt((1 if pool else rf) / 2.0)


def fft_matrices(weights: np.ndarray, grid: int = FFT_GRID) -> list[np.ndarray]:
    """Complex (out, in) matrices of the conv operator at each frequency of a ``grid``-point FFT.

    Their singular values are those of the (circular) convolution operator (Sedghi et al. 2019).
    """
    axes = tuple(range(2, weights.ndim))
    coefs = np.fft.fftn(weights, s=(grid,) * len(axes), axes=axes)
    return conv_slices(coefs)


def layer_matrices(weights: np.ndarray, kind: str, *, pool: bool, conv2d_norm: bool, conv2d_fft: bool = False) -> list[np.ndarray]:
    """The matrices of one layer: [W] for dense/embedding, rf scaled float64 slices for convs.

    A dense W keeps float32 when it has it: spectra widen it block by block, so a large
    layer is never held twice.
    """
    if kind not in KIND_NDIM:
        raise ValueError(f"unknown layer kind {kind!r}; expected one of {sorted(KIND_NDIM)}")
    if weights.ndim != KIND_NDIM[kind]:
        raise ValueError(f"kind {kind!r} needs a {KIND_NDIM[kind]}-D array, got shape {weights.shape}")
    if kind not in CONV_KINDS:
        return [widen_to_float(np.asarray(weights))]
    array = np.asarray(weights, dtype=np.float64)
    if conv2d_fft:
        return fft_matrices(array)
    slices = conv_slices(array)
    if conv2d_norm:
        scale = conv_norm(prod(array.shape[2:]), pool)
        slices = [s * scale for s in slices]
    return slices
