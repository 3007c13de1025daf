"""ww-keras's ww_write_weights: live models get new weights through their variables; files are refused."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

import ww_core
import ww_keras
from ww_core import testing
from ww_core.models.smoothing import low_rank


def test_kit_round_trip_on_every_layer_type(zoo: keras.Model) -> None:
    assert testing.check_write_back(ww_keras.ww_layers, ww_keras.ww_write_weights, zoo) is zoo


def test_svd_smoothing_changes_the_model_in_place() -> None:
    model = keras.Sequential([keras.Input((40,)), keras.layers.Dense(30, name="fc")])
    kernel = np.asarray(model.get_layer("fc").kernel).astype(np.float64)  # (in, out)
    assert ww_core.svd_smoothing(model, method="svd", percent=0.5) is model
    np.testing.assert_allclose(np.asarray(model.get_layer("fc").kernel), low_rank(kernel.T, 15).T, atol=1e-5)


def test_files_are_refused_with_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]).save(path)
    with pytest.raises(ValueError, match="load_model"):
        ww_keras.ww_write_weights(path, {})


def test_unknown_layer_is_named(zoo: keras.Model) -> None:
    with pytest.raises(KeyError, match="nope"):
        ww_keras.ww_write_weights(zoo, {"nope": np.zeros((2, 2))})
