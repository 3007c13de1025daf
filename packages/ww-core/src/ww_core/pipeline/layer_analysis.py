"""Per-layer analysis: matrices → eigenvalues → fit → metrics, one row per ESD (docs/metrics.md).

Never raises for a bad matrix: NaN/Inf or all-zero weights give a failed row naming the layer.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np

from ww_core.platform.protocol import LayerMatrix
from ww_core.results.options import AnalysisOptions
from ww_core.results.rows import base_row, describe_layer, failed_row
from ww_core.spectra import spectrum
from ww_core.spectra import xmax as xmax_option
from ww_core.spectra.detx import detx_columns
from ww_core.spectra.fingers import clip_xmax, xmin_peak
from ww_core.spectra.matrices import CONV_KINDS, layer_matrices
from ww_core.spectra.metrics import eigenvalue_floor, norm_metrics, spectrum_columns, warning_for
from ww_core.spectra.mp_fit import mp_fit
from ww_core.spectra.powerlaw_fit import PowerLawFit, failed_fit, fit_power_law
from ww_core.spectra.randomize import randomize_columns
from ww_core.spectra.shapes import matrix_dims
from ww_core.spectra.spectrum import EigenvalueFn
from ww_core.spectra.tpl_fit import fit_truncated_power_law
from ww_core.spectra.vectors import vector_columns

TPL_FITS = ("TPL", "truncated_power_law", "E_TPL")
#: Fewer eigenvalues than this above the round-off floor (with some below it): rank-deficient, not fitted.
MIN_RANK_FOR_FIT = 8
#: In the error of a layer whose weights hold NaN or Inf (the monitor's divergence rule looks for it).
NONFINITE_WEIGHTS = "NaN/Inf value(s)"
#: In the error of a layer whose weights' squares overflow float64 (the monitor's divergence rule looks for it).
OVERFLOWING_WEIGHTS = "too large for float64"


def _weights_problem(weights: np.ndarray) -> str:
    """Why these weights cannot be analyzed, or "".

    One BLAS pass decides the usual case: a finite, positive sum of squares means every entry
    is finite and one is non-zero. Otherwise (or on overflow/underflow) the entries are counted,
    and the sum of squares is taken relative to the largest entry: if that is out of float64's
    range, so is the Gram matrix, and LAPACK would only fail with an error code.
    """
    if weights.size == 0:
        return "weights are empty"
    flat = weights.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        squares = float(np.vdot(flat, flat).real)
    if math.isfinite(squares) and squares > 0:
        return ""
    bad = int(np.count_nonzero(~np.isfinite(weights)))
    if bad:
        return f"weights contain {bad} {NONFINITE_WEIGHTS}"
    peak = float(np.max(np.abs(flat)))
    if peak == 0:
        return "weights are all zero"
    return _range_problem(flat, peak)


def _range_problem(flat: np.ndarray, peak: float) -> str:
    """Whether the squares of finite, non-zero weights whose largest magnitude is ``peak`` leave float64's range."""
    if peak * peak < np.finfo(np.float64).tiny:
        return f"weights are too small for float64: their squares underflow to zero (largest |w| = {peak:.3g}); rescale the layer"
    scaled = flat / peak
    decades = 2 * math.log10(peak) + math.log10(float(np.vdot(scaled, scaled).real))
    if decades >= math.log10(np.finfo(np.float64).max):
        overflow = f"the sum of their squares (about 1e{decades:.0f}) overflows (largest |w| = {peak:.3g})"
        return f"weights are {OVERFLOWING_WEIGHTS}: {overflow}; rescale the layer"
    return ""


def _prepare(
    layer: LayerMatrix, weights: np.ndarray, options: AnalysisOptions, base_weights: np.ndarray | None
) -> tuple[list[np.ndarray], str]:
    """The scaled matrices of the layer (of W − W_base when a base is given), or a problem."""
    array = np.asarray(weights)
    if base_weights is not None:
        base = np.asarray(base_weights)
        if base.shape != array.shape:
            return [], f"base weights have shape {base.shape}, expected {array.shape}"
        array = array.astype(np.float64) - base.astype(np.float64)
    problem = _weights_problem(array)
    if problem:
        return [], problem
    matrices = layer_matrices(array, layer.kind, pool=options.pool, conv2d_norm=options.conv2d_norm, conv2d_fft=options.conv2d_fft)
    return matrices, ""


