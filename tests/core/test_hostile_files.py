"""Hostile files for the built-in readers, through ``ww analyze`` and ``ww describe``: exit 2, one line naming the file.

Also the link policy: links are followed (Hugging Face cache snapshots link into ``../../blobs``),
loops are refused, and no message ever quotes the bytes of whatever a link points at.
"""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from safetensors.numpy import save_file

import ww_core
from ww_core.testing import check_cli_error

SECRET = b"hunter2:x:0:0:Secret Account:/nonexistent:/bin/false\n" * 40


def _safetensors(path: Path, header: Any, data: bytes = b"") -> Path:
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


def _entry(start: int, end: int, shape: list[int]) -> dict[str, Any]:
    return {"dtype": "F32", "shape": shape, "data_offsets": [start, end]}


def _folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    return folder


def link_loop(root: Path) -> Path:
    folder = _folder(root, "looped")
    (folder / "a.safetensors").symlink_to("b.safetensors")
    (folder / "b.safetensors").symlink_to("a.safetensors")
    return folder


def link_loop_beside_a_good_shard(root: Path) -> Path:
    folder = _folder(root, "half_looped")
    save_file({"w.weight": np.ones((8, 8), np.float32)}, str(folder / "good.safetensors"))
    (folder / "zz.safetensors").symlink_to("zz.safetensors")
    return folder


def model_path_a_link_loop(root: Path) -> Path:
    (root / "self.safetensors").symlink_to("self.safetensors")
    return root / "self.safetensors"


def link_to_a_secret(root: Path) -> Path:
    (root / "secret.txt").write_bytes(SECRET)
    link = root / "model.safetensors"
    link.symlink_to(root / "secret.txt")
    return link


def empty_file(root: Path) -> Path:
    (root / "empty.safetensors").write_bytes(b"")
    return root / "empty.safetensors"


def header_not_an_object(root: Path) -> Path:
    return _safetensors(root / "list.safetensors", b"[1, 2, 3]")


def header_nested_deeply(root: Path) -> Path:
    return _safetensors(root / "deep.safetensors", b"[" * 100_000 + b"]" * 100_000)


def duplicate_tensor_names(root: Path) -> Path:
    entry = '{"dtype": "F32", "shape": [4, 4], "data_offsets": [%d, %d]}'
    header = ('{"w": ' + entry % (0, 64) + ', "w": ' + entry % (64, 128) + "}").encode()
    return _safetensors(root / "twice.safetensors", header, bytes(128))


def overlapping_tensors(root: Path) -> Path:
    header = {"a": _entry(0, 64, [4, 4]), "b": _entry(32, 96, [4, 4])}
    return _safetensors(root / "overlap.safetensors", header, bytes(96))


def index_names_a_tensor_no_shard_holds(root: Path) -> Path:
    folder = _folder(root, "index_lies")
    save_file({"a.weight": np.ones((8, 8), np.float32)}, str(folder / "one.safetensors"))
    weight_map = {"a.weight": "one.safetensors", "ghost.weight": "one.safetensors"}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return folder


def tensor_in_two_shards(root: Path) -> Path:
    folder = _folder(root, "two_holders")
    save_file({"a.weight": np.ones((8, 8), np.float32)}, str(folder / "one.safetensors"))
    save_file({"a.weight": np.zeros((8, 8), np.float32)}, str(folder / "two.safetensors"))
    return folder


def index_nested_deeply(root: Path) -> Path:
    folder = _folder(root, "deep_index")
    save_file({"a.weight": np.ones((8, 8), np.float32)}, str(folder / "one.safetensors"))
    (folder / "model.safetensors.index.json").write_text("[" * 100_000 + "]" * 100_000)
    return folder


def dtype_not_a_string(root: Path) -> Path:
    # an unhashable dtype made core's own reader "broken" for the rest of the process
    return _safetensors(root / "m.safetensors", {"w": {"dtype": ["F32"], "shape": [2, 2], "data_offsets": [0, 16]}}, bytes(16))


