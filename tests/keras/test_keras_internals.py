"""The private Keras API ww-keras relies on (isolated in ww_keras.keras_internals) keeps its contract on this Keras."""

from __future__ import annotations

from typing import Any

import keras
import pytest

from ww_keras.keras_internals import SUPPORTED, child_layers, own_variables


class Wrapper(keras.layers.Layer):
    """A custom layer holding a sublayer and a variable of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = keras.layers.Dense(5)
        self.scale = self.add_weight(shape=(5,), initializer="ones")

    def call(self, x: Any) -> Any:
        return self.inner(x) * self.scale


def _model() -> keras.Model:
    inputs = keras.Input((6, 8))
    block = keras.Sequential([keras.layers.Dense(8), keras.layers.LayerNormalization()])
    x = block(inputs)
    x = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(x, x)
    x = Wrapper()(x)
    x = keras.layers.LSTM(3)(x)
    return keras.Model(inputs, x)


def _check_partition(layer: Any) -> int:
    own = {id(v) for v in own_variables(layer)}
    children = child_layers(layer)
    below = [id(w) for child in children for w in child.weights]
    assert not own & set(below), f"{layer.name}: a variable is both its own and a sublayer's"
    assert own | set(below) == {id(w) for w in layer.weights}, f"{layer.name}: own and sublayers' variables are not its weights"
    return 1 + sum(_check_partition(child) for child in children)


def test_own_variables_and_children_partition_the_weights() -> None:
    assert _check_partition(_model()) > 8


def test_an_unsupported_keras_is_a_clear_error() -> None:
    with pytest.raises(ImportError, match=f"Keras {SUPPORTED}"):
        own_variables(object())
    with pytest.raises(ImportError, match=f"Keras {SUPPORTED}"):
        child_layers(object())
