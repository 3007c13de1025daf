"""Small Keras models built in the tests."""

from __future__ import annotations

import keras


def build(*layers: keras.Layer, input_shape: tuple[int, ...], dtype: str = "float32", name: str = "model") -> keras.Model:
    """A built Sequential model of ``layers`` on inputs of ``input_shape``."""
    return keras.Sequential([keras.Input(input_shape, dtype=dtype), *layers], name=name)
