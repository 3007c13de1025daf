"""Model-level summary: means of the per-layer metrics over analyzed rows (docs/metrics.md)."""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

SUMMARY_METRICS = ("log_norm", "alpha", "alpha_weighted", "log_alpha_norm", "log_spectral_norm", "stable_rank", "mp_softrank")


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Mean of each summary metric over successful rows; metrics no row has are left out.

    Failed rows (NaN alpha) are excluded entirely, unlike the reference which averages alpha = -1.
    """
    analyzed = [row for row in rows if row.get("status") == "success"]
    summary: dict[str, float] = {}
    for metric in SUMMARY_METRICS:
        values = [float(row[metric]) for row in analyzed if metric in row and row[metric] is not None]
        finite = [v for v in values if math.isfinite(v)]
        if values:
            summary[metric] = sum(finite) / len(finite) if finite else math.nan
    return summary
