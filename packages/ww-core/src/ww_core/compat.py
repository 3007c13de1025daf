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

    def get_Weights(self, model: Any = None, layer: int | str | None = None, params: Any = None) -> list[np.ndarray]:
        """One layer's weight matrices (by layer_id or name), as the reference's ``Wmats``: [W] or the conv slices."""
        from ww_core.reference_distances import weight_matrices

        found = self._layer(model, layer, "get_Weights")
        return weight_matrices(found.weights(), found.kind)

    def get_framework_layer(self, model: Any = None, layer: int | str | None = None, params: Any = None) -> Any:
        """The framework's own module for a layer, for models that can look one up by path (torch ``get_submodule``)."""
        chosen = self._model(model)
        found = self._layer(model, layer, "get_framework_layer")
        lookup = getattr(chosen, "get_submodule", None)
        if not callable(lookup):
            raise TypeError(
                f"get_framework_layer needs a model that looks modules up by path (a torch nn.Module); "
                f"ww reads {type(chosen).__name__} as arrays: use get_Weights(layer={layer!r})"
            )
        path = found.name
        while True:
            try:
                return lookup(path)
            except AttributeError:  # a split row (q/k/v, gates) belongs to its parent module
                if "." not in path:
                    raise KeyError(f"layer {found.name!r} is no module of {type(chosen).__name__}") from None
                path = path.rsplit(".", 1)[0]

    def distances(
        self, model_1: Any, model_2: Any, method: str = "raw", layers: Any = (), start_ids: int = 0, pool: bool = True, channels: Any = None
    ) -> tuple[float, float, Any]:
        """``(avg_dW, avg_db, details)`` as the reference returns them; layers are paired by name.

        ww reads no biases, so ``delta_b`` and ``avg_db`` are NaN (never a made-up 0).
        """
        from ww_core.reference_distances import DISTANCE_METHODS, layer_delta

        method = (method or "raw").lower()
        if method not in DISTANCE_METHODS:
            raise ValueError(f"distances: method must be one of {DISTANCE_METHODS}, got {method!r}")
        if not pool:
            raise ValueError("distances: pool=False (one row per conv slice) is not supported; the conv slices are averaged")
        _warn_ignored("distances", {"start_ids": start_ids, "channels": channels}, {"start_ids": 0, "channels": None})
        from ww_core.export import to_dataframe
        from ww_core.model_distances import matched_layers
        from ww_core.shapes import matrix_dims

        rows = []
        for first, second in matched_layers(model_1, model_2, layers=layers):
            dims = matrix_dims(first.shape)
            delta = layer_delta(first.weights(), second.weights(), first.kind, method)
            rows.append({"method": method, "layer_id": first.index, "name": first.name, "delta_W": delta, "delta_b": np.nan,
                         "M": dims.M, "N": dims.N, "b_shape": "UNKNOWN", "longname": first.name})
        if not rows:
            raise ValueError("distances: the two models share no layer")
        frame = to_dataframe(rows).set_index("layer_id")
        return float(np.mean(frame["delta_W"].to_numpy())), float("nan"), frame

    def SVDSmoothing(
        self, model: Any = None, percent: float = 0.8, pool: bool = True, layers: Any = (), method: str = "detX",
        fit: str = "PL", plot: bool = False, start_ids: int = 0, svd_method: str = "fast",
    ) -> Any:
        """Keep each layer's top singular components (see ``ww_core.smoothing``); returns the updated model."""
        from ww_core.smoothing import svd_smoothing

        if svd_method not in ("fast", "accurate"):
            raise ValueError(f"SVDSmoothing: svd_method must be 'fast' or 'accurate', got {svd_method!r} (ww always uses an exact SVD)")
        _warn_ignored("SVDSmoothing", {"plot": plot, "start_ids": start_ids}, {"plot": False, "start_ids": 0})
        updated = svd_smoothing(self._model(model), percent=percent, method=method, pool=pool, layers=_as_filters(layers), fit=fit)
        self.model = updated
        return updated

    def SVDSharpness(self, model: Any = None, pool: bool = True, layers: Any = (), plot: bool = False, start_ids: int = 0) -> Any:
        """Zero each layer's top singular components, as many as its correlation traps; returns the updated model."""
        from ww_core.smoothing import svd_sharpness

        _warn_ignored("SVDSharpness", {"plot": plot, "start_ids": start_ids}, {"plot": False, "start_ids": 0})
        updated = svd_sharpness(self._model(model), pool=pool, layers=_as_filters(layers))
        self.model = updated
        return updated

    def _layer(self, model: Any, layer: int | str | None, caller: str) -> Any:
        if layer is None:
            raise ValueError(f"{caller} needs layer= (a layer_id or a name)")
        from ww_core.plugins import collect_layers

        chosen = self._model(model)
        for candidate in collect_layers(chosen):
            if candidate.index == layer or candidate.name == layer:
                return candidate
        raise KeyError(f"{caller}: no layer {layer!r}")

    def _last(self) -> Results:
        if self.results is None:
            raise RuntimeError("call analyze() first")
        return self.results


def _as_filters(layers: Any) -> tuple[Any, ...]:
    return (layers,) if isinstance(layers, (int, str)) else tuple(layers or ())


def _warn_ignored(caller: str, given: dict[str, Any], defaults: dict[str, Any]) -> None:
    """A warning for each reference keyword given a non-default value that changes nothing in ww."""
    for key, value in given.items():
        if value != defaults[key]:
            warnings.warn(f"WeightWatcher.{caller}: option {key}={value!r} has no effect in ww", stacklevel=3)
