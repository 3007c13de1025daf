"""ONNX external data travels as references: a process-pool worker memory-maps the weights file itself."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper

import ww_core
from ww_core.pipeline import analysis
from ww_core.platform.toolkit import FileSpan, TensorRef
from ww_core.results.options import AnalysisOptions

from .onnx_graphs import layers_of, model, weight

SPAWN = multiprocessing.get_context("spawn")  # workers do not inherit the read counter below


@pytest.fixture
def external(tmp_path: Path) -> Path:
    nodes = [helper.make_node("MatMul", ["x", "big"], ["h"]), helper.make_node("Gemm", ["h", "head"], ["y"], transB=1)]
    path = tmp_path / "m.onnx"
    proto = model(nodes, {"big": weight(0, 64, 48), "head": weight(1, 10, 48)})
    onnx.save(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="w.data", size_threshold=0)
    return path


def test_external_tensors_are_picklable_spans_in_canonical_layout(external: Path) -> None:
    found = layers_of(external)
    assert all(isinstance(layer.load, FileSpan) for layer in found)
    big = pickle.loads(pickle.dumps(found[0]))
    np.testing.assert_array_equal(big.weights(), weight(0, 64, 48).T)  # MatMul's (in, out) swapped to (out, in)


def test_process_pool_workers_read_external_data(external: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serial = ww_core.analyze(external, workers=1)
    reads: list[int] = []
    real = FileSpan.read

    def counting(self: Any) -> np.ndarray:
        reads.append(1)
        return real(self)

    monkeypatch.setattr(FileSpan, "read", counting)
    with ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        pooled = ww_core.analyze(external, executor=pool)
    assert reads == []
    for a, b in zip(serial.details, pooled.details, strict=True):
        assert a["status"] == b["status"] == "success"
        assert a["alpha"] == pytest.approx(b["alpha"], rel=1e-12)


def _two_matmuls(path: Path, initializers: dict[str, np.ndarray]) -> None:
    nodes = [helper.make_node("MatMul", ["x", "big"], ["h"]), helper.make_node("MatMul", ["h", "head"], ["y"])]
    onnx.save(
        model(nodes, initializers), str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="w.data", size_threshold=0
    )


def test_a_model_resaved_after_listing_is_read_by_tensor_name_not_at_the_old_offsets(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    _two_matmuls(path, {"big": weight(0, 48, 48), "head": weight(1, 48, 48)})
    listed = layers_of(path)
    _two_matmuls(path, {"head": weight(3, 48, 48), "big": weight(2, 48, 48)})  # the same shapes, stored in the other order
    current = {layer.name: layer.weights() for layer in layers_of(path)}
    for layer in listed:
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(layer)).weights(), current[layer.name], err_msg=layer.name)


def test_a_tensor_reshaped_or_gone_after_listing_fails_its_row_naming_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.onnx"
    _two_matmuls(path, {"big": weight(0, 48, 48), "head": weight(1, 48, 10)})
    real = analysis.model_layers

    def listed_then_resaved(source: Any, options: AnalysisOptions, *more: Any) -> Any:
        found = real(source, options, *more)
        _two_matmuls(path, {"big": weight(0, 48, 48), "head": weight(1, 48, 12)})
        return found

    monkeypatch.setattr(analysis, "model_layers", listed_then_resaved)
    with ProcessPoolExecutor(1, mp_context=SPAWN) as pool:
        results = ww_core.analyze(path, executor=pool)
    assert [row["status"] for row in results.details] == ["success", "failed"]
    error = results.details[1]["error"]
    assert "worker " in error and str(path) in error and "w.data" in error, error
    assert "'head' is now FLOAT [48, 12], listed as FLOAT [48, 10]" in error, error


def test_recurrent_gates_of_external_data_travel_as_references(tmp_path: Path) -> None:
    """An LSTM's gate blocks restacked in torch's order: the restacking travels with the reference, not as a closure."""
    hidden, width = 3, 5
    initializers = {"W": weight(0, 2, 4 * hidden, width), "R": weight(1, 2, 4 * hidden, hidden)}
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["y"], hidden_size=hidden, direction="bidirectional")]
    path = tmp_path / "lstm.onnx"
    onnx.save(model(nodes, initializers), str(path), save_as_external_data=True, location="w.data", size_threshold=0)
    embedded = {layer.name: layer.weights() for layer in layers_of(model(nodes, initializers))}
    found = layers_of(path)
    assert [layer.name for layer in found] == list(embedded)
    for layer in found:
        assert isinstance(layer.load, TensorRef), layer.name
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(layer)).weights(), embedded[layer.name], err_msg=layer.name)
