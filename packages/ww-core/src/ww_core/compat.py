"""A drop-in for the reference's ``WeightWatcher`` class, so existing code ports by changing the import."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ww_core.analysis import analyze, describe, get_esd
from ww_core.results import Results

#: Reference keywords that change nothing here (its internal SVD choices, plotting paths).
IGNORED_KEYWORDS = frozenset(
    {
        "glorot_fix",
        "sparsify",
        "svd_method",
        "stacked",
        "channels",
        "tolerance",
        "savedir",
        "smooth",
        "start_ids",
        "min_size",
        "max_size",
        "mp_norm",
    }
)


class WeightWatcher:
    """``WeightWatcher(model).analyze()`` returning a pandas DataFrame, as in weightwatcher 0.7.7."""

    def __init__(self, model: Any = None, log_level: Any = None) -> None:
        self.model = model
        self.results: Results | None = None

    def _model(self, model: Any) -> Any:
        chosen = model if model is not None else self.model
        if chosen is None:
            raise ValueError("no model given: pass one to WeightWatcher(model) or to this method")
        return chosen

    def analyze(self, model: Any = None, plot: bool = False, savefig: Any = False, base_model: Any = None, **options: Any) -> Any:
        """Analyze the model; returns the details DataFrame (analyzed layers only, like the reference)."""
        for key in sorted(IGNORED_KEYWORDS & options.keys()):
            warnings.warn(f"WeightWatcher.analyze: option {key!r} has no effect in ww", stacklevel=2)
            options.pop(key)
        self.results = analyze(self._model(model), base_model=base_model, **options)
        if plot or savefig:
            from ww_core import plots

            plots.save_all(self.results, savefig if isinstance(savefig, str) else "ww-img")
        return self.results.to_pandas()

    def describe(self, model: Any = None, **options: Any) -> Any:
        """Layers and sizes without computing spectra, as a DataFrame."""
        return describe(self._model(model), **options).to_pandas(include_skipped=True)

    def get_details(self) -> Any:
        """The last analysis's details DataFrame."""
        return self._last().to_pandas()

    def get_summary(self, details: Any = None) -> dict[str, float]:
        """Means of the summary metrics, of the last analysis or of a given details DataFrame."""
        if details is None:
            return self._last().summary
        from ww_core.summary import summarize

        records = details.to_dict("records")
        return summarize([{**row, "status": row.get("status", "success")} for row in records])

    def get_ESD(self, model: Any = None, layer: int | str | None = None, **options: Any) -> np.ndarray:
        """Sorted eigenvalues of one layer (by layer_id or name)."""
        if layer is None:
            raise ValueError("get_ESD needs layer= (a layer_id or a name)")
        return get_esd(self._model(model), layer, **options)

    def _last(self) -> Results:
        if self.results is None:
            raise RuntimeError("call analyze() first")
        return self.results
