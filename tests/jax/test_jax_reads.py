"""docs/bad-input.md "Reads", for ww-jax (Flax ``.msgpack`` files and Orbax checkpoint folders).

Each case runs ``ww analyze`` in a child process with bounded memory and time (tests/bounded_cli.py): one error
line naming the file or folder, nothing in the folder outside the checkpoint opened, no absl log lines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from tests.bounded_cli import OutsideWatch, check_refused

ocp = pytest.importorskip("orbax.checkpoint")

KERNEL = np.random.default_rng(0).standard_normal((32, 16)).astype(np.float32)


def _save(path: Path, tree: Any, ocdbt: bool = True) -> Path:
    checkpointer = ocp.Checkpointer(ocp.PyTreeCheckpointHandler(use_ocdbt=ocdbt))
    checkpointer.save(path.absolute(), args=ocp.args.PyTreeSave(tree))
    return path


def _checkpoint(root: Path, ocdbt: bool = False) -> Path:
    return _save(root / "ckpt", {"params": {"fc": {"kernel": KERNEL}}}, ocdbt)


def _outside(root: Path) -> Path:
    """A checkpoint outside the model whose zarr array ``kernel`` reading would succeed."""
    outside = root / "outside"
    outside.mkdir()
    return _save(outside / "other", {"kernel": np.ones((40, 30), np.float32)}, ocdbt=False)


def _data_file(checkpoint: Path) -> Path:
    return next(path for path in sorted(checkpoint.rglob("*")) if path.is_file() and path.parent.name in ("params.fc.kernel", "d"))


# Special files


def fifo_as_the_msgpack(root: Path) -> Path:
    os.mkfifo(root / "model.msgpack")
    return root / "model.msgpack"


def fifo_as_a_chunk(root: Path) -> Path:
    checkpoint = _checkpoint(root)
    chunk = _data_file(checkpoint)
    chunk.unlink()
    os.mkfifo(chunk)
    return checkpoint


def fifo_as_an_ocdbt_data_file(root: Path) -> Path:
    checkpoint = _checkpoint(root, ocdbt=True)
    data = _data_file(checkpoint)
    data.unlink()
    os.mkfifo(data)
    return checkpoint


SPECIAL: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "a FIFO as model.msgpack": (fifo_as_the_msgpack, ("not a regular file",)),
    "a FIFO as a zarr chunk": (fifo_as_a_chunk, ("params.fc.kernel", "not a regular file")),
    "a FIFO as an OCDBT data file": (fifo_as_an_ocdbt_data_file, ("not a regular file",)),
}


@pytest.mark.parametrize("case", sorted(SPECIAL))
def test_special_files_are_refused_never_read(tmp_path: Path, case: str) -> None:
    build, needles = SPECIAL[case]
    check_refused(build(tmp_path), *needles)


# Confinement: what _METADATA names, and every file of the checkpoint, resolves inside it


def metadata_key_an_absolute_path(root: Path) -> Path:
    target = _outside(root) / "kernel"
    checkpoint = _checkpoint(root)
    metadata = json.loads((checkpoint / "_METADATA").read_text())
    leaf = {
        "key_metadata": [{"key": str(target), "key_type": 2}],
        "value_metadata": {"value_type": "np.ndarray", "skip_deserialize": False},
    }
    metadata["tree_metadata"] = {f"('{target}',)": leaf}
    (checkpoint / "_METADATA").write_text(json.dumps(metadata))
    return checkpoint


def metadata_key_climbing_out(root: Path) -> Path:
    _outside(root)
    checkpoint = _checkpoint(root)
    metadata = json.loads((checkpoint / "_METADATA").read_text())
    leaf = {
        "key_metadata": [{"key": "../outside/other/kernel", "key_type": 2}],
        "value_metadata": {"value_type": "np.ndarray", "skip_deserialize": False},
    }
    metadata["tree_metadata"] = {"('../outside/other/kernel',)": leaf}
    (checkpoint / "_METADATA").write_text(json.dumps(metadata))
    return checkpoint


def array_folder_linked_outside(root: Path) -> Path:
    target = _outside(root) / "kernel"
    checkpoint = _save(root / "ckpt", {"params": {"fc": {"kernel": np.ones((40, 30), np.float32)}}}, ocdbt=False)
    for path in sorted((checkpoint / "params.fc.kernel").iterdir()):
        path.unlink()
    (checkpoint / "params.fc.kernel").rmdir()
    (checkpoint / "params.fc.kernel").symlink_to(target)
    return checkpoint


CONFINED: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "a _METADATA key that is an absolute path": (metadata_key_an_absolute_path, ("outside",)),
    "a _METADATA key climbing out with ..": (metadata_key_climbing_out, ("outside",)),
    "an array folder linked outside": (array_folder_linked_outside, ("params.fc.kernel", "outside")),
}


@pytest.mark.parametrize("case", sorted(CONFINED))
def test_nothing_outside_the_checkpoint_is_read(tmp_path: Path, case: str) -> None:
    build, needles = CONFINED[case]
    checkpoint = build(tmp_path)
    with OutsideWatch(tmp_path / "outside" / "other" / "kernel") as watch:
        check_refused(checkpoint, *needles)
    assert watch.touched == []


# Claims larger than the file: compressed zarr chunks inflate under the one cap


@pytest.mark.parametrize("ocdbt", [False, True])
def test_compressed_chunks_inflating_past_the_cap_are_refused(tmp_path: Path, ocdbt: bool) -> None:
    """256 MiB of zeros that zstd stores in well under 1 MiB."""
    checkpoint = _save(tmp_path / "ckpt", {"params": {"fc": {"kernel": np.zeros((8192, 8192), np.float32)}}}, ocdbt)
    check_refused(checkpoint, "fc", "MiB cap")


# Messages: one line, no absl log lines before it


def test_a_broken_checkpoint_is_one_line_without_absl_logging(tmp_path: Path) -> None:
    checkpoint = _checkpoint(tmp_path, ocdbt=True)
    for path in checkpoint.rglob("*"):
        if path.is_file() and path.name != "_METADATA" and path.name != "_CHECKPOINT_METADATA":
            path.write_bytes(b"\0" * 16)
    line = check_refused(checkpoint)
    assert "WARNING" not in line and "absl" not in line
