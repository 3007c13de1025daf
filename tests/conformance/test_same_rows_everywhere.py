"""The same weights give identical rows (to 1e-10) through every adapter and file format."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable

import network
import numpy as np
import pytest

import ww_core
from ww_core import testing

Builder = Callable[[dict[str, np.ndarray], Path], Any]

#: source label → (modules it needs, builder)
SOURCES: dict[str, tuple[tuple[str, ...], Builder]] = {
    "numpy dict": ((), lambda w, _: dict(w)),
    ".npz": ((), network.npz),
    ".safetensors": (("safetensors",), network.safetensors),
    "torch nn.Module": (("torch", "ww_torch"), lambda w, _: network.torch_module(w)),
    "torch .pt state dict": (("torch", "ww_torch"), network.torch_file),
    "keras Model": (("keras", "ww_keras"), lambda w, _: network.keras_model(w)),
    "keras .keras": (("keras", "ww_keras"), lambda w, d: network.keras_file(w, d, ".keras")),
    "keras .h5": (("keras", "h5py", "ww_keras"), lambda w, d: network.keras_file(w, d, ".h5")),
    "flax nnx.Module": (("flax", "ww_jax"), lambda w, _: network.nnx_module(w)),
    "flax linen variables": (("flax", "ww_jax"), lambda w, _: network.linen_variables(w)),
    "flax .msgpack": (("flax", "ww_jax"), network.msgpack_file),
    "onnx ModelProto": (("onnx", "ww_onnx"), lambda w, _: network.onnx_model(w)),
    "onnx .onnx": (("onnx", "ww_onnx"), network.onnx_file),
}


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return network.weights()


@pytest.fixture(scope="module")
def expected(weights: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    rows = ww_core.analyze(weights).details
    assert [row["layer_type"] for row in rows] == ["embedding", "conv1d", "dense", "dense"]
    assert all(row["status"] == "success" for row in rows), rows
    return rows


@pytest.mark.parametrize("label", list(SOURCES))
def test_identical_rows(label: str, weights: dict[str, np.ndarray], expected: list[dict[str, Any]], tmp_path: Path) -> None:
    needs, build = SOURCES[label]
    missing = [name for name in needs if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"{label}: {', '.join(missing)} not installed")
    source = build(weights, tmp_path)
    rows = ww_core.analyze(source).details
    testing.assert_rows_close(rows, expected, rtol=1e-10, atol=1e-10)


def test_every_adapter_is_installed_in_the_conformance_session() -> None:
    names = {adapter["name"] for adapter in ww_core.list_adapters()}
    assert {"ww-core", "torch", "keras", "jax", "onnx"} <= names, names


@pytest.fixture(scope="module")
def smoothed_expected(weights: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    return ww_core.analyze(ww_core.svd_smoothing(weights, method="detX")).details


@pytest.mark.parametrize("label", list(SOURCES))
def test_svd_smoothing_writes_back_the_same_weights_everywhere(
    label: str, weights: dict[str, np.ndarray], smoothed_expected: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Smoothed through each adapter's ww_write_weights and read again, every route gives the numpy dict's rows."""
    needs, build = SOURCES[label]
    missing = [name for name in needs if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"{label}: {', '.join(missing)} not installed")
    source = build(weights, tmp_path)
    if label.startswith("keras ."):  # Keras files are refused: load the model, then smooth it
        testing.check_clear_error(lambda: ww_core.svd_smoothing(source), "load_model", error=ValueError)
        return
    updated = ww_core.svd_smoothing(source, method="detX")
    if isinstance(source, Path):
        assert Path(updated).parent == source.parent and Path(updated) != source
    testing.assert_rows_close(ww_core.analyze(updated).details, smoothed_expected, rtol=1e-10, atol=1e-10)
