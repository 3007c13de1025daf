"""A layer's ESD as a compact log-binned histogram: what the report draws, and what a results cache keeps instead of eigenvalues."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ww_core.spectra.constants import EVALS_THRESH

#: Eigenvalues at or below this are left out of the histogram, as they are left out of the fit.
EVAL_FLOOR = EVALS_THRESH
MIN_BINS, MAX_BINS = 10, 60


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (a row's ``xmin`` may be NaN or missing), else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def esd_histogram(evals: np.ndarray, xmin: float | None) -> dict[str, Any] | None:
    """``lo``/``hi`` (bin range), ``c`` (counts of log-spaced bins), ``n`` (eigenvalues) and ``tail`` (those >= ``xmin``).

    None when no eigenvalue is positive.
    """
    values = np.asarray(evals, dtype=np.float64)
    positive = np.sort(values[np.isfinite(values) & (values > EVAL_FLOOR)])
    if positive.size == 0:
        return None
    low, high = float(positive[0]), float(positive[-1])
    if high <= low:
        low, high = low * 0.9, high * 1.1
    high *= 1 + 1e-9
    bins = int(min(MAX_BINS, max(MIN_BINS, positive.size // 4)))
    counts, _ = np.histogram(positive, bins=np.geomspace(low, high, bins + 1))
    tail = int(np.count_nonzero(positive >= xmin)) if xmin is not None else 0
    return {"lo": low, "hi": high, "c": counts.tolist(), "n": int(positive.size), "tail": tail}


def is_histogram(value: Any) -> bool:
    """Whether ``value`` (read back from a results cache) is a histogram ``esd_histogram`` could have made: a finite range
    0 < lo < hi, at most MAX_BINS counts, whole and non-negative, summing to ``n``, and 0 <= ``tail`` <= ``n``."""
    if not isinstance(value, dict) or set(value) != {"lo", "hi", "c", "n", "tail"}:
        return False
    lo, hi, counts, n, tail = (value[k] for k in ("lo", "hi", "c", "n", "tail"))
    whole = all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in (n, tail))
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in (lo, hi))
    if not (whole and numbers and 0 < lo < hi and tail <= n and isinstance(counts, list) and 0 < len(counts) <= MAX_BINS):
        return False
    return all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts) and sum(counts) == n
