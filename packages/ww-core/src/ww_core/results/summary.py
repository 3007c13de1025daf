"""Model-level summary: means of the per-layer metrics over analyzed rows (docs/metrics.md), with robust medians beside them."""

from __future__ import annotations

import math
import statistics
from typing import Any, Iterable, Mapping

from ww_core.spectra.metrics import DEGENERATE_WARNING

SUMMARY_METRICS = ("log_norm", "alpha", "alpha_weighted", "log_alpha_norm", "log_spectral_norm", "stable_rank", "mp_softrank")
#: Metrics also summarized by their median (``<metric>_median``): one degenerate layer cannot move it.
MEDIAN_METRICS = ("alpha", "alpha_weighted")


def _finite(rows: list[Mapping[str, Any]], metric: str) -> list[float] | None:
    """The metric's finite values over ``rows``; None when no row has the metric."""
    values = [float(row[metric]) for row in rows if metric in row and row[metric] is not None]
    return [v for v in values if math.isfinite(v)] if values else None


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Mean of each summary metric over successful rows (the reference's summary), medians of alpha and
    alpha_weighted, and ``num_degenerate`` (rows warned ``degenerate-spectrum``); metrics no row has are left out.

    Failed rows (NaN alpha) are excluded entirely, unlike the reference which averages alpha = -1.
    """
    analyzed = [row for row in rows if row.get("status") == "success"]
    summary: dict[str, float] = {}
    for metric in SUMMARY_METRICS:
        finite = _finite(analyzed, metric)
        if finite is not None:
            summary[metric] = sum(finite) / len(finite) if finite else math.nan
    for metric in MEDIAN_METRICS:
        finite = _finite(analyzed, metric)
        if finite is not None:
            summary[f"{metric}_median"] = statistics.median(finite) if finite else math.nan
    if "alpha" in summary:
        summary["num_degenerate"] = sum(1 for row in analyzed if row.get("warning") == DEGENERATE_WARNING)
    return summary


def summary_lines(summary: Mapping[str, float]) -> list[str]:
    """The summary as aligned ``name = value`` lines for terminals; counts (``num_*``) as integers."""
    width = max((len(key) for key in summary), default=0)
    return [f"  {key:>{width}} = {int(value) if key.startswith('num_') else f'{value:.4f}'}" for key, value in summary.items()]