def _groups(per_matrix: list[np.ndarray], kind: str, pool: bool) -> list[list[int]]:
    """Indices of the matrices forming each ESD: all together when pooled, one each otherwise."""
    if pool or kind not in CONV_KINDS:
        return [list(range(len(per_matrix)))]
    return [[i] for i in range(len(per_matrix))]


def _fit(evals: np.ndarray, options: AnalysisOptions) -> tuple[PowerLawFit, int, dict[str, Any]]:
    """The power-law fit the options ask for, how many of the ascending ``evals`` it used (``xmax`` clips the top), and
    its option-specific columns."""
    data, problem = xmax_option.fit_range(evals, options.xmax)
    if problem:
        return failed_fit(problem), len(evals), {}
    clipped = {} if options.xmax is None or isinstance(options.xmax, str) else {xmax_option.CLIPPED: len(evals) - len(data)}
    fix = "xmin_peak" if options.fit == "E_TPL" else options.fix_fingers
    if fix == "clip_xmax":
        fingers = clip_xmax(data, max_fingers=options.max_fingers, finger_thresh=options.finger_thresh)
        spikes = int(np.count_nonzero(data >= fingers.fit.xmin)) if fingers.fit.ok else 0
        fit = _with_spikes(fingers.fit, spikes)
        return fit, len(data), {"num_fingers": fingers.num_fingers, "raw_alpha": fingers.raw.alpha, **clipped}
    fit = xmin_peak(data, xmin_max=options.xmin_max) if fix == "xmin_peak" else fit_power_law(data)
    return fit, len(data), clipped


def _without_roundoff(evals: np.ndarray, N: int, options: AnalysisOptions) -> tuple[np.ndarray, str]:
    """The eigenvalues with those at or below the method's round-off floor set to 0, or why the layer is rank-deficient.

    Not applied to ``inverse`` spectra, whose largest values are the inverted small ones.
    """
    if options.inverse:
        return evals, ""
    floor = eigenvalue_floor(float(evals[-1]), N, options.exact)
    above = int(np.count_nonzero(evals > floor))
    if above == len(evals):
        return evals, ""
    if above < MIN_RANK_FOR_FIT:
        rule = "σmax·N·eps on σ" if options.exact else "λmax·N·eps"
        return evals, (
            f"rank-deficient: only {above} of {len(evals)} eigenvalues above the round-off floor {floor:.3g} ({rule}); "
            f"the rest are round-off, and a power law needs at least {MIN_RANK_FOR_FIT}"
        )
    return np.where(evals > floor, evals, 0.0), ""


def _with_spikes(fit: PowerLawFit, spikes: int) -> PowerLawFit:
    if not fit.ok:
        return fit
    return PowerLawFit(fit.alpha, fit.xmin, fit.xmax, fit.D, fit.sigma, spikes)


