"""Truncated power law p(x) ∝ x^−α e^−λx on x ≥ xmin, fitted by maximum likelihood with scipy.

Replaces the reference's dependency on the ``powerlaw`` package (broken in powerlaw 2). As in
powerlaw 1.5, alpha is sought above 1. When the likelihood is largest at that bound, the tail
falls off exponentially and there is no exponent to report: the fit fails instead of giving 1.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALPHA_MAX = 50.0
#: A fitted alpha this close to 1 sits on the bound of the search: refused as no power law.
ALPHA_BOUND_GAP = 1e-3
#: Gauss–Legendre nodes per gap between neighbouring tail points, for the fitted CDF.
QUADRATURE_NODES = 16


@dataclass(frozen=True)
class TPLFit:
    """Exponent alpha and cutoff rate Lambda of the tail; NaN and a reason when the fit fails."""

    alpha: float
    Lambda: float
    xmin: float
    D: float = math.nan
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


def ks_distance(alpha: float, rate: float, tail: np.ndarray) -> float:
    """KS distance between the sorted ``tail`` and the TPL fitted on it (xmin = tail[0]), as powerlaw's ``D``.

    The survival function is integrated in u = ln x between neighbouring points (Gauss–Legendre),
    plus the exact remainder beyond the largest one, all relative to the density at xmin.
    """
    xmin = float(tail[0])
    logs = np.log(tail)
    nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
    lo, hi = logs[:-1, None], logs[1:, None]
    u = 0.5 * (hi - lo) * nodes[None, :] + 0.5 * (hi + lo)
    with np.errstate(over="ignore", under="ignore"):
        density = np.exp((1.0 - alpha) * (u - logs[0]) - rate * (np.exp(u) - xmin))
    gaps = 0.5 * (hi[:, 0] - lo[:, 0]) * (density @ weights)
    beyond = math.exp(log_normalizer(alpha, rate, float(tail[-1])) - (1.0 - alpha) * logs[0] + rate * xmin)
    above = np.append(np.cumsum(gaps[::-1])[::-1], 0.0) + beyond
    cdf = 1.0 - above / above[0]
    n = len(tail)
    return float(np.max(np.abs(cdf - np.arange(n) / n)))


def fit_truncated_power_law(evals: np.ndarray, *, xmin: float) -> TPLFit:
    """MLE of (alpha, Lambda) over eigenvalues ≥ xmin, starting from the power-law MLE and 1/mean."""
    data = np.asarray(evals, dtype=np.float64)
    tail = np.sort(data[data >= xmin])
    if len(tail) < 3 or not math.isfinite(xmin) or xmin <= 0:
        return TPLFit(math.nan, math.nan, xmin, ok=False, reason=f"tail of {len(tail)} eigenvalues above xmin={xmin:.6g} is too small")
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
        return TPLFit(math.nan, math.nan, xmin, ok=False, reason="truncated power-law likelihood is not finite")
    alpha, rate = 1.0 + math.exp(min(result.x[0], math.log(ALPHA_MAX))), math.exp(result.x[1])
    if alpha - 1.0 < ALPHA_BOUND_GAP:
        reason = (
            f"truncated power law: the likelihood is largest at the bound alpha → 1 (Lambda={rate:.4g}); "
            "the tail falls off exponentially, so there is no power-law exponent to report"
        )
        return TPLFit(math.nan, rate, float(tail[0]), ok=False, reason=reason)
    return TPLFit(alpha, rate, float(tail[0]), D=ks_distance(alpha, rate, tail))
