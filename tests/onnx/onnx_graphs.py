"""Helpers for the ww-onnx tests: tiny graphs built with onnx.helper, layers via core's plugin route."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ww_core import LayerMatrix
from ww_core.pipeline.plugins import iter_layers


def layers_of(source: Any, **options: Any) -> list[LayerMatrix]:
    """Every layer the installed adapters give for ``source``."""
    return list(iter_layers(source, options))


def summary(found: list[LayerMatrix]) -> list[tuple[str, str, tuple[int, ...], str]]:
    return [(layer.name, layer.kind, layer.shape, layer.framework_type) for layer in found]


def weight(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def model(nodes: Sequence[onnx.NodeProto], initializers: dict[str, np.ndarray] | None = None) -> onnx.ModelProto:
    """A model of ``nodes`` reading graph input ``x`` and writing ``y``; shapes are left unchecked."""
    graph = helper.make_graph(
        list(nodes),
        "test",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(array, name) for name, array in (initializers or {}).items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def constant(name: str, array: np.ndarray) -> onnx.NodeProto:
    """A Constant node holding ``array`` as output ``name`` (how many exporters store weights)."""
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name + "_value"))
