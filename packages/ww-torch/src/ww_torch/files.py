"""``.pt``/``.pth``/``.bin`` files and shard folders, read with ``torch.load(weights_only=True)`` and memory-mapped."""

from __future__ import annotations

import pickle
import warnings
import zipfile
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

from ww_core.platform.toolkit import (
    ShardHolders,
    UntrustedDataError,
    check_inflation,
    check_present,
    model_root,
    natural_key,
    open_regular,
    read_weight_map,
    regular_file,
)
from ww_core.platform.toolkit import shard_files as index_shard_files
from ww_torch.recognize import TORCH_SUFFIXES, is_training_state

#: Keys under which training checkpoints usually keep the model's state dict.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "module", "params", "net", "network")


class PickledCodeError(ValueError):
    """The file needs arbitrary code unpickled to load, and ``trust_pickle`` was not given."""


@contextmanager
def _archive(path: Path) -> Iterator[zipfile.ZipFile]:
    """The zip archive ``path``, opened through the gate (a regular file)."""
    with open_regular(path) as handle, zipfile.ZipFile(handle) as archive:
        yield archive


def is_torchscript(path: Path) -> bool:
    """True for a TorchScript archive (``torch.jit.save``): a zip holding compiled code."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with _archive(path) as archive:
            return any(name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, ValueError):  # corrupt (bad names decode as ValueError): torch.load reports it
        return False


#: How a pickle stream of protocol 2 to 5 starts: every ``torch.save`` file that is not a zip starts so.
PICKLE_HEADS = frozenset(bytes([0x80, protocol]) for protocol in range(2, 6))


def _check_torch_format(path: Path) -> None:
    """Refuse what is neither a zip archive nor a pickle stream before torch parses it (its errors quote the bytes)."""
    try:
        with open_regular(path) as handle:
            head = handle.read(2)
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if head not in PICKLE_HEADS and not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a torch file (neither a zip archive nor a pickle stream)")
    if zipfile.is_zipfile(path):
        try:
            with _archive(path) as archive:
                for info in archive.infolist():
                    check_inflation(info, str(path))
        except UntrustedDataError:
            raise
        except (zipfile.BadZipFile, ValueError) as exc:
            raise ValueError(f"{path}: not a readable torch file ({exc})") from None


class _Stub:
    """Stands in for every class a scanned pickle names: nothing is imported, nothing runs."""

    def __new__(cls, *args: Any, **kwargs: Any) -> "_Stub":
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> "_Stub":
        return _Stub()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


@lru_cache(maxsize=1)
def _storage_itemsizes() -> dict[str, int]:
    """Bytes per element of each typed storage class torch.save names (``FloatStorage``: 4); untyped ones count bytes."""
    with warnings.catch_warnings():  # touching TypedStorage classes warns that they are deprecated
        warnings.simplefilter("ignore")
        found = {name: getattr(torch, name) for name in dir(torch) if name.endswith("Storage") and name != "UntypedStorage"}
        return {name: cls.dtype.itemsize for name, cls in found.items() if isinstance(getattr(cls, "dtype", None), torch.dtype)}


class _StorageScanner(pickle.Unpickler):
    """Collects the storages a torch ``data.pkl`` names (key → bytes claimed) with every class a stub."""

    def __init__(self, handle: Any) -> None:
        super().__init__(handle)
        self.claims: dict[str, int] = {}

    def find_class(self, module: str, name: str) -> Any:
        return type(name, (_Stub,), {"stub_of": (module, name)})

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[4], int):
            module, name = getattr(pid[1], "stub_of", ("", ""))
            self.claims[str(pid[2])] = pid[4] * (_storage_itemsizes().get(name, 1) if module == "torch" else 1)
        return _Stub()


def _check_storage_sizes(path: Path) -> None:
    """Every storage record holds the bytes ``data.pkl`` claims: ``torch.load(mmap=True)`` skips that check and a
    cut record read the bytes after it as weights."""
    try:
        with _archive(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
            if len(pickles) != 1:
                return  # torch.load names what is wrong
            prefix = pickles[0][: -len("data.pkl")]
            try:
                with archive.open(pickles[0]) as handle:
                    scanner = _StorageScanner(handle)
                    scanner.load()
            except Exception:  # unreadable pickles: torch.load reports them
                return
            sizes = {info.filename: info.file_size for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError):  # torch.load names what is wrong
        return
    for key, claimed in scanner.claims.items():
        record = f"data/{key}"
        held = sizes.get(prefix + record)
        if held is None:
            raise ValueError(f"{path}: storage record {record} is missing from the archive")
        if held != claimed:
            raise ValueError(f"{path}: storage record {record} holds {held} bytes but its tensors claim {claimed}")


def load_file(path: Path, trust_pickle: bool) -> Any:
    """The object stored in ``path`` (a regular file: torch opens it itself); weights memory-mapped when the file format allows it."""
    regular_file(path)
    _check_torch_format(path)
    if zipfile.is_zipfile(path) and not is_torchscript(path):
        _check_storage_sizes(path)
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
    """The state dict (or whole module) inside a loaded file, found by structure in checkpoint wrappers; every tensor's view
    checked to claim no more bytes than its storage holds (``check_views``).

    A state dict is a mapping with string keys holding at least one tensor of rank 2 or more;
    it is looked for in the object itself, then up to two levels down (``{step, model_state,
    optimizer_state}``, ``{"trainer": {"weights": ...}}``), never inside optimizer state. Several
    candidates: the one under a usual key (``CHECKPOINT_KEYS``), else an error naming them.
    """
    return check_views(_find_tensors(obj, path), path)


def check_views(found: Mapping[str, torch.Tensor] | torch.nn.Module, path: Path) -> Mapping[str, torch.Tensor] | torch.nn.Module:
    """``found``, once every tensor is checked to lie within its storage and to claim no more bytes than the storage holds.

    A file stores a storage and views of it (offset, shape, strides): a 1.6 kB file held a 15000 x 15000 view with
    zero strides (0.9 GB when read), and a Hankel view over 30 000 floats; their bytes are not in the file.
    """
    tensors = found.state_dict(keep_vars=True) if isinstance(found, torch.nn.Module) else found
    for key, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor) or tensor.layout != torch.strided or tensor.numel() == 0:
            continue
        itemsize = tensor.element_size()
        last = tensor.storage_offset() + sum((size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride()))
        claimed = int(max(tensor.numel(), last + 1)) * itemsize
        check_present(f"{path}: tensor {key!r} (a view of its storage)", claimed, tensor.untyped_storage().nbytes())
    return found


def _find_tensors(obj: Any, path: Path) -> Mapping[str, torch.Tensor] | torch.nn.Module:
    if isinstance(obj, torch.nn.Module):
        return obj
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: holds no tensors (top-level object is {type(obj).__name__})")
    if _is_state_dict(obj):
        return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    found = _nested_state_dicts(obj, depth=2)
    if len(found) == 1:
        return found[0][1]
    usual = [item for key in CHECKPOINT_KEYS for item in found if item[0].split(".")[-1] == key]
    if usual:
        return usual[0][1]
    if found:
        names = ", ".join(repr(key) for key, _ in found)
        raise ValueError(f"{path}: holds several state dicts ({names}); load the file and pass the one to analyze")
    contents = ", ".join(f"{key!r} ({_kind_of(value)})" for key, value in obj.items())
    raise ValueError(f"{path}: holds no model state dict (a mapping of weight tensors); it has {contents or 'no keys'}")


def _is_state_dict(obj: Mapping[Any, Any]) -> bool:
    """String keys and at least one tensor of rank 2 or more among the values."""
    return all(isinstance(k, str) for k in obj) and any(isinstance(v, torch.Tensor) and v.ndim >= 2 for v in obj.values())


def _is_optimizer_state(obj: Any) -> bool:
    return isinstance(obj, Mapping) and "state" in obj and "param_groups" in obj


def _nested_state_dicts(obj: Mapping[Any, Any], depth: int, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, state dict or module) of every candidate below ``obj``, at most ``depth`` levels down."""
    found: list[tuple[str, Any]] = []
    for key, value in obj.items():
        where = f"{prefix}{key}"
        if isinstance(value, torch.nn.Module):
            found.append((where, value))
        elif isinstance(value, Mapping) and not _is_optimizer_state(value):
            if _is_state_dict(value):
                found.append((where, {str(k): v for k, v in value.items() if isinstance(v, torch.Tensor)}))
            elif depth > 1:
                found.extend(_nested_state_dicts(value, depth - 1, f"{where}."))
    return found