def _esd_row(
    layer: LayerMatrix,
    options: AnalysisOptions,
    matrices: list[np.ndarray],
    per_matrix: list[np.ndarray],
    eigen: EigenvalueFn,
) -> dict[str, Any]:
    """Fit and metrics of one ESD (the pooled eigenvalues of ``matrices``)."""
    dims = matrix_dims(layer.shape)
    evals = np.sort(np.concatenate(per_matrix))
    if options.inverse:
        evals = spectrum.inverse_spectrum(evals)
    row: dict[str, Any] = {**base_row(layer, options), "num_evals": len(evals), **spectrum_columns(per_matrix, dims.N, options.exact)}
    if not np.all(np.isfinite(evals)) or np.max(evals) <= 0:
        reason = f"{describe_layer(layer)}: eigenvalues are not finite and positive"
        return {**row, "alpha": math.nan, "warning": "", "status": "failed", "error": reason}
    fit_evals, deficient = _without_roundoff(evals, dims.N, options)
    if deficient:  # the norms and the rank are still true of the layer
        row.update(norm_metrics(evals, math.nan, dims.N, options.exact))
        return {**row, "alpha": math.nan, "warning": "", "status": "failed", "error": f"{describe_layer(layer)}: {deficient}"}
    fit, used, extra = _fit(fit_evals, options)
    row.update(alpha=fit.alpha, xmin=fit.xmin, xmax=fit.xmax, D=fit.D, sigma=fit.sigma, num_pl_spikes=fit.num_pl_spikes, **extra)
    if options.fit in TPL_FITS:
        row["Lambda"] = math.nan
    if options.fit in TPL_FITS and fit.ok:
        tpl = fit_truncated_power_law(evals[:used], xmin=fit.xmin)
        row.update(alpha=tpl.alpha, Lambda=tpl.Lambda, D=tpl.D)
        if not tpl.ok:
            fit = failed_fit(tpl.reason)
    row.update(norm_metrics(evals, row["alpha"], dims.N, options.exact))
    if options.mp_fit:
        row.update(mp_fit(evals, dims.N, dims.M).columns())
    if options.vectors:
        row.update(vector_columns(matrices, fit.num_pl_spikes if fit.ok else 0))
    if options.randomize:
        components = dims.M * (dims.rf if layer.kind in CONV_KINDS and not options.conv2d_fft else 1)
        row.update(
            randomize_columns(
                matrices, evals, N=dims.N, M=dims.M, num_components=components, eigen=eigen, seed=options.seed, inverse=options.inverse
            )
        )
    if options.detX:
        row.update(detx_columns(evals, fit.num_pl_spikes if fit.ok else None))
    ok = fit.ok and math.isfinite(row["alpha"])
    row.update(
        warning=warning_for(row["alpha"], row["xmin"], row["xmax"]) if ok else "",
        status="success" if ok else "failed",
        error="" if ok else f"{describe_layer(layer)}: power-law fit failed: {fit.reason}",
    )
    return row


def analyze_layer(
    layer: LayerMatrix,
    weights: np.ndarray,
    options: AnalysisOptions,
    *,
    eigenvalue_fn: EigenvalueFn | None = None,
    base_weights: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Rows for one layer: one when pooled (or not a conv), one per kernel slice otherwise.

    ``eigenvalue_fn`` replaces ``spectrum.eigenvalues`` (e.g. an adapter's GPU hook);
    ``base_weights`` analyzes W − W_base.
    """
    matrices, problem = _prepare(layer, weights, options, base_weights)
    if problem:
        return [failed_row(layer, options, problem)]

    def default_eigen(ms: list[np.ndarray]) -> list[np.ndarray]:
        return spectrum.eigenvalues(ms, exact=options.exact)

    eigen = eigenvalue_fn or default_eigen
    per_matrix = eigen(matrices)
    groups = _groups(per_matrix, layer.kind, options.pool)
    rows = []
    for slice_id, members in enumerate(groups):
        row = _esd_row(layer, options, [matrices[i] for i in members], [per_matrix[i] for i in members], eigen)
        if not options.pool:  # the reference's unpooled rows all carry a slice_id (0 for non-convs)
            row["slice_id"] = slice_id
        rows.append(row)
    return rows


def layer_esd(
    layer: LayerMatrix, weights: np.ndarray, options: AnalysisOptions, *, eigenvalue_fn: EigenvalueFn | None = None
) -> np.ndarray:
    """Sorted eigenvalues of the layer's pooled ESD (for ``get_ESD``); ValueError for bad weights.

    ``eigenvalue_fn`` is the same route ``analyze_layer`` takes (an adapter's hook, else core's).
    """
    matrices, problem = _prepare(layer, weights, options, None)
    if problem:
        raise ValueError(f"{describe_layer(layer)}: {problem}")
    eigen = eigenvalue_fn or partial(spectrum.eigenvalues, exact=options.exact)
    evals = np.sort(np.concatenate(eigen(matrices)))
    return spectrum.inverse_spectrum(evals) if options.inverse else evals
