"""The pipeline: source → layers → selection → spectra and fits (serial or parallel) → Results."""

from __future__ import annotations

import logging
import os
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ww_core.pipeline import worker_faults
from ww_core.pipeline.cache import CacheWriteError, ResultsCache
from ww_core.pipeline.layer_analysis import analyze_layer, layer_esd
from ww_core.pipeline.peft import lora_products
from ww_core.pipeline.plugins import SourceLayers, iter_layers, plugin_eigenvalues, read_source, reader_key, route
from ww_core.pipeline.progress import ProgressBar
from ww_core.pipeline.remote_layers import CacheProbe, Finished, analyze_from_refs, reads_remotely, shippable
from ww_core.pipeline.selection import id_ranges, skip_reason, warn_unknown_ids
from ww_core.pipeline.threads import blas_threads_per_worker, default_workers, idle_cores, limited_blas_threads, serial_blas_threads
from ww_core.platform.protocol import LayerMatrix
from ww_core.platform.tensor_refs import ref_of
from ww_core.results.options import AnalysisOptions
from ww_core.results.results import Results
from ww_core.results.rows import base_row, describe_layer, esd_key, failed_row
from ww_core.sources import peft_folder
from ww_core.spectra import spectrum
from ww_core.spectra import xmax as xmax_option
from ww_core.spectra.esd_histogram import esd_histogram, finite_number

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
    """The spectra of the adapter that read the source (``options.adapter``), checked, when it offers them; else core's.

    The adapter is asked with ``exact``, which it may decline.
    """
    found = plugin_eigenvalues(options.adapter, layer, matrices, options.adapter_options())
    return found if found is not None else spectrum.eigenvalues(matrices, exact=options.exact)


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


