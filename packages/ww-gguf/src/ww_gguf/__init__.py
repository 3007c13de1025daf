"""ww-gguf: the weight matrices of GGUF (llama.cpp) files for ww, dequantized one tensor at a time.

Registered under the ``ww`` entry-point group. Importing this module does not import gguf:
files are recognized by their ``.gguf`` suffix first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from ww_core import LayerMatrix, hookimpl


@hookimpl
def ww_adapter_info() -> dict[str, Any]:
    """Describe this adapter for ``ww plugins``."""
    return {
        "name": "gguf",
        "package": "ww-gguf",
        "handles": ".gguf files (F32/F16/BF16 and the quantized types gguf dequantizes; llama-family names as on Hugging Face)",
        "suffixes": [".gguf"],
    }


@hookimpl
def ww_layers(source: Any, options: dict[str, Any]) -> Iterable[LayerMatrix] | None:
    """The weight matrices of a ``.gguf`` file in file order, or None when ``source`` is not one."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    path = Path(source)
    if path.suffix.lower() != ".gguf" or not path.is_file():
        return None
    from ww_gguf.layers import gguf_layers

    return list(gguf_layers(path))
