"""fix_fingers: power-law fits that discount "fingers" (a few outlying top eigenvalues)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ww_core.spectra.constants import ALPHA_LOW, DEFAULT_MAX_FINGERS
from ww_core.spectra.powerlaw_fit import EVALS_THRESH, PowerLawFit, fit_power_law

#: Histogram bins of log10 λ used to find the ESD peak for xmin_peak.
PEAK_BINS = 100


@dataclass(frozen=True)
class FingerFit:
    """The accepted fit, the number of top eigenvalues it discounts, and the unclipped fit."""

    fit: PowerLawFit
    num_fingers: int
    raw: PowerLawFit


def clip_xmax(evals: np.ndarray, *, max_fingers: int = DEFAULT_MAX_FINGERS, finger_thresh: float = 1.0) -> FingerFit:
    """Refit without the top k = 2..max_fingers−1 eigenvalues; accept the first fit whose alpha
    is more than ``finger_thresh`` below the unclipped one, stop when alpha ≤ 2.

    As in the reference, ``num_fingers`` is reported as k − 1, and ``max_fingers`` is reset to
    10 unless it is at least half the number of eigenvalues.
    """
    data = np.sort(np.asarray(evals, dtype=np.float64))
    data = data[data > EVALS_THRESH]
    if max_fingers < 0.5 * len(evals):
        max_fingers = DEFAULT_MAX_FINGERS
    raw = fit_power_law(data)
    if not raw.ok:
        return FingerFit(raw, 0, raw)
    for k in range(2, max_fingers):
        fit = fit_power_law(data[:-k])
        if not fit.ok:
            break
        if fit.alpha + finger_thresh < raw.alpha:
            return FingerFit(fit, k - 1, raw)
        if fit.alpha <= ALPHA_LOW:  # clip_xmax stops once alpha falls into over-trained
            break
    return FingerFit(raw, 0, raw)


def esd_peak(evals: np.ndarray) -> float:
    """Left edge of the fullest bin of a 100-bin histogram of log10 λ (λ > 1e-5)."""
    data = np.asarray(evals, dtype=np.float64)
    data = data[data > EVALS_THRESH]
    counts, edges = np.histogram(np.log10(data), bins=PEAK_BINS)
    return float(10 ** edges[int(np.argmax(counts))])


def xmin_peak(evals: np.ndarray, *, xmin_max: float | None = None) -> PowerLawFit:
    """CSN fit with xmin searched only in [0.95·peak, xmin_max] (default 1.5·peak), peak = ESD mode.

    ``xmin_max`` is never exceeded: below 0.95·peak, every eigenvalue up to it is a candidate.
    """
    peak = esd_peak(evals)
    high = 1.5 * peak if xmin_max is None else xmin_max
    return fit_power_law(evals, xmin=(0.95 * peak if high >= 0.95 * peak else 0.0, high))
