"""A drop-in for the reference's ``WeightWatcher`` class, so existing code ports by changing the import.

Layer ids here are the reference's: ``layers=[...]``, ``get_ESD(layer=...)`` and the ``layer_id``
column use each layer's ``reference_id`` (the framework enumeration weightwatcher 0.7.7 numbers
by), shifted by ``start_ids`` as the reference shifts them, so a ported script picks the same
layers. For a source kind the reference does not read (Flax, ``.npz``, Keras files) ww's own
0..n-1 ids are used. The watcher keeps the last model (and base model) it was given, as the
reference does. docs/porting.md lists every method and keyword with what it does here.
"""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Mapping
from typing import Any, Sequence

import numpy as np

from ww_core.pipeline.analysis import analyze, describe, get_esd, model_layers, source_label
from ww_core.pipeline.selection import id_ranges, skip_reason, warn_unknown_ids
from ww_core.platform.protocol import LayerMatrix
from ww_core.results.options import AnalysisOptions
from ww_core.results.results import Results
from ww_core.results.rows import esd_key

#: Reference keywords that change nothing here (its internal SVD choices, plotting paths).
IGNORED_KEYWORDS = frozenset(
    {"glorot_fix", "svd_method", "channels", "tolerance", "savedir", "smooth", "min_size", "max_size", "mp_norm", "deltas", "pl_package"}
)

#: Reference keywords refused when set, with the reason.
REFUSED_KEYWORDS = {"fft": "fft=True (the reference's experimental FFT of every matrix) is not supported; conv2d_fft=True is"}

#: ``get_ESD(params=...)`` keys the reference's get_ESD reads (its other keys change nothing there either).
ESD_PARAMS = ("inverse", "conv2d_fft")


def reference_ids(layers: Sequence[LayerMatrix]) -> dict[int, int | None] | None:
    """ww index → the reference's id of every layer, or None when the reference numbers none of them."""
    ids = {layer.index: layer.reference_id for layer in layers}
    return ids if any(value is not None for value in ids.values()) else None


def translate_filters(filters: Sequence[int | str], ids: dict[int, int | None]) -> list[int | str] | None:
    """``layers=`` with the reference's ids turned into the ww indices to keep; None when no layer is kept.

    As in the reference, non-negative ids keep those layers and negative ids drop theirs; an id
    no layer has is warned about, naming the ids that exist. Kinds and names pass through.
    """
    numbers_ = [item for item in filters if isinstance(item, int) and not isinstance(item, bool)]
    others = [item for item in filters if not (isinstance(item, int) and not isinstance(item, bool))]
    if not numbers_:
        return list(filters)
    warn_unknown_ids(numbers_, (value for value in ids.values() if value is not None), what="weightwatcher layer ids")
    if min(numbers_) >= 0:
        kept = [index for index, value in ids.items() if value in numbers_]
    else:
        dropped = {-item for item in numbers_}
        kept = [index for index, value in ids.items() if value not in dropped]
    return [*kept, *others] if kept else None


def as_filters(layers: Any) -> list[int | str]:
    """``layers=`` as a list: one id or name, or any sequence (a NumPy array too); NumPy integers become ints."""
    if layers is None:
        return []
    items = [layers] if isinstance(layers, (str, numbers.Integral)) else list(layers)
    return [int(item) if isinstance(item, numbers.Integral) and not isinstance(item, bool) else item for item in items]


def unshifted(filters: Sequence[int | str], offset: int) -> list[int | str]:
    """Ids given with ``start_ids`` (shifted by ``offset``) back to the reference's own; a negative id drops, so it moves up."""
    return [item if not isinstance(item, int) else item - offset if item >= 0 else item + offset for item in filters]


def id_offset(source: Any, start_ids: int, numbered: bool) -> int:
    """How far ``start_ids`` shifts the reference's ids of this source, as the reference shifts them: a state dict counts
    from 1 (from ``start_ids`` when set), its other sources from ``start_ids``, except ONNX models (always from 0); a
    source the reference does not number (``numbered`` False) keeps ww's ids. Both of those are warned about."""
    if start_ids < 0:
        raise ValueError(f"start_ids must be 0 or more (the reference refuses negative ones too), got {start_ids}")
    if not start_ids:
        return 0
    if not numbered or _is_onnx(source):
        warnings.warn(f"start_ids={start_ids} has no effect on this {type(source).__name__} source (nor in the reference)", stacklevel=4)
        return 0
    return start_ids - 1 if isinstance(source, Mapping) else start_ids


