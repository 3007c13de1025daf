"""The pipeline: source → layers → selection → spectra and fits (serial or parallel) → Results."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ww_core import spectrum, worker_faults
from ww_core.cache import CacheWriteError, ResultsCache
from ww_core.layer_analysis import analyze_layer, layer_esd
from ww_core.options import AnalysisOptions
from ww_core.peft import lora_products
from ww_core.plugins import SourceLayers, first_result, iter_layers, read_source
from ww_core.progress import ProgressBar
from ww_core.protocol import LayerMatrix
from ww_core.results import Results
from ww_core.rows import base_row, describe_layer, esd_key, failed_row
from ww_core.selection import id_ranges, skip_reason, warn_unknown_ids
from ww_core.threads import blas_threads_per_worker, default_workers, limited_blas_threads, serial_blas_threads

log = logging.getLogger("ww_core")

LayerOutcome = tuple[list[dict[str, Any]], list[np.ndarray]]


def source_label(source: Any) -> str:
    """A short human name for a source: its path, or its type."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return f"{type(source).__module__}.{type(source).__qualname__}"


def _unloadable() -> np.ndarray:
    raise RuntimeError("layer weights travel with the task; the loader is not sent to workers")


def _eigenvalues(layer: LayerMatrix, matrices: list[np.ndarray], options: AnalysisOptions) -> list[np.ndarray]:
    """An adapter's accelerated spectra when one offers them (asked with ``exact``, which it may decline), else core's."""
    found = first_result("ww_eigenvalues", options.adapter_options(), options.adapter, layer=layer, matrices=matrices)
    if found is not None:
        return [np.asarray(evals, dtype=np.float64) for evals in found[1]]
    return spectrum.eigenvalues(matrices, exact=options.exact)


def run_layer(layer: LayerMatrix, weights: np.ndarray, base_weights: np.ndarray | None, options: AnalysisOptions) -> LayerOutcome:
    """Analyze one loaded layer; returns its rows and the eigenvalues of its own matrices.

    Module-level and free of closures over the source so any Executor (threads, processes,
    Dask, Ray) can run it. Never raises: an error becomes a failed row naming the layer.
    """
    recorded: list[np.ndarray] = []

    def eigen(matrices: list[np.ndarray]) -> list[np.ndarray]:
        evals = _eigenvalues(layer, matrices, options)
        if not recorded:
            recorded.extend(evals)
        return evals

    try:
        rows = analyze_layer(layer, weights, options, eigenvalue_fn=eigen, base_weights=base_weights)
    except Exception as exc:  # one bad layer must not lose the others' results
        log.warning("layer %r failed: %s", layer.name, exc)
        rows = [failed_row(layer, options, f"analysis failed: {type(exc).__name__}: {exc}")]
    return rows, recorded


def _esd_names(rows: list[dict[str, Any]], evals: list[np.ndarray], pool: bool) -> dict[str, np.ndarray]:
    if not evals:
        return {}
    if pool or len(rows) == 1:
        return {esd_key(rows[0]): np.sort(np.concatenate(evals))}
    return {esd_key(row): np.sort(e) for row, e in zip(rows, evals, strict=True)}


@dataclass(frozen=True)
class _Queued:
    """A layer sent to the executor, with what it needs to be run again if its worker process dies."""

    layer: LayerMatrix
    future: Future[LayerOutcome]
    weights: np.ndarray
    base: np.ndarray | None


