"""HDF5 access confined to the model's own file: external storage, virtual datasets and external links are refused.

HDF5 lets a dataset keep its bytes in another file (external raw storage, virtual datasets)
and a group link into another file; followed, a model could make ww analyze ``/etc/passwd``.
A dataset's bytes must be in the file: one never written (or partly) would read as HDF5's fill
value, and compressed chunks inflate under the toolkit's one cap. Errors name the model file and
the object, never the other file's bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import h5py

from ww_core.platform.toolkit import UntrustedDataError, check_inflated, check_present, regular_file


def open_file(source: Path | IO[bytes], path: Path, what: str = "") -> h5py.File:
    """``source`` opened read-only; a ValueError naming ``path`` (and the archive member ``what``) when it is no HDF5 file."""
    where = f"{path}{': ' + what if what else ''}"
    try:
        return h5py.File(regular_file(source) if isinstance(source, Path) else source, "r")
    except OSError as exc:
        reason = str(exc)
        if "signature" in reason:
            raise ValueError(f"{where}: not an HDF5 file (no HDF5 signature)") from None
        raise ValueError(f"{where}: unreadable HDF5 file ({reason.removeprefix('Unable to synchronously open file ')})") from None


def member(group: h5py.Group, name: str, path: Path) -> Any:
    """The object ``name`` of ``group``, refused when it is missing or lives in another file."""
    link = group.get(name, getlink=True)
    label = f"{group.name.rstrip('/')}/{name}".lstrip("/")
    if link is None:
        raise ValueError(f"{path}: HDF5 object {label!r} is missing")
    if isinstance(link, h5py.ExternalLink):
        raise ValueError(f"{path}: HDF5 object {label!r} links to another file, outside the model: refused")
    try:
        found = group[name]
    except (KeyError, OSError) as exc:  # a dangling soft link, a damaged object header
        raise ValueError(f"{path}: HDF5 object {label!r} cannot be read ({exc})") from None
    if isinstance(found, h5py.Dataset):
        check_dataset(found, path, label)
    return found


def check_dataset(dataset: h5py.Dataset, path: Path, label: str) -> None:
    """Refuse a dataset whose bytes live outside the file (external raw storage or a virtual dataset)."""
    if dataset.external:
        raise ValueError(f"{path}: HDF5 dataset {label!r} keeps its data in a file outside the model (external storage): refused")
    if dataset.is_virtual:
        raise ValueError(f"{path}: HDF5 dataset {label!r} is a virtual dataset reading files outside the model: refused")
    claimed, stored = dataset.size * dataset.dtype.itemsize, dataset.id.get_storage_size()
    what = f"{path}: HDF5 dataset {label!r}"
    if dataset.id.get_create_plist().get_nfilters():  # compressed chunks: the one inflation cap
        check_inflated(what, claimed, stored)
    else:  # never written, or partly: HDF5 would make up the rest from its fill value
        check_present(what, claimed, stored)


def text(value: Any, path: Path, what: str) -> str:
    """An HDF5 string attribute as text; a ValueError naming ``path`` and ``what`` when it is not UTF-8."""
    try:
        return value.decode("utf-8") if isinstance(value, bytes) else str(value).encode("utf-8").decode("utf-8")
    except UnicodeError:
        raise UntrustedDataError(f"{path}: {what} is not UTF-8 text") from None


def dataset(group: h5py.Group, name: str, path: Path) -> h5py.Dataset:
    """The dataset at ``name`` below ``group``, walked link by link so nothing outside the file is opened."""
    current: Any = group
    for part in [p for p in name.split("/") if p]:
        current = member(current, part, path)
    if not isinstance(current, h5py.Dataset):
        raise ValueError(f"{path}: HDF5 object {name.lstrip('/')!r} is not a dataset")
    return current
