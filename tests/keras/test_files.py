""".keras and legacy .h5 files: the same layers as the live model, read lazily, nothing deserialized."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from conftest import build

import ww_core
import ww_keras
from ww_core import testing


def described(source: object) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(layer.name, layer.kind, layer.shape) for layer in testing.check_layers(ww_keras.ww_layers(source, {}))]


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_file_gives_the_live_models_layers(zoo: keras.Model, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"zoo{suffix}"
    zoo.save(path)
    live = list(ww_keras.ww_layers(zoo, {}))
    saved = testing.check_layers(ww_keras.ww_layers(path, {}))
    assert described(path) == described(zoo)
    for ours, theirs in zip(saved, live, strict=True):
        np.testing.assert_array_equal(ours.load(), theirs.load(), err_msg=ours.name)
        assert ours.origin == str(path)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_file_weights_are_read_at_load_time(tmp_path: Path, suffix: str) -> None:
    model = build(keras.layers.Conv1D(6, 3), keras.layers.Dense(4), input_shape=(10, 5))
    path = tmp_path / f"net{suffix}"
    model.save(path)

    def resave_changed() -> None:
        model.set_weights([w * 3 + 1 for w in model.get_weights()])
        model.save(path)

    testing.check_lazy(lambda: ww_keras.ww_layers(path, {}), resave_changed)


def test_keras_file_with_code_is_read_without_running_it(tmp_path: Path) -> None:
    model = build(keras.layers.Dense(8, name="before"), keras.layers.Lambda(lambda x: x * 2, name="code"), input_shape=(3,))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(ValueError, match="unsafe"):  # keras itself refuses to load it in safe mode
        keras.saving.load_model(path, safe_mode=True)
    assert described(path) == [("before", "dense", (8, 3))]


def test_analyze_a_keras_file_end_to_end(tmp_path: Path) -> None:
    model = build(keras.layers.Dense(32, name="a"), keras.layers.Dense(16, name="b"), input_shape=(24,))
    path = tmp_path / "mlp.keras"
    model.save(path)
    from_file = ww_core.analyze(path).details
    testing.assert_rows_close(from_file, ww_core.analyze(model).details)
    assert [row["name"] for row in from_file] == ["a", "b"]


def test_hdf5_that_is_not_a_keras_model_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as handle:
        handle["x"] = np.zeros((3, 3))
    testing.check_clear_error(lambda: ww_keras.ww_layers(path, {}), str(path), "not a saved Keras model")


def test_weights_only_file_is_a_clear_error(tmp_path: Path) -> None:
    model = build(keras.layers.Dense(4), input_shape=(3,))
    path = tmp_path / "only.weights.h5"
    model.save_weights(path)
    testing.check_clear_error(lambda: ww_keras.ww_layers(path, {}), str(path), "whole model")


def test_broken_keras_archive_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
    testing.check_clear_error(lambda: ww_keras.ww_layers(path, {}), str(path), "model.weights.h5")
    path.write_bytes(b"not a zip")
    testing.check_clear_error(lambda: ww_keras.ww_layers(path, {}), str(path), ".keras archive")


def test_declines_what_is_not_keras(tmp_path: Path) -> None:
    testing.check_declines(ww_keras.ww_layers)
    testing.check_declines(ww_keras.ww_layers, [tmp_path / "missing.keras", {"params": {}}, keras])
    testing.check_adapter_info(ww_keras.ww_adapter_info())


def test_registered_and_importing_it_imports_no_framework() -> None:
    code = (
        "import sys, ww_core, ww_keras\n"
        "names = [a['name'] for a in ww_core.list_adapters()]\n"
        "assert 'keras' in names, names\n"
        "loaded = [m for m in ('keras', 'tensorflow', 'h5py') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_sequential_file_names_drop_the_model_scope(tmp_path: Path, suffix: str) -> None:
    model = build(keras.layers.Conv1D(6, 3, name="conv"), keras.layers.Dense(4, name="fc"), input_shape=(10, 5), name="net")
    path = tmp_path / f"seq{suffix}"
    model.save(path)
    assert described(path) == described(model) == [("conv", "conv1d", (6, 5, 3)), ("fc", "dense", (4, 6))]
