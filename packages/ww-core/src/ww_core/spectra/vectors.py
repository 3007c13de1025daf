"""vectors: eigenvector localization of the bulk and the tail of an ESD."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ww_core.spectra.constants import EPSILON

#: Histogram bins of the vector entropy, and the reference's probability guard.
ENTROPY_BINS = 100
METRICS = ("vec_entropy", "loc_ratio", "part_ratio")


def discrete_entropy(vec: np.ndarray, bins: int = ENTROPY_BINS) -> float:
    """Entropy of the histogram of |v| − mean|v| (the reference's vector entropy)."""
    centered = np.abs(vec) - np.mean(np.abs(vec))
    density = np.histogram(centered, density=True, bins=bins)[0] + EPSILON
    p = density / np.sqrt(2 * np.pi)
    p = p / np.sum(p)
    return float(-np.sum(p * np.log(p)))


def vector_metrics(V: np.ndarray) -> dict[str, np.ndarray]:
    """Per column of V: vector entropy, localization ratio ‖v‖₁/‖v‖∞, participation ratio ‖v‖₂/‖v‖₄."""
    absV = np.abs(V)
    return {
        "vec_entropy": np.array([discrete_entropy(V[:, k]) for k in range(V.shape[1])]),
        "loc_ratio": absV.sum(axis=0) / absV.max(axis=0),
        "part_ratio": np.sqrt((absV**2).sum(axis=0)) / ((absV**4).sum(axis=0)) ** 0.25,
    }


def vector_columns(matrices: Sequence[np.ndarray], num_tail: int) -> dict[str, Any]:
    """bulk/tail mean and variance of each metric; the tail is the top ``num_tail`` eigenvectors.

    Splitting by rank (the fit's num_pl_spikes) rather than by value keeps xmin's own
    eigenvector in the tail regardless of rounding between two eigen-solvers.
    """
    evals, per_metric = [], {name: [] for name in METRICS}  # type: ignore[var-annotated]
    for W in matrices:
        W = np.asarray(W, dtype=np.float64)
        gram = W @ W.T if W.shape[0] <= W.shape[1] else W.T @ W
        values, V = np.linalg.eigh(gram)
        evals.append(values)
        for name, arr in vector_metrics(V).items():
            per_metric[name].append(arr)
    order = np.argsort(np.concatenate(evals), kind="stable")
    tail = np.zeros(len(order), dtype=bool)
    tail[order[len(order) - max(num_tail, 0) :]] = True
    columns: dict[str, Any] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for name in METRICS:
            data = np.concatenate(per_metric[name])
            for part, mask in (("bulk", ~tail), ("tail", tail)):
                chosen = data[mask]
                columns[f"{part}_mean_{name}"] = float(np.mean(chosen)) if len(chosen) else float("nan")
                columns[f"{part}_var_{name}"] = float(np.var(chosen)) if len(chosen) else float("nan")
    return columns