def npz_member_twice(root: Path) -> Path:
    # zipfile keeps the last of two members named alike: which weights were analyzed was a silent choice
    with zipfile.ZipFile(root / "twice.npz", "w") as archive:
        for seed in (0, 1):
            buffer = io.BytesIO()
            np.save(buffer, np.random.default_rng(seed).standard_normal((40, 30)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name"
                archive.writestr("w.npy", buffer.getvalue())
    return root / "twice.npz"


def random_npz(root: Path) -> Path:
    (root / "noise.npz").write_bytes(np.random.default_rng(0).bytes(4096))
    return root / "noise.npz"


def unknown_format(root: Path) -> Path:
    (root / "weights.xyz").write_bytes(np.random.default_rng(0).bytes(256))
    return root / "weights.xyz"


HOSTILE: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "link loop in a shard folder": (link_loop, ("symbolic links",)),
    "link loop beside a good shard": (link_loop_beside_a_good_shard, ("zz.safetensors", "symbolic links")),
    "the model path a link loop": (model_path_a_link_loop, ("link that leads nowhere",)),
    "link to a file that is no model": (link_to_a_secret, ("not a safetensors file",)),
    "empty file": (empty_file, ("not a safetensors file",)),
    "header not an object": (header_not_an_object, ("not a JSON object",)),
    "header nested 100000 deep": (header_nested_deeply, ("nested too deeply",)),
    "a tensor name twice in a header": (duplicate_tensor_names, ("'w'", "twice")),
    "tensors overlapping": (overlapping_tensors, ("'a'", "'b'", "overlap")),
    "index names a tensor no shard holds": (index_names_a_tensor_no_shard_holds, ("'ghost.weight'", "no shard holds it")),
    "a tensor in two shards": (tensor_in_two_shards, ("'a.weight'", "one.safetensors", "two.safetensors")),
    "index nested 100000 deep": (index_nested_deeply, ("index.json", "nested too deeply")),
    "random bytes named .npz": (random_npz, ("not a readable .npz",)),
    "a dtype that is no string": (dtype_not_a_string, ("m.safetensors", "'w'", "dtype")),
    "a member twice in an .npz": (npz_member_twice, ("twice.npz", "'w.npy'", "twice")),
    "a file no adapter reads": (unknown_format, ("no installed adapter recognizes",)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_file_is_one_error_line_naming_it(tmp_path: Path, case: str) -> None:
    build, needles = HOSTILE[case]
    check_cli_error(build(tmp_path), *needles)


def test_a_hostile_file_never_disables_cores_reader_for_later_sources(tmp_path: Path) -> None:
    bad = dtype_not_a_string(tmp_path)
    good = tmp_path / "good.npz"
    np.savez(good, w=np.random.default_rng(0).standard_normal((40, 30)))
    with pytest.raises(ValueError, match=r"m\.safetensors"):
        ww_core.analyze(bad)
    assert ww_core.analyze(good).details[0]["status"] == "success"


def test_a_fault_in_cores_reader_is_one_error_and_never_disables_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ww_core.sources import builtin

    good = tmp_path / "good.npz"
    np.savez(good, w=np.random.default_rng(0).standard_normal((40, 30)))
    real = builtin._npz_layers
    monkeypatch.setattr(builtin, "_npz_layers", lambda path, fused_qkv: {}["a bug in core"])
    with pytest.raises(ValueError, match=r"'ww-core'.*ww_layers.*KeyError"):
        ww_core.analyze(good)
    monkeypatch.setattr(builtin, "_npz_layers", real)
    assert ww_core.analyze(good).details[0]["status"] == "success"


def test_a_peft_config_nested_deeply_is_read_as_no_config(tmp_path: Path) -> None:
    """``adapter_config.json`` of 100000 nested lists was a RecursionError traceback from ``ww analyze FOLDER``."""
    folder = tmp_path / "adapter"
    folder.mkdir()
    rng = np.random.default_rng(0)
    save_file({"fc.weight": rng.standard_normal((40, 30)).astype(np.float32)}, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text("[" * 100_000 + "]" * 100_000)
    assert [row["status"] for row in ww_core.analyze(folder).details] == ["success"]


def test_a_link_loop_named_by_a_relative_path_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """'loop/a.safetensors' is spelled like a repo id: it was called missing and looked up in the Hugging Face cache."""
    (tmp_path / "loop").mkdir()
    model_path_a_link_loop(tmp_path / "loop")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    lines = check_cli_error(Path("loop/self.safetensors"), "link that leads nowhere")
    assert "Hugging Face" not in lines[0]


def test_no_message_quotes_the_bytes_a_link_points_at(tmp_path: Path) -> None:
    lines = check_cli_error(link_to_a_secret(tmp_path))
    leaked = str(int.from_bytes(SECRET[:8], "little"))
    for line in lines:
        assert "hunter2" not in line and leaked not in line, line


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".pt", ".bin", ".h5", ".keras", ".msgpack", ".onnx", ".gguf"])
def test_a_link_to_a_secret_under_any_model_suffix_is_refused_without_quoting_it(tmp_path: Path, suffix: str) -> None:
    """Whichever reader (or none, where its adapter is not installed) gets the file, its bytes stay out of the message."""
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / f"model{suffix}").symlink_to(tmp_path / "secret.txt")
    for line in check_cli_error(tmp_path / f"model{suffix}"):
        assert "hunter2" not in line and "Secret" not in line, line


def test_links_into_a_cache_blob_folder_are_followed(tmp_path: Path) -> None:
    """The Hugging Face cache layout: snapshots/<rev>/model.safetensors → ../../blobs/<hash>."""
    weights = {"fc.weight": np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)}
    blobs, snapshot = tmp_path / "blobs", tmp_path / "snapshots" / "abc123"
    blobs.mkdir()
    snapshot.mkdir(parents=True)
    save_file(weights, str(blobs / "9f86d08"))
    (snapshot / "model.safetensors").symlink_to("../../blobs/9f86d08")
    linked = ww_core.analyze(snapshot, workers=1).details
    direct = ww_core.analyze(weights, workers=1).details
    assert linked[0]["name"] == "fc" and linked[0]["alpha"] == pytest.approx(direct[0]["alpha"], rel=1e-12)


