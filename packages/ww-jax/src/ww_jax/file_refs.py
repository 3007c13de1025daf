"""Flax checkpoint leaves as picklable references (``toolkit.TensorRef``): a process-pool or cluster worker reads its own layer.

A reference holds plain values only (path, leaf paths, byte ranges, dtype, shape, the canonical ``FlaxLayout``);
``read()`` reopens the file wherever it runs. Each format's reader defines its own: ``MsgpackRef`` (msgpack_file: a file
changed since its layers were listed is scanned again and each leaf found by its path; a leaf that is gone, has another
shape or dtype, or is cut short is an error naming the file) and ``OrbaxRef`` (orbax_checkpoint: restored by pytree
path, shapes checked against the listing).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import replace
from typing import Any, Sequence, cast

import numpy as np

from ww_core.platform.toolkit import TensorRef
from ww_jax.layouts import FlaxLayout

#: Why a listed leaf no longer matches the file: said by every such error.
CHANGED = "the file changed since its layers were listed"


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
