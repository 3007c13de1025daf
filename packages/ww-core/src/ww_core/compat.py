"""A drop-in for the reference's ``WeightWatcher`` class, so existing code ports by changing the import.

Layer ids here are the reference's: ``layers=[...]``, ``get_ESD(layer=...)`` and the ``layer_id``
column use each layer's ``reference_id`` (the framework enumeration weightwatcher 0.7.7 numbers
by), so a ported script picks the same layers. For a source kind the reference does not read
(Flax, ``.npz``, Keras files) ww's own 0..n-1 ids are used.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from ww_core.pipeline.analysis import analyze, describe, get_esd, model_layers
from ww_core.pipeline.selection import id_ranges, skip_reason, warn_unknown_ids
from ww_core.platform.protocol import LayerMatrix
from ww_core.results.options import AnalysisOptions
from ww_core.results.results import Results

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
        "deltas",
        "pl_package",
    }
)

#: Reference keywords refused when set, with the reason.
REFUSED_KEYWORDS = {"fft": "fft=True (the reference's experimental FFT of every matrix) is not supported; conv2d_fft=True is"}


def reference_ids(layers: Sequence[LayerMatrix]) -> dict[int, int | None] | None:
    """ww index → the reference's id of every layer, or None when the reference numbers none of them."""
    ids = {layer.index: layer.reference_id for layer in layers}
    return ids if any(value is not None for value in ids.values()) else None


def translate_filters(filters: Sequence[int | str], ids: dict[int, int | None]) -> list[int | str] | None:
    """``layers=`` with the reference's ids turned into the ww indices to keep; None when no layer is kept.

    As in the reference, non-negative ids keep those layers and negative ids drop theirs; an id
    no layer has is warned about, naming the ids that exist. Kinds and names pass through.
    """
    numbers = [item for item in filters if isinstance(item, int) and not isinstance(item, bool)]
    others = [item for item in filters if not (isinstance(item, int) and not isinstance(item, bool))]
    if not numbers:
        return list(filters)
    warn_unknown_ids(numbers, (value for value in ids.values() if value is not None), what="weightwatcher layer ids")
    if min(numbers) >= 0:
        kept = [index for index, value in ids.items() if value in numbers]
    else:
        dropped = {-item for item in numbers}
        kept = [index for index, value in ids.items() if value not in dropped]
    return [*kept, *others] if kept else None


