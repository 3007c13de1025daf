"""Core's built-in adapter: numpy mappings, ``.npz`` and ``.safetensors``, no framework needed."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from math import prod
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ww_core.platform.hookspecs import hookimpl
from ww_core.platform.named_arrays import layers_from_named, state_dict_reference_ids
from ww_core.platform.protocol import LayerMatrix
from ww_core.platform.toolkit import read_npy_header
from ww_core.platform.untrusted import UntrustedDataError, check_inflation
from ww_core.sources import npz_member, safetensors_file


@hookimpl
def ww_adapter_info() -> dict[str, Any]:
    """Describe the built-in sources for ``ww plugins``."""
    from ww_core.platform.version import __version__

    return {
        "name": "ww-core",
        "package": "ww-core",
        "version": __version__,
        "handles": "dict of numpy arrays, .npz, .safetensors (file or shard folder)",
        "suffixes": [".npz", ".safetensors"],
        "modules": ["numpy", "ww_core"],
        "catch_all": True,  # asked last about any source no other declaration matches: an empty dict is reported as empty
    }


@hookimpl(trylast=True)
def ww_layers(source: Any, options: dict[str, Any]) -> Iterable[LayerMatrix] | None:
    """Claim numpy mappings (an empty one too, so it is reported as empty), ``.npz`` files, safetensors files/folders and snapshots."""
    from ww_core.sources.snapshot import Snapshot

    if isinstance(source, Snapshot):
        return source.layers
    if isinstance(source, Mapping) and all(isinstance(v, np.ndarray) for v in source.values()):
        return _mapping_layers(source, bool(options.get("fused_qkv")))
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if safetensors_file.is_safetensors(path):
            ids = safetensors_file.reference_ids(path)
            return layers_from_named(safetensors_file.iter_tensors(path), str(path), "safetensors", ids, bool(options.get("fused_qkv")))
        if path.suffix == ".npz" and path.is_file():
            return _npz_layers(path, bool(options.get("fused_qkv")))
    return None


def _constant(array: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: array


def _mapping_layers(arrays: Mapping[str, np.ndarray], fused_qkv: bool) -> Iterable[LayerMatrix]:
    entries = [(str(name), tuple(a.shape), _constant(a), a.dtype.name) for name, a in arrays.items()]
    ids = state_dict_reference_ids(map(str, arrays), start=1)
    return layers_from_named(entries, "dict of numpy arrays", "numpy.ndarray", ids, fused_qkv)


def _npz_layers(path: Path, fused_qkv: bool) -> Iterable[LayerMatrix]:
    """Members' shapes from their .npy headers; each member is read only when its layer loads (``NpzMember``).

    The archive is opened once per process and shared by the readers (``npz_member.open_archive``):
    reopening it per layer re-read the zip's central directory every time, quadratic in the number of members.
    """
    try:
        archive, lock = npz_member.open_archive(path)
    except UntrustedDataError:
        raise
    except Exception as exc:  # zip parsers raise many types; all mean a corrupt file
        raise ValueError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    try:
        with lock:
            members = [info for info in archive.infolist() if info.filename.endswith(".npy")]
            _check_unique([info.filename for info in members])
            headers = {info.filename[: -len(".npy")]: _npz_member_header(archive, info, path) for info in members}
    except UntrustedDataError:
        raise
    except Exception as exc:  # so do .npy header parsers
        raise ValueError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    entries = [(name, shape, npz_member.NpzMember(str(path), name + ".npy"), dtype) for name, (shape, dtype) in headers.items()]
    return layers_from_named(entries, str(path), "npz", fused_qkv=fused_qkv)


def _check_unique(names: list[str]) -> None:
    """Refuse a member named twice: zipfile would read the last one, a silent choice between two tensors."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"member {name!r} appears twice in the archive")
        seen.add(name)


def _npz_member_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> tuple[tuple[int, ...], str]:
    """A member's shape and dtype name from its .npy header, checked against the member's size, without reading its data."""
    check_inflation(info, str(path))
    with archive.open(info) as handle:
        shape, dtype, header_bytes = read_npy_header(handle)
    claimed = prod(shape) * dtype.itemsize
    if not dtype.hasobject and header_bytes + claimed != info.file_size:
        held = info.file_size - header_bytes
        raise ValueError(f"member {info.filename!r} claims shape {shape} {dtype} ({claimed} bytes) but holds {held}")
    return tuple(shape), dtype.name


@hookimpl(trylast=True)
def ww_write_weights(source: Any, weights: Mapping[str, np.ndarray], output: Path | None) -> Any | None:
    """A numpy mapping gets a new dict; ``.npz`` and safetensors sources a new file at ``output``."""
    from ww_core.sources import write_files

    if isinstance(source, Mapping) and all(isinstance(v, np.ndarray) for v in source.values()):
        return write_files.write_mapping(source, weights)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if output is None:
            raise ValueError(f"{path}: no output path given for the new weights")
        if safetensors_file.is_safetensors(path):
            return write_files.write_safetensors(path, weights, Path(output))
        if path.suffix == ".npz" and path.is_file():
            return write_files.write_npz(path, weights, Path(output))
    return None
