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
from ww_core.toolkit import FileSpan

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