def _histograms(rows: list[dict[str, Any]], esds: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Each row's ESD as the compact histogram a results cache keeps (eigenvalues would make it as large as the spectra)."""
    found = {}
    for row in rows:
        key = esd_key(row)
        histogram = esd_histogram(esds[key], finite_number(row.get("xmin"))) if key in esds else None
        if histogram is not None:
            found[key] = histogram
    return found


def run_loaded(layer: LayerMatrix, weights: np.ndarray, base_weights: np.ndarray | None, options: AnalysisOptions) -> Finished:
    """``run_layer`` for weights loaded by the client, as the Finished record every task returns."""
    rows, evals = run_layer(layer, weights, base_weights, options)
    return Finished(rows, evals)


def run_from_refs(layer: LayerMatrix, partner: LayerMatrix | None, options: AnalysisOptions, probe: CacheProbe | None) -> Finished:
    """The worker's task for a layer that travels as a file reference: it reads, keys and analyzes the layer itself."""
    return analyze_from_refs(layer, partner, options, probe, run_layer)


def run_again(task: Callable[..., Finished], *args: Any) -> Finished:
    """``task(*args)`` under another name: executors that key tasks by function and arguments (Dask's default,
    ``pure=True``) would hand back the first attempt's failure for the same call instead of running it again."""
    return task(*args)


@dataclass(frozen=True)
class _Queued:
    """A task sent to the executor, with what it needs to be run again if its worker process dies."""

    layer: LayerMatrix
    future: Future[Finished]
    task: Callable[..., Finished]
    args: tuple[Any, ...]


class _Runner:
    """Feeds layers to an executor with a bounded number in flight (bounded memory).

    A worker process that dies breaks its pool: the layers in flight are each retried once alone
    (``worker_faults``), later layers go to a fresh pool, and the pools made here are closed by ``close``.
    """

    def __init__(self, executor: Executor | None, in_flight: int, options: AnalysisOptions, idle: int) -> None:
        self.executor = executor
        self.idle = idle  # cores idle when the run started: the serial path's BLAS threads
        self.template = executor  # what retries and replacement pools are made like
        self.in_flight = max(in_flight, 1)
        self.options = options
        self.pending: list[_Queued] = []
        self.lost: list[_Queued] = []  # layers whose cluster worker was lost, retried by ``drain``
        self.made: list[Executor] = []

    def submit_loaded(
        self, layer: LayerMatrix, weights: np.ndarray, base: np.ndarray | None, options: AnalysisOptions
    ) -> Iterator[tuple[LayerMatrix, Finished]]:
        """Run a layer loaded here now (serial) or queue it with its arrays; yields whatever finished to make room."""
        if self.executor is None:
            with limited_blas_threads(serial_blas_threads(layer.shape, self.idle)):
                outcome = run_loaded(layer, weights, base, options)
            yield layer, outcome
            return
        yield from self._submit(layer, run_loaded, (replace(layer, load=_unloadable), weights, base, options))

    def submit_refs(
        self, layer: LayerMatrix, partner: LayerMatrix | None, options: AnalysisOptions, probe: CacheProbe | None
    ) -> Iterator[tuple[LayerMatrix, Finished]]:
        """Queue a layer that its worker reads from the file itself (``remote_layers``)."""
        yield from self._submit(layer, run_from_refs, (layer, partner, options, probe))

    def _submit(self, layer: LayerMatrix, task: Callable[..., Finished], args: tuple[Any, ...]) -> Iterator[tuple[LayerMatrix, Finished]]:
        if self.executor is None:  # a broken pool that cannot be replaced: run here
            yield layer, task(*args)
            return
        try:
            future = self.executor.submit(task, *args)
        except BrokenExecutor:  # a worker died earlier: go on with a fresh pool (or here)
            self._replace_executor()
            yield from self._submit(layer, task, args)
            return
        self.pending.append(_Queued(layer, future, task, args))
        while len(self.pending) >= self.in_flight:
            yield from self._pop()

    def drain(self) -> Iterator[tuple[LayerMatrix, Finished]]:
        """Yield every queued result, then run the layers whose worker was lost once more, one at a time."""
        while self.pending:
            yield from self._pop()
        while self.lost:
            queued = self.lost.pop(0)
            yield queued.layer, self._retry_elsewhere(queued)

    def close(self) -> None:
        """Shut down the pools made to replace a broken one."""
        for pool in self.made:
            pool.shutdown(wait=True, cancel_futures=True)

    def _replace_executor(self) -> None:
        fresh = worker_faults.replacement(self.template) if self.template is not None else None
        if fresh is not None:
            self.made.append(fresh)
        self.executor = fresh

    def _pop(self) -> Iterator[tuple[LayerMatrix, Finished]]:
        """The earliest queued layer that has finished (waiting for one): a slow layer does not stall the rest.

        A layer whose worker was lost (on a cluster) yields nothing now: ``drain`` retries it when nothing else runs.
        """
        finished, _ = wait([queued.future for queued in self.pending], return_when=FIRST_COMPLETED)
        position = next(i for i, queued in enumerate(self.pending) if queued.future in finished)
        queued = self.pending.pop(position)
        try:
            outcome = queued.future.result()
        except BrokenExecutor as exc:  # a worker process died: this layer may be the one that killed it, or not
            outcome = self._retry_alone(queued, exc)
        except Exception:  # tasks never raise: the worker itself was lost (a cluster lost the node, after its own retries)
            self.lost.append(queued)
            return
        yield queued.layer, outcome

    def _retry_elsewhere(self, queued: _Queued) -> Finished:
        """Run once more, alone, a layer whose worker was lost: a cluster fails the tasks of a dying worker too, innocent or not.

        The layer that kills its workers dies again: a failed row naming the file and the error (which names the last worker).
        """
        assert self.executor is not None
        try:
            return self.executor.submit(run_again, queued.task, *queued.args).result()
        except Exception as exc:
            log.warning("layer %r: its worker failed twice", queued.layer.name)
            where = _file_of(queued.layer)
            reason = f"worker failed while analyzing it{f' ({where})' if where else ''}, also when retried: {type(exc).__name__}: {exc}"
            return Finished([failed_row(queued.layer, self.options, reason)])

    def _retry_alone(self, queued: _Queued, first: BaseException) -> Finished:
        """Run a layer whose pool broke once more, alone in a fresh process; a failed row if that process dies too."""
        assert self.template is not None
        try:
            return worker_faults.run_alone(self.template, queued.task, *queued.args)
        except BrokenExecutor:
            log.warning("layer %r: its worker process died twice", queued.layer.name)
            reason = f"worker process died while analyzing it ({type(first).__name__}), and again when retried alone in a fresh process"
            return Finished([failed_row(queued.layer, self.options, reason)])


def _file_of(layer: LayerMatrix) -> str:
    ref = ref_of(layer.load)
    return ref.path if ref is not None else ""


def model_layers(source: Any, options: AnalysisOptions, adapter_base: Any = None) -> SourceLayers:
    """The source's layers and the adapter that read them, plus a LoRA update layer B·A per adapter pair when ``peft`` asks.

    With ``peft='with_base'`` a PEFT adapter folder is paired with its base model (``adapter_base``, else the
    ``base_model_name_or_path`` its config names when ww finds it): the base's layers first, then the adapter's.
    An id in ``layers=`` that no layer has is warned about, naming the ids that exist.
    """
    found = read_source(source, options.adapter_options(), options.adapter)
    note = None if options.peft else peft_folder.adapter_note(source)
    if note:
        warnings.warn(note, stacklevel=3)
    if options.peft == "with_base" and peft_folder.is_adapter_folder(source):
        found = _with_adapter_base(source, found, options, adapter_base)
    if options.peft:
        found = SourceLayers(found.adapter, found.layers + lora_products(found.layers))
    warn_unknown_ids(options.layers, (layer.index for layer in found.layers))
    return found


def _with_adapter_base(source: Any, found: SourceLayers, options: AnalysisOptions, given: Any) -> SourceLayers:
    """The base model's layers, then the adapter folder's (numbered after them); the adapter alone, with a warning, when
    the base is neither given nor found."""
    base = given if given is not None else peft_folder.found_base(source)
    if base is None:
        warnings.warn(peft_folder.missing_base_note(source), stacklevel=4)
        return found
    base_layers = read_source(base, options.adapter_options(), options.adapter).layers
    start = max((layer.index for layer in base_layers), default=-1) + 1
    return SourceLayers(found.adapter, [*base_layers, *(replace(layer, index=start + i) for i, layer in enumerate(found.layers))])


def _as_workers_see_it(source: Any, executor: Executor | None) -> Any:
    """A relative path made absolute when workers in other processes read the layers: their working directory is not ours."""
    if reads_remotely(executor) and isinstance(source, (str, os.PathLike)) and os.path.exists(source):
        return os.path.abspath(source)
    return source


def _base_layers(base_model: Any, options: AnalysisOptions) -> dict[str, LayerMatrix]:
    return {layer.name: layer for layer in iter_layers(base_model, options.adapter_options(), options.adapter)}


def _partner(layer: LayerMatrix, base: dict[str, LayerMatrix] | None) -> LayerMatrix | None:
    """The base model's layer of the same name and shape (None without a base model); ValueError when it has none."""
    if base is None:
        return None
    partner = base.get(layer.name)
    if partner is None or partner.shape != layer.shape:
        raise ValueError(f"layer {layer.name!r}: base model has no layer of that name and shape {layer.shape}")
    return partner


def _load_pair(layer: LayerMatrix, partner: LayerMatrix | None) -> tuple[np.ndarray, np.ndarray | None]:
    weights = layer.weights()
    return weights, partner.weights() if partner is not None else None


@dataclass(frozen=True)
class _Execution:
    """Where layers run: the pool (the caller's, one of our own, or None for serial), layers in flight, BLAS limit."""

    pool: Executor | None
    own_pool: bool
    in_flight: int
    blas_limit: int | None
    idle: int


def _plan_execution(layers: list[LayerMatrix], opts: AnalysisOptions, workers: int | None, executor: Executor | None) -> _Execution:
    """Executor sizing: workers default to one per core over the layers to analyze; threads share the BLAS cores."""
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers is None:
        workers = default_workers(sum(1 for layer in layers if not skip_reason(layer, opts)))
    own_pool = executor is None and workers > 1
    pool = ThreadPoolExecutor(max_workers=workers) if own_pool else executor
    in_threads = workers > 1 and (executor is None or isinstance(executor, ThreadPoolExecutor))
    idle = idle_cores()  # once, as the run starts (threads.idle_cores)
    blas_limit = blas_threads_per_worker(workers, idle) if in_threads else None
    return _Execution(pool, own_pool, in_flight=2 * max(workers, 1), blas_limit=blas_limit, idle=idle)


class _Collector:
    """Gathers rows by layer index and ESDs by name, stores successful rows in the cache, advances the bar."""

    def __init__(self, opts: AnalysisOptions, store: ResultsCache | None, bar: ProgressBar) -> None:
        self.opts = opts
        self.store = store
        self.bar = bar
        self.by_index: dict[int, list[dict[str, Any]]] = {}
        self.esds: dict[str, np.ndarray] = {}
        self.esd_histograms: dict[str, dict[str, Any]] = {}
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
        rows = self.store.get(key, layer)
        if rows is None:
            self.cache_keys[layer.index] = key
            return None
        self.esd_histograms.update(self.store.histograms(key))
        return [{**row, "layer_id": layer.index} for row in rows]

    def keep(self, layer: LayerMatrix, rows: list[dict[str, Any]]) -> None:
        """Record rows that were not computed now (skipped or from the cache)."""
        self.by_index[layer.index] = rows
        self.bar.advance(layer.name)

    def probe(self, layer: LayerMatrix) -> CacheProbe | None:
        """What a worker reading this layer itself needs to key it for the cache (None without a cache)."""
        if self.store is None:
            return None
        return CacheProbe(self.store.fingerprint, self.store.known_keys(layer))

    def finished(self, layer: LayerMatrix, outcome: Finished) -> None:
        """Record a computed layer: its rows, its ESDs, and its rows in the cache when all succeeded.

        A worker that found its key in the cache (``outcome.hit``) computed nothing: the cached rows are used.
        """
        key = outcome.key or self.cache_keys.pop(layer.index, None)
        if outcome.hit and self.store is not None and key is not None:
            cached = self.store.get(key, layer) or []
            self.esd_histograms.update(self.store.histograms(key))
            self.keep(layer, [{**row, "layer_id": layer.index} for row in cached])
            return
        rows = outcome.rows
        self.by_index[layer.index] = rows
        esds = _esd_names(rows, outcome.evals, self.opts.pool)
        self.esds.update(esds)
        self.bar.advance(layer.name)
        if self.store is not None and key is not None and all(row.get("status") == "success" for row in rows):
            self.store.put(key, rows, _histograms(rows, esds))

    def details(self) -> list[dict[str, Any]]:
        """Every row, in model order."""
        return [row for index in sorted(self.by_index) for row in self.by_index[index]]


def _run_layers(layers: list[LayerMatrix], base: dict[str, LayerMatrix] | None, runner: _Runner, collector: _Collector) -> None:
    """Feed each layer that needs computing to the runner and collect what finishes.

    To executors in other processes, layers with file references travel as references (the worker
    reads them); every other layer is loaded here, one at a time, and its arrays travel.
    """
    opts = collector.opts
    remote = reads_remotely(runner.executor)
    for layer in layers:
        ready = collector.ready_rows(layer)
        if ready is not None:
            collector.keep(layer, ready)
            continue
        try:
            partner = _partner(layer, base)
            if remote and shippable(layer, partner):
                for done in runner.submit_refs(layer, partner, opts, collector.probe(layer)):
                    collector.finished(*done)
                continue
            weights, base_weights = _load_pair(layer, partner)
        except Exception as exc:
            collector.finished(layer, Finished([failed_row(layer, opts, str(exc))]))
            continue
        cached = collector.cached_rows(layer, weights, base_weights)
        if cached is not None:
            collector.keep(layer, cached)
            continue
        for done in runner.submit_loaded(layer, weights, base_weights, opts):
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
    rows so far, when it cannot be written). ``base_model`` analyzes W − W_base; with ``peft='with_base'`` on a
    PEFT adapter folder it is the adapter's base model instead, whose layers are analyzed beside the updates.
    ``progress`` draws a bar on stderr (default: when it is a terminal); a ProgressBar passed in is
    advanced and left open, so a caller can go on with it (the CLI's plots).
    """
    opts = AnalysisOptions.from_kwargs(**options)
    adapter_base = None
    if base_model is not None and opts.peft == "with_base" and peft_folder.is_adapter_folder(source):
        adapter_base, base_model = base_model, None  # the adapter's base model, not a W − W_base baseline
    found = model_layers(_as_workers_see_it(source, executor), opts, _as_workers_see_it(adapter_base, executor))
    layers = found.layers
    base = _base_layers(_as_workers_see_it(base_model, executor), opts) if base_model is not None else None
    plan = _plan_execution(layers, opts, workers, executor)
    store = ResultsCache(cache, opts) if cache is not None else None
    bar = progress if isinstance(progress, ProgressBar) else ProgressBar(len(layers), enabled=progress)
    bar.expect(len(layers))
    spectra_opts = opts.with_(adapter=reader_key(found.adapter))  # only the reader's spectra hook is asked
    collector = _Collector(spectra_opts, store, bar)
    started = time.monotonic()
    runner = _Runner(plan.pool, plan.in_flight, spectra_opts, plan.idle)
    try:
        with limited_blas_threads(plan.blas_limit):
            _run_layers(layers, base, runner, collector)
    except CacheWriteError as exc:  # disk full: stop, handing back every row finished so far
        exc.results = Results(
            source=source_label(source),
            options=opts,
            details=collector.details(),
            esds=collector.esds,
            esd_histograms=collector.esd_histograms,
        )
        raise
    finally:
        runner.close()
        if bar is not progress:
            bar.close()
        if plan.own_pool and plan.pool is not None:
            plan.pool.shutdown(wait=True, cancel_futures=True)
    elapsed = time.monotonic() - started
    results = Results(
        source_label(source), opts, collector.details(), esds=collector.esds, esd_histograms=collector.esd_histograms, adapter=found.adapter
    )
    log.info("analyzed %d of %d layers of %s in %.2fs", len(results.analyzed), len(layers), source_label(source), elapsed)
    unclipped = xmax_option.unclipped_warning(opts.xmax, results.details)
    if unclipped:
        warnings.warn(unclipped, stacklevel=2)
    return results


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
    found = route(source, opts.adapter_options(), opts.adapter)
    opts = opts.with_(adapter=reader_key(found.adapter))  # only the reader's spectra hook is asked
    for candidate in found.layers:
        if candidate.index == layer or candidate.name == layer:
            if candidate.skip:
                raise ValueError(f"{describe_layer(candidate)}: {candidate.skip}")
            return layer_esd(candidate, candidate.weights(), opts, eigenvalue_fn=partial(_eigenvalues, candidate, options=opts))
        seen.append(candidate)
    raise KeyError(f"{source_label(source)}: no layer {layer!r}; layer ids that exist: {id_ranges(c.index for c in seen)}")
