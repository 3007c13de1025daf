"""Turn a recognized torch source into its LayerMatrix stream (imports torch; only called for torch sources)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import torch

from ww_core.platform.toolkit import LayerMatrix
from ww_torch.file_refs import file_refs
from ww_torch.files import find_tensors, iter_shards, load_file
from ww_torch.modules import module_refs
from ww_torch.recognize import SourceKind, is_training_state
from ww_torch.records import WeightRef, to_layers
from ww_torch.state_dict import state_dict_refs


def layers(source: Any, kind: SourceKind, options: Mapping[str, Any]) -> Iterator[LayerMatrix]:
    """The layers of a module, state dict, torch file or shard folder, in architecture order."""
    trust_pickle = bool(options.get("trust_pickle"))
    if kind == "module":
        return to_layers(module_refs(source, options), origin=type(source).__name__)
    if kind == "state_dict":
        return to_layers(state_dict_refs(source, options), origin="state dict")
    path = Path(source)
    if kind == "file":
        tensors = find_tensors(load_file(path, trust_pickle), path)
        return to_layers(_refs(tensors, options), origin=str(path), located=file_refs(path, tensors, trust_pickle))
    shards = list(iter_shards(path, trust_pickle))
    if not shards:
        state = sorted(p.name for p in path.iterdir() if is_training_state(p))
        if state:
            raise ValueError(f"{path}: no model weights, only training state ({', '.join(state)}), which is never read as layers")
        raise ValueError(f"{path}: folder holds no torch weight files")
    located = {found: where for shard, tensors in shards for found, where in file_refs(shard, tensors, trust_pickle).items()}
    return to_layers(_shard_refs(shards, options), origin=str(path), located=located)


def _refs(tensors: Mapping[str, torch.Tensor] | torch.nn.Module, options: Mapping[str, Any], start_id: int = 1) -> Iterable[WeightRef]:
    if isinstance(tensors, torch.nn.Module):
        return module_refs(tensors, options)
    return state_dict_refs(tensors, options, start_id)


def _shard_refs(shards: list[tuple[Path, Mapping[str, torch.Tensor] | torch.nn.Module]], options: Mapping[str, Any]) -> Iterator[WeightRef]:
    """Every shard's weights; reference ids as weightwatcher 0.7.7 counts a folder: from 0, each shard
    starting after the running total of ids so far is added once more."""
    start = given = 0
    for _, tensors in shards:
        start += given
        yield from _refs(tensors, options, start)
        if not isinstance(tensors, torch.nn.Module):
            given += sum(1 for key in tensors if str(key).endswith(".weight"))
