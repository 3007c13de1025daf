"""The parts of a result row every stage shares: shape columns and the failed row."""

from __future__ import annotations

import math
from typing import Any

from ww_core.platform.protocol import LayerMatrix
from ww_core.results.options import AnalysisOptions
from ww_core.spectra.shapes import matrix_dims


def describe_layer(layer: LayerMatrix) -> str:
    """``layer 'name' (id 3) in file`` — how errors name a layer."""
    where = f" in {layer.origin}" if layer.origin else ""
    return f"layer {layer.name!r} (id {layer.index}){where}"


def base_row(layer: LayerMatrix, options: AnalysisOptions) -> dict[str, Any]:
    """The columns every row has, known from the layer's shape alone."""
    dims = matrix_dims(layer.shape)
    return {
        "layer_id": layer.index,
        "name": layer.name,
        "layer_type": layer.kind,
        "N": dims.N,
        "M": dims.M,
        "Q": dims.Q,
        "rf": dims.rf,
        "num_evals": dims.num_evals(options.pool),
        "longname": layer.framework_path or layer.name,
        "framework_type": layer.framework_type,
    }


def failed_row(layer: LayerMatrix, options: AnalysisOptions, reason: str) -> dict[str, Any]:
    """A row for a layer whose loading or analysis failed: metrics NaN, ``error`` naming the layer."""
    named = reason if repr(layer.name) in reason else f"{describe_layer(layer)}: {reason}"
    return {**base_row(layer, options), "alpha": math.nan, "warning": "", "status": "failed", "error": named}


def esd_key(row: dict[str, Any]) -> str:
    """Where ``Results.esds`` keeps a row's eigenvalues: its name, plus ``[slice]`` for an unpooled conv slice."""
    if "slice_id" in row and row.get("rf", 1) > 1:
        return f"{row['name']}[{row['slice_id']}]"
    return str(row["name"])
