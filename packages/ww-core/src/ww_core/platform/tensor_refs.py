"""Picklable references to tensors in files, so a worker process or cluster node reads a layer's bytes itself.

A ``TensorRef`` is what an adapter puts in ``LayerMatrix.load`` when the weights live in a file both the
client and the workers can see: it holds only a path, names, offsets, a dtype, a shape and the canonical
transform (no closure), and ``read()`` reopens the file wherever it runs. analyze() ships such layers to
a process pool or a cluster without loading them in the client (docs/distributed.md).
"""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

import numpy as np

from ww_core.platform.protocol import widen_to_float
from ww_core.platform.untrusted import open_regular

#: ``FileSpan.dtype`` for bfloat16 bit patterns (numpy has no bfloat16).
BF16 = "bfloat16"


def bf16_to_float32(raw: np.ndarray) -> np.ndarray:
    """Widen bfloat16 bit patterns (uint16) to float32 exactly."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


class TensorRef(ABC):
    """A tensor located in a file: picklable, closure-free; ``read()`` (or calling it) returns the canonical array.

    Subclasses are frozen dataclasses of plain values with a ``path`` (the file read), so a worker can rebuild
    the array from storage and an error can name the file.
    """

    path: str

    @abstractmethod
    def read(self) -> np.ndarray:
        """The tensor in the canonical layout (docs/layouts.md), as any float dtype."""

    def __call__(self) -> np.ndarray:
        return self.read()


@dataclass(frozen=True)
class Layout:
    """The canonical transform of a stored tensor: ``pick`` indexes it (e.g. one q/k/v row block), then ``axes``
    reorders its axes (``(0, 3, 1, 2)``: OHWI → OIHW), then ``swap`` swaps axes 0 and 1."""

    pick: tuple[int | slice, ...] = ()
    swap: bool = False
    axes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.axes and sorted(self.axes) != list(range(len(self.axes))):
            raise ValueError(f"Layout axes {self.axes} must be a permutation of 0..{len(self.axes) - 1}")

    def apply(self, array: np.ndarray) -> np.ndarray:
        """``array`` picked, its axes reordered, then its first two axes swapped, as asked."""
        picked = array[self.pick] if self.pick else array
        moved = np.transpose(picked, self.axes) if self.axes else picked
        return np.swapaxes(moved, 0, 1) if self.swap else moved


def _widened(raw: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == BF16:
        return (np.asarray(raw).astype(np.uint32) << 16).view(np.float32)
    return widen_to_float(raw)


@dataclass(frozen=True)
class FileSpan(TensorRef):
    """Raw little-endian tensor bytes at ``offset`` of ``path`` (safetensors, ONNX external data, ...), memory-mapped on read.

    ``dtype`` is a numpy dtype string (``"<f4"``) or ``BF16``; ``shape`` is the stored shape, ``layout`` the
    transform to the canonical one. Narrow floats and integers are widened like ``widen_to_float``.
    """

    path: str
    offset: int
    dtype: str
    shape: tuple[int, ...]
    layout: Layout = Layout()

    def read(self) -> np.ndarray:
        stored = np.dtype("<u2") if self.dtype == BF16 else np.dtype(self.dtype)
        if not prod(self.shape):
            raw = np.zeros(self.shape, stored)
        else:
            with open_regular(self.path) as handle:  # never a FIFO swapped in after listing
                raw = np.memmap(handle, dtype=stored, mode="r", offset=self.offset, shape=self.shape)
        return self.layout.apply(_widened(raw, self.dtype))


def file_version(path: str | Path) -> tuple[int, ...]:
    """What tells one version of a file from another: device, inode, size, mtime and ctime (ns).

    Key per-process caches of opened files by it: a file replaced by another of the same size and
    mtime (a new inode) or rewritten in place (a new ctime, which no one can set back) is opened anew.
    """
    info = Path(path).stat()
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def worker_name() -> str:
    """Where this code runs, as failed rows name it: ``host:pid``."""
    import os

    return f"{socket.gethostname()}:{os.getpid()}"


def ref_of(load: Any) -> TensorRef | None:
    """The TensorRef behind a layer's ``load``, or None when the weights only exist in this process."""
    return load if isinstance(load, TensorRef) else None
