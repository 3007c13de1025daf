"""Flax checkpoint leaves as picklable references (``ww_core.toolkit.TensorRef``): a process-pool or cluster worker reads its own layer.

A reference holds plain values only (path, leaf paths, byte ranges, dtype, shape, the canonical ``FlaxLayout``);
``read()`` reopens the file wherever it runs. A msgpack file changed since its layers were listed is scanned again
and each leaf found by its path; a leaf that is gone, has another shape or dtype, or is cut short is an error naming
the file. Orbax arrays are restored by pytree path, their shapes checked against the listing.
"""

from __future__ import annotations

import io
import mmap
import os
from abc import abstractmethod
from dataclasses import dataclass, field, replace
from functools import lru_cache
from math import prod
from pathlib import Path
from typing import Any, Sequence, cast

import numpy as np

from ww_core.toolkit import TensorRef, widen_to_float
from ww_jax.layouts import FlaxLayout
from ww_jax.msgpack_file import LEAF_HEAD_BYTES, LeafPath, LeafSpan, array_at, chunked_array, itemsize, leaf_ranges, stamp_of

#: Why a listed leaf no longer matches the file: said by every such error.
_CHANGED = "the file changed since its layers were listed"


class StoredLeaves(TensorRef):
    """Leaves of a checkpoint file that make one stored array (alone, or side by side along axis 1: a recurrent cell's gate
    kernels); ``layout`` makes it canonical."""

    path: str
    layout: FlaxLayout

    @abstractmethod
    def stored(self) -> list[np.ndarray]:
        """Each leaf's array in its stored layout, widened to float."""

    @abstractmethod
    def beside(self, others: Sequence[StoredLeaves]) -> StoredLeaves | None:
        """One reference to this and ``others``' leaves side by side; None when they do not lie in the same file."""

    def laid_out(self, layout: FlaxLayout) -> StoredLeaves:
        """This reference with the canonical transform ``layout``."""
        return replace(cast(Any, self), layout=layout)

    def read(self) -> np.ndarray:
        arrays = self.stored()
        joined = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=1)
        return np.ascontiguousarray(self.layout.apply(joined))


@dataclass(frozen=True)
class MsgpackRef(StoredLeaves):
    """Array leaves of the Flax msgpack checkpoint ``path`` at the byte ranges listed when the file's version was ``stamp``.

    ``chunked`` is the shape of an array Flax split into flat chunks (``spans``, joined and reshaped); () otherwise.
    """

    path: str
    stamp: tuple[int, ...]
    spans: tuple[LeafSpan, ...]
    chunked: tuple[int, ...] = ()
    layout: FlaxLayout = field(default_factory=FlaxLayout)

    def stored(self) -> list[np.ndarray]:
        with open(self.path, "rb") as handle:
            version = stamp_of(os.fstat(handle.fileno()))
            spans = self.spans if version == self.stamp else self._relocated(handle, version)
            if not self.chunked:
                return [_as_float(_read_leaf(handle, self.path, span, np.empty(_nbytes(span), np.uint8)), span) for span in spans]
            raw = np.empty(sum(_nbytes(span) for span in spans), np.uint8)  # the chunks read into one buffer, not joined after
            at = 0
            for span in spans:
                at += _read_leaf(handle, self.path, span, raw[at:]).nbytes
        return [_as_float(raw, replace(spans[0], shape=self.chunked))]

    def _relocated(self, handle: io.BufferedReader, version: tuple[int, ...]) -> tuple[LeafSpan, ...]:
        """The spans where the file at ``version`` now holds the listed leaves; a ValueError naming the file for a leaf gone or changed."""
        ranges = _ranges(self.path, version)
        if not self.chunked:
            return tuple(_moved(self.path, ranges, span) for span in self.spans)
        leaf = self.spans[0].leaf[:-2]  # chunks lie at <array>/chunks/<i>
        name, listed = "/".join(leaf), f"{self.spans[0].dtype} {self.chunked}"
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                found = chunked_array(data, ranges, leaf)
            except ValueError as exc:
                raise ValueError(f"{self.path}: leaf {name!r} is no valid array now ({exc}; {_CHANGED})") from None
        if found is None:
            raise ValueError(f"{self.path}: holds no chunked leaf {name!r} any more ({_CHANGED})")
        if (found.dtype, found.shape) != (self.spans[0].dtype, self.chunked):
            raise ValueError(f"{self.path}: leaf {name!r} is {found.dtype} {found.shape} now, listed as {listed} ({_CHANGED})")
        return found.spans

    def beside(self, others: Sequence[StoredLeaves]) -> MsgpackRef | None:
        same_file = all(isinstance(o, MsgpackRef) and (o.path, o.stamp) == (self.path, self.stamp) and not o.chunked for o in others)
        if self.chunked or not same_file:
            return None
        return replace(self, spans=self.spans + tuple(span for o in others for span in o.spans))  # type: ignore[attr-defined]


