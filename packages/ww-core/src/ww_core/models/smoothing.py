"""SVD smoothing and sharpening: new weight matrices from a truncated or spike-free SVD (the reference's
``SVDSmoothing``/``SVDSharpness``), written back into the model through each adapter's ``ww_write_weights``.

Smoothing keeps the top ``keep`` singular triplets of each matrix; sharpening zeroes the top
``traps`` ones, the number of Marchenko–Pastur spikes of the element-shuffled layer (correlation
traps). Dense and embedding layers are one matrix; a conv's kernel-position slices W[:, :, i, ...]
each keep ceil(keep / rf), as the reference does for Conv2d. Reconstructions use an exact SVD in
float64 (the reference's keep-top path is a randomized TruncatedSVD).
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any, Callable

import numpy as np

from ww_core.models.write_back import output_path, write_weights
from ww_core.pipeline.layer_analysis import analyze_layer
from ww_core.pipeline.plugins import collect_layers
from ww_core.pipeline.selection import skip_reason
from ww_core.platform.protocol import LayerMatrix
from ww_core.results.options import AnalysisOptions
from ww_core.spectra import spectrum
from ww_core.spectra.matrices import CONV_KINDS, layer_matrices
from ww_core.spectra.mp_fit import mp_fit
from ww_core.spectra.randomize import shuffled
from ww_core.spectra.shapes import matrix_dims

log = logging.getLogger("ww_core")

#: How SVDSmoothing picks the number of components kept, as the reference names them.
SMOOTHING_METHODS = ("svd", "detX", "rmt", "alpha_min", "auto")

#: Above this alpha, ``auto`` keeps the MP spikes (``rmt``); otherwise the detX tail.
AUTO_ALPHA = 6.0


def low_rank(matrix: np.ndarray, keep: int) -> np.ndarray:
    """``matrix`` rebuilt from its top ``keep`` singular triplets; ``keep < 0`` zeroes the top ``-keep`` instead; 0 keeps it whole."""
    if keep == 0:
        return np.array(matrix, copy=True)
    left, values, right = np.linalg.svd(np.asarray(matrix, dtype=np.float64), full_matrices=False)
    values = values.copy()
    if keep > 0:
        values[keep:] = 0.0
    else:
        values[:-keep] = 0.0
    return ((left * values) @ right).astype(matrix.dtype, copy=False)


def truncated(weights: np.ndarray, kind: str, keep: int) -> np.ndarray:
    """A layer's canonical tensor with every matrix truncated by ``low_rank``; conv slices each get ceil(keep / rf)."""
    if kind not in CONV_KINDS:
        return low_rank(weights, keep)
    flat = weights.reshape(weights.shape[0], weights.shape[1], -1)
    per_slice = math.ceil(keep / flat.shape[2])
    slices = [low_rank(flat[:, :, k], per_slice) for k in range(flat.shape[2])]
    return np.stack(slices, axis=2).reshape(weights.shape)


def smoothing_keep(layer: LayerMatrix, weights: np.ndarray, method: str, percent: float, options: AnalysisOptions) -> int:
    """How many components ``method`` keeps for this layer (pooled over conv slices), from its ESD as ``analyze`` computes it."""
    dims = matrix_dims(layer.shape)
    if method == "svd":
        return int(percent * dims.M * dims.rf)
    row = analyze_layer(layer, weights, options.with_(detX=method in ("detX", "auto"), mp_fit=method in ("rmt", "auto")))[0]
    if row.get("status") != "success" and method != "rmt":
        raise ValueError(row.get("error") or "the power-law fit failed")
    if method == "auto":
        method = "rmt" if row["alpha"] > AUTO_ALPHA else "detX"
    column = {"detX": "detX_num", "rmt": "num_spikes", "alpha_min": "num_pl_spikes"}[method]
    value = row.get(column)
    if value is None or not math.isfinite(value):
        raise ValueError(row.get("error") or f"{column} could not be computed")
    return int(value)


