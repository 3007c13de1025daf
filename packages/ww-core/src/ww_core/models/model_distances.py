"""Distances between two models' matching layers (the reference's ``distances()``, 'euclidean' method).

Per layer matched by name: frobenius = ‖W_a − W_b‖_F over the whole canonical tensor (raw
weights, no conv scaling), relative = frobenius / ‖W_a‖_F, and spectral = ‖W_a − W_b‖₂, the
largest singular value of the difference (the largest over a conv's kernel-position slices).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg

from ww_core.pipeline.analysis import source_label
from ww_core.pipeline.plugins import iter_layers
from ww_core.pipeline.selection import matches_filters
from ww_core.platform.protocol import LayerMatrix
from ww_core.results import export
from ww_core.results.options import AnalysisOptions
from ww_core.results.results import format_table

DISTANCE_METRICS = ("frobenius", "relative", "spectral")


def largest_singular_value(matrix: np.ndarray) -> float:
    """σ_max of a 2-D array from the top eigenvalue of its smaller Gram matrix (no full SVD)."""
    gram = matrix.T @ matrix if matrix.shape[0] >= matrix.shape[1] else matrix @ matrix.T
    top = scipy.linalg.eigh(gram, eigvals_only=True, subset_by_index=[gram.shape[0] - 1, gram.shape[0] - 1])
    return math.sqrt(max(float(top[0]), 0.0))


def spectral_norm(delta: np.ndarray) -> float:
    """Largest singular value of a canonical tensor, the maximum over its (out, in) kernel slices."""
    slices = delta.reshape(delta.shape[0], delta.shape[1], -1)
    return max(largest_singular_value(slices[:, :, k]) for k in range(slices.shape[2]))


def layer_distance(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Frobenius, relative and spectral distance of two same-shape finite tensors."""
    delta = a.astype(np.float64) - b.astype(np.float64)
    frobenius = float(np.linalg.norm(delta.ravel()))
    base = float(np.linalg.norm(a.astype(np.float64).ravel()))
    relative = frobenius / base if base > 0 else (0.0 if frobenius == 0 else math.inf)
    return {"frobenius": frobenius, "relative": relative, "spectral": spectral_norm(delta) if frobenius > 0 else 0.0}


def _pair_row(layer: LayerMatrix, partner: LayerMatrix | None) -> dict[str, Any]:
    row: dict[str, Any] = {"layer_id": layer.index, "name": layer.name, "layer_type": layer.kind, "shape": "x".join(map(str, layer.shape))}
    if partner is None:
        return {**row, "status": "unmatched", "error": "only in model a"}
    if partner.shape != layer.shape:
        return {**row, "status": "failed", "error": f"shape {layer.shape} in model a but {partner.shape} in model b"}
    try:
        a, b = layer.weights(), partner.weights()
        bad = [label for label, w in (("a", a), ("b", b)) if not np.isfinite(w).all()]
        if bad:
            raise ValueError(f"non-finite weights (NaN or Inf) in model {' and '.join(bad)}")
        return {**row, **layer_distance(a, b), "status": "success"}
    except Exception as exc:  # one unreadable layer must not lose the others
        return {**row, "status": "failed", "error": str(exc)}


@dataclass
class Distances:
    """One row per layer of model a (plus rows for layers only in b) and the means over matched layers."""

    source_a: str
    source_b: str
    details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, float]:
        """Means of each distance over layers compared successfully (``frobenius`` is the reference's avg delta W)."""
        done = [row for row in self.details if row["status"] == "success"]
        return {metric: float(np.mean([row[metric] for row in done])) if done else math.nan for metric in DISTANCE_METRICS}

    def to_pandas(self) -> Any:
        """The rows as a pandas DataFrame."""
        return export.to_dataframe(self.details)

    def to_csv(self, path: str | Path | None = None) -> str:
        """CSV text of the rows, written to ``path`` when given."""
        text = export.rows_to_csv(self.details)
        if path is not None:
            Path(path).write_text(text)
        return text

    def __str__(self) -> str:
        columns = ("layer_id", "name", "shape", *DISTANCE_METRICS, "status", "error")
        means = "  ".join(f"{k}={v:.4g}" for k, v in self.summary.items())
        return f"{format_table(self.details, columns)}\n\nmean over matched layers: {means}"


def distances(a: Any, b: Any, **options: Any) -> Distances:
    """Distances between the layers of models ``a`` and ``b`` that share a name, one layer pair in memory at a time.

    Accepts what ``analyze`` accepts; ``layers=`` (and adapter options) apply, size limits do not.
    """
    opts = AnalysisOptions.from_kwargs(**options)
    partners = {layer.name: layer for layer in iter_layers(b, opts.adapter_options())}
    result = Distances(source_label(a), source_label(b))
    seen = set()
    for layer in iter_layers(a, opts.adapter_options()):
        if matches_filters(layer, opts.layers):
            seen.add(layer.name)
            result.details.append(_pair_row(layer, partners.get(layer.name)))
    for name, layer in partners.items():
        if name not in seen and matches_filters(layer, opts.layers):
            result.details.append({**_pair_row(layer, None), "error": "only in model b"})
    return result


def matched_layers(a: Any, b: Any, **options: Any) -> list[tuple[LayerMatrix, LayerMatrix]]:
    """The selected layers of ``a`` paired with ``b``'s layer of the same name; ValueError naming any layer without a same-shape partner."""
    opts = AnalysisOptions.from_kwargs(**options)
    partners = {layer.name: layer for layer in iter_layers(b, opts.adapter_options())}
    pairs = []
    for layer in iter_layers(a, opts.adapter_options()):
        if not matches_filters(layer, opts.layers):
            continue
        partner = partners.pop(layer.name, None)
        if partner is None or partner.shape != layer.shape:
            found = "no layer of that name" if partner is None else f"shape {partner.shape}"
            raise ValueError(f"layer {layer.name!r} {layer.shape}: model 2 has {found}")
        pairs.append((layer, partner))
    extra = [name for name, layer in partners.items() if matches_filters(layer, opts.layers)]
    if extra:
        raise ValueError(f"layers only in model 2: {extra}")
    return pairs
