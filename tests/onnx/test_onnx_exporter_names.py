"""Weights torch's exporter renamed are named by the node that consumes them, constant-folded ones too."""

from __future__ import annotations

import pytest
from onnx import helper

from .onnx_graphs import layers_of, model, weight


@pytest.mark.parametrize("stored", ["onnx::MatMul_680", "const_fold_opt__680"])
def test_an_exporter_named_weight_takes_its_node_s_scope(stored: str) -> None:
    """``const_fold_opt__N`` (a transpose the exporter folded into the weight) was a row of that name, not ``encoder.fc``."""
    graph = model([helper.make_node("MatMul", ["x", stored], ["y"], name="/encoder/fc/MatMul")], {stored: weight(0, 8, 4)})
    found = layers_of(graph)
    assert [(layer.name, layer.framework_path) for layer in found] == [("encoder.fc", stored)]
    assert found[0].shape == (4, 8)
