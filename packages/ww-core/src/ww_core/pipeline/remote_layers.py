"""Layers analyzed where they are read: the worker opens the file itself, the client ships only a reference.

When a layer's ``load`` is a ``TensorRef`` (docs/distributed.md) and the executor runs tasks in other
processes (a process pool, Dask, Ray), the client sends the LayerMatrix with its reference and the
worker reads the bytes, hashes them for the cache when asked, and analyzes them. The client never
loads those weights; it keeps only bookkeeping.
"""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ww_core.pipeline.cache import layer_key
from ww_core.platform.protocol import LayerMatrix
from ww_core.platform.tensor_refs import ref_of, worker_name
from ww_core.results.options import AnalysisOptions
from ww_core.results.rows import failed_row


@dataclass(frozen=True)
class CacheProbe:
    """What a worker needs to key a layer for the cache: the options' fingerprint and the keys the cache holds under its name and shape."""

    fingerprint: str
    known: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Finished:
    """A layer's outcome: rows, its own eigenvalues, and the cache key the worker computed (None without a cache).

    ``hit``: that key was already cached, so the worker computed nothing.
    """

    rows: list[dict[str, Any]]
    evals: list[np.ndarray] = field(default_factory=list)
    key: str | None = None
    hit: bool = False


def reads_remotely(executor: Executor | None) -> bool:
    """True for executors whose tasks run in other processes: layers with a TensorRef are then read by the worker."""
    return executor is not None and not isinstance(executor, ThreadPoolExecutor)


def shippable(layer: LayerMatrix, partner: LayerMatrix | None) -> bool:
    """True when the layer (and its base-model partner, if any) can travel as file references."""
    return ref_of(layer.load) is not None and (partner is None or ref_of(partner.load) is not None)


def _where(layer: LayerMatrix) -> str:
    ref = ref_of(layer.load)
    return ref.path if ref is not None else layer.origin


def analyze_from_refs(
    layer: LayerMatrix,
    partner: LayerMatrix | None,
    options: AnalysisOptions,
    probe: CacheProbe | None,
    run_layer: Callable[[LayerMatrix, np.ndarray, np.ndarray | None, AnalysisOptions], tuple[list[dict[str, Any]], list[np.ndarray]]],
) -> Finished:
    """Read the layer (and its partner) here, key it for the cache, analyze it unless the key is a hit. Never raises."""
    try:
        weights = layer.weights()
        base = partner.weights() if partner is not None else None
        if partner is not None and partner.shape != layer.shape:
            raise ValueError(f"layer {layer.name!r}: base model has no layer of that name and shape {layer.shape}")
    except Exception as exc:  # the worker cannot see or read the file: say which worker and which file
        reason = f"worker {worker_name()} cannot read {_where(layer)}: {exc}"
        return Finished([failed_row(layer, options, reason)])
    key = layer_key(probe.fingerprint, layer, weights, base) if probe is not None else None
    if key is not None and probe is not None and key in probe.known:
        return Finished([], key=key, hit=True)
    rows, evals = run_layer(layer, weights, base, options)
    return Finished(rows, evals, key=key)
