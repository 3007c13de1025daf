"""Marchenko–Pastur bulk fit of an ESD: sigma_mp, bulk edges, spikes and mp_softrank.

Same procedure as the reference: rescale the ESD to mean 1, estimate its density with a
linear (triangular) kernel of bandwidth 0.1, and grid-search sigma (then polish with
Nelder–Mead) to minimize the squared gap between that density and the MP law.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

BANDWIDTH = 0.1
GRID_POINTS = 1000
#: Density below this is left out of the residual (counted as zero residual).
DENSITY_FLOOR = 0.01
PENALTY = 1000.0


@dataclass(frozen=True)
class MPFit:
    """MP fit of one ESD; bulk edges are in the ESD's own (unrescaled) units."""

    sigma_mp: float
    num_spikes: int
    mp_softrank: float
    bulk_min: float
    bulk_max: float
    W_scale: float

    def columns(self, prefix: str = "") -> dict[str, float | int]:
        """Row columns, e.g. ``sigma_mp`` or with ``prefix="rand_"`` ``rand_sigma_mp``."""
        return {
            f"{prefix}num_spikes": self.num_spikes,
            f"{prefix}sigma_mp": self.sigma_mp,
            f"{prefix}mp_softrank": self.mp_softrank,
            f"{prefix}W_scale": self.W_scale,
            f"{prefix}bulk_max": self.bulk_max,
            f"{prefix}bulk_min": self.bulk_min,
        }


FAILED_MP = MPFit(math.nan, -1, math.nan, math.nan, math.nan, math.nan)


def linear_kde(samples: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """Triangular-kernel density (1/nh) Σ max(0, 1 − |x − xᵢ|/h) at each grid point, in O((n+g) log n)."""
    xs = np.sort(np.asarray(samples, dtype=np.float64))
    prefix = np.concatenate([[0.0], np.cumsum(xs)])
    lo = np.searchsorted(xs, grid - bandwidth, side="right")
    mid = np.searchsorted(xs, grid, side="right")
    hi = np.searchsorted(xs, grid + bandwidth, side="left")
    left_n, right_n = mid - lo, hi - mid
    left_sum, right_sum = prefix[mid] - prefix[lo], prefix[hi] - prefix[mid]
    total = (left_n - (left_n * grid - left_sum) / bandwidth) + (right_n - (right_sum - right_n * grid) / bandwidth)
    return np.asarray(total / (len(xs) * bandwidth))


def mp_density(x: np.ndarray, Q: float, sigma: float) -> tuple[np.ndarray, float, float]:
    """MP density of WᵀW/N-scaled eigenvalues with aspect ratio Q, and its edges (a, b)."""
    b = (sigma * (1 + math.sqrt(1 / Q))) ** 2
    a = (sigma * (1 - math.sqrt(1 / Q))) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        val = np.nan_to_num((1 / (2 * np.pi * sigma * sigma * x / Q)) * np.sqrt((b - x) * (x - a)))
    return val, a, b


def quarter_circle_density(x: np.ndarray, sigma: float) -> np.ndarray:
    """Quarter-circle density of singular values (square W), as the reference writes it."""
    with np.errstate(invalid="ignore"):
        return np.asarray(np.nan_to_num((1 / (np.pi * sigma * sigma)) * np.sqrt(4 - x**2)))


def _density(to_fit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grid points where the kernel density exceeds the floor, and the density there."""
    grid = np.linspace(0, np.max(to_fit) + 0.5, GRID_POINTS)
    dens = linear_kde(to_fit, grid, BANDWIDTH)
    good = dens > DENSITY_FLOOR
    return grid[good], dens[good]


def _squared_residual(sigma: float, xde: np.ndarray, yde: np.ndarray, Q: float) -> float:
    sigma = float(np.ravel(sigma)[0])
    if Q == 1:
        return float(np.sum((quarter_circle_density(xde, sigma) - yde) ** 2))
    ymp, a, b = mp_density(xde, Q, sigma)
    peak_x = xde[np.argmax(yde)]
    if b < peak_x or b > np.max(xde) or a > peak_x:
        return float(PENALTY**2 * len(yde))
    return float(np.sum((ymp - yde) ** 2))


def fit_sigma(evals: np.ndarray, Q: float) -> float:
    """Best MP sigma for mean-1 eigenvalues: brute-force grid over [0.05, 2)·σ₀, Nelder–Mead polish."""
    scale = math.sqrt(np.max(evals) / (1 + 1 / math.sqrt(Q)) ** 2)
    to_fit = np.sqrt(evals) if Q == 1 else evals
    xde, yde = _density(to_fit)
    if len(yde) == 0:
        raise ValueError("density estimate is empty")
    grid = (slice(0.05 * scale, 2.0 * scale, 0.01 * scale),)
    from scipy import optimize  # scipy's submodules load on use: they cost most of a cold start

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        best = optimize.brute(_squared_residual, grid, args=(xde, yde, Q), full_output=True)
    return float(np.ravel(best[0])[0])


def mp_fit(evals: np.ndarray, N: int, M: int) -> MPFit:
    """Fit the MP bulk of an ESD of an N×M matrix (Q = N/M); NaNs when the fit cannot be made."""
    values = np.asarray(evals, dtype=np.float64)
    if len(values) == 0 or M == 0 or not np.all(np.isfinite(values)) or np.sum(values) <= 0:
        return FAILED_MP
    Q = N / M
    w_scale = math.sqrt(len(values)) / math.sqrt(float(np.sum(values)))
    scaled = w_scale * w_scale * values
    try:
        sigma = fit_sigma(scaled, Q)
    except (ValueError, FloatingPointError):
        return FAILED_MP
    bulk_max = (sigma * (1 + 1 / math.sqrt(Q))) ** 2
    bulk_min = (sigma * (1 - 1 / math.sqrt(Q))) ** 2
    tracy_widom = 1 / math.sqrt(Q) * bulk_max ** (2 / 3) * M ** (-2 / 3)
    num_spikes = int(np.count_nonzero(scaled > bulk_max + math.sqrt(tracy_widom)))
    return MPFit(
        sigma_mp=sigma,
        num_spikes=num_spikes,
        mp_softrank=bulk_max / float(np.max(scaled)),
        bulk_min=bulk_min / (w_scale * w_scale),
        bulk_max=bulk_max / (w_scale * w_scale),
        W_scale=w_scale,
    )
