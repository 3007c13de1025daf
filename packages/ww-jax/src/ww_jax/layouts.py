"""Flax kernel layouts → ww's canonical layouts (docs/layouts.md); pure numpy, no JAX import.

Flax stores Dense kernels as (in, out), DenseGeneral as (*in, *out), convolutions (and
transposed convolutions) as (*kernel, in, out), embeddings as (vocab, dim).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np

from ww_core.platform.toolkit import CONV_KIND_BY_RANK, LayerKind, widen_to_float

if TYPE_CHECKING:
    from ww_jax.file_refs import StoredLeaves

Role = Literal["dense", "general", "conv", "embedding"]
Transform = Callable[[np.ndarray], np.ndarray]

#: Submodule names of Flax attention projections; ``out`` maps (heads, head_dim, out) back to features.
ATTENTION_INPUTS = frozenset({"query", "key", "value", "qkv", "kv"})
ATTENTION_OUTPUT = "out"
#: Leaf names that are never weight matrices even when 2-D (DenseGeneral biases are (heads, dim)).
NON_MATRIX_LEAVES = frozenset({"bias", "scale", "mean", "var"})


@dataclass(frozen=True)
class JaxWeight:
    """One parameter leaf: its pytree path, the role its module gives it, stored shape and reader.

    ``n_in`` is the number of leading input axes of a ``general`` (DenseGeneral) kernel; ``dtype`` its
    dtype name, so integer and empty leaves get a skipped row (``unanalyzable_reason``);
    ``write`` sets a stored-layout array (NNX modules only); ``parts`` are the (leaf path, width) of the
    gate kernels a stacked recurrent matrix concatenates (ww_jax.recurrent), ``stored_path`` its framework path;
    ``file_ref`` says where the stored array lives in a file, so a worker process can read it itself (ww_jax.file_refs).
    """

    path: tuple[str, ...]
    role: Role
    shape: tuple[int, ...]
    read: Callable[[], np.ndarray]
    n_in: int = 1
    framework_type: str = ""
    dtype: str = ""
    write: Callable[[np.ndarray], None] | None = None
    parts: tuple[tuple[tuple[str, ...], int], ...] = ()
    stored_path: str = ""
    file_ref: StoredLeaves | None = None


@dataclass(frozen=True)
class FlaxLayout:
    """Stored → canonical as plain values (picklable): reshape to ``reshape`` when given, then permute axes to ``axes`` when given."""

    reshape: tuple[int, ...] = ()
    axes: tuple[int, ...] = ()

    def apply(self, array: np.ndarray) -> np.ndarray:
        """``array`` in the canonical layout."""
        shaped = array.reshape(self.reshape) if self.reshape else array
        return np.transpose(shaped, self.axes) if self.axes else shaped


def role_from_names(path: tuple[str, ...], ndim: int) -> tuple[Role, int] | None:
    """Guess a leaf's role from its path alone (Linen dicts, plain pytrees, msgpack checkpoints).

    Biases, scales and norm statistics are skipped; ``embedding`` leaves are embeddings; 2-D leaves are (in, out) kernels; higher-rank
    kernels under ``query``/``key``/``value`` (in, heads, dim), ``out`` (heads, dim, out) or a
    module named ``*General*`` are DenseGeneral; other 3-5-D leaves are (*k, in, out) convs.
    """
    leaf = path[-1] if path else ""
    parent = path[-2] if len(path) > 1 else ""
    if ndim < 2 or leaf in NON_MATRIX_LEAVES:
        return None
    if "embed" in leaf.lower():
        return ("embedding", 1) if ndim == 2 else None
    if ndim == 2:
        return "dense", 1
    if parent in ATTENTION_INPUTS or "general" in parent.lower():
        return "general", 1
    if parent == ATTENTION_OUTPUT:
        return "general", ndim - 1
    return ("conv", 1) if ndim in CONV_KIND_BY_RANK else None


def flax_layout(weight: JaxWeight) -> tuple[LayerKind, tuple[int, ...], FlaxLayout]:
    """Kind, canonical shape and conversion of a parameter leaf."""
    shape = weight.shape
    if weight.role == "embedding":
        return "embedding", shape, FlaxLayout()
    if weight.role == "dense":
        return "dense", (shape[1], shape[0]), FlaxLayout(axes=(1, 0))
    if weight.role == "general":
        n_in = weight.n_in
        canonical = (prod(shape[n_in:]), prod(shape[:n_in]))
        return "dense", canonical, FlaxLayout(reshape=(canonical[1], canonical[0]), axes=(1, 0))
    nd = len(shape)
    order = (nd - 1, nd - 2, *range(nd - 2))
    return CONV_KIND_BY_RANK[nd], tuple(shape[i] for i in order), FlaxLayout(axes=order)


def layout(weight: JaxWeight) -> tuple[LayerKind, tuple[int, ...], Transform]:
    """Kind, canonical shape and conversion (a function) of a parameter leaf."""
    kind, canonical, converts = flax_layout(weight)
    return kind, canonical, converts.apply


#: Leaf names that only say which parameter of a module a tensor is: dropped from the canonical name.
LEAF_SUFFIXES = frozenset({"kernel", "embedding"})


def canonical_name(path: tuple[str, ...]) -> str:
    """The module path, dots, no ``kernel``/``embedding`` leaf: ``encoder/layer/0/query/kernel`` → ``encoder.layer.0.query``."""
    parts = path[:-1] if len(path) > 1 and path[-1] in LEAF_SUFFIXES else path
    return ".".join(parts)


def as_float_array(value: object) -> np.ndarray:
    """A numpy float array of a leaf; bfloat16 and float16 widen to float32."""
    return widen_to_float(np.asarray(value))
