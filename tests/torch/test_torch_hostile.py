"""Hostile torch files and shard folders through ``ww analyze`` and ``ww describe``: exit 2, one line naming the file.

Trusting a folder (``trust_pickle=True``) never extends to files its index names outside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

import ww_core
from ww_core.testing import check_cli_error

STATE = {"fc1.weight": torch.randn(30, 20, generator=torch.Generator().manual_seed(0)), "fc2.weight": torch.randn(20, 30)}


class Payload:
    """Unpickling this creates the marker file, proving code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    return folder


def _index(folder: Path, weight_map: dict[str, str]) -> None:
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))


def index_escaping_up(root: Path) -> Path:
    folder = _folder(root, "escapes_up")
    torch.save(STATE, root / "outside.bin")
    _index(folder, {"fc1.weight": "../outside.bin"})
    return folder


def index_naming_an_absolute_path(root: Path) -> Path:
    folder = _folder(root, "escapes_abs")
    torch.save(STATE, root / "elsewhere.bin")
    _index(folder, {"fc1.weight": str(root / "elsewhere.bin")})
    return folder


def index_not_json(root: Path) -> Path:
    folder = _folder(root, "bad_index")
    torch.save(STATE, folder / "a.bin")
    (folder / "pytorch_model.bin.index.json").write_text("{nope")
    return folder


def index_nested_deeply(root: Path) -> Path:
    folder = _folder(root, "deep_index")
    torch.save(STATE, folder / "a.bin")
    (folder / "pytorch_model.bin.index.json").write_text("[" * 100_000 + "]" * 100_000)
    return folder


def index_names_a_tensor_no_shard_holds(root: Path) -> Path:
    folder = _folder(root, "index_lies")
    torch.save(STATE, folder / "a.bin")
    _index(folder, {"fc1.weight": "a.bin", "ghost.weight": "a.bin"})
    return folder


def tensor_in_two_shards(root: Path) -> Path:
    folder = _folder(root, "two_holders")
    torch.save(STATE, folder / "a.bin")
    torch.save({"fc1.weight": torch.zeros(30, 20)}, folder / "b.bin")
    return folder


def link_loop_beside_a_good_shard(root: Path) -> Path:
    folder = _folder(root, "looped")
    torch.save(STATE, folder / "a.bin")
    (folder / "zz.bin").symlink_to("zz.bin")
    return folder


def random_bytes(root: Path) -> Path:
    (root / "noise.bin").write_bytes(np.random.default_rng(0).bytes(3000))
    return root / "noise.bin"


def text_file(root: Path) -> Path:
    (root / "notes.bin").write_text("root:x:0:0:root:/root:/bin/bash\n")
    return root / "notes.bin"


HOSTILE: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "index escaping its folder with ..": (index_escaping_up, ("in this folder",)),
    "index naming an absolute path": (index_naming_an_absolute_path, ("in this folder",)),
    "index not JSON": (index_not_json, ("pytorch_model.bin.index.json", "not valid JSON")),
    "index nested 100000 deep": (index_nested_deeply, ("pytorch_model.bin.index.json", "nested too deeply")),
    "index names a tensor no shard holds": (index_names_a_tensor_no_shard_holds, ("'ghost.weight'", "no shard holds it")),
    "a tensor in two shards": (tensor_in_two_shards, ("'fc1.weight'", "a.bin", "b.bin")),
    "link loop beside a good shard": (link_loop_beside_a_good_shard, ("zz.bin",)),
    "random bytes named .bin": (random_bytes, ("not a torch file",)),
    "a text file named .bin": (text_file, ("not a torch file",)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_file_is_one_error_line_naming_it(tmp_path: Path, case: str) -> None:
    build, needles = HOSTILE[case]
    for line in check_cli_error(build(tmp_path), *needles):
        assert "trust_pickle" not in line, line  # none of these is a pickle that trust would make readable


@pytest.mark.parametrize("target", ["../outside.bin", "ABSOLUTE"])
def test_trusting_a_folder_never_runs_a_pickle_its_index_names_outside(tmp_path: Path, target: str) -> None:
    marker = tmp_path / "code_ran"
    torch.save({**STATE, "extra": Payload(marker)}, tmp_path / "outside.bin")
    folder = _folder(tmp_path, "model")
    torch.save(STATE, folder / "inside.bin")
    _index(folder, {"fc1.weight": str(tmp_path / "outside.bin") if target == "ABSOLUTE" else target})
    with pytest.raises(ValueError, match=r"index\.json.*in this folder"):
        ww_core.analyze(folder, trust_pickle=True)
    assert not marker.exists()


def test_zip_bomb_member_is_refused_before_torch_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.save stores members uncompressed; a deflated 1000:1 member would be inflated whole by torch.load."""
    import zipfile

    from ww_core.platform import untrusted

    monkeypatch.setattr(untrusted, "MAX_INFLATED_BYTES", 1 << 20)
    torch.save({"w": torch.zeros(1024, 512)}, tmp_path / "stored.pt")
    with zipfile.ZipFile(tmp_path / "stored.pt") as stored, zipfile.ZipFile(tmp_path / "bomb.pt", "w", zipfile.ZIP_DEFLATED) as bomb:
        for info in stored.infolist():
            bomb.writestr(info.filename, stored.read(info.filename))
    assert (tmp_path / "bomb.pt").stat().st_size < 20_000
    check_cli_error(tmp_path / "bomb.pt", "zip bomb")


def _rewrite_records(source: Path, target: Path, change: Callable[[str, bytes], bytes | None]) -> None:
    import zipfile

    with zipfile.ZipFile(source) as archive:
        records = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in records.items():
            changed = change(name, data)
            if changed is not None:
                archive.writestr(name, changed)


@pytest.mark.parametrize("fault", ["cut", "longer", "missing"])
def test_a_storage_record_of_the_wrong_size_is_refused_naming_it(tmp_path: Path, fault: str) -> None:
    """torch.load(mmap=True) skips torch's own record-size check: a cut record read the bytes after it as weights."""
    good = tmp_path / "good.pt"
    torch.save(STATE, good)

    def change(name: str, data: bytes) -> bytes | None:
        if not name.endswith("/data/0"):
            return data
        return None if fault == "missing" else data[:100] if fault == "cut" else data + b"\0" * 64

    bad = tmp_path / "bad.pt"
    _rewrite_records(good, bad, change)
    line = check_cli_error(bad, "bad.pt", "data/0")[0]
    assert "bytes" in line or "missing" in line
    with pytest.raises(ValueError, match=r"bad\.pt.*data/0"):
        ww_core.analyze(bad, workers=1)