class _Runner:
    """Feeds loaded layers to an executor with a bounded number in flight (bounded memory).

    A worker process that dies breaks its pool: the layers in flight are each retried once alone
    (``worker_faults``), later layers go to a fresh pool, and the pools made here are closed by ``close``.
    """

    def __init__(self, executor: Executor | None, in_flight: int, options: AnalysisOptions) -> None:
        self.executor = executor
        self.template = executor  # what retries and replacement pools are made like
        self.in_flight = max(in_flight, 1)
        self.options = options
        self.pending: list[_Queued] = []
        self.made: list[Executor] = []

    def submit(
        self, layer: LayerMatrix, weights: np.ndarray, base: np.ndarray | None, options: AnalysisOptions
    ) -> Iterator[tuple[LayerMatrix, LayerOutcome]]:
        """Run now (serial) or queue; yields whatever finished to make room."""
        if self.executor is None:
            with limited_blas_threads(serial_blas_threads(layer.shape)):
                outcome = run_layer(layer, weights, base, options)
            yield layer, outcome
            return
        try:
            future = self.executor.submit(run_layer, replace(layer, load=_unloadable), weights, base, options)
        except BrokenExecutor:  # a worker died earlier: go on with a fresh pool (or here)
            self._replace_executor()
            yield from self.submit(layer, weights, base, options)
            return
        self.pending.append(_Queued(layer, future, weights, base))
        while len(self.pending) >= self.in_flight:
            yield self._pop()

    def drain(self) -> Iterator[tuple[LayerMatrix, LayerOutcome]]:
        """Yield every queued result."""
        while self.pending:
            yield self._pop()

    def close(self) -> None:
        """Shut down the pools made to replace a broken one."""
        for pool in self.made:
            pool.shutdown(wait=True, cancel_futures=True)

    def _replace_executor(self) -> None:
        fresh = worker_faults.replacement(self.template) if self.template is not None else None
        if fresh is not None:
            self.made.append(fresh)
        self.executor = fresh

    def _pop(self) -> tuple[LayerMatrix, LayerOutcome]:
        """The earliest queued layer that has finished (waiting for one): a slow layer does not stall the rest."""
        finished, _ = wait([queued.future for queued in self.pending], return_when=FIRST_COMPLETED)
        position = next(i for i, queued in enumerate(self.pending) if queued.future in finished)
        queued = self.pending.pop(position)
        try:
            return queued.layer, queued.future.result()
        except BrokenExecutor as exc:  # a worker process died: this layer may be the one that killed it, or not
            return queued.layer, self._retry_alone(queued, exc)
        except Exception as exc:  # the worker itself failed (e.g. a remote executor lost a node)
            return queued.layer, ([failed_row(queued.layer, self.options, f"worker failed: {type(exc).__name__}: {exc}")], [])

    def _retry_alone(self, queued: _Queued, first: BaseException) -> LayerOutcome:
        """Run a layer whose pool broke once more, alone in a fresh process; a failed row if that process dies too."""
        assert self.template is not None
        shipped = replace(queued.layer, load=_unloadable)
        try:
            return worker_faults.run_alone(self.template, run_layer, shipped, queued.weights, queued.base, self.options)
        except BrokenExecutor:
            log.warning("layer %r: its worker process died twice", queued.layer.name)
            reason = f"worker process died while analyzing it ({type(first).__name__}), and again when retried alone in a fresh process"
            return [failed_row(queued.layer, self.options, reason)], []


def model_layers(source: Any, options: AnalysisOptions) -> SourceLayers:
    """The source's layers and the adapter that read them, plus a LoRA update layer B·A per adapter pair when ``peft`` asks.

    An id in ``layers=`` that no layer has is warned about, naming the ids that exist.
    """
    found = read_source(source, options.adapter_options(), options.adapter)
    if options.peft:
        found = SourceLayers(found.adapter, found.layers + lora_products(found.layers))
    warn_unknown_ids(options.layers, (layer.index for layer in found.layers))
    return found


def _base_layers(base_model: Any, options: AnalysisOptions) -> dict[str, LayerMatrix]:
    return {layer.name: layer for layer in iter_layers(base_model, options.adapter_options(), options.adapter)}


def _load_pair(layer: LayerMatrix, base: dict[str, LayerMatrix] | None) -> tuple[np.ndarray, np.ndarray | None]:
    weights = layer.weights()
    if base is None:
        return weights, None
    partner = base.get(layer.name)
    if partner is None or partner.shape != layer.shape:
        raise ValueError(f"layer {layer.name!r}: base model has no layer of that name and shape {layer.shape}")
    return weights, partner.weights()


