"""New canonical weights into ONNX initializers and Constant tensors: a new ModelProto, or a new ``.onnx`` file."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import onnx
from onnx import numpy_helper

from ww_core.platform.toolkit import written_whole
from ww_onnx.graph import weight_uses
from ww_onnx.layers import gates_restored, rows
from ww_onnx.model import load_model
from ww_onnx.tensors import is_external


def _update(model: onnx.ModelProto, weights: Mapping[str, np.ndarray], options: Mapping[str, Any], where: str) -> None:
    """Write every named layer into ``model``'s tensors in place (their dtype kept); KeyError naming unknown layers."""
    written = set()
    for use in weight_uses(model.graph):
        wanted = [row for row in rows(use, dict(options)) if row.name in weights]
        if not wanted:
            continue
        if is_external(use.tensor):
            raise ValueError(f"{where}: tensor {use.name!r} is stored in external data; pass the .onnx path instead")
        stored = numpy_helper.to_array(use.tensor).copy()
        for row in wanted:
            array = gates_restored(np.asarray(weights[row.name]), row.gate_order)
            block = np.swapaxes(array, 0, 1) if row.transpose else array
            target = stored[row.index] if row.index else stored
            if target.shape != block.shape:
                raise ValueError(f"{where}: layer {row.name!r} new weights have canonical shape {array.shape}, stored {target.shape}")
            if row.index:
                stored[row.index] = block
            else:
                stored = block.astype(stored.dtype)
            written.add(row.name)
        use.tensor.CopyFrom(numpy_helper.from_array(stored.astype(numpy_helper.to_array(use.tensor).dtype), use.tensor.name))
    missing = sorted(set(weights) - written)
    if missing:
        raise KeyError(f"{where}: no layer named {missing}")


def write_proto(model: onnx.ModelProto, weights: Mapping[str, np.ndarray], options: Mapping[str, Any]) -> onnx.ModelProto:
    """A copy of ``model`` with the named layers replaced; ``model`` itself is unchanged."""
    updated = onnx.ModelProto()
    updated.CopyFrom(model)
    _update(updated, weights, options, "onnx.ModelProto")
    return updated


def write_file(path: Path, weights: Mapping[str, np.ndarray], output: Path | None, options: Mapping[str, Any]) -> Path:
    """A new ``.onnx`` at ``output``; external data, if the input had any, goes to ``<output>.data`` beside it."""
    if output is None:
        raise ValueError(f"{path}: no output path given for the new weights")
    model = load_model(path)
    external = any(is_external(tensor) for tensor in model.graph.initializer)
    if external:
        onnx.load_external_data_for_model(model, str(path.parent))
    _update(model, weights, options, str(path))
    if external:
        _save_with_external_data(model, output)
    else:
        with written_whole(output) as handle:  # a full disk never leaves half an .onnx where the new model was to be
            onnx.save_model(model, handle)
    return output


def _save_with_external_data(model: onnx.ModelProto, output: Path) -> None:
    """``output`` and its ``<output>.data``, written whole into a hidden folder beside them, then moved into place."""
    data = output.with_name(f"{output.name}.data")
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        onnx.save_model(model, str(staging / output.name), save_as_external_data=True, all_tensors_to_one_file=True, location=data.name)
        if (staging / data.name).exists():  # onnx keeps tensors under its size threshold inside the .onnx
            os.replace(staging / data.name, data)
        os.replace(staging / output.name, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
