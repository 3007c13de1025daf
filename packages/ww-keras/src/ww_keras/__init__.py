"""ww adapter for Keras 3 (TensorFlow backend): models, layers, ``.keras`` and legacy ``.h5`` files.

Importing this module imports neither Keras nor TensorFlow: a live object is recognized
only when ``keras`` is already in ``sys.modules``, files by their suffix.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from ww_core.platform.toolkit import AdapterOptions, LayerMatrix, hookimpl

FILE_SUFFIXES = (".keras", ".h5", ".hdf5")


@hookimpl
def ww_adapter_info() -> dict[str, Any]:
    """Describe this adapter for ``ww plugins``."""
    return {
        "name": "keras",
        "package": "ww-keras",
        "handles": "keras.Model / keras.Layer (Keras 3), .keras and .h5 model files",
        "suffixes": [".keras", ".h5", ".hdf5"],
        "modules": ["keras", "tensorflow", "tf_keras"],
        "protocol": 1,
        "options": [],
    }


@hookimpl
def ww_layers(source: Any, options: AdapterOptions) -> Iterable[LayerMatrix] | None:
    """Layers of a Keras model, layer or saved model file, in architecture order; None if not Keras."""
    from ww_keras.layouts import to_layers

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        suffix = path.suffix.lower()
        if suffix not in FILE_SUFFIXES or not path.is_file():
            return None
        if suffix == ".keras":
            from ww_keras.keras_file import keras_file_weights

            return to_layers(keras_file_weights(path), origin=str(path))
        from ww_keras.legacy_h5 import legacy_weights

        return to_layers(legacy_weights(path), origin=str(path))
    keras = sys.modules.get("keras")
    if keras is None or not isinstance(source, keras.Layer):
        return None
    from ww_keras.live import keras_weights

    return to_layers(keras_weights(source), origin=f"keras {type(source).__name__} {source.name!r}")


@hookimpl
def ww_write_weights(source: Any, weights: Mapping[str, np.ndarray]) -> Any | None:
    """A live Keras model or layer gets the new weights assigned to its variables (returned); files are refused."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.suffix.lower() in FILE_SUFFIXES and path.is_file():
            raise ValueError(f"{path}: ww writes weights into live Keras models only; load it with keras.saving.load_model, pass the model")
        return None
    keras = sys.modules.get("keras")
    if keras is None or not isinstance(source, keras.Layer):
        return None
    from ww_keras.write_back import write

    return write(source, weights)
