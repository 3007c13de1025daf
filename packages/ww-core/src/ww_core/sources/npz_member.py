"""A picklable reference to one ``.npz`` member: any process reads it, reusing its own open archive."""

from __future__ import annotations

import os
import threading
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ww_core.platform.tensor_refs import TensorRef, file_version
from ww_core.platform.toolkit import read_npy_header
from ww_core.platform.untrusted import check_inflation, open_regular


@lru_cache(maxsize=8)
def _archive(path: str, version: tuple[int, ...], process: int) -> tuple[zipfile.ZipFile, threading.Lock]:
    """This process's open archive (one per file version): reopening per member re-read the central directory, quadratic in members.

    Keyed by process id too: a forked worker inherits the cache, and processes sharing one open file share its offset.
    """
    return zipfile.ZipFile(open_regular(path)), threading.Lock()


def open_archive(path: Path) -> tuple[zipfile.ZipFile, threading.Lock]:
    """The archive at ``path``, opened once per process and file version, with the lock its readers share."""
    return _archive(str(path), file_version(path), os.getpid())


@dataclass(frozen=True)
class NpzMember(TensorRef):
    """Member ``member`` (``name.npy``) of the archive ``path``; pickles are refused, zip bombs too."""

    path: str
    member: str

    def read(self) -> np.ndarray:
        archive, lock = open_archive(Path(self.path))
        with lock:
            check_inflation(archive.getinfo(self.member), self.path)
            with archive.open(self.member) as handle:
                if read_npy_header(handle)[1].hasobject:
                    raise ValueError(f"member {self.member!r} holds Python objects (a pickle): never unpickled, even with trust_pickle")
            with archive.open(self.member) as handle:
                return np.asarray(np.lib.format.read_array(handle, allow_pickle=False))
