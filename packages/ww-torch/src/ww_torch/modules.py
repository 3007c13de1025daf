"""Walk an ``nn.Module`` in registration order and say which weights each layer type has, in canonical layout.

Grouped convs report the stored (out, in/groups, *kernel) weight as the reference does (one
matrix per kernel position, all groups' rows stacked). LoRA wrappers (peft) report their base
layer under the wrapper's own path, then each adapter's A and B as their own rows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterator, Mapping, cast

import torch
from torch import nn

from ww_core.platform.toolkit import module_path
from ww_torch.records import GATES, QKV, WeightRef, conv_kind, split_rows

#: Gates stacked in each ``weight_ih``/``weight_hh`` per recurrent mode (plain RNNs have one).
GATE_COUNTS = {"LSTM": 4, "GRU": 3}


def module_refs(model: nn.Module, options: Mapping[str, Any]) -> Iterator[WeightRef]:
    """Every reportable weight of ``model`` and its submodules, each shared module once.

    A weight's reference id is its module's position in ``model.named_modules()``, the
    enumeration weightwatcher 0.7.7 numbers layers by (the model itself is 0).
    """
    positions = {id(module): position for position, module in enumerate(model.modules())}
    seen: set[int] = set()
    for path, module in _walk(model, "", seen):
        yield from _weights(path or type(model).__name__, module, options, positions)


def _walk(module: nn.Module, path: str, seen: set[int]) -> Iterator[tuple[str, nn.Module]]:
    if id(module) in seen:
        return
    seen.add(id(module))
    yield path, module
    if _is_lora(module):
        return
    for name, child in module.named_children():
        yield from _walk(child, f"{path}.{name}" if path else name, seen)


def _is_lora(module: nn.Module) -> bool:
    """A peft LoRA layer: a ``base_layer`` module plus ``lora_A``/``lora_B`` module dicts."""
    return isinstance(getattr(module, "base_layer", None), nn.Module) and isinstance(getattr(module, "lora_A", None), nn.ModuleDict)


def _is_hf_conv1d(module: nn.Module) -> bool:
    """Hugging Face GPT-2 style ``Conv1D``: a dense layer storing its weight as (in, out)."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf") and isinstance(getattr(module, "weight", None), torch.Tensor)


def _usable(weight: Any) -> bool:
    return isinstance(weight, torch.Tensor) and not isinstance(weight, nn.parameter.UninitializedParameter) and weight.ndim >= 2


def _weights(path: str, module: nn.Module, options: Mapping[str, Any], positions: dict[int, int]) -> Iterator[WeightRef]:
    """The weights this one module owns (not its children's), tagged with the module's reference id."""
    if _is_lora(module):
        yield from _lora_weights(path, module, options, positions)
        return
    for ref in _own_weights(path, module, options):
        yield replace(ref, reference_id=positions.get(id(module)))


def _own_weights(path: str, module: nn.Module, options: Mapping[str, Any]) -> Iterator[WeightRef]:
    kind_name = type(module).__name__
    weight: Any = getattr(module, "weight", None)
    if isinstance(module, nn.MultiheadAttention):
        yield from _attention_weights(path, module, options)
    elif isinstance(module, nn.RNNBase):
        yield from _recurrent_weights(path, module, options)
    elif not _usable(weight):
        return
    elif isinstance(module, nn.Linear):
        yield WeightRef(path, "dense", weight, kind_name)
    elif _is_hf_conv1d(module):
        yield WeightRef(path, "dense", weight, kind_name, transpose=True)
    elif isinstance(module, nn.modules.conv._ConvNd):
        kind = conv_kind(weight.ndim)
        if kind is not None:
            yield WeightRef(path, kind, weight, kind_name, transpose=module.transposed)
    elif isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        yield WeightRef(path, "embedding", weight, kind_name)


def _attention_weights(path: str, module: nn.MultiheadAttention, options: Mapping[str, Any]) -> Iterator[WeightRef]:
    """``in_proj_weight`` as q/k/v rows (or one fused row); separate q/k/v projections as they are."""
    if module.in_proj_weight is not None:
        fused = WeightRef(f"{path}.in_proj", "dense", module.in_proj_weight, "MultiheadAttention")
        yield from [fused] if options.get("fused_qkv") else split_rows(fused, QKV)
        return
    for label in QKV:
        yield WeightRef(f"{path}.{label}_proj", "dense", getattr(module, f"{label}_proj_weight"), "MultiheadAttention")


def _recurrent_weights(path: str, module: nn.RNNBase, options: Mapping[str, Any]) -> Iterator[WeightRef]:
    """Each ``weight_ih_l*``/``weight_hh_l*`` (gates stacked, (gates·hidden, in)); per gate with ``split_gates``."""
    gates = GATES.get(GATE_COUNTS.get(module.mode, 1))
    for name in module._flat_weights_names:
        if not name.startswith(("weight_ih", "weight_hh")):
            continue
        key = f"{path}.{name}"
        ref = WeightRef(module_path(key), "dense", getattr(module, name), type(module).__name__, framework_path=key)
        yield from split_rows(ref, gates) if options.get("split_gates") and gates else [ref]


def _lora_weights(path: str, module: nn.Module, options: Mapping[str, Any], positions: dict[int, int]) -> Iterator[WeightRef]:
    """The base layer under the wrapper's path, then every adapter's A and B."""
    base = cast(nn.Module, module.base_layer)
    downs = cast(nn.ModuleDict, module.lora_A)
    ups = cast(nn.ModuleDict, module.lora_B)
    yield from _weights(path, base, options, positions)
    for adapter, down in downs.items():
        yield from _weights(f"{path}.lora_A.{adapter}", down, options, positions)
        yield from _weights(f"{path}.lora_B.{adapter}", ups[adapter], options, positions)
