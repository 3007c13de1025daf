"""Keras test setup: quiet TensorFlow, seeded weights."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import pytest


@pytest.fixture(autouse=True)
def _seeded() -> None:
    keras.utils.set_random_seed(0)


@pytest.fixture
def zoo() -> keras.Model:
    """One model with every supported layer type, a nested model and an attention block."""
    tokens = keras.Input((12,), dtype="int32")
    x = keras.layers.Embedding(40, 16, name="emb")(tokens)
    x = keras.layers.Conv1D(20, 3, name="conv1d")(x)
    x = keras.layers.MultiHeadAttention(num_heads=2, key_dim=6, name="mha")(x, x)
    x = keras.layers.LSTM(10, return_sequences=True, name="lstm")(x)
    x = keras.layers.Bidirectional(keras.layers.GRU(9, return_sequences=True, name="gru"), name="bi")(x)
    x = keras.layers.EinsumDense("abc,cd->abd", output_shape=(None, 14), name="einsum")(x)
    x = keras.layers.Reshape((10, 14, 1))(x)
    x = keras.layers.Conv2D(6, (3, 2), name="conv2d")(x)
    x = keras.layers.DepthwiseConv2D((2, 2), depth_multiplier=2, name="depthwise")(x)
    x = keras.layers.Conv2DTranspose(5, (2, 3), name="deconv2d")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    head = keras.Sequential([keras.Input((5,)), keras.layers.Dense(11, name="fc1"), keras.layers.Dense(3, name="fc2")], name="head")
    return keras.Model(tokens, head(x), name="zoo")
