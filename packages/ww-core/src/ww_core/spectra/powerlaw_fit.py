"""Continuous Clauset–Shalizi–Newman power-law fit of an ESD tail, vectorized over every xmin.

Matches ``powerlaw.Fit(data)`` (powerlaw 1.5) on tie-free data and the reference tool's own
fit (weightwatcher 0.7.7, including its small-n path) everywhere: see docs/metrics.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ww_core.spectra.constants import EVALS_THRESH

#: Below this many points the bias-corrected small-n fit is used.
SMALL_N = 20
#: Smallest tail the small-n fit considers.
SMALL_N_MIN_TAIL = 8
#: Candidates scanned per block: bounds the scan's memory to BLOCK·n float64s.
BLOCK = 256
#: Candidates whose exact D is computed together, in order of their lower bounds.
EXACT_CHUNK = 64


@dataclass(frozen=True)
class PowerLawFit:
    """Result of one fit; a failed fit has NaN numbers, ``status`` "failed" and a ``reason``."""

    alpha: float
    xmin: float
    xmax: float
    D: float
    sigma: float
    num_pl_spikes: int
    status: str = "success"
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "success"


def failed_fit(reason: str, xmax: float = math.nan) -> PowerLawFit:
    """A fit that could not be made, with its reason."""
    return PowerLawFit(math.nan, math.nan, xmax, math.nan, math.nan, 0, "failed", reason)


def _tail_sums(logs: np.ndarray) -> np.ndarray:
    """S_i = Σ_{j≥i} ln x_j − n_i ln x_i for every i but the last (the MLE denominators)."""
    n = len(logs)
    suffix = np.cumsum(logs[::-1])[::-1]
    counts = n - np.arange(n)
    return (suffix - counts * logs)[:-1]


def ks_distances(data: np.ndarray, alphas: np.ndarray, rows: np.ndarray, stride: int = 1) -> np.ndarray:
    """D_i = max_j |1 − (x_j/x_i)^(1−α_i) − j/n_i| over the tail x_i.. of each candidate i in ``rows``.

    With ``stride`` > 1 only every stride-th data point (and the last) enters the max, giving a
    cheap lower bound on D_i. Vectorized in blocks of candidates: O(BLOCK·n) memory.
    """
    n = len(data)
    logs = np.log(data)
    cols_all = np.unique(np.concatenate([np.arange(0, n, stride), [n - 1]]))
    out = np.empty(len(rows))
    for start in range(0, len(rows), BLOCK):
        block = rows[start : start + BLOCK]
        cols = cols_all[cols_all >= block.min()]
        offset = cols[None, :] - block[:, None]  # j, the position within the tail
        tail_n = (n - block)[:, None].astype(np.float64)
        log_ratio = logs[None, cols] - logs[block, None]
        with np.errstate(invalid="ignore", over="ignore"):
            theory = np.where(log_ratio == 0.0, 1.0, np.exp((1.0 - alphas[block, None]) * log_ratio))
        gap = np.abs(1.0 - theory - offset / tail_n)
        gap[offset < 0] = 0.0
        out[start : start + len(block)] = gap.max(axis=1)
    return out


def best_candidate(data: np.ndarray, alphas: np.ndarray, candidates: np.ndarray) -> tuple[int, float]:
    """First candidate (data index) with the smallest exact D, and that D; (−1, nan) if none is valid.

    Exact D is only computed where a strided lower bound does not already exceed the best D
    found so far (candidates taken in order of their bound), so most of the O(n²) scan is skipped
    while the answer stays that of the full scan.
    """
    candidates = candidates[alphas[candidates] > 1.0]
    if len(candidates) == 0:
        return -1, math.nan
    stride = max(1, math.isqrt(len(data)))
    bounds = ks_distances(data, alphas, candidates, stride) if stride > 1 else np.zeros(len(candidates))
    order = np.argsort(bounds, kind="stable")
    best_i, best_D = -1, math.inf
    for start in range(0, len(order), EXACT_CHUNK):
        chunk = order[start : start + EXACT_CHUNK]
        chunk = chunk[bounds[chunk] <= best_D]
        if len(chunk) == 0:
            break
        rows = np.sort(candidates[chunk])
        exact = ks_distances(data, alphas, rows)
        k = int(np.argmin(exact))
        if exact[k] < best_D or (exact[k] == best_D and rows[k] < best_i):
            best_i, best_D = int(rows[k]), float(exact[k])
    return best_i, best_D


def _alphas(data: np.ndarray) -> np.ndarray:
    """MLE alpha = 1 + n_i / S_i for every candidate xmin = data[i], i < n−1."""
    n = len(data)
    tail_n = (n - np.arange(n - 1)).astype(np.float64)
    with np.errstate(divide="ignore"):
        return np.asarray(1.0 + tail_n / _tail_sums(np.log(data)))


def _result(data: np.ndarray, i: int, alpha: float, D: float, all_evals_above: int) -> PowerLawFit:
    n_tail = len(data) - i
    if not (math.isfinite(alpha) and alpha > 1.0 and math.isfinite(D)):
        return failed_fit(f"degenerate tail at xmin={data[i]:.6g} (alpha={alpha})", float(data[-1]))
    return PowerLawFit(
        alpha=float(alpha),
        xmin=float(data[i]),
        xmax=float(data[-1]),
        D=float(D),
        sigma=float((alpha - 1.0) / math.sqrt(n_tail)),
        num_pl_spikes=all_evals_above,
    )


def _small_n(data: np.ndarray) -> tuple[int, float, float]:
    """The reference's small-n choice: bias-corrected alpha 1 + (n−1)/S over tails of ≥ 8, argmin of D.

    (The reference computes an objective D − 0.868/√n but then selects by D alone; we match that.)
    """
    n = len(data)
    if n < 2:
        return 0, math.nan, math.nan
    sums = _tail_sums(np.log(data))
    tail_n = (n - np.arange(n - 1)).astype(np.float64)
    usable = (tail_n >= SMALL_N_MIN_TAIL) & (sums > 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        alphas = np.where(usable, 1.0 + (tail_n - 1.0) / sums, 0.0)
    usable &= alphas > 1.0
    if not usable.any():  # no tail of 8: the whole sample is the tail
        total = float(sums[0]) if len(sums) else 0.0
        if total <= 1e-12:
            return 0, math.nan, math.nan
        alpha = 1.0 + (n - 1.0) / total
        D = ks_distances(data, np.array([alpha]), np.array([0]))[0]
        return 0, alpha, float(D)
    best, D = best_candidate(data, np.where(usable, alphas, 0.0), np.arange(n - 1))
    return best, float(alphas[best]), D


def _nearest_index(data: np.ndarray, value: float) -> int:
    return int(np.argmin(np.abs(data - value)))


def fit_power_law(
    evals: np.ndarray,
    *,
    xmin: float | tuple[float, float] | None = None,
    thresh: float = EVALS_THRESH,
) -> PowerLawFit:
    """Fit a continuous power law to the tail of ``evals`` (λ > ``thresh`` kept).

    ``xmin`` None searches every data point but the largest for the KS-minimizing xmin;
    a float fixes xmin (nearest data point); a (low, high) pair searches only candidates in
    that range. ``num_pl_spikes`` counts eigenvalues ≥ xmin among all kept ones.
    """
    values = np.asarray(evals, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)):
        return failed_fit("eigenvalues contain NaN or Inf")
    data = np.sort(values[values > thresh])
    if len(data) < 2:
        return failed_fit(f"only {len(data)} eigenvalues above {thresh:g}; need at least 2")
    if isinstance(xmin, (int, float)) and not isinstance(xmin, bool):
        return _fixed_xmin_fit(data, _nearest_index(data, float(xmin)))
    if isinstance(xmin, tuple):
        lo, hi = min(xmin), max(xmin)
        inside = np.nonzero((data >= lo) & (data <= hi))[0]
        if len(inside) == 0:
            return failed_fit(f"no eigenvalue in the xmin range [{lo:.6g}, {hi:.6g}]", float(data[-1]))
        low, high = int(inside[0]), int(inside[-1])
        return _range_fit(data, low, high)
    if len(data) < SMALL_N:
        best, alpha, D = _small_n(data)
        return _result(data, best, alpha, D, len(data) - best)
    alphas = _alphas(data)
    best, D = best_candidate(data, alphas, np.arange(len(data) - 1))
    if best < 0:
        return failed_fit("no candidate xmin gives alpha > 1", float(data[-1]))
    return _result(data, best, float(alphas[best]), D, len(data) - best)


def xmin_scan(evals: np.ndarray, thresh: float = EVALS_THRESH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every candidate xmin of the fit (λ > ``thresh``, all but the largest) with its MLE alpha and KS distance D: the
    curves the reference draws against xmin (its ``esd4``/``esd5`` plots, powerlaw's ``Fit.xmins/alphas/Ds``). O(n²)."""
    values = np.asarray(evals, dtype=np.float64).ravel()
    data = np.sort(values[np.isfinite(values) & (values > thresh)])
    if len(data) < 2:
        return np.empty(0), np.empty(0), np.empty(0)
    alphas = _alphas(data)
    return data[:-1], alphas, ks_distances(data, alphas, np.arange(len(data) - 1))


def _fixed_xmin_fit(data: np.ndarray, i: int) -> PowerLawFit:
    """MLE alpha and KS distance at the given xmin index."""
    if i >= len(data) - 1:
        return failed_fit(f"xmin {data[i]:.6g} leaves fewer than 2 points in the tail", float(data[-1]))
    tail = data[i:]
    total = float(np.sum(np.log(tail / tail[0])))
    alpha = 1.0 + len(tail) / total if total > 0 else math.inf
    D = ks_distances(tail, np.array([alpha]), np.array([0]))[0] if alpha > 1.0 else math.nan
    return _result(data, i, alpha, float(D), len(tail))


def _range_fit(data: np.ndarray, low: int, high: int) -> PowerLawFit:
    """CSN scan restricted to candidates low..high (never the largest point)."""
    high = min(high, len(data) - 2)
    if high < low:
        return failed_fit("the xmin range holds only the largest eigenvalue", float(data[-1]))
    alphas = _alphas(data)
    best, D = best_candidate(data, alphas, np.arange(low, high + 1))
    if best < 0:
        return failed_fit("no candidate xmin in the range gives alpha > 1", float(data[-1]))
    return _result(data, best, float(alphas[best]), D, len(data) - best)
