"""Torch-file layers as picklable references: a worker process reopens the file (memory-mapped, weights only) itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ww_core.platform.toolkit import Layout, TensorRef, file_version
from ww_torch import tensors as torch_tensors
from ww_torch.files import find_tensors, load_file


@lru_cache(maxsize=4)
def _tensors(path: str, version: tuple[int, ...]) -> Mapping[str, torch.Tensor]:
    """This process's memory-mapped state dict of ``path`` (one per file version); pickled code is refused."""
    found = find_tensors(load_file(Path(path), trust_pickle=False), Path(path))
    if isinstance(found, torch.nn.Module):
        raise ValueError(f"{path}: holds a whole module, not a state dict")
    return found


@dataclass(frozen=True)
class TorchFileRef(TensorRef):
    """Tensor ``key`` of the state dict in the torch file ``path``, laid out canonically by ``layout``."""

    path: str
    key: str
    layout: Layout = field(default_factory=Layout)

    def read(self) -> np.ndarray:
        tensors = _tensors(self.path, file_version(self.path))
        if self.key not in tensors:
            raise ValueError(f"{self.path}: holds no tensor {self.key!r} any more")
        tensor = tensors[self.key]
        picked = tensor[self.layout.pick] if self.layout.pick else tensor
        array = torch_tensors.to_numpy(picked)
        return np.swapaxes(array, 0, 1) if self.layout.swap else array


def file_refs(path: Path, tensors: Mapping[str, torch.Tensor] | torch.nn.Module, trust_pickle: bool) -> dict[int, tuple[str, str]]:
    """Where each tensor of a weights-only state dict lives, by tensor identity: (file, key).

    Empty when a worker could not reopen the file alike (pickled code trusted, a whole module).
    """
    if trust_pickle or isinstance(tensors, torch.nn.Module):
        return {}
    return {id(tensor): (str(path), key) for key, tensor in tensors.items()}
