"""Which layers get analyzed: user filters first, then the size limits, from shapes alone."""

from __future__ import annotations

import warnings
from typing import Iterable, Sequence

from ww_core.pipeline.peft import is_lora_product
from ww_core.platform.protocol import KIND_NDIM, LayerMatrix, unanalyzable_reason
from ww_core.results.options import AnalysisOptions
from ww_core.spectra.shapes import matrix_dims

#: The reason of a row the ``layers`` filter left out (the terminal shows such rows only with ``-v``).
EXCLUDED = "excluded by layers filter"


def matches_filters(layer: LayerMatrix, filters: Sequence[int | str]) -> bool:
    """Apply ``layers=``: ints select by index (negative ints exclude ``-index``), strings by kind or name substring."""
    if not filters:
        return True
    includes = [f for f in filters if not (isinstance(f, int) and f < 0)]
    excludes = {-f for f in filters if isinstance(f, int) and f < 0}
    if layer.index in excludes:
        return False
    if not includes:
        return True
    for item in includes:
        if isinstance(item, int) and item == layer.index:
            return True
        if isinstance(item, str) and (item == layer.kind if item in KIND_NDIM else item in layer.name):
            return True
    return False


def id_ranges(ids: Iterable[int]) -> str:
    """``0-4, 7, 9-10``: a short list of ids for messages."""
    runs: list[list[int]] = []
    for value in sorted(set(ids)):
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "none"


def warn_unknown_ids(filters: Sequence[int | str], existing: Iterable[int], what: str = "layer ids") -> list[int]:
    """Warn about ``layers=`` ints (or their negation) that select no layer, naming the ids that exist; returns them."""
    known = set(existing)
    unknown = [item for item in filters if isinstance(item, int) and not isinstance(item, bool) and abs(item) not in known]
    if unknown:
        missing = id_ranges(map(abs, unknown))
        warnings.warn(f"layers={list(filters)}: no layer has id {missing}; {what} that exist: {id_ranges(known)}", stacklevel=3)
    return unknown


def skip_reason(layer: LayerMatrix, options: AnalysisOptions) -> str:
    """Why the source (``layer.skip``), the ``layers`` filter, the peft choice or the size limits exclude this layer, or ""."""
    if layer.skip:
        return layer.skip
    if not matches_filters(layer, options.layers):
        return EXCLUDED
    if options.peft is True and not is_lora_product(layer):
        return "not a LoRA update (peft=True analyzes only B·A; peft='with_base' keeps every layer)"
    dims = matrix_dims(layer.shape)
    num_evals = dims.num_evals(options.pool)
    if dims.M == 0:
        return unanalyzable_reason("", layer.shape)
    if num_evals < options.min_evals:
        return f"num_evals={num_evals} < min_evals={options.min_evals}"
    if num_evals > options.max_evals:
        return f"num_evals={num_evals} > max_evals={options.max_evals}"
    if dims.N > options.max_N:
        return f"N={dims.N} > max_N={options.max_N}"
    return ""
