"""Assign new canonical weights to a live Keras model's variables, converted back to Keras layouts."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ww_core.platform.toolkit import to_stored
from ww_keras.layouts import layer_name, layout
from ww_keras.live import keras_weights


def write(source: Any, weights: Mapping[str, np.ndarray]) -> Any:
    """Write every named layer into ``source`` (in place, ``variable.assign``); KeyError naming unknown layers."""
    written = set()
    for weight in keras_weights(source):
        found = layout(weight)
        name = layer_name(weight)
        if found is None or name not in weights or weight.write is None:
            continue
        weight.write(to_stored(np.asarray(weights[name]), found[2], weight.shape))
        written.add(name)
    missing = sorted(set(weights) - written)
    if missing:
        raise KeyError(f"keras {type(source).__name__} {source.name!r}: no layer named {missing}")
    return source
