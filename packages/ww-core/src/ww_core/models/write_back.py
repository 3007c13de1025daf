"""Hand new weights to the adapter that owns a source (hook ``ww_write_weights``) and name the output file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ww_core.pipeline.analysis import source_label
from ww_core.pipeline.plugins import UnknownSourceError, read_source, reader_key, route
from ww_core.pipeline.plugins import write_weights as adapter_write
from ww_core.platform.messages import printable
from ww_core.results.options import AnalysisOptions
from ww_core.results.outputs import check_write_back, is_weight_name
from ww_core.sources import hf_cache


class WriteBackError(TypeError):
    """No installed adapter can write weights back into this kind of source."""


def model_folder(path: Path) -> Path | None:
    """The folder a reader would read ``path``'s model from: ``path`` itself when a folder, a file's folder when some
    installed reader claims that folder (a ``.safetensors`` or torch file's), else None (a ``.npz`` among others)."""
    if path.is_dir():
        return path
    try:
        route(path.parent)
    except UnknownSourceError:
        return None
    except (OSError, ValueError):  # a reader claims it, but something in it is broken
        return path.parent
    return path.parent


def default_output(path: Path, tag: str) -> Path:
    """Where new weights go unless told, never inside the model: a folder ``m`` → ``m-<tag>`` beside it; a file in a
    model folder, ``m/model.safetensors`` → ``m-<tag>/model.safetensors`` (a second weights file in ``m`` would
    change what ``m`` holds); any other file ``model.npz`` → ``model-<tag>.npz`` beside it; anything in the Hugging
    Face cache → ``<name>-<tag>`` in the working folder (ww never writes there)."""
    repo = hf_cache.repo_folder_of(path.resolve())
    if repo is not None:
        moved = Path(f"{repo.name.split('--')[-1]}-{tag}")
        return moved if path.is_dir() else moved / path.name
    if path.is_dir():
        return path.with_name(f"{path.name}-{tag}")
    if model_folder(path) is not None:
        folder = path.resolve().parent
        return folder.with_name(f"{folder.name}-{tag}") / path.name
    suffix = path.suffix
    return path.with_name(f"{path.name[: len(path.name) - len(suffix)]}-{tag}{suffix}")


def output_path(source: Any, output: Any, tag: str) -> Path | None:
    """Where a file source's new weights go: ``output`` or the default; ValueError naming it when that is the input,
    inside the model's folder or inside the Hugging Face cache (``check_write_back``), before anything is computed."""
    if not isinstance(source, (str, os.PathLike)):
        if output is not None:
            raise ValueError("output= applies to file sources only; in-memory models are updated or returned")
        return None
    path = Path(hf_cache.resolve(source))
    target = Path(output) if output is not None else default_output(path, tag)
    folder = model_folder(path)
    check_write_back(path, target, folder)
    if folder is not None:  # the new weights are a model folder of their own
        _check_unmixed(target if path.is_dir() else target.parent, folder)
    return target


def _check_unmixed(new: Path, model: Path) -> None:
    """ValueError naming the weights files already in ``new`` that ``model`` has no file of that name for: the new
    model would be read together with them. What an earlier write-back of ``model`` left there is replaced."""
    if not new.is_dir():
        return
    own = {entry.name for entry in model.iterdir()}
    foreign = sorted(entry.name for entry in new.iterdir() if is_weight_name(entry) and entry.name not in own)
    if foreign:
        listed = ", ".join(printable(name) for name in foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ValueError(
            f"{printable(str(new))} already holds weights ({listed}) that the new model would be read with; "
            "choose another output or remove them"
        )


def write_weights(source: Any, weights: Mapping[str, np.ndarray], options: AnalysisOptions, *, output: Any = None, tag: str = "new") -> Any:
    """Write ``weights`` (layer name → canonical array) into ``source`` through its adapter; returns the updated model or new path."""
    target = output_path(source, output, tag)
    source = hf_cache.resolve(source)  # a repo id: its snapshot folder, read where it is and written elsewhere
    reader = read_source(source, options.adapter_options(), options.adapter).adapter
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
    found = adapter_write(reader_key(reader) or reader["name"], options.adapter_options(), source=source, weights=weights, output=target)
    if found is None:
        raise WriteBackError(f"adapter {reader['name']!r}, which reads {source_label(source)}, cannot write weights back into it")
    return found