def trap_count(layer: LayerMatrix, weights: np.ndarray, options: AnalysisOptions) -> int:
    """Marchenko–Pastur spikes of the element-shuffled layer (seeded by ``options.seed``): its correlation traps."""
    dims = matrix_dims(layer.shape)
    matrices = layer_matrices(weights, layer.kind, pool=True, conv2d_norm=options.conv2d_norm)
    rng = np.random.default_rng(options.seed)
    evals = np.sort(np.concatenate(spectrum.eigenvalues(shuffled(matrices, rng), exact=options.exact)))
    return mp_fit(evals, dims.N, dims.M).num_spikes


def _validated(options: dict[str, Any]) -> AnalysisOptions:
    opts = AnalysisOptions.from_kwargs(**options)
    if not opts.pool:
        raise ValueError("SVD smoothing/sharpening works on pooled layers only (pool=True), as in the reference")
    for name in ("peft", "intra", "conv2d_fft", "randomize", "vectors", "inverse"):
        if getattr(opts, name):
            value = getattr(opts, name)
            raise ValueError(f"SVD smoothing/sharpening cannot be combined with {name}={value!r}: it changes real layers only")
    return opts


def _new_weights(source: Any, opts: AnalysisOptions, keep_for: Callable[[LayerMatrix, np.ndarray], int]) -> dict[str, np.ndarray]:
    """Every selected layer's truncated tensor; a layer that cannot be judged stays unchanged, with a warning naming it."""
    changed: dict[str, np.ndarray] = {}
    for layer in collect_layers(source, opts.adapter_options()):
        if skip_reason(layer, opts):
            continue
        try:
            weights = layer.weights()
            if not np.all(np.isfinite(weights)):
                raise ValueError("weights contain NaN or Inf")
            keep = keep_for(layer, weights)
        except Exception as exc:  # one layer's bad weights or failed fit must not stop the others
            warnings.warn(f"layer {layer.name!r} left unchanged: {exc}", stacklevel=3)
            continue
        log.info("layer %r: keep=%d", layer.name, keep)
        if keep != 0:  # 0 leaves the layer as it is
            changed[layer.name] = truncated(weights, layer.kind, keep)
    return changed


def svd_smoothing(source: Any, *, percent: float = 0.8, method: str = "detX", output: Any = None, **options: Any) -> Any:
    """Keep each selected layer's top singular components and write the result back; returns the updated model.

    ``method`` picks the count: 'svd' keeps int(percent·M·rf), 'detX' the detX tail, 'rmt' the MP
    spikes, 'alpha_min' the power-law tail (num_pl_spikes), 'auto' rmt when alpha > 6 else detX.
    A negative count zeroes the top components instead. Torch modules and Keras models change in
    place; a file source gets a new file or folder (``output``, default ``write_back.default_output``: never
    inside the model's folder).
    """
    if method not in SMOOTHING_METHODS:
        raise ValueError(f"method must be one of {SMOOTHING_METHODS}, got {method!r}")
    opts = _validated(options)
    output_path(source, output, "smoothed")  # a refused output is refused before any layer is computed
    new = _new_weights(source, opts, lambda layer, weights: smoothing_keep(layer, weights, method, percent, opts))
    return write_weights(source, new, opts, output=output, tag="smoothed")


def svd_sharpness(source: Any, *, output: Any = None, **options: Any) -> Any:
    """Zero each selected layer's top singular components, as many as its shuffled ESD has MP spikes; returns the updated model.

    The shuffle is seeded (``seed``, default 0); the reference's is not. Written back as ``svd_smoothing`` does.
    """
    opts = _validated(options)
    output_path(source, output, "sharpened")
    new = _new_weights(source, opts, lambda layer, weights: -trap_count(layer, weights, opts))
    return write_weights(source, new, opts, output=output, tag="sharpened")
