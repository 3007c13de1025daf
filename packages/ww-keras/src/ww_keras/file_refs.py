"""Keras file weights as picklable references (``toolkit.TensorRef``): a process-pool or cluster worker reads its own dataset.

A reference holds plain values only: the file, the HDF5 dataset's name (inside the ``.keras`` archive's
``model.weights.h5`` member, or in a legacy ``.h5`` file), its listed shape and the canonical ``KerasLayout``.
``read()`` reopens the file wherever it runs, with the same confinement as the client (no external links or
storage, no zip bomb); a dataset gone or of another shape than listed is an error naming the file.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ww_core.platform.toolkit import TensorRef, check_inflation, open_regular
from ww_keras import hdf5
from ww_keras.layouts import KerasLayout


@dataclass(frozen=True)
class KerasFileRef(TensorRef):
    """Dataset ``dataset`` (listed with ``shape``) of the HDF5 file ``path``, or of its archive member ``member`` when set."""

    path: str
    dataset: str
    shape: tuple[int, ...]
    member: str = ""
    layout: KerasLayout = field(default_factory=KerasLayout)

    def laid_out(self, layout: KerasLayout) -> KerasFileRef:
        """This reference with the canonical transform ``layout``."""
        return replace(self, layout=layout)

    def read(self) -> np.ndarray:
        path = Path(self.path)
        if not self.member:
            with hdf5.open_file(path, path) as handle:
                stored = self._stored(handle)
        else:
            with open_regular(path) as file, zipfile.ZipFile(file) as archive:
                check_inflation(archive.getinfo(self.member), self.path)  # a zip bomb is refused here as on the client
                with archive.open(self.member) as member, hdf5.open_file(member, path, self.member) as handle:
                    stored = self._stored(handle)
        return np.ascontiguousarray(self.layout.apply(stored))

    def _stored(self, handle: hdf5.h5py.File) -> np.ndarray:
        found = hdf5.dataset(handle, self.dataset, Path(self.path))
        if tuple(found.shape) != self.shape:
            name = self.dataset.lstrip("/")
            raise ValueError(f"{self.path}: dataset {name!r} is {tuple(found.shape)} now, listed as {self.shape} (the file changed since)")
        return np.asarray(found[()])
