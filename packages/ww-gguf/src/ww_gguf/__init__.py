"""ww-gguf: the weight matrices of GGUF (llama.cpp) files for ww, dequantized one tensor at a time.

Registered under the ``ww`` entry-point group. Importing this module does not import gguf:
files are recognized by their ``.gguf`` suffix first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from ww_core.platform.toolkit import AdapterOptions, LayerMatrix, hookimpl


@hookimpl
def ww_adapter_info() -> dict[str, Any]:
    """Describe this adapter for ``ww plugins``."""
    return {
        "name": "gguf",
        "package": "ww-gguf",
        "handles": ".gguf files (F32/F16/BF16 and the quantized types gguf dequantizes; llama-family names as on Hugging Face)",
        "suffixes": [".gguf"],
        "protocol": 1,
        "options": [],
    }


@hookimpl
def ww_layers(source: Any, options: AdapterOptions) -> Iterable[LayerMatrix] | None:
    """The weight matrices of a ``.gguf`` file (or a folder's only one) in file order, or None when ``source`` is neither."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    path = Path(source)
    if path.is_dir():
        path = _only_gguf_file(path)
    if path.suffix.lower() != ".gguf" or not path.is_file():
        return None
    from ww_gguf.layers import gguf_layers

    return list(gguf_layers(path))


#: Weight files other readers own: a folder holding any is not a GGUF folder.
_OTHER_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".keras", ".h5", ".msgpack")


def _only_gguf_file(folder: Path) -> Path:
    """The one model (file, or first split) of a folder of GGUF files (a downloaded repo); the folder itself when it is no such folder."""
    from ww_gguf.splits import one_model

    files = [p for p in folder.iterdir() if p.is_file()]
    ggufs = sorted(p for p in files if p.suffix.lower() == ".gguf")
    if not ggufs or any(p.suffix.lower() in _OTHER_WEIGHTS for p in files):
        return folder
    if len(ggufs) > 1 and not one_model(ggufs):
        raise ValueError(f"{folder}: holds {len(ggufs)} GGUF files ({', '.join(p.name for p in ggufs)}); pass one of them")
    return ggufs[0]
