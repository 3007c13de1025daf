"""A frozen copy of a model's layers, taken between training steps so training can go on.

Each layer's weights are read through its adapter's ``load`` and then copied into fresh,
read-only host memory: torch's ``.numpy()`` and JAX's ``np.asarray`` may return views of
live (or donated) buffers that the next optimizer step overwrites.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import numpy as np

from ww_core.pipeline.plugins import read_source
from ww_core.pipeline.selection import skip_reason
from ww_core.results.options import AnalysisOptions
from ww_core.sources.snapshot import Snapshot, private_copy


def _frozen(array: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: array


def _raising(error: Exception) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        raise error

    return load


def take_snapshot(source: Any, options: AnalysisOptions | None = None, label: str = "") -> Snapshot:
    """Copy every layer of ``source`` that ``options`` select now; a layer that fails to load is kept with its error.

    Layers the options skip are not copied (analysis never loads them), except under ``peft``,
    where LoRA factors too small to be analyzed themselves still make up the B·A products.
    """
    opts = options or AnalysisOptions()
    found = read_source(source, opts.adapter_options(), opts.adapter)
    layers = []
    for layer in found.layers:
        try:
            load = _raising(ValueError("not copied: skipped by the options")) if skip_reason(layer, opts) and not opts.peft else None
            load = load or _frozen(private_copy(layer.weights()))
        except Exception as exc:  # one bad layer must not lose the others; analyze() reports it as failed
            load = _raising(exc)
        layers.append(replace(layer, load=load, device="cpu"))
    return Snapshot(label=label or type(source).__name__, layers=tuple(layers), adapter=found.adapter.get("name", ""))
