"""ww-onnx: the weight matrices of ``.onnx`` files and ``onnx.ModelProto`` objects for ww.

Registered under the ``ww`` entry-point group. Importing this module does not import onnx:
sources are recognized by file suffix and type module first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from ww_core.platform.toolkit import AdapterOptions, LayerMatrix, hookimpl


@hookimpl
def ww_adapter_info() -> dict[str, Any]:
    """Describe this adapter for ``ww plugins``."""
    return {
        "name": "onnx",
        "package": "ww-onnx",
        "handles": ".onnx files (external data memory-mapped), onnx.ModelProto",
        "suffixes": [".onnx"],
        "modules": ["onnx"],
        "protocol": 1,
        "options": [{"name": "split_gates", "type": "bool", "default": False, "help": "LSTM/GRU/RNN weights as one row per gate"}],
    }


@hookimpl
def ww_layers(source: Any, options: AdapterOptions) -> Iterable[LayerMatrix] | None:
    """The weight matrices of an ONNX model in graph node order, or None when ``source`` is not one."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not (path.is_file() and path.suffix.lower() == ".onnx"):
            return None
        from ww_onnx import layers, model

        return layers.model_layers(model.load_model(path), path.parent, str(path), options)
    if type(source).__module__.split(".")[0] == "onnx" and type(source).__name__ == "ModelProto":
        from ww_onnx import layers

        return layers.model_layers(source, None, "onnx.ModelProto", options)
    return None


@hookimpl
def ww_write_weights(source: Any, weights: Mapping[str, np.ndarray], output: Path | None, options: AdapterOptions) -> Any | None:
    """A ModelProto comes back as a new ModelProto; an ``.onnx`` file as a new file at ``output``."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not (path.is_file() and path.suffix.lower() == ".onnx"):
            return None
        from ww_onnx import write_back

        return write_back.write_file(path, weights, output, options)
    if type(source).__module__.split(".")[0] == "onnx" and type(source).__name__ == "ModelProto":
        from ww_onnx import write_back

        return write_back.write_proto(source, weights, options)
    return None
