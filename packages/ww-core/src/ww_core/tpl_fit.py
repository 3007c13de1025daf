"""Truncated power law p(x) ∝ x^−α e^−λx on x ≥ xmin, fitted by maximum likelihood with scipy.

Replaces the reference's dependency on the ``powerlaw`` package (broken in powerlaw 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALPHA_MAX = 50.0


@dataclass(frozen=True)
class TPLFit:
    """Exponent alpha and cutoff rate Lambda of the tail; NaN and a reason when the fit fails."""

    alpha: float
    Lambda: float
    xmin: float
    ok: bool = True
    reason: str = ""


def log_normalizer(alpha: float, rate: float, xmin: float) -> float:
    """ln ∫_xmin^∞ x^−α e^−rate·x dx, via xmin^(1−α) ∫_1^∞ t^−α e^−(rate·xmin)(t−1) dt · e^−rate·xmin."""
    from scipy import integrate  # scipy's submodules load on use: they cost most of a cold start

    z = rate * xmin
    value, _ = integrate.quad(lambda t: t**-alpha * math.exp(-z * (t - 1.0)), 1.0, math.inf, limit=200)
    return (1.0 - alpha) * math.log(xmin) - z + math.log(value)


def negative_log_likelihood(alpha: float, rate: float, tail: np.ndarray, sum_log: float, total: float) -> float:
    """−Σ ln p(x) for the truncated power law over ``tail`` (given Σ ln x and Σ x)."""
    return len(tail) * log_normalizer(alpha, rate, float(tail[0])) + alpha * sum_log + rate * total


def fit_truncated_power_law(evals: np.ndarray, *, xmin: float) -> TPLFit:
    """MLE of (alpha, Lambda) over eigenvalues ≥ xmin, starting from the power-law MLE and 1/mean."""
    data = np.asarray(evals, dtype=np.float64)
    tail = np.sort(data[data >= xmin])
    if len(tail) < 3 or not math.isfinite(xmin) or xmin <= 0:
        return TPLFit(math.nan, math.nan, xmin, False, f"tail of {len(tail)} eigenvalues above xmin={xmin:.6g} is too small")
    sum_log, total = float(np.sum(np.log(tail))), float(np.sum(tail))
    spread = float(np.sum(np.log(tail / tail[0])))
    alpha0 = min(1.0 + len(tail) / spread, ALPHA_MAX - 1.0) if spread > 0 else 2.0
    start = np.array([math.log(alpha0 - 1.0), math.log(1.0 / float(np.mean(tail)))])

    def objective(params: np.ndarray) -> float:
        alpha = 1.0 + math.exp(min(params[0], math.log(ALPHA_MAX)))
        return negative_log_likelihood(alpha, math.exp(params[1]), tail, sum_log, total)

    from scipy import optimize  # scipy's submodules load on use: they cost most of a cold start

    with np.errstate(all="ignore"):
        result = optimize.minimize(objective, start, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 2000})
    if not np.isfinite(result.fun):
        return TPLFit(math.nan, math.nan, xmin, False, "truncated power-law likelihood is not finite")
    alpha = 1.0 + math.exp(min(result.x[0], math.log(ALPHA_MAX)))
    return TPLFit(alpha, math.exp(result.x[1]), float(tail[0]))
