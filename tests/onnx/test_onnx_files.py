"""Files, ModelProto objects, external data read lazily from a memory map, and import cost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from .onnx_graphs import layers_of, model, weight


def two_layer_model() -> onnx.ModelProto:
    nodes = [helper.make_node("MatMul", ["x", "big"], ["h"]), helper.make_node("Gemm", ["h", "head"], ["y"], transB=1)]
    return model(nodes, {"big": weight(0, 64, 48), "head": weight(1, 10, 48)})


def test_file_and_model_proto_agree(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(two_layer_model(), str(path))
    from_file, from_proto = layers_of(path), layers_of(two_layer_model())
    assert [(layer.name, layer.shape) for layer in from_file] == [("big", (48, 64)), ("head", (10, 48))]
    assert from_file[0].origin == str(path) and from_proto[0].origin == "onnx.ModelProto"
    for a, b in zip(from_file, from_proto, strict=True):
        np.testing.assert_array_equal(a.weights(), b.weights())


def test_external_data_is_memory_mapped_and_read_only_on_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ext.onnx"
    onnx.save(
        two_layer_model(), str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="weights.data", size_threshold=0
    )
    from ww_onnx import tensors

    maps: list[str] = []
    real_memmap = np.memmap

    def recording_memmap(filename: object, *args: object, **kwargs: object) -> np.memmap:
        maps.append(Path(str(getattr(filename, "name", filename))).name)  # a path, or the file opened through the gate
        return real_memmap(filename, *args, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(tensors.np, "memmap", recording_memmap)
    found = layers_of(path)
    assert maps == []
    expected = weight(0, 64, 48).T
    np.testing.assert_array_equal(found[0].weights(), expected)
    assert maps == ["weights.data"]
    # the bytes are read from the file at load time: change them on disk and load again
    raw = np.memmap(tmp_path / "weights.data", dtype="<f4", mode="r+", shape=(64 * 48,))
    raw[:] = 3.0
    raw.flush()
    assert (found[0].weights() == 3.0).all()


def test_proto_with_unloaded_external_data_names_the_tensor(tmp_path: Path) -> None:
    path = tmp_path / "ext.onnx"
    onnx.save(two_layer_model(), str(path), save_as_external_data=True, location="w.data", size_threshold=0)
    [first, _] = layers_of(onnx.load(str(path), load_external_data=False))
    with pytest.raises(ValueError, match=r"'big'.*w\.data.*\.onnx path"):
        first.weights()


def test_non_onnx_suffix_and_objects_not_claimed() -> None:
    from ww_onnx import ww_layers

    assert ww_layers(source="model.tflite", options={}) is None
    assert ww_layers(source=object(), options={}) is None


def test_importing_the_adapter_does_not_import_onnx() -> None:
    code = "import sys, ww_core, ww_onnx; print('onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    assert out == "False"
