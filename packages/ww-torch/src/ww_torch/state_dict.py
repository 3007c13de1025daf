"""Name → tensor mappings (state dicts): kind from rank and name, layout as stored, names as module paths."""

from __future__ import annotations

from typing import Any, Iterator, Mapping

import torch

from ww_core.platform.toolkit import infer_kind, module_path, state_dict_reference_ids
from ww_torch.records import QKV, WeightRef, split_rows


def state_dict_refs(tensors: Mapping[str, torch.Tensor], options: Mapping[str, Any], start_id: int = 1) -> Iterator[WeightRef]:
    """Every tensor of rank 2 to 5, in mapping order; biases and norms left out. Integer, bool and
    empty tensors are kept: ``to_layers`` marks them skipped with core's reason (``unanalyzable_reason``).

    A state dict cannot tell a ConvTranspose or GPT-2 ``Conv1D`` weight from a plain one, so
    layouts stay as stored (the spectrum is the same either way; only out/in are swapped).
    Reference ids count ``.weight`` keys from ``start_id``, as weightwatcher 0.7.7 does.
    """
    ids = state_dict_reference_ids(tensors.keys(), start_id)
    for key, tensor in tensors.items():
        if tensor.ndim < 2:
            continue
        kind = infer_kind(key, tuple(tensor.shape))
        if kind is None:
            continue
        ref = WeightRef(module_path(key), kind, tensor, "Tensor", reference_id=ids.get(key))
        is_fused_qkv = key.endswith("in_proj_weight") and tensor.ndim == 2 and tensor.shape[0] == 3 * tensor.shape[1]
        yield from split_rows(ref, QKV) if is_fused_qkv and not options.get("fused_qkv") else [ref]
