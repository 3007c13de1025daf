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


#: Row columns holding text (``base_row``'s and the verdict's); every other column holds a number. Stored as JSON
#: (the cache, a monitor log), a number column holds null for NaN and "Infinity"/"-Infinity" for ±inf
#: (``export.json_safe``). A new text column must be named here, or restored rows holding it are refused.
TEXT_COLUMNS = frozenset({"name", "layer_type", "longname", "framework_type", "warning", "status", "error"})
_INFINITIES = {"Infinity": math.inf, "-Infinity": -math.inf}


def is_stored_number(value: Any) -> bool:
    """Whether a stored value can be a number column's: an int or float (never a bool), null, or "Infinity"."""
    return value is None or type(value) in (int, float) or (isinstance(value, str) and value in _INFINITIES)


def stored_row_problem(row: dict[str, Any]) -> str | None:
    """Which column of a stored row has the wrong type (text columns text, the others numbers), or None."""
    for column, value in row.items():
        if column in TEXT_COLUMNS and not isinstance(value, str):
            return f"{column} is {type(value).__name__}, not text"
        if column not in TEXT_COLUMNS and not is_stored_number(value):
            return f"{column} is {type(value).__name__}, not a number"
    return None


def decoded_row(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as analyze() made it: null back to NaN (JSON has no NaN), "Infinity" back to inf."""
    return {
        column: value if column in TEXT_COLUMNS else math.nan if value is None else _INFINITIES.get(value, value)
        for column, value in row.items()
    }
