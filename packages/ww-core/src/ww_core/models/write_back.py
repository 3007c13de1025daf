"""Hand new weights to the adapter that owns a source (hook ``ww_write_weights``) and name the output file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ww_core.pipeline.analysis import source_label
from ww_core.pipeline.plugins import read_source, reader_key
from ww_core.pipeline.plugins import write_weights as adapter_write
from ww_core.results.options import AnalysisOptions


class WriteBackError(TypeError):
    """No installed adapter can write weights back into this kind of source."""


def default_output(path: Path, tag: str) -> Path:
    """``model.safetensors`` → ``model-<tag>.safetensors`` in the same folder (a folder gets ``<name>-<tag>``)."""
    if path.is_dir():
        return path.with_name(f"{path.name}-{tag}")
    suffixes = "".join(path.suffixes[-1:])
    return path.with_name(f"{path.name[: len(path.name) - len(suffixes)]}-{tag}{suffixes}")


def output_path(source: Any, output: Any, tag: str) -> Path | None:
    """Where a file source's new weights go: ``output`` or the default beside it; never the source itself."""
    if not isinstance(source, (str, os.PathLike)):
        if output is not None:
            raise ValueError("output= applies to file sources only; in-memory models are updated or returned")
        return None
    path = Path(source)
    target = Path(output) if output is not None else default_output(path, tag)
    if target.resolve() == path.resolve():
        raise ValueError(f"{path}: refusing to overwrite the input; choose another output")
    return target


def write_weights(source: Any, weights: Mapping[str, np.ndarray], options: AnalysisOptions, *, output: Any = None, tag: str = "new") -> Any:
    """Write ``weights`` (layer name → canonical array) into ``source`` through its adapter; returns the updated model or new path."""
    target = output_path(source, output, tag)
    reader = read_source(source, options.adapter_options(), options.adapter).adapter
    found = adapter_write(reader_key(reader) or reader["name"], options.adapter_options(), source=source, weights=weights, output=target)
    if found is None:
        raise WriteBackError(f"adapter {reader['name']!r}, which reads {source_label(source)}, cannot write weights back into it")
    return found
