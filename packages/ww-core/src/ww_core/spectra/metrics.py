"""Norm, rank and entropy metrics of one ESD (docs/metrics.md), with the reference's column names."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ww_core.spectra.constants import ALPHA_HIGH, ALPHA_LOW, EPSILON

OVER_TRAINED_THRESH, UNDER_TRAINED_THRESH = ALPHA_LOW, ALPHA_HIGH
#: Eigenvalues below this count towards ``weak_rank_loss``.
WEAK_RANK_TOLERANCE = 1e-6
#: The reference's guard added to probabilities and rank in the entropy.
ENTROPY_EPSILON = EPSILON


#: The fitted tail spans less than this factor (xmax/xmin): a flat spectrum, whose alpha means nothing.
DEGENERATE_SPAN = 1.01
DEGENERATE_WARNING = "degenerate-spectrum"


def warning_for(alpha: float, xmin: float = math.nan, xmax: float = math.nan) -> str:
    """The warning column: degenerate-spectrum when the fitted tail is flat (xmax < 1.01·xmin, e.g. an orthogonal
    kernel, alpha in the millions); else over-trained below alpha 2, under-trained above 6, else ""."""
    if xmax < DEGENERATE_SPAN * xmin:
        return DEGENERATE_WARNING
    if alpha < OVER_TRAINED_THRESH:
        return "over-trained"
    if alpha > UNDER_TRAINED_THRESH:
        return "under-trained"
    return ""


def rank_tolerance(sv_max: float, N: int, exact: bool) -> float:
    """Singular values at or below this count as zero.

    A full SVD resolves σ to σmax·N·eps (numpy's matrix_rank rule, the reference's). Eigenvalues
    of the Gram matrix carry round-off of about λmax·N·eps, i.e. σmax·sqrt(N·eps) on σ, so the
    default path uses that floor; otherwise round-off would count as rank.
    """
    eps = np.finfo(np.float64).eps
    return sv_max * N * eps if exact else sv_max * math.sqrt(N * eps)


def eigenvalue_floor(lambda_max: float, N: int, exact: bool) -> float:
    """Eigenvalues at or below this are round-off of the method (``rank_tolerance`` squared, relative to λmax)."""
    return rank_tolerance(math.sqrt(lambda_max), N, exact) ** 2


def matrix_rank(sv: np.ndarray, N: int, exact: bool = False) -> int:
    """Singular values above the method's round-off floor (see ``rank_tolerance``)."""
    if len(sv) == 0:
        return 0
    return int(np.count_nonzero(sv > rank_tolerance(float(np.max(sv)), N, exact)))


def matrix_entropy(evals: np.ndarray, N: int, exact: bool = False) -> float:
    """Spectral entropy −Σ p ln p / ln(rank), p = λ/Σλ, with the reference's 1e-10 guards."""
    rank = matrix_rank(np.sqrt(evals), N, exact) + ENTROPY_EPSILON
    p = evals / np.sum(evals) + ENTROPY_EPSILON
    return float(-np.sum(p * np.log(p)) / np.log(rank))


def spectrum_columns(per_matrix: Sequence[np.ndarray], N: int, exact: bool = False) -> dict[str, Any]:
    """Columns from the per-matrix eigenvalues: sv_max, sv_min, rank_loss, weak_rank_loss, lambda_max.

    ``sv_min`` is, as in the reference, the largest of the matrices' smallest singular values.
    """
    svs = [np.sqrt(e) for e in per_matrix if len(e)]
    evals = np.concatenate(per_matrix) if per_matrix else np.zeros(0)
    return {
        "sv_max": float(max(np.max(s) for s in svs)),
        "sv_min": float(max(np.min(s) for s in svs)),
        "rank_loss": int(sum(len(s) - matrix_rank(s, N, exact) for s in svs)),
        "weak_rank_loss": int(np.count_nonzero(evals < WEAK_RANK_TOLERANCE)),
        "lambda_max": float(np.max(evals)),
    }


def norm_metrics(evals: np.ndarray, alpha: float, N: int, exact: bool = False) -> dict[str, Any]:
    """norm, log_norm, spectral_norm, log_spectral_norm, alpha_weighted, log_alpha_norm,
    stable_rank, matrix_rank and entropy over all eigenvalues of one ESD (log base 10)."""
    norm = float(np.sum(evals))
    spectral = float(np.max(evals))
    log_spectral = math.log10(spectral) if spectral > 0 else -math.inf
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        alpha_sum = float(np.sum(evals**alpha)) if math.isfinite(alpha) else math.nan
        log_alpha_norm = float(np.log10(alpha_sum)) if math.isfinite(alpha_sum) else math.nan
    return {
        "norm": norm,
        "log_norm": math.log10(norm) if norm > 0 else -math.inf,
        "spectral_norm": spectral,
        "log_spectral_norm": log_spectral,
        "alpha_weighted": alpha * log_spectral,
        "log_alpha_norm": log_alpha_norm,
        "stable_rank": norm / spectral if spectral > 0 else math.nan,
        "matrix_rank": matrix_rank(np.sqrt(evals), N, exact),
        "entropy": matrix_entropy(evals, N, exact),
    }