def _is_onnx(source: Any) -> bool:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source).endswith(".onnx")
    return type(source).__module__.startswith("onnx")


def reference_column_order(columns: Sequence[str]) -> list[str]:
    """``layer_id`` and ``name`` first, then the rest in alphabetical order, as the reference's DataFrames."""
    lead = [column for column in ("layer_id", "name") if column in columns]
    return lead + sorted(column for column in columns if column not in lead)


class WeightWatcher:
    """``WeightWatcher(model).analyze()`` returning a pandas DataFrame, as in weightwatcher 0.7.7."""

    def __init__(self, model: Any = None, framework: Any = None, base_model: Any = None, log_level: Any = None) -> None:
        if base_model is not None and model is None:
            raise ValueError("WeightWatcher: base_model needs a model")
        self.model = model
        self.base_model = base_model
        self.results: Results | None = None
        self.details: Any = None
        self._ids: dict[int, int | None] | None = None
        self._offset = 0

    def _model(self, model: Any) -> Any:
        """The model given now, which the watcher keeps for later calls, or the last one it was given."""
        if model is not None:
            self.model = model
        if self.model is None:
            raise ValueError("no model given: pass one to WeightWatcher(model) or to this method")
        return self.model

    def _base(self, base_model: Any) -> Any:
        if base_model is not None:
            self.base_model = base_model
        return self.base_model

    def _selection(self, source: Any, options: dict[str, Any], start_ids: int) -> bool:
        """Learn the source's reference ids and rewrite ``options['layers']`` to ww indices; False when nothing is selected."""
        options["layers"] = as_filters(options.get("layers"))
        opts = AnalysisOptions.from_kwargs(**options)
        self._ids = reference_ids(model_layers(source, opts.with_(layers=())).layers)
        self._offset = id_offset(source, start_ids, self._ids is not None)
        if self._ids is None or not options["layers"]:
            return True
        translated = translate_filters(unshifted(options["layers"], self._offset), self._ids)
        if translated is None:
            return False
        options["layers"] = translated
        return True

    def _frame(self, rows: list[dict[str, Any]], esds: Mapping[str, np.ndarray] | None = None) -> Any:
        """Rows as the reference's DataFrame: its ids (pandas ``<NA>`` where it has none), ``has_esd`` for analyzed rows,
        ``layer_id`` and ``name`` first and the other columns in alphabetical order."""
        from ww_core.results.export import to_dataframe

        frame = to_dataframe(rows)
        if "layer_id" in frame.columns and self._ids is not None:
            import pandas as pd

            ids = [self._ids.get(int(index)) for index in frame["layer_id"]]
            frame["layer_id"] = pd.array([None if value is None else value + self._offset for value in ids], dtype="Int64")
        if esds is not None and len(frame):
            frame["has_esd"] = [esd_key(row) in esds for row in rows]
        return frame[reference_column_order(list(frame.columns))]

    def analyze(
        self,
        model: Any = None,
        plot: bool = False,
        savefig: Any = "ww-img",
        base_model: Any = None,
        start_ids: int = 0,
        intra: bool = False,
        sparsify: bool = True,
        stacked: bool = False,
        **options: Any,
    ) -> Any:
        """Analyze the model; returns the details DataFrame (analyzed layers only, like the reference)."""
        for key in sorted(IGNORED_KEYWORDS & options.keys()):
            warnings.warn(f"WeightWatcher.analyze: option {key!r} has no effect in ww", stacklevel=2)
            options.pop(key)
        for key, reason in REFUSED_KEYWORDS.items():
            if options.pop(key, False):
                raise ValueError(f"WeightWatcher.analyze: {reason}")
        if options.pop("ERG", False):  # the reference's alias of detX
            options["detX"] = True
        if not intra and not sparsify:
            warnings.warn("WeightWatcher.analyze: option 'sparsify' has no effect without intra=True", stacklevel=2)
        _peft_alias(options)
        source, base = self._model(model), self._base(base_model)
        if not self._selection(source, options, start_ids):
            self.results = Results(source="", options=AnalysisOptions.from_kwargs(**options), details=[])
        elif stacked or intra:
            self.results = self._products(source, base, options, stacked=stacked, sparsify=sparsify)
        else:
            self.results = analyze(source, base_model=base, **options)
        frame = self.details = self._frame(self.results.analyzed, self.results.esds)
        if plot:  # as in the reference, savefig only says where plots go
            self._plot(frame, "ww-img" if savefig is True or not isinstance(savefig, str) else savefig)
        return frame

    def _products(self, source: Any, base: Any, options: dict[str, Any], *, stacked: bool, sparsify: bool) -> Results:
        """``stacked=True`` or ``intra=True``: the reference's stacked or layer-pair spectra, fitted like layers."""
        from ww_core.models import layer_products

        if base is not None:
            what = "stacked" if stacked else "intra"
            raise ValueError(f"WeightWatcher.analyze: {what}=True with base_model is refused (the reference silently drops {what} then)")
        opts = AnalysisOptions.from_kwargs(**options)
        needs_matrix = [key for key in ("randomize", "mp_fit", "vectors", "conv2d_fft") if getattr(opts, key)]
        if needs_matrix:
            what = "stacked" if stacked else "intra"
            raise ValueError(
                f"WeightWatcher.analyze: {what}=True rows are fitted from their eigenvalues; {', '.join(needs_matrix)} need the matrix"
            )
        layers = self._selected(source, opts)
        fit_options = {**options, "layers": (), "min_evals": 0}  # the reference sizes the layers, not their product
        if stacked:
            spectrum = layer_products.stacked_spectrum(layers)
            found = analyze({"stacked": layer_products.stand_in(spectrum.evals)}, **fit_options)
            row = {**found.details[0], **layer_products.stacked_columns(layers, spectrum)}
            self._ids = None
            return Results(found.source, found.options, [row], esds={row["name"]: spectrum.evals})
        rows, esds = [], {}
        for previous, layer, spectrum in layer_products.intra_spectra(
            layers, sparsify=sparsify, seed=opts.seed, conv2d_norm=opts.conv2d_norm
        ):
            found = analyze({"intra": layer_products.stand_in(spectrum.evals)}, **fit_options)
            row = {**found.details[0], **layer_products.intra_columns(previous, layer, spectrum, self._reference_id)}
            rows.append(row)
            esds[row["name"]] = spectrum.evals
        self._ids = None
        return Results(source_label(source), opts, rows, esds=esds)

    def _reference_id(self, layer: LayerMatrix) -> int:
        """The id a layer shows in this watcher's frames (the reference's, shifted by start_ids; ww's own where it has none)."""
        value = self._ids.get(layer.index) if self._ids is not None else None
        return layer.index if value is None else value + self._offset

    def _selected(self, source: Any, opts: AnalysisOptions) -> list[LayerMatrix]:
        return [layer for layer in model_layers(source, opts).layers if not skip_reason(layer, opts)]

    def _plot(self, frame: Any, directory: str) -> None:
        """The reference's plot files for each analyzed layer (``ww.layer{id}.esd.png``, ``.esd2``, ``.esd3``)."""
        from ww_core.views.reference_plots import save_reference_plots

        assert self.results is not None
        for row, layer_id in zip(self.results.analyzed, frame["layer_id"], strict=True):
            evals = self.results.esds.get(esd_key(row))
            if evals is None:
                continue
            plot_id = f"{layer_id}:{row['slice_id']}" if "slice_id" in row and row.get("rf", 1) > 1 else str(layer_id)
            save_reference_plots(evals, row, plot_id, directory)

    def describe(self, model: Any = None, base_model: Any = None, start_ids: int = 0, stacked: bool = False, **options: Any) -> Any:
        """Layers and sizes without computing spectra, as a DataFrame of the layers analyze() would analyze (the reference's rows)."""
        for key in sorted(IGNORED_KEYWORDS & options.keys()):
            warnings.warn(f"WeightWatcher.describe: option {key!r} has no effect in ww", stacklevel=2)
            options.pop(key)
        options.pop("savefig", None)  # where plots would go: describe draws none
        for key, reason in REFUSED_KEYWORDS.items():
            if options.pop(key, False):
                raise ValueError(f"WeightWatcher.describe: {reason}")
        if options.pop("intra", False):  # the reference's describe rejects it too (its parameters hold randomize and vectors)
            raise ValueError(
                "WeightWatcher.describe: intra=True is refused, as by the reference's describe; analyze(intra=True) gives the layer pairs"
            )
        _peft_alias(options)
        source = self._model(model)
        self._base(base_model)
        if not self._selection(source, options, start_ids):
            return self._frame([])
        if stacked:
            from ww_core.models import layer_products

            layers = self._selected(source, AnalysisOptions.from_kwargs(**options))
            spectrum = layer_products.stacked_spectrum(layers)
            self._ids = None
            return self._frame([{"num_evals": spectrum.M, **layer_products.stacked_columns(layers, spectrum)}])
        found = describe(source, **options)
        rows = [row for row in found.details if row["status"] == "selected"]
        if not found.options.pool:
            rows = _slice_rows(rows)
        return self._frame([{key: value for key, value in row.items() if key not in ("status", "error")} for row in rows])

    def get_details(self) -> Any:
        """The last analysis's details DataFrame (``self.details``, as the reference keeps it)."""
        self._last()
        return self.details

    def get_summary(self, details: Any = None) -> dict[str, float]:
        """Means of the summary metrics, of the last analysis or of a given details DataFrame."""
        if details is None:
            return self._last().summary
        from ww_core.results.summary import summarize

        records = details.to_dict("records")
        return summarize([{**row, "status": row.get("status", "success")} for row in records])

    def get_ESD(
        self, model: Any = None, layer: int | str | None = None, random: bool = False, params: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Sorted eigenvalues of one layer, by the reference's layer id or by name, conv slices unnormalized as the reference
        gives them; ``params`` as the reference's dict (``inverse`` and ``conv2d_fft`` are read, as the reference's get_ESD
        reads them). ``random=True``: the element-shuffled layer's eigenvalues (5 shuffles pooled below 100 components, as
        the reference), shuffled by a generator seeded with 0 where the reference's is unseeded."""
        options = {key: bool(params[key]) for key in ESD_PARAMS if params and key in params}
        options["conv2d_norm"] = False  # the reference's get_ESD leaves a conv's slices unnormalized
        found = self._layer(model, layer, "get_ESD", AnalysisOptions.from_kwargs(**options))
        if random:
            return _random_esd(found, inverse=options.get("inverse", False))
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

        ww reads no biases: ``delta_b`` and ``avg_db`` are 0.0, as the reference reports them for 'euclidean'
        and 'cka'; for 'raw' (where the reference adds ‖b₁ − b₂‖) a warning says so.
        """
        from ww_core.models.reference_distances import DISTANCE_METHODS, layer_delta

        method = (method or "raw").lower()
        if method not in DISTANCE_METHODS:
            raise ValueError(f"distances: method must be one of {DISTANCE_METHODS}, got {method!r}")
        if not pool:
            raise ValueError("distances: pool=False (one row per conv slice) is not supported; the conv slices are averaged")
        _warn_ignored("distances", {"channels": channels}, {"channels": None})
        if method == "raw":
            warnings.warn(
                "distances(method='raw'): ww reads no biases, so delta_b and avg_db are 0.0 (the reference adds ||b1 - b2||)", stacklevel=2
            )
        from ww_core.models.model_distances import matched_layers
        from ww_core.results.export import to_dataframe
        from ww_core.spectra.shapes import matrix_dims

        filters, offset = self._native_filters(model_1, layers, start_ids)
        if filters is None:
            raise ValueError(f"distances: layers={layers!r} selects no layer")
        ids = reference_ids(model_layers(model_1, AnalysisOptions()).layers) or {}
        rows = []
        for first, second in matched_layers(model_1, model_2, layers=filters):
            if skip_reason(first, AnalysisOptions()):  # too small or too large: the reference leaves it out too
                continue
            dims = matrix_dims(first.shape)
            delta = layer_delta(first.weights(), second.weights(), first.kind, method)
            reference = ids.get(first.index)
            layer_id = first.index if reference is None else reference + offset
            row = {"method": method, "layer_id": layer_id, "name": first.name, "delta_W": delta}
            rows.append(
                {**row, "delta_b": 0.0, "M": dims.M, "N": dims.N, "b_shape": "UNKNOWN", "longname": first.framework_path or first.name}
            )
        if not rows:
            raise ValueError("distances: the two models share no layer")
        frame = to_dataframe(rows).set_index("layer_id")
        return float(np.mean(frame["delta_W"].to_numpy())), 0.0, frame

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
        _warn_ignored("SVDSmoothing", {"plot": plot}, {"plot": False})
        source = self._model(model)
        filters, _ = self._native_filters(source, layers, start_ids)
        if filters is None:
            return source
        updated = svd_smoothing(source, percent=percent, method=method, pool=pool, layers=filters, fit=fit)
        self.model = updated
        return updated

    def SVDSharpness(self, model: Any = None, pool: bool = True, layers: Any = (), plot: bool = False, start_ids: int = 0) -> Any:
        """Zero each layer's top singular components, as many as its correlation traps; returns the updated model."""
        from ww_core.models.smoothing import svd_sharpness

        _warn_ignored("SVDSharpness", {"plot": plot}, {"plot": False})
        source = self._model(model)
        filters, _ = self._native_filters(source, layers, start_ids)
        if filters is None:
            return source
        updated = svd_sharpness(source, pool=pool, layers=filters)
        self.model = updated
        return updated

    def _layer(self, model: Any, layer: int | str | None, caller: str, opts: AnalysisOptions | None = None) -> LayerMatrix:
        """One layer by name or by the reference's layer id (ww's own id where the reference numbers none)."""
        if layer is None:
            raise ValueError(f"{caller} needs layer= (a layer_id or a name)")
        if isinstance(layer, numbers.Integral) and not isinstance(layer, bool):
            layer = int(layer)
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

    def _native_filters(self, source: Any, layers: Any, start_ids: int = 0) -> tuple[tuple[Any, ...] | None, int]:
        """``layers=`` of a reference call as ww's own filters (ids translated; None when it selects nothing), and the
        ``start_ids`` offset of the source's ids."""
        filters = as_filters(layers)
        ids = reference_ids(model_layers(source, AnalysisOptions()).layers) if filters or start_ids else None
        offset = id_offset(source, start_ids, ids is not None)
        if ids is None:
            return tuple(filters), offset
        translated = translate_filters(unshifted(filters, offset), ids)
        return (None if translated is None else tuple(translated)), offset

    def _last(self) -> Results:
        if self.results is None:
            raise RuntimeError("call analyze() first")
        return self.results