def test_npz_archive_is_opened_once_for_all_its_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reopening per layer re-read the zip's central directory each time: 5000 layers took 96 s."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "many.npz", **{f"l{i}.weight": rng.standard_normal((12, 10)) for i in range(30)})
    opened = []
    real = zipfile.ZipFile.__init__

    def counting(self: zipfile.ZipFile, *args: Any, **kwargs: Any) -> None:
        opened.append(args[0] if args else kwargs.get("file"))
        real(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "__init__", counting)
    results = ww_core.analyze(tmp_path / "many.npz", workers=2)
    assert len(results.analyzed) == 30
    assert len(opened) == 1


def test_shard_index_larger_than_the_cap_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ww_core.platform import shard_index

    monkeypatch.setattr(shard_index, "MAX_JSON_BYTES", 1024)
    folder = index_names_a_tensor_no_shard_holds(tmp_path)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a.weight": "one.safetensors"}, "pad": " " * 4096}))
    check_cli_error(folder, "index.json", "cap")


def test_npz_zip_bomb_is_refused_before_inflating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 MB .npz whose zero-filled member inflated to 1.2 GB took 2.4 GB of memory; the cap here is shrunk to keep the file tiny."""
    from ww_core.platform import untrusted

    monkeypatch.setattr(untrusted, "MAX_INFLATED_BYTES", 1 << 20)
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, w=np.zeros((1024, 512), np.float32))  # 2 MiB of zeros in a 2 KB file
    assert path.stat().st_size < 10_000
    check_cli_error(path, "'w.npy'", "zip bomb")
    np.savez_compressed(path, w=np.random.default_rng(0).standard_normal((1024, 512)).astype(np.float32))  # real weights barely deflate
    assert ww_core.analyze(path, workers=1).details[0]["status"] == "success"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_cache_ref_that_is_a_fifo_is_named_as_one(tmp_path: Path) -> None:
    """refs/main as a FIFO gave "no revision 'main' ... (refs: main)", a message contradicting itself."""
    repo = tmp_path / "hub" / "models--org--name"
    (repo / "refs").mkdir(parents=True)
    (repo / "snapshots").mkdir()
    os.mkfifo(repo / "refs" / "main")
    with pytest.raises(ValueError, match=r"main: not a regular file \(a FIFO\)"):
        ww_core.analyze(repo)
