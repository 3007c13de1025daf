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

import ww_core
import ww_keras
from ww_core import testing

from .keras_models import build


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


@keras.saving.register_keras_serializable("ww_tests")
class KernelBlock(keras.layers.Layer):
    """A custom layer (a class ww-keras does not know) holding one kernel of the given shape."""

    def __init__(self, shape: tuple[int, ...] = (3, 3, 3, 8), **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.kernel_shape = tuple(shape)

    def build(self, input_shape: object) -> None:
        self.kernel = self.add_weight(name="kernel", shape=self.kernel_shape)

    def call(self, x: object) -> object:
        return x

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "shape": list(self.kernel_shape)}


@keras.saving.register_keras_serializable("ww_tests")
class SubclassedNet(keras.Model):
    """A subclassed model: its saved config lists no layers, so every layer's class is unknown in the file."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.block = KernelBlock((3, 3, 3, 8), name="block")
        self.odd = KernelBlock((4, 5, 6), name="odd")
        self.conv = keras.layers.Conv2D(16, 3, name="conv")
        self.flat = keras.layers.Flatten()
        self.fc = keras.layers.Dense(10, name="fc")

    def call(self, x: object) -> object:
        return self.fc(self.flat(self.conv(self.odd(self.block(x)))))


SUBCLASSED = {
    "block": ("conv2d", (8, 3, 3, 3), ""),
    "conv": ("conv2d", (16, 3, 3, 3), ""),
    "fc": ("dense", (10, 16 * 10 * 10), ""),
    "odd": ("conv1d", (4, 5, 6), "rank-3 'kernel' of "),
}


@pytest.mark.parametrize("route", ["live", ".keras", ".h5"])
def test_subclassed_model_layers_of_unknown_classes_are_read_by_rank_never_dropped(tmp_path: Path, route: str) -> None:
    model = SubclassedNet()
    model.compile(optimizer="adam", loss="mse")  # its saved optimizer state (momenta shaped like kernels) is no layer
    model.fit(np.zeros((2, 12, 12, 3), "float32"), np.zeros((2, 10), "float32"), verbose=0)
    source: object = model
    if route != "live":
        source = tmp_path / f"net{route}"
        model.save(source)
    found = {layer.name: layer for layer in ww_keras.ww_layers(source, {})}
    assert set(found) == set(SUBCLASSED), sorted(found)
    for name, (kind, shape, skip) in SUBCLASSED.items():
        layer = found[name]
        assert layer.kind == kind and layer.skip.startswith(skip) if skip else not layer.skip, (name, layer)
        if not skip:
            assert layer.shape == shape, name
            variable = model.get_layer(name).kernel.numpy()
            expected = variable.T if kind == "dense" else np.moveaxis(variable, (-1, -2), (0, 1))
            np.testing.assert_array_equal(layer.weights(), expected, err_msg=name)
    rows = {row["name"]: row for row in ww_core.analyze(source).details}
    assert rows["odd"]["status"] == "skipped"
    assert ("KernelBlock" if route == "live" else "a subclassed model") in rows["odd"]["error"]
    assert {row["status"] for name, row in rows.items() if name != "odd"} == {"success"}
