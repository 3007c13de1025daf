"""The public toolkit for adapter authors: everything an adapter needs from ww-core, in one module.

Adapters (first-party and third-party alike) import only ``ww_core``, ``ww_core.platform.toolkit``
and, in their tests, ``ww_core.testing``; every other ``ww_core`` module is internal and may
change. docs/writing-adapters.md describes each name.
"""

from __future__ import annotations

from math import prod
from typing import IO, Any, Callable

import numpy as np

from ww_core.platform.adapter_options import AdapterOptions
from ww_core.platform.hookspecs import hookimpl
from ww_core.platform.messages import printable
from ww_core.platform.named_arrays import infer_kind, layers_from_named, module_path, natural_key, state_dict_reference_ids
from ww_core.platform.protocol import (
    CONV_KIND_BY_RANK,
    DEFAULT_MIN_EVALS,
    KIND_NDIM,
    PROTOCOL_VERSION,
    LayerKind,
    LayerLoadError,
    LayerMatrix,
    unanalyzable_reason,
    widen_to_float,
)
from ww_core.platform.quantized import dequantize
from ww_core.platform.shard_index import Holders as ShardHolders
from ww_core.platform.shard_index import ShardIndexError, read_weight_map, shard_files
from ww_core.platform.tensor_refs import BF16, FileSpan, Layout, TensorRef, bf16_to_float32, file_version
from ww_core.platform.untrusted import (
    MAX_INFLATED_BYTES,
    MAX_INFLATION,
    MAX_JSON_BYTES,
    UntrustedDataError,
    check_confined,
    check_inflated,
    check_inflation,
    check_present,
    model_root,
    open_regular,
    parse_json,
    parse_json_object,
    read_limited,
    regular_file,
    special_kind,
)
from ww_core.platform.whole_files import written_whole


def kind_from_rank(ndim: int) -> LayerKind | None:
    """The kind of a canonical-layout tensor of rank ``ndim``: 2 → dense, 3/4/5 → conv1d/2d/3d, else None."""
    return "dense" if ndim == 2 else CONV_KIND_BY_RANK.get(ndim)


def read_npy_header(handle: IO[bytes]) -> tuple[tuple[int, ...], np.dtype[Any], int]:
    """Shape, dtype and header length of the ``.npy`` data at ``handle``'s position, without reading the data.

    ValueError when it is no ``.npy`` header.
    """
    major, _ = np.lib.format.read_magic(handle)
    read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(handle)
    return tuple(int(d) for d in shape), dtype, handle.tell()


def to_stored(canonical: np.ndarray, forward: Callable[[np.ndarray], np.ndarray], stored_shape: tuple[int, ...]) -> np.ndarray:
    """Undo an adapter's layout conversion that only moves elements (transposes, reshapes): ``canonical`` in the stored shape.

    ``forward`` is the stored → canonical conversion the adapter's ``load`` applies; it is run on the
    element positions, so any mix of transposes and reshapes is inverted exactly.
    """
    positions = np.asarray(forward(np.arange(prod(stored_shape)).reshape(stored_shape)))
    if positions.shape != canonical.shape:
        raise ValueError(f"new weights have shape {canonical.shape}, but the layout gives {positions.shape} from stored {stored_shape}")
    stored = np.empty(prod(stored_shape), dtype=canonical.dtype)
    stored[positions.ravel()] = canonical.ravel()
    return stored.reshape(stored_shape)


__all__ = [
    "BF16",
    "CONV_KIND_BY_RANK",
    "DEFAULT_MIN_EVALS",
    "KIND_NDIM",
    "MAX_INFLATED_BYTES",
    "MAX_INFLATION",
    "MAX_JSON_BYTES",
    "PROTOCOL_VERSION",
    "AdapterOptions",
    "FileSpan",
    "LayerKind",
    "LayerLoadError",
    "LayerMatrix",
    "Layout",
    "ShardHolders",
    "ShardIndexError",
    "TensorRef",
    "UntrustedDataError",
    "bf16_to_float32",
    "check_confined",
    "check_inflated",
    "check_inflation",
    "check_present",
    "dequantize",
    "file_version",
    "hookimpl",
    "infer_kind",
    "kind_from_rank",
    "layers_from_named",
    "model_root",
    "module_path",
    "natural_key",
    "open_regular",
    "parse_json",
    "parse_json_object",
    "printable",
    "read_limited",
    "read_npy_header",
    "read_weight_map",
    "regular_file",
    "shard_files",
    "special_kind",
    "state_dict_reference_ids",
    "to_stored",
    "unanalyzable_reason",
    "widen_to_float",
    "written_whole",
]
