"""Integer and empty ONNX initializers: a skipped row with core's reason, as on every other route."""

from __future__ import annotations

import numpy as np
from onnx import helper

import ww_core

from .onnx_graphs import model


def test_integer_and_empty_initializers_are_skipped_with_the_reason() -> None:
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("MatMul", ["x", "float_w"], ["h"]),
        helper.make_node("MatMul", ["h", "int_w"], ["g"]),
        helper.make_node("MatMul", ["g", "empty_w"], ["y"]),
    ]
    weights = {
        "float_w": rng.standard_t(3, (30, 60)).astype(np.float32),
        "int_w": rng.integers(0, 9, (60, 40)).astype(np.int64),
        "empty_w": np.zeros((40, 0), dtype=np.float32),
    }
    rows = {row["name"]: row for row in ww_core.analyze(model(nodes, weights)).details}
    assert rows["float_w"]["status"] == "success"
    assert rows["int_w"]["status"] == "skipped" and rows["int_w"]["error"].startswith("integer dtype int64")
    assert rows["empty_w"]["status"] == "skipped" and rows["empty_w"]["error"].startswith("empty tensor")