@dataclass(frozen=True)
class _Execution:
    """Where layers run: the pool (the caller's, one of our own, or None for serial), layers in flight, BLAS limit."""

    pool: Executor | None
    own_pool: bool
    in_flight: int
    blas_limit: int | None


def _plan_execution(layers: list[LayerMatrix], opts: AnalysisOptions, workers: int | None, executor: Executor | None) -> _Execution:
    """Executor sizing: workers default to one per core over the layers to analyze; threads share the BLAS cores."""
    if workers is None:
        workers = default_workers(sum(1 for layer in layers if not skip_reason(layer, opts)))
    own_pool = executor is None and workers > 1
    pool = ThreadPoolExecutor(max_workers=workers) if own_pool else executor
    in_threads = workers > 1 and (executor is None or isinstance(executor, ThreadPoolExecutor))
    blas_limit = blas_threads_per_worker(workers) if in_threads else None
    return _Execution(pool, own_pool, in_flight=2 * max(workers, 1), blas_limit=blas_limit)


class _Collector:
    """Gathers rows by layer index and ESDs by name, stores successful rows in the cache, advances the bar."""

    def __init__(self, opts: AnalysisOptions, store: ResultsCache | None, bar: ProgressBar) -> None:
        self.opts = opts
        self.store = store
        self.bar = bar
        self.by_index: dict[int, list[dict[str, Any]]] = {}
        self.esds: dict[str, np.ndarray] = {}
        self.cache_keys: dict[int, str] = {}

    def ready_rows(self, layer: LayerMatrix) -> list[dict[str, Any]] | None:
        """A skipped layer's row; None when the layer must be loaded."""
        reason = skip_reason(layer, self.opts)
        if reason:
            return [{**base_row(layer, self.opts), "status": "skipped", "error": reason}]
        return None

    def cached_rows(self, layer: LayerMatrix, weights: np.ndarray, base_weights: np.ndarray | None) -> list[dict[str, Any]] | None:
        """The loaded layer's rows from the cache (keyed by its content), or None; remembers the key for ``finished``."""
        if self.store is None:
            return None
        key = self.store.key(layer, weights, base_weights)
        rows = self.store.get(key)
        if rows is None:
            self.cache_keys[layer.index] = key
            return None
        return [{**row, "layer_id": layer.index} for row in rows]

    def keep(self, layer: LayerMatrix, rows: list[dict[str, Any]]) -> None:
        """Record rows that were not computed now (skipped or from the cache)."""
        self.by_index[layer.index] = rows
        self.bar.advance(layer.name)

    def finished(self, layer: LayerMatrix, outcome: LayerOutcome) -> None:
        """Record a computed layer: its rows, its ESDs, and its rows in the cache when all succeeded."""
        rows, evals = outcome
        self.by_index[layer.index] = rows
        self.esds.update(_esd_names(rows, evals, self.opts.pool))
        self.bar.advance(layer.name)
        key = self.cache_keys.pop(layer.index, None)
        if self.store is not None and key is not None and all(row.get("status") == "success" for row in rows):
            self.store.put(key, rows)

    def details(self) -> list[dict[str, Any]]:
        """Every row, in model order."""
        return [row for index in sorted(self.by_index) for row in self.by_index[index]]


def _run_layers(layers: list[LayerMatrix], base: dict[str, LayerMatrix] | None, runner: _Runner, collector: _Collector) -> None:
    """Load each layer that needs computing (one at a time) and feed it to the runner; collect what finishes."""
    opts = collector.opts
    for layer in layers:
        ready = collector.ready_rows(layer)
        if ready is not None:
            collector.keep(layer, ready)
            continue
        try:
            weights, base_weights = _load_pair(layer, base)
        except Exception as exc:
            collector.finished(layer, ([failed_row(layer, opts, str(exc))], []))
            continue
        cached = collector.cached_rows(layer, weights, base_weights)
        if cached is not None:
            collector.keep(layer, cached)
            continue
        for done in runner.submit(layer, weights, base_weights, opts):
            collector.finished(*done)
        del weights, base_weights
    for done in runner.drain():
        collector.finished(*done)


