"""The results cache keys ONNX layers by their content, so rewritten external weights are recomputed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

import ww_core

from .onnx_graphs import model


def _save(path: Path, seed: int) -> None:
    heavy = np.random.default_rng(seed).standard_normal((96, 48)).astype(np.float32) ** (3 if seed == 0 else 1)
    graph = model([helper.make_node("MatMul", ["x", "big"], ["y"])], {"big": heavy})
    onnx.save(graph, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)


def test_rewritten_external_weights_are_recomputed(tmp_path: Path) -> None:
    path, cache = tmp_path / "m.onnx", tmp_path / "rows.jsonl"
    _save(path, seed=0)
    first = ww_core.analyze(path, cache=cache, workers=1).row("big")["alpha"]
    onnx_bytes, stamp = path.read_bytes(), os.stat(path)
    (tmp_path / "weights.bin").unlink()  # onnx.save appends to an existing data file
    _save(path, seed=1)
    path.write_bytes(onnx_bytes)  # the .onnx itself is unchanged; only weights.bin differs
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    again = ww_core.analyze(path, cache=cache, workers=1).row("big")["alpha"]
    fresh = ww_core.analyze(path).row("big")["alpha"]
    assert again == pytest.approx(fresh) and again != pytest.approx(first)
