"""detX / ERG: how many top eigenvalues satisfy the det X = 1 (trace-log) condition."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def detx_constraint(evals: np.ndarray) -> tuple[int, int, np.ndarray]:
    """(tail size, index of its first eigenvalue, mean-1 rescaled eigenvalues).

    The tail is the smallest top set x[idx:] whose product, on the mean-1 scale, drops below 1;
    the whole ESD (index 1, as the reference) when none does.
    """
    values = np.sort(np.asarray(evals, dtype=np.float64))
    if len(values) < 2 or not values[0] < values[-1]:
        return 0, 0, values
    scaled = values * (len(values) / np.sum(values))
    with np.errstate(divide="ignore"):
        top_logs = np.cumsum(np.log(scaled)[::-1])[::-1]  # top_logs[i] = Σ_{k≥i} ln x_k
    below = np.nonzero(top_logs[1:] < 0.0)[0]
    if len(below) == 0:
        return len(values), 1, scaled
    idx = int(below[-1]) + 1
    return len(values) - idx, idx, scaled


def detx_columns(evals: np.ndarray, num_pl_spikes: int | None) -> dict[str, Any]:
    """detX_num (= num_ERG_spikes), ERG_gap = detX_num − num_pl_spikes, and the eigenvalue at the cut."""
    num, idx, scaled = detx_constraint(evals)
    values = np.sort(np.asarray(evals, dtype=np.float64))
    return {
        "detX_num": num,
        "num_ERG_spikes": num,
        "ERG_gap": num - num_pl_spikes if num_pl_spikes is not None else math.nan,
        "detX_val": float(values[idx]) if len(values) else math.nan,
        "detX_val_unrescaled": float(scaled[idx]) if len(scaled) else math.nan,
    }
