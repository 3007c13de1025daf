"""Turn (name, shape, loader, dtype) entries into layers: kind from rank and name, natural order."""

from __future__ import annotations

import re
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np

from ww_core.platform.protocol import CONV_KIND_BY_RANK, LayerKind, LayerMatrix, unanalyzable_reason

_EMBEDDING_NAME = re.compile(r"(embed|wte|wpe|tok_emb|word_emb|lookup)", re.IGNORECASE)


def infer_kind(name: str, shape: tuple[int, ...]) -> LayerKind | None:
    """The layer kind of a canonical-layout tensor, or None for what is no weight matrix (biases, norms)."""
    if len(shape) == 2:
        return "embedding" if _EMBEDDING_NAME.search(name) else "dense"
    return CONV_KIND_BY_RANK.get(len(shape))


_WEIGHT_SUFFIXES = (".weight", "_weight")
#: torch's recurrent leaves ``weight_ih_l0`` / ``weight_hh_l1_reverse``: the canonical name keeps ``ih_l0`` / ``hh_l1_reverse``.
_RECURRENT_LEAF = re.compile(r"(?:^|(?<=\.))weight_((?:ih|hh)_l\d+(?:_reverse)?)$")


def module_path(key: str) -> str:
    """``encoder.0.weight`` → ``encoder.0``; ``attn.in_proj_weight`` → ``attn.in_proj``: the module's name.

    Every route to the same model (state dict, safetensors, module walk) then names a layer alike,
    so models can be compared and diffed by name across formats, as the reference names them.
    Recurrent matrices are ``<layer>.ih_l<k>`` (input) and ``<layer>.hh_l<k>`` (recurrent) (docs/layouts.md).
    """
    if _RECURRENT_LEAF.search(key):
        return _RECURRENT_LEAF.sub(r"\1", key)
    for suffix in _WEIGHT_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def natural_key(name: str) -> list[object]:
    """Sort key that puts ``layer.10`` after ``layer.9`` (architecture order for numbered blocks)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def state_dict_reference_ids(keys: Iterable[str], start: int) -> dict[str, int]:
    """The ids weightwatcher 0.7.7 gives a state dict's tensors: its ``.weight`` keys, numbered from ``start`` in the order given.

    Every ``.weight`` key takes an id (1-D norm weights too), other keys none; with no ``.weight``
    key at all the reference enumerates nothing.
    """
    ids: dict[str, int] = {}
    for key in keys:
        if key.endswith(".weight"):
            ids[key] = start + len(ids)
    return ids


#: Row blocks of a fused attention input projection (torch ``in_proj_weight``: q, k, v stacked).
QKV = ("q", "k", "v")


def is_fused_qkv(key: str, shape: tuple[int, ...]) -> bool:
    """A torch ``MultiheadAttention.in_proj_weight``: 2-D, named so, three times as many rows as columns."""
    return key.endswith("in_proj_weight") and len(shape) == 2 and shape[0] == 3 * shape[1]


def _row_block(load: Callable[[], np.ndarray], block: int, size: int) -> Callable[[], np.ndarray]:
    return lambda: np.asarray(load())[block * size : (block + 1) * size]


def layers_from_named(
    entries: Iterable[tuple[str, tuple[int, ...], Callable[[], np.ndarray], str]],
    origin: str,
    framework_type: str,
    ids: Mapping[str, int] | None = None,
    fused_qkv: bool = False,
) -> Iterator[LayerMatrix]:
    """Yield a LayerMatrix for every (name, shape, loader, dtype name) whose rank makes it a weight matrix, indexed from 0.

    Integer, bool and empty tensors are yielded too, marked ``skip`` (``unanalyzable_reason``).
    ``ids`` gives reference ids (``LayerMatrix.reference_id``) by key. A fused attention
    ``in_proj_weight`` gives ``.q``/``.k``/``.v`` rows, as the torch module route does, unless ``fused_qkv``.
    """
    index = 0
    for name, shape, load, dtype in entries:
        kind = infer_kind(name, shape)
        if kind is None:
            continue
        split = is_fused_qkv(name, tuple(shape)) and not fused_qkv
        size = shape[0] // len(QKV) if split else shape[0]
        parts = [(f".{label}", _row_block(load, block, size)) for block, label in enumerate(QKV)] if split else [("", load)]
        for suffix, part_load in parts:
            part_shape = (size, *shape[1:])
            yield LayerMatrix(
                name=module_path(name) + suffix,
                index=index,
                kind=kind,
                shape=part_shape,
                load=part_load,
                origin=origin,
                framework_type=framework_type,
                skip=unanalyzable_reason(dtype, part_shape),
                reference_id=(ids or {}).get(name),
                framework_path=name,
            )
            index += 1
