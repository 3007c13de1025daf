"""Hugging Face shard folders: the index's tensor → shard map, confined to the folder, and checked against the shards.

Shared by every reader of sharded checkpoints (safetensors in core, ``.bin``/``.pt`` in ww-torch),
so all refuse the same things with the same words.
"""

from __future__ import annotations

from pathlib import Path

from ww_core.platform.named_arrays import natural_key
from ww_core.platform.untrusted import (
    MAX_JSON_BYTES,
    UntrustedDataError,
    model_root,
    open_regular,
    parse_json_object,
    read_limited,
    regular_file,
)


class ShardIndexError(UntrustedDataError):
    """A shard index that is malformed, names files outside its folder, or disagrees with the shards."""


def read_weight_map(index_file: Path) -> dict[str, str]:
    """The tensor → shard-file map of an index file; every shard must be a plain file name in the index's folder.

    The index itself must be a regular file resolving inside the model (``model_root``).
    """
    try:
        with open_regular(index_file, model_root(index_file)) as handle:
            text = read_limited(handle, MAX_JSON_BYTES, f"{index_file}: index")
        document = parse_json_object(text, f"{index_file}: index")
    except OSError as exc:
        raise ShardIndexError(f"{index_file}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    except UntrustedDataError as exc:
        raise ShardIndexError(str(exc)) from None
    weight_map = document.get("weight_map", {})
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) and v and Path(v).name == v for v in weight_map.values()):
        raise ShardIndexError(f"{index_file}: 'weight_map' must map tensor names to shard file names in this folder")
    return weight_map


def shard_files(index_file: Path, weight_map: dict[str, str]) -> list[Path]:
    """The distinct shard files an index names, in natural order; FileNotFoundError naming those that are missing,
    UntrustedDataError for one that is no regular file or resolves outside the model."""
    names = sorted(dict.fromkeys(weight_map.values()), key=natural_key)
    root = model_root(index_file)
    for name in names:
        regular_file(index_file.parent / name, root)
    missing = [name for name in names if not (index_file.parent / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{index_file}: shard(s) {missing} listed in the index are missing")
    return [index_file.parent / name for name in names]


class Holders:
    """Which shard holds each tensor: a tensor in two shards is refused."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.shard_of: dict[str, Path] = {}

    def add(self, shard: Path, names: list[str]) -> None:
        """Record the tensors of one shard."""
        for name in names:
            if name in self.shard_of:
                raise ShardIndexError(f"{self.folder}: tensor {name!r} is in two shards, {self.shard_of[name].name} and {shard.name}")
            self.shard_of[name] = shard

    def check_index(self, index_file: Path, weight_map: dict[str, str]) -> None:
        """Every tensor the index names is in the shard it names."""
        for name, shard in weight_map.items():
            held = self.shard_of.get(name)
            if held is None or held.name != shard:
                found = f"it is in {held.name}" if held is not None else "no shard holds it"
                raise ShardIndexError(f"{index_file}: names tensor {name!r} in {shard}, but {found}")
