"""A frozen copy of a model's layers, as a source core's built-in adapter reads like any other.

The monitor takes one between training steps (``ww_core.training.snapshot.take_snapshot``); each layer holds its own
read-only copy of the weights, so training can go on while it is analyzed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ww_core.platform.protocol import LayerMatrix


def private_copy(array: np.ndarray) -> np.ndarray:
    """A C-contiguous copy that owns its memory and cannot be written."""
    copied = np.array(array, copy=True, order="C")
    copied.flags.writeable = False
    return copied


@dataclass(frozen=True)
class Snapshot:
    """The layers of a source as they were when taken, each holding its own copy of the weights.

    ``analyze(snapshot)`` analyzes it like any source (core's built-in adapter claims it);
    ``adapter`` names the adapter that read the original source.
    Layers that cannot be loaded keep a loader that raises, so they become failed rows.
    """

    label: str
    layers: tuple[LayerMatrix, ...]
    adapter: str = ""