class WeightWatcher:
    """``WeightWatcher(model).analyze()`` returning a pandas DataFrame, as in weightwatcher 0.7.7."""

    def __init__(self, model: Any = None, log_level: Any = None) -> None:
        self.model = model
        self.results: Results | None = None
        self._ids: dict[int, int | None] | None = None

    def _model(self, model: Any) -> Any:
        chosen = model if model is not None else self.model
        if chosen is None:
            raise ValueError("no model given: pass one to WeightWatcher(model) or to this method")
        return chosen

    def _selection(self, source: Any, options: dict[str, Any]) -> bool:
        """Learn the source's reference ids and rewrite ``options['layers']`` to ww indices; False when nothing is selected."""
        opts = AnalysisOptions.from_kwargs(**options)
        self._ids = reference_ids(model_layers(source, opts.with_(layers=())).layers)
        if self._ids is None or not opts.layers:
            return True
        translated = translate_filters(list(opts.layers), self._ids)
        if translated is None:
            return False
        options["layers"] = translated
        return True

    def _frame(self, results: Results, include_skipped: bool = False) -> Any:
        """The results as a DataFrame whose ``layer_id`` column holds the reference's ids (pandas ``<NA>`` where it has none)."""
        frame = results.to_pandas(include_skipped=include_skipped)
        if self._ids is not None and "layer_id" in frame.columns:
            import pandas as pd

            frame["layer_id"] = pd.array([self._ids.get(int(index)) for index in frame["layer_id"]], dtype="Int64")
        return frame

    def analyze(self, model: Any = None, plot: bool = False, savefig: Any = False, base_model: Any = None, **options: Any) -> Any:
        """Analyze the model; returns the details DataFrame (analyzed layers only, like the reference)."""
        for key in sorted(IGNORED_KEYWORDS & options.keys()):
            warnings.warn(f"WeightWatcher.analyze: option {key!r} has no effect in ww", stacklevel=2)
            options.pop(key)
        for key, reason in REFUSED_KEYWORDS.items():
            if options.pop(key, False):
                raise ValueError(f"WeightWatcher.analyze: {reason}")
        if options.pop("ERG", False):  # the reference's alias of detX
            options["detX"] = True
        source = self._model(model)
        if self._selection(source, options):
            self.results = analyze(source, base_model=base_model, **options)
        else:
            self.results = Results(source="", options=AnalysisOptions.from_kwargs(**options), details=[])
        if plot:  # as in the reference, savefig only says where plots go
            from ww_core.views import plots

            plots.save_all(self.results, savefig if isinstance(savefig, str) else "ww-img")
        return self._frame(self.results)

    def describe(self, model: Any = None, **options: Any) -> Any:
        """Layers and sizes without computing spectra, as a DataFrame."""
        source = self._model(model)
        if not self._selection(source, options):
            return self._frame(Results(source="", options=AnalysisOptions.from_kwargs(**options), details=[]), include_skipped=True)
        return self._frame(describe(source, **options), include_skipped=True)

    def get_details(self) -> Any:
        """The last analysis's details DataFrame."""
        return self._frame(self._last())

    def get_summary(self, details: Any = None) -> dict[str, float]:
        """Means of the summary metrics, of the last analysis or of a given details DataFrame."""
        if details is None:
            return self._last().summary
        from ww_core.results.summary import summarize

        records = details.to_dict("records")
        return summarize([{**row, "status": row.get("status", "success")} for row in records])

    def get_ESD(self, model: Any = None, layer: int | str | None = None, **options: Any) -> np.ndarray:
        """Sorted eigenvalues of one layer, by the reference's layer id or by name."""
        if layer is None:
            raise ValueError("get_ESD needs layer= (a layer_id or a name)")
        opts = AnalysisOptions.from_kwargs(**options)
        found = self._layer(model, layer, "get_ESD", opts)
        return get_esd(self._model(model), found.index, **options)

    def get_Weights(self, model: Any = None, layer: int | str | None = None, params: Any = None) -> list[np.ndarray]:
        """One layer's weight matrices (by layer_id or name), as the reference's ``Wmats``: [W] or the conv slices."""
        from ww_core.models.reference_distances import weight_matrices

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
        """``(avg_dW, avg_db, details)`` as the reference returns them; layers are paired by name, and
        layers outside the size limits (min_evals, max_evals, max_N defaults) left out, as the reference does.

        ww reads no biases, so ``delta_b`` and ``avg_db`` are NaN (never a made-up 0).
        """
        from ww_core.models.reference_distances import DISTANCE_METHODS, layer_delta

        method = (method or "raw").lower()
        if method not in DISTANCE_METHODS:
            raise ValueError(f"distances: method must be one of {DISTANCE_METHODS}, got {method!r}")
        if not pool:
            raise ValueError("distances: pool=False (one row per conv slice) is not supported; the conv slices are averaged")
        _warn_ignored("distances", {"start_ids": start_ids, "channels": channels}, {"start_ids": 0, "channels": None})
        from ww_core.models.model_distances import matched_layers
        from ww_core.results.export import to_dataframe
        from ww_core.spectra.shapes import matrix_dims

        filters = self._native_filters(model_1, layers)
        if filters is None:
            raise ValueError(f"distances: layers={layers!r} selects no layer")
        ids = reference_ids(model_layers(model_1, AnalysisOptions()).layers) or {}
        rows = []
        for first, second in matched_layers(model_1, model_2, layers=filters):
            if skip_reason(first, AnalysisOptions()):  # too small or too large: the reference leaves it out too
                continue
            dims = matrix_dims(first.shape)
            delta = layer_delta(first.weights(), second.weights(), first.kind, method)
            row = {"method": method, "layer_id": ids.get(first.index, first.index), "name": first.name, "delta_W": delta}
            rows.append({**row, "delta_b": np.nan, "M": dims.M, "N": dims.N, "b_shape": "UNKNOWN", "longname": first.name})
        if not rows:
            raise ValueError("distances: the two models share no layer")
        frame = to_dataframe(rows).set_index("layer_id")
        return float(np.mean(frame["delta_W"].to_numpy())), float("nan"), frame

    def SVDSmoothing(
        self,
        model: Any = None,
        percent: float = 0.8,
        pool: bool = True,
        layers: Any = (),
        method: str = "detX",
        fit: str = "PL",
        plot: bool = False,
        start_ids: int = 0,
        svd_method: str = "fast",
    ) -> Any:
        """Keep each layer's top singular components (see ``ww_core.models.smoothing``); returns the updated model."""
        from ww_core.models.smoothing import svd_smoothing

        if svd_method not in ("fast", "accurate"):
            raise ValueError(f"SVDSmoothing: svd_method must be 'fast' or 'accurate', got {svd_method!r} (ww always uses an exact SVD)")
        _warn_ignored("SVDSmoothing", {"plot": plot, "start_ids": start_ids}, {"plot": False, "start_ids": 0})
        filters = self._native_filters(self._model(model), layers)
        if filters is None:
            return self._model(model)
        updated = svd_smoothing(self._model(model), percent=percent, method=method, pool=pool, layers=filters, fit=fit)
        self.model = updated
        return updated

    def SVDSharpness(self, model: Any = None, pool: bool = True, layers: Any = (), plot: bool = False, start_ids: int = 0) -> Any:
        """Zero each layer's top singular components, as many as its correlation traps; returns the updated model."""
        from ww_core.models.smoothing import svd_sharpness

        _warn_ignored("SVDSharpness", {"plot": plot, "start_ids": start_ids}, {"plot": False, "start_ids": 0})
        filters = self._native_filters(self._model(model), layers)
        if filters is None:
            return self._model(model)
        updated = svd_sharpness(self._model(model), pool=pool, layers=filters)
        self.model = updated
        return updated

    def _layer(self, model: Any, layer: int | str | None, caller: str, opts: AnalysisOptions | None = None) -> LayerMatrix:
        """One layer by name or by the reference's layer id (ww's own id where the reference numbers none)."""
        if layer is None:
            raise ValueError(f"{caller} needs layer= (a layer_id or a name)")
        opts = opts or AnalysisOptions()
        layers = model_layers(self._model(model), opts.with_(layers=())).layers
        ids = reference_ids(layers)
        by_name = isinstance(layer, str) or isinstance(layer, bool)
        chosen = [c for c in layers if (c.name == layer if by_name else (c.reference_id if ids is not None else c.index) == layer)]
        if not chosen:
            known = id_ranges(c.index for c in layers) if ids is None else id_ranges(v for v in ids.values() if v is not None)
            raise KeyError(f"{caller}: no layer {layer!r}; {'weightwatcher ' if ids is not None else ''}layer ids that exist: {known}")
        if len(chosen) > 1:
            names = ", ".join(repr(candidate.name) for candidate in chosen)
            raise KeyError(f"{caller}: weightwatcher layer id {layer!r} holds {len(chosen)} matrices ({names}); pass one name as layer=")
        return chosen[0]

    def _native_filters(self, source: Any, layers: Any) -> tuple[Any, ...] | None:
        """``layers=`` of a reference call as ww's own filters (ids translated); None when it selects nothing."""
        filters = _as_filters(layers)
        ids = reference_ids(model_layers(source, AnalysisOptions()).layers) if filters else None
        if ids is None:
            return filters
        translated = translate_filters(list(filters), ids)
        return None if translated is None else tuple(translated)

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
