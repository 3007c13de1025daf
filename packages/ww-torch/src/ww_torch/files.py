"""``.pt``/``.pth``/``.bin`` files and shard folders, read with ``torch.load(weights_only=True)`` and memory-mapped."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

from ww_core.sources.named_arrays import natural_key
from ww_torch.recognize import TORCH_SUFFIXES, is_training_state

#: Keys under which training checkpoints usually keep the model's state dict.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "module", "params")


class PickledCodeError(ValueError):
    """The file needs arbitrary code unpickled to load, and ``trust_pickle`` was not given."""


def is_torchscript(path: Path) -> bool:
    """True for a TorchScript archive (``torch.jit.save``): a zip holding compiled code."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, ValueError):  # corrupt (bad names decode as ValueError): torch.load reports it
        return False


def load_file(path: Path, trust_pickle: bool) -> Any:
    """The object stored in ``path``; weights memory-mapped when the file format allows it."""
    if is_torchscript(path):
        if not trust_pickle:
            raise PickledCodeError(
                f"{path}: is a TorchScript archive, which runs compiled code when loaded; "
                "pass trust_pickle=True (options key) only if you trust this file"
            )
        return torch.jit.load(str(path), map_location="cpu").state_dict()
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        if trust_pickle:
            raise ValueError(f"{path}: not a readable torch file ({exc})") from exc
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise PickledCodeError(
            f"{path}: loading it needs code unpickled, refused by default ({reason}); "
            "pass trust_pickle=True (options key) only if you trust this file"
        ) from exc
    except Exception as exc:  # corruption surfaces as many types (zipfile, pickle, unicode, index errors)
        raise ValueError(f"{path}: not a readable torch file ({type(exc).__name__}: {exc})") from exc


def find_tensors(obj: Any, path: Path) -> Mapping[str, torch.Tensor] | torch.nn.Module:
    """The state dict (or whole module) inside a loaded file, looking into checkpoint dicts."""
    if isinstance(obj, torch.nn.Module):
        return obj
    if isinstance(obj, Mapping):
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
        for key in CHECKPOINT_KEYS:
            if key in obj:
                return find_tensors(obj[key], path)
    raise ValueError(f"{path}: holds no tensors (top-level object is {type(obj).__name__})")


def shard_files(folder: Path) -> list[Path]:
    """The weight files of a folder: the index file's shards in shard order, else every torch file but training state."""
    index_files = sorted(folder.glob("*.bin.index.json")) + sorted(folder.glob("*.pt.index.json"))
    if index_files:
        try:
            weight_map = json.loads(index_files[0].read_text())["weight_map"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{index_files[0]}: not a shard index with a 'weight_map' ({exc})") from exc
        names = sorted(dict.fromkeys(weight_map.values()), key=natural_key)
        missing = [name for name in names if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{index_files[0]}: shard(s) {missing} listed in the index are missing")
        return [folder / name for name in names]
    weights = (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TORCH_SUFFIXES and not is_training_state(p))
    return sorted(weights, key=lambda p: natural_key(p.name))


def iter_shards(folder: Path, trust_pickle: bool) -> Iterator[tuple[Path, Mapping[str, torch.Tensor] | torch.nn.Module]]:
    """Each shard file of ``folder`` with its tensors (memory-mapped), in shard order."""
    for shard in shard_files(folder):
        yield shard, find_tensors(load_file(shard, trust_pickle), shard)