def _kind_of(value: Any) -> str:
    if _is_optimizer_state(value):
        return "optimizer state"
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)}"
    return type(value).__name__


def index_file(folder: Path) -> Path | None:
    """The shard index of a torch folder (``*.bin.index.json`` or ``*.pt.index.json``), if it has one."""
    found = sorted(folder.glob("*.bin.index.json")) + sorted(folder.glob("*.pt.index.json"))
    return found[0] if found else None


def shard_files(folder: Path) -> list[Path]:
    """The weight files of a folder: the index file's shards in shard order, else every torch file but training state.

    An index may name only files in its own folder. Every entry with a torch suffix is a shard,
    a link that leads nowhere (or in a loop) too, so that it is refused rather than skipped; a FIFO
    too, and a shard resolving outside the model (``model_root``) is refused before anything is read,
    trusted or not.
    """
    index = index_file(folder)
    if index is not None:
        return index_shard_files(index, read_weight_map(index))
    weights = (p for p in folder.iterdir() if p.suffix.lower() in TORCH_SUFFIXES and not is_training_state(p))
    entries = sorted((p for p in weights if not p.is_dir()), key=lambda p: natural_key(p.name))
    root = model_root(folder)
    return [regular_file(entry, root) for entry in entries]


def iter_shards(folder: Path, trust_pickle: bool) -> Iterator[tuple[Path, Mapping[str, torch.Tensor] | torch.nn.Module]]:
    """Each shard file of ``folder`` with its tensors (memory-mapped), in shard order; shards checked against the index."""
    holders = ShardHolders(folder)
    for shard in shard_files(folder):
        tensors = find_tensors(load_file(shard, trust_pickle), shard)
        if not isinstance(tensors, torch.nn.Module):
            holders.add(shard, list(tensors))
        yield shard, tensors
    index = index_file(folder)
    if index is not None:
        holders.check_index(index, read_weight_map(index))
