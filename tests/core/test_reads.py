"""docs/bad-input.md "Reads", for core's readers (safetensors file and folder, shard index, Hugging Face cache, ``.npz``).

One table per class of hostile input; each case runs ``ww analyze`` (and ``ww describe``) in a child process
with bounded memory and time (tests/bounded_cli.py) and must be one error line naming the file; a file in a
folder outside the model must never be opened.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.bounded_cli import OutsideWatch, check_refused, run_ww

Build = Callable[[Path], Path]


def _weights(path: Path, seed: int = 0, name: str = "fc.weight") -> Path:
    save_file({name: np.random.default_rng(seed).standard_normal((32, 16)).astype(np.float32)}, str(path))
    return path


def _model_folder(root: Path) -> Path:
    folder = root / "model"
    folder.mkdir()
    return folder


def _outside(root: Path) -> Path:
    """The folder beside the model that nothing may read: a valid safetensors file (so reading it would succeed)."""
    outside = root / "outside"
    outside.mkdir(exist_ok=True)
    _weights(outside / "elsewhere.safetensors", seed=1, name="far.weight")
    return outside


def _index(folder: Path, weight_map: dict[str, str]) -> None:
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


def _cache_repo(root: Path) -> tuple[Path, Path]:
    """A Hugging Face cache repo folder with one snapshot (refs/main → it): (repo folder, snapshot folder)."""
    repo = root / "hub" / "models--org--name"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    return repo, snapshot


# Special files: a FIFO or a device where a weight file should be blocks or streams for ever; one gate refuses it.


def fifo_as_the_model(root: Path) -> Path:
    os.mkfifo(root / "model.safetensors")
    return root / "model.safetensors"


def link_to_a_device(root: Path) -> Path:
    (root / "model.safetensors").symlink_to("/dev/zero")
    return root / "model.safetensors"


def fifo_as_a_shard(root: Path) -> Path:
    folder = _model_folder(root)
    _weights(folder / "a.safetensors")
    os.mkfifo(folder / "b.safetensors")
    return folder


def fifo_as_an_indexed_shard(root: Path) -> Path:
    folder = _model_folder(root)
    _weights(folder / "a.safetensors")
    os.mkfifo(folder / "b.safetensors")
    _index(folder, {"fc.weight": "a.safetensors", "other.weight": "b.safetensors"})
    return folder


def fifo_as_the_index(root: Path) -> Path:
    folder = _model_folder(root)
    _weights(folder / "a.safetensors")
    os.mkfifo(folder / "model.safetensors.index.json")
    return folder


def fifo_as_a_cache_blob(root: Path) -> Path:
    repo, snapshot = _cache_repo(root)
    os.mkfifo(repo / "blobs" / "0123abcd")
    (snapshot / "model.safetensors").symlink_to("../../blobs/0123abcd")
    return repo


def fifo_as_an_npz(root: Path) -> Path:
    os.mkfifo(root / "model.npz")
    return root / "model.npz"


SPECIAL: dict[str, tuple[Build, tuple[str, ...]]] = {
    "a FIFO as model.safetensors": (fifo_as_the_model, ("not a regular file", "FIFO")),
    "model.safetensors a link to /dev/zero": (link_to_a_device, ("not a regular file", "device")),
    "a FIFO among a folder's shards": (fifo_as_a_shard, ("b.safetensors", "not a regular file")),
    "a FIFO as an indexed shard": (fifo_as_an_indexed_shard, ("b.safetensors", "not a regular file")),
    "a FIFO as the shard index": (fifo_as_the_index, ("model.safetensors.index.json", "not a regular file")),
    "a FIFO as a Hugging Face cache blob": (fifo_as_a_cache_blob, ("model.safetensors", "not a regular file")),
    "a FIFO as model.npz": (fifo_as_an_npz, ("not a regular file",)),
}


@pytest.mark.parametrize("command", ["analyze", "describe"])
@pytest.mark.parametrize("case", sorted(SPECIAL))
def test_special_files_are_refused_never_read(tmp_path: Path, case: str, command: str) -> None:
    build, needles = SPECIAL[case]
    check_refused(build(tmp_path), *needles, command=command)


# Confinement: every file a folder, an index or the cache names must resolve inside the model; the path the user names may be a link.


def shard_linked_out_of_the_folder(root: Path) -> Path:
    folder = _model_folder(root)
    _weights(folder / "a.safetensors")
    (folder / "b.safetensors").symlink_to(_outside(root) / "elsewhere.safetensors")
    return folder


def indexed_shard_linked_out_of_the_folder(root: Path) -> Path:
    folder = _model_folder(root)
    (folder / "shard1.safetensors").symlink_to(_outside(root) / "elsewhere.safetensors")
    _index(folder, {"fc.weight": "shard1.safetensors"})
    return folder


def index_linked_out_of_the_folder(root: Path) -> Path:
    folder = _model_folder(root)
    _weights(folder / "a.safetensors")
    outside = _outside(root)
    (outside / "index.json").write_text(json.dumps({"weight_map": {"fc.weight": "a.safetensors"}}))
    (folder / "model.safetensors.index.json").symlink_to(outside / "index.json")
    return folder


def snapshot_linked_out_of_its_repo(root: Path) -> Path:
    """The snapshot folder named directly (not by repo id): its links may lead into ../../blobs, not out of the repo folder."""
    _, snapshot = _cache_repo(root)
    (snapshot / "model.safetensors").symlink_to(_outside(root) / "elsewhere.safetensors")
    return snapshot


def repo_linked_out_of_itself(root: Path) -> Path:
    repo, snapshot = _cache_repo(root)
    (snapshot / "model.safetensors").symlink_to(_outside(root) / "elsewhere.safetensors")
    return repo


CONFINED: dict[str, tuple[Build, tuple[str, ...]]] = {
    "a folder's shard linked outside it": (shard_linked_out_of_the_folder, ("b.safetensors", "outside")),
    "an indexed shard linked outside the folder": (indexed_shard_linked_out_of_the_folder, ("shard1.safetensors", "outside")),
    "the shard index linked outside the folder": (index_linked_out_of_the_folder, ("model.safetensors.index.json", "outside")),
    "a snapshot folder's file linked out of its repo": (snapshot_linked_out_of_its_repo, ("model.safetensors", "outside")),
    "a cache repo's file linked out of it": (repo_linked_out_of_itself, ("model.safetensors", "outside")),
}


@pytest.mark.parametrize("command", ["analyze", "describe"])
@pytest.mark.parametrize("case", sorted(CONFINED))
def test_files_a_model_names_must_resolve_inside_it(tmp_path: Path, case: str, command: str) -> None:
    build, needles = CONFINED[case]
    model = build(tmp_path)
    with OutsideWatch(tmp_path / "outside") as watch:
        check_refused(model, *needles, command=command)
    assert watch.touched == []


def test_links_inside_the_model_and_into_the_cache_blobs_are_followed(tmp_path: Path) -> None:
    """The rule refuses only what leaves the model: a shard linked to a file of the same folder, and cache blobs, are read."""
    folder = _model_folder(tmp_path)
    _weights(folder / "kept")
    (folder / "a.safetensors").symlink_to("kept")
    repo, snapshot = _cache_repo(tmp_path)
    _weights(repo / "blobs" / "0123abcd")
    (snapshot / "model.safetensors").symlink_to("../../blobs/0123abcd")
    for model in (folder, snapshot, repo):
        outcome = run_ww("describe", model)
        assert outcome.code == 0, outcome.stderr
        assert "fc" in outcome.stdout


# Claims larger than the file: a compressed member inflating past the cap is refused before it is read.


def npz_zip_bomb(root: Path) -> Path:
    path = root / "bomb.npz"
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1), np.float32))
    header["shape"] = (1 << 14, 1 << 13)  # 512 MiB of zeros
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive, archive.open("w.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_1_0(member, header)
        block = bytes(1 << 20)
        for _ in range(512):
            member.write(block)
    return path


CLAIMS: dict[str, tuple[Build, tuple[str, ...]]] = {
    "an .npz member inflating 1000:1": (npz_zip_bomb, ("'w.npy'", "MiB")),
}


@pytest.mark.parametrize("case", sorted(CLAIMS))
def test_claims_beyond_the_file_are_refused_before_reading(tmp_path: Path, case: str) -> None:
    build, needles = CLAIMS[case]
    check_refused(build(tmp_path), *needles)


# Row explosions: a header of many tiny tensors is parsed once per command, not once per use.


def test_a_safetensors_header_is_parsed_once_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ww_core.cli import main
    from ww_core.sources import safetensors_file

    path = tmp_path / "many.safetensors"
    save_file({f"t{i}.weight": np.full((2, 2), i, np.float32) for i in range(200)}, str(path))
    parsed: list[Path] = []
    real = safetensors_file.read_header

    def counting(target: Path) -> object:
        parsed.append(Path(target))
        return real(target)

    monkeypatch.setattr(safetensors_file, "read_header", counting)
    for command in ("describe", "analyze"):
        parsed.clear()
        main([command, str(path), "--csv", str(tmp_path / f"{command}.csv")] if command == "analyze" else [command, str(path)])
        assert len(parsed) <= 1, f"ww {command}: the header was parsed {len(parsed)} times"