def _random_esd(layer: LayerMatrix, inverse: bool) -> np.ndarray:
    """The reference's randomized ESD of one layer: its matrices element-shuffled (seeded), eigenvalues pooled."""
    from functools import partial

    from ww_core.models.reference_distances import weight_matrices
    from ww_core.spectra import spectrum
    from ww_core.spectra.randomize import FEW_COMPONENTS, REPLICAS_WHEN_FEW, random_esd
    from ww_core.spectra.shapes import matrix_dims

    matrices = [np.asarray(m, dtype=np.float64) for m in weight_matrices(layer.weights(), layer.kind)]
    replicas = REPLICAS_WHEN_FEW if matrix_dims(layer.shape).num_evals(True) < FEW_COMPONENTS else 1
    return random_esd(matrices, partial(spectrum.eigenvalues, exact=False), np.random.default_rng(0), replicas, inverse)


def _peft_alias(options: dict[str, Any]) -> None:
    """The reference's ``peft='peft_only'`` (any value but 'with_base') is ww's ``peft=True``."""
    if options.get("peft") not in (None, False, True, "with_base"):
        options["peft"] = True


def _slice_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """describe(pool=False): a conv's row once per kernel position (``slice_id``), each with M eigenvalues, as the reference lists them."""
    sliced: list[dict[str, Any]] = []
    for row in rows:
        count = int(row.get("rf", 1)) if str(row.get("layer_type", "")).startswith("conv") else 1
        sliced.extend({**row, "slice_id": position} for position in range(count))
    return sliced


def _warn_ignored(caller: str, given: dict[str, Any], defaults: dict[str, Any]) -> None:
    """A warning for each reference keyword given a non-default value that changes nothing in ww."""
    for key, value in given.items():
        if value != defaults[key]:
            warnings.warn(f"WeightWatcher.{caller}: option {key}={value!r} has no effect in ww", stacklevel=3)
