"""Open an ``.onnx`` file without pulling its external data into memory."""

from __future__ import annotations

from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from ww_core.platform.toolkit import regular_file


def load_model(path: Path) -> onnx.ModelProto:
    """The model graph of ``path`` (a regular file: onnx opens it itself); external tensors stay on disk (read lazily per layer)."""
    regular_file(path)
    try:
        return onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable ONNX model (corrupted or truncated protobuf: {exc})") from exc