@lru_cache(maxsize=4)
def _ranges(path: str, version: tuple[int, ...]) -> dict[LeafPath, tuple[int, int]]:
    """This process's scan of ``path`` at ``version`` (a scan reads every header, so once per file version)."""
    with open(path, "rb") as handle:
        if stamp_of(os.fstat(handle.fileno())) != version:
            raise ValueError(f"{path}: the file changed while it was being read")
        return leaf_ranges(handle, Path(path))


def _moved(path: str, ranges: dict[LeafPath, tuple[int, int]], span: LeafSpan) -> LeafSpan:
    """``span`` where ``ranges`` put its leaf now (its header is checked on reading); a ValueError naming the file if it is gone."""
    if span.leaf not in ranges:
        raise ValueError(f"{path}: holds no leaf {'/'.join(span.leaf)!r} any more ({_CHANGED})")
    start, end = ranges[span.leaf]
    return replace(span, start=start, end=end)


def _nbytes(span: LeafSpan) -> int:
    """Bytes of the array ``span`` was listed as."""
    return itemsize(span.dtype) * prod(span.shape)


def _read_leaf(handle: io.BufferedReader, path: str, span: LeafSpan, into: np.ndarray) -> np.ndarray:
    """The raw bytes of the array at ``span``, read into the start of ``into`` (returned) once its header matches the listing."""
    name = "/".join(span.leaf)
    handle.seek(span.start)
    head = handle.read(min(span.end - span.start, LEAF_HEAD_BYTES))
    try:
        found = array_at(head, 0, span.end - span.start)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"{path}: leaf {name!r} is no valid array now ({type(exc).__name__}: {exc}; {_CHANGED})") from None
    if found is None or (found.shape, found.dtype) != (span.shape, span.dtype):
        now = "no array" if found is None else f"{found.dtype} {found.shape}"
        raise ValueError(f"{path}: leaf {name!r} is {now} now, listed as {span.dtype} {span.shape} ({_CHANGED})")
    handle.seek(span.start + found.offset)
    raw = into[: found.nbytes]
    got = handle.readinto(raw.data)
    if got != found.nbytes:
        raise ValueError(f"{path}: leaf {name!r} is cut short ({got} of {found.nbytes} bytes; {_CHANGED})")
    return raw


def _as_float(raw: np.ndarray, span: LeafSpan) -> np.ndarray:
    """Raw native-order bytes as the array ``span`` describes, widened to float."""
    if span.dtype == "bfloat16":  # numpy has no bfloat16: its bit pattern, widened exactly
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(span.shape)
    return widen_to_float(raw.view(np.dtype(span.dtype)).reshape(span.shape))


@dataclass(frozen=True)
class OrbaxRef(StoredLeaves):
    """Arrays ``leaves`` (stored pytree paths) of the Orbax checkpoint item ``path``, each restored alone, listed with ``shapes``."""

    path: str
    leaves: tuple[LeafPath, ...]
    shapes: tuple[tuple[int, ...], ...]
    layout: FlaxLayout = field(default_factory=FlaxLayout)

    def stored(self) -> list[np.ndarray]:
        from ww_jax.orbax_checkpoint import restore_leaf

        arrays = []
        for leaf, shape in zip(self.leaves, self.shapes, strict=True):
            array = widen_to_float(restore_leaf(Path(self.path), leaf))
            if array.shape != shape:
                raise ValueError(f"{self.path}: array {'/'.join(leaf)!r} is {array.shape} now, listed as {shape} ({_CHANGED})")
            arrays.append(array)
        return arrays

    def beside(self, others: Sequence[StoredLeaves]) -> OrbaxRef | None:
        if not all(isinstance(o, OrbaxRef) and o.path == self.path for o in others):
            return None
        leaves = self.leaves + tuple(leaf for o in others for leaf in o.leaves)  # type: ignore[attr-defined]
        return replace(self, leaves=leaves, shapes=self.shapes + tuple(shape for o in others for shape in o.shapes))  # type: ignore[attr-defined]
