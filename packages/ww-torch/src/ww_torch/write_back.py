"""Write new canonical weights back: modules and state dicts in place, files and shard folders as new files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from ww_core.platform.toolkit import written_whole
from ww_torch.files import find_tensors, is_torchscript, load_file, shard_files
from ww_torch.modules import module_refs
from ww_torch.recognize import SourceKind
from ww_torch.records import WeightRef
from ww_torch.state_dict import state_dict_refs


def assign(ref: WeightRef, array: np.ndarray) -> None:
    """Copy a canonical array into the tensor ``ref`` points at (its rows, transposed back), in the tensor's dtype and device."""
    data = torch.from_numpy(np.ascontiguousarray(array))
    if ref.transpose:
        data = data.transpose(0, 1)
    target = ref.tensor if ref.rows is None else ref.tensor[ref.rows]
    if tuple(data.shape) != tuple(target.shape):
        raise ValueError(f"layer {ref.name!r}: new weights of canonical shape {tuple(array.shape)} do not fit {tuple(target.shape)}")
    if target.device.type == "meta":
        raise ValueError(f"layer {ref.name!r}: tensor lives on the meta device and cannot hold weights")
    with torch.no_grad():
        target.copy_(data.to(dtype=target.dtype, device=target.device))


def assign_all(refs: Iterable[WeightRef], weights: Mapping[str, np.ndarray]) -> set[str]:
    """Assign every named layer that ``refs`` holds; returns the names written."""
    written = set()
    for ref in refs:
        if ref.name in weights:
            assign(ref, weights[ref.name])
            written.add(ref.name)
    return written


def _refs(tensors: Mapping[str, torch.Tensor] | torch.nn.Module, options: Mapping[str, Any]) -> Iterable[WeightRef]:
    if isinstance(tensors, torch.nn.Module):
        return module_refs(tensors, options)
    return state_dict_refs(tensors, options)


def _require_all(written: set[str], weights: Mapping[str, np.ndarray], where: str) -> None:
    missing = sorted(set(weights) - written)
    if missing:
        raise KeyError(f"{where}: no layer named {missing}")


def _rewrite_file(path: Path, output: Path, weights: Mapping[str, np.ndarray], options: Mapping[str, Any]) -> set[str]:
    """Load ``path`` (private memory map: the file is never written), change its layers, save the whole object to ``output``."""
    if is_torchscript(path):
        raise ValueError(f"{path}: TorchScript archives cannot be written back; save the module's state dict instead")
    stored = load_file(path, bool(options.get("trust_pickle")))
    written = assign_all(_refs(find_tensors(stored, path), options), weights)
    with written_whole(output) as handle:  # a full disk never leaves half a .pt where the new model was to be
        torch.save(stored, handle)
    return written


def write(source: Any, kind: SourceKind, weights: Mapping[str, np.ndarray], output: Path | None, given: Mapping[str, Any]) -> Any:
    """The updated source: the same module or state dict, or the path of the new file or folder."""
    options = dict(given)
    if kind == "module":
        _require_all(assign_all(module_refs(source, options), weights), weights, type(source).__name__)
        return source
    if kind == "state_dict":
        _require_all(assign_all(state_dict_refs(source, options), weights), weights, "state dict")
        return source
    path = Path(source)
    if output is None:
        raise ValueError(f"{path}: no output path given for the new weights")
    if kind == "file":
        _require_all(_rewrite_file(path, output, weights, options), weights, str(path))
        return output
    output.mkdir(parents=True, exist_ok=True)
    written: set[str] = set()
    for shard in shard_files(path):
        written |= _rewrite_file(shard, output / shard.name, weights, options)
    for index in [*path.glob("*.bin.index.json"), *path.glob("*.pt.index.json")]:
        shutil.copyfile(index, output / index.name)
    _require_all(written, weights, str(path))
    return output
