"""Example ww adapter: a folder of ``.npy`` files, one canonical-layout weight matrix per file.

Kind from the array rank (2-D: dense, or embedding when the file name contains
"embed"; 3/4/5-D: conv1d/2d/3d in (out, in, *kernel)). Order from ``order.txt`` (one
file stem per line) when present, else file names sorted. Written against ww-core's public
names only: ``ww_core.hookimpl``, ``ww_core.LayerMatrix`` and the adapter toolkit ``ww_core.platform.toolkit``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ww_core.platform.toolkit import AdapterOptions, LayerMatrix, hookimpl, kind_from_rank, read_npy_header

ORDER_FILE = "order.txt"


@hookimpl
def ww_adapter_info() -> dict[str, Any]:
    """Describe this adapter for ``ww plugins``."""
    return {
        "name": "npydir",
        "package": "ww-npydir",
        "handles": "folders of .npy files (one layer per file, optional order.txt)",
        "suffixes": [".npy"],  # asked about folders holding .npy files (and .npy files)
        "options": [],  # it reads no --extra option
        "protocol": 1,  # the ww adapter protocol this adapter was written for
    }


@hookimpl
def ww_layers(source: Any, options: AdapterOptions) -> Iterable[LayerMatrix] | None:
    """The layers of a folder holding ``.npy`` files; None for anything else."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    folder = Path(source)
    if not folder.is_dir() or not any(folder.glob("*.npy")):
        return None
    return _layers(folder)


def ordered_files(folder: Path) -> list[Path]:
    """The ``.npy`` files in ``order.txt`` order, or sorted by name; a listed file that is missing is an error."""
    order_file = folder / ORDER_FILE
    if not order_file.is_file():
        return sorted(folder.glob("*.npy"))
    stems = [line.strip() for line in order_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    files = [folder / f"{stem.removesuffix('.npy')}.npy" for stem in stems]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"{order_file}: lists {missing}, which are not in {folder}")
    return files


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """Shape and dtype from the .npy header, without reading the data."""
    try:
        with path.open("rb") as handle:
            shape, dtype, _ = read_npy_header(handle)
    except ValueError as exc:
        raise ValueError(f"{path}: not a .npy file ({exc})") from exc
    return shape, dtype


def _loader(path: Path) -> Callable[[], np.ndarray]:
    return lambda: np.load(path, mmap_mode="r", allow_pickle=False)


def _layers(folder: Path) -> list[LayerMatrix]:
    layers: list[LayerMatrix] = []
    for path in ordered_files(folder):
        shape, dtype = _header(path)
        kind = kind_from_rank(len(shape))
        if kind is None or dtype.kind != "f":
            continue
        if kind == "dense" and "embed" in path.stem.lower():
            kind = "embedding"
        layers.append(LayerMatrix(path.stem, len(layers), kind, shape, _loader(path), origin=str(path), framework_type="npy"))
    return layers