def analyze(
    source: Any,
    *,
    base_model: Any = None,
    workers: int | None = None,
    executor: Executor | None = None,
    cache: str | Path | None = None,
    progress: bool | ProgressBar | None = None,
    **options: Any,
) -> Results:
    """Analyze every weight matrix of ``source`` (model object, file or folder) without data.

    ``options`` are the reference tool's ``analyze()`` keywords (see AnalysisOptions).
    ``workers > 1`` runs layers on a thread pool, each thread with cores/workers BLAS
    threads; the default picks one worker per core (``threads.default_workers``), 1 runs
    one layer at a time on all cores. ``executor`` takes any ``concurrent.futures.Executor``
    (process pool, Dask, Ray) instead. At most 2·workers layers are loaded at once. ``cache``
    names a JSON-lines file that makes an interrupted run resume (CacheWriteError, carrying the
    rows so far, when it cannot be written). ``base_model`` analyzes W − W_base.
    ``progress`` draws a bar on stderr (default: when it is a terminal); a ProgressBar passed in is
    advanced and left open, so a caller can go on with it (the CLI's plots).
    """
    opts = AnalysisOptions.from_kwargs(**options)
    found = model_layers(source, opts)
    layers = found.layers
    base = _base_layers(base_model, opts) if base_model is not None else None
    plan = _plan_execution(layers, opts, workers, executor)
    store = ResultsCache(cache, opts) if cache is not None else None
    bar = progress if isinstance(progress, ProgressBar) else ProgressBar(len(layers), enabled=progress)
    bar.expect(len(layers))
    collector = _Collector(opts, store, bar)
    started = time.monotonic()
    runner = _Runner(plan.pool, plan.in_flight, opts)
    try:
        with limited_blas_threads(plan.blas_limit):
            _run_layers(layers, base, runner, collector)
    except CacheWriteError as exc:  # disk full: stop, handing back every row finished so far
        exc.results = Results(source=source_label(source), options=opts, details=collector.details(), esds=collector.esds)
        raise
    finally:
        runner.close()
        if bar is not progress:
            bar.close()
        if plan.own_pool and plan.pool is not None:
            plan.pool.shutdown(wait=True, cancel_futures=True)
    log.info("analyzed %d layers of %s in %.2fs", len(layers), source_label(source), time.monotonic() - started)
    return Results(source_label(source), opts, collector.details(), esds=collector.esds, adapter=found.adapter)


def describe(source: Any, **options: Any) -> Results:
    """List the layers and their matrix sizes without loading weights or computing spectra."""
    opts = AnalysisOptions.from_kwargs(**options)
    found = model_layers(source, opts)
    rows = []
    for layer in found.layers:
        reason = skip_reason(layer, opts)
        rows.append({**base_row(layer, opts), "status": "skipped" if reason else "selected", "error": reason})
    return Results(source_label(source), opts, rows, adapter=found.adapter)


def get_esd(source: Any, layer: int | str, **options: Any) -> np.ndarray:
    """Sorted eigenvalues of one layer's (pooled) ESD, the layer given by index or name."""
    opts = AnalysisOptions.from_kwargs(**options)
    seen: list[LayerMatrix] = []
    for candidate in iter_layers(source, opts.adapter_options(), opts.adapter):
        if candidate.index == layer or candidate.name == layer:
            if candidate.skip:
                raise ValueError(f"{describe_layer(candidate)}: {candidate.skip}")
            return layer_esd(candidate, candidate.weights(), opts, eigenvalue_fn=partial(_eigenvalues, candidate, options=opts))
        seen.append(candidate)
    raise KeyError(f"{source_label(source)}: no layer {layer!r}; layer ids that exist: {id_ranges(c.index for c in seen)}")
