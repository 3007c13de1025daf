"""Weight references (a tensor plus how to lay it out) and their numbering into LayerMatrix records."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Iterator, Mapping

import torch

from ww_core.platform.toolkit import CONV_KIND_BY_RANK, LayerKind, LayerMatrix, Layout, unanalyzable_reason
from ww_torch.file_refs import TorchFileRef
from ww_torch.tensors import canonical_shape, device_name, loader

QKV = ("q", "k", "v")
GATES = {4: ("i", "f", "g", "o"), 3: ("r", "z", "n")}


@dataclass(frozen=True)
class WeightRef:
    """One tensor to report: ``rows`` picks a slice of axis 0, ``transpose`` swaps the first two axes.

    ``reference_id`` is the id weightwatcher 0.7.7 gives the module or key it came from.
    """

    name: str
    kind: LayerKind
    tensor: torch.Tensor
    framework_type: str
    transpose: bool = False
    rows: slice | None = None
    reference_id: int | None = None
    framework_path: str = ""


def conv_kind(ndim: int) -> LayerKind | None:
    """conv1d/2d/3d for a 3-/4-/5-D (out, in, *kernel) weight, else None."""
    return CONV_KIND_BY_RANK.get(ndim)


def split_rows(ref: WeightRef, labels: tuple[str, ...]) -> list[WeightRef]:
    """Cut a fused weight (e.g. q/k/v or LSTM gates stacked along axis 0) into equal row blocks."""
    size = ref.tensor.shape[0] // len(labels)
    return [replace(ref, name=f"{ref.name}.{label}", rows=slice(i * size, (i + 1) * size)) for i, label in enumerate(labels)]


def to_layers(refs: Iterable[WeightRef], origin: str, located: Mapping[int, tuple[str, str]] | None = None) -> Iterator[LayerMatrix]:
    """Number the references 0, 1, ... in the order given and wrap them as lazy LayerMatrix records.

    Integer, bool and empty tensors are marked ``skip`` with core's reason, as on every route.
    A tensor ``located`` in a file (by identity: file, key) loads through a picklable ``TorchFileRef``,
    so a process pool or cluster worker reads it itself (docs/distributed.md).
    """
    for index, ref in enumerate(refs):
        shape = canonical_shape(ref.tensor, ref.transpose, ref.rows)
        where = (located or {}).get(id(ref.tensor))
        layout = Layout(pick=(ref.rows,) if ref.rows is not None else (), swap=ref.transpose)
        yield LayerMatrix(
            name=ref.name,
            index=index,
            kind=ref.kind,
            shape=shape,
            load=TorchFileRef(where[0], where[1], layout) if where else loader(ref.tensor, ref.transpose, ref.rows),
            origin=origin,
            framework_type=ref.framework_type,
            device=device_name(ref.tensor),
            skip=unanalyzable_reason(str(ref.tensor.dtype), shape),
            reference_id=ref.reference_id,
            framework_path=ref.framework_path,
        )
