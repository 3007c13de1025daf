"""docs/bad-input.md "Reads", for ww-torch's readers (``.pt``/``.pth``/``.bin`` files and shard folders, trusted or not).

Each case runs ``ww analyze`` in a child process with bounded memory and time (tests/bounded_cli.py): one
error line naming the file; nothing in the folder outside the model is opened, and no pickle there runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from tests.bounded_cli import OutsideWatch, check_refused

Build = Callable[[Path], Path]
STATE = {"fc1.weight": torch.randn(30, 20, generator=torch.Generator().manual_seed(0)), "fc2.weight": torch.randn(20, 30)}


class Payload:
    """Unpickling this creates a marker file beside the pickle, proving its code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _folder(root: Path) -> Path:
    folder = root / "model"
    folder.mkdir()
    return folder


def _outside_pickle(root: Path) -> Path:
    """A pickle outside the model that, if ever unpickled, leaves ``ran`` in ``root`` (not in the watched folder)."""
    outside = root / "outside"
    outside.mkdir()
    evil = {"fc3.weight": torch.randn(20, 20), "payload": Payload(root / "ran")}
    torch.save(evil, outside / "evil.bin", _use_new_zipfile_serialization=False)
    return outside / "evil.bin"


def _index(folder: Path, weight_map: dict[str, str]) -> None:
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))


# Special files


def fifo_as_the_file(root: Path) -> Path:
    os.mkfifo(root / "model.pt")
    return root / "model.pt"


def fifo_among_the_shards(root: Path) -> Path:
    folder = _folder(root)
    torch.save(STATE, folder / "pytorch_model-00001.bin")
    os.mkfifo(folder / "pytorch_model-00002.bin")
    return folder


def fifo_as_an_indexed_shard(root: Path) -> Path:
    folder = _folder(root)
    torch.save(STATE, folder / "shard1.bin")
    os.mkfifo(folder / "shard2.bin")
    _index(folder, {"fc1.weight": "shard1.bin", "fc2.weight": "shard1.bin", "fc3.weight": "shard2.bin"})
    return folder


SPECIAL: dict[str, tuple[Build, tuple[str, ...]]] = {
    "a FIFO as model.pt": (fifo_as_the_file, ("not a regular file",)),
    "a FIFO among a folder's shards": (fifo_among_the_shards, ("pytorch_model-00002.bin", "not a regular file")),
    "a FIFO as an indexed shard": (fifo_as_an_indexed_shard, ("shard2.bin", "not a regular file")),
}


@pytest.mark.parametrize("trust", [False, True])
@pytest.mark.parametrize("case", sorted(SPECIAL))
def test_special_files_are_refused_never_read(tmp_path: Path, case: str, trust: bool) -> None:
    build, needles = SPECIAL[case]
    check_refused(build(tmp_path), *needles, extra=("--trust-pickle",) if trust else ())


# Confinement: trust never follows a link out of the model


def indexed_shard_linked_to_a_pickle_outside(root: Path) -> Path:
    folder = _folder(root)
    torch.save(STATE, folder / "shard0.bin")
    (folder / "shard1.bin").symlink_to(_outside_pickle(root))
    _index(folder, {"fc1.weight": "shard0.bin", "fc2.weight": "shard0.bin", "fc3.weight": "shard1.bin"})
    return folder


def shard_linked_to_a_pickle_outside(root: Path) -> Path:
    folder = _folder(root)
    torch.save(STATE, folder / "pytorch_model-00001.bin")
    (folder / "pytorch_model-00002.bin").symlink_to(_outside_pickle(root))
    return folder


def cache_snapshot_linked_to_a_pickle_outside(root: Path) -> Path:
    """A Hugging Face cache snapshot may link into its repo's blobs, never out of the repo folder."""
    repo = root / "hub" / "models--org--name"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    torch.save(STATE, repo / "blobs" / "0123")
    (snapshot / "pytorch_model-00001.bin").symlink_to("../../blobs/0123")
    (snapshot / "pytorch_model-00002.bin").symlink_to(_outside_pickle(root))
    return snapshot


CONFINED: dict[str, tuple[Build, tuple[str, ...]]] = {
    "a cache snapshot's shard linked to a pickle outside its repo": (
        cache_snapshot_linked_to_a_pickle_outside,
        ("pytorch_model-00002.bin", "outside"),
    ),
    "an indexed shard linked to a pickle outside": (indexed_shard_linked_to_a_pickle_outside, ("shard1.bin", "outside")),
    "a folder's shard linked to a pickle outside": (shard_linked_to_a_pickle_outside, ("pytorch_model-00002.bin", "outside")),
}


@pytest.mark.parametrize("trust", [False, True])
@pytest.mark.parametrize("case", sorted(CONFINED))
def test_no_link_out_of_the_model_is_followed_trusted_or_not(tmp_path: Path, case: str, trust: bool) -> None:
    build, needles = CONFINED[case]
    model = build(tmp_path)
    with OutsideWatch(tmp_path / "outside") as watch:
        check_refused(model, *needles, extra=("--trust-pickle",) if trust else ())
    assert watch.touched == []
    assert not (tmp_path / "ran").exists()


# Claims larger than the file: a view must not claim more elements than its storage holds


def _save(root: Path, tensor: torch.Tensor, legacy: bool) -> Path:
    path = root / ("legacy.pt" if legacy else "model.pt")
    torch.save({"fc1.weight": STATE["fc1.weight"], "big.weight": tensor}, path, _use_new_zipfile_serialization=not legacy)
    return path


def zero_strides(root: Path, legacy: bool = False) -> Path:
    return _save(root, torch.ones(1).expand(15000, 15000), legacy)


def hankel_view(root: Path, legacy: bool = False) -> Path:
    return _save(root, torch.as_strided(torch.randn(30000), (15000, 15000), (1, 1)), legacy)


CLAIMS: dict[str, tuple[Build, tuple[str, ...]]] = {
    "a 15000x15000 view with zero strides": (zero_strides, ("'big.weight'", "storage")),
    "a 15000x15000 Hankel view of 30000 floats": (hankel_view, ("'big.weight'", "storage")),
    "zero strides, legacy (non-zip) format": (lambda root: zero_strides(root, legacy=True), ("'big.weight'", "storage")),
    "a Hankel view, legacy (non-zip) format": (lambda root: hankel_view(root, legacy=True), ("'big.weight'", "storage")),
}


@pytest.mark.parametrize("trust", [False, True])
@pytest.mark.parametrize("case", sorted(CLAIMS))
def test_a_view_claiming_more_than_its_storage_is_refused(tmp_path: Path, case: str, trust: bool) -> None:
    build, needles = CLAIMS[case]
    check_refused(build(tmp_path), *needles, extra=("--trust-pickle",) if trust else ())


def test_views_within_their_storage_are_read(tmp_path: Path) -> None:
    """Tied and sliced weights share one storage; each claims no more than it holds, so the file is read."""
    from ww_core.cli import main

    base = torch.randn(60, 20)
    torch.save({"a.weight": base[:30], "b.weight": base[30:], "t.weight": base.t()}, tmp_path / "views.pt")
    assert main(["describe", str(tmp_path / "views.pt")]) == 0
