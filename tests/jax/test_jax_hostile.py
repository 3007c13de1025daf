"""Hostile msgpack checkpoints through ``ww analyze`` and ``ww describe``: exit 2, one line naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import msgpack
import numpy as np
import pytest

from ww_core.testing import check_cli_error

NDARRAY_EXT = 1  # flax.serialization's ExtType code for arrays


def _array(shape: Any, dtype: bytes | str, buffer: bytes) -> msgpack.ExtType:
    return msgpack.ExtType(NDARRAY_EXT, msgpack.packb((shape, dtype, buffer), use_bin_type=True))


def _checkpoint(path: Path, tree: Any) -> Path:
    path.write_bytes(msgpack.packb(tree, use_bin_type=True))
    return path


GOOD = np.ones((8, 6), np.float32)


def lying_shape(root: Path) -> Path:
    return _checkpoint(root / "shape.msgpack", {"params": {"Dense_0": {"kernel": _array([1000, 1000], "float32", GOOD.tobytes())}}})


def huge_shape(root: Path) -> Path:
    return _checkpoint(root / "huge.msgpack", {"params": {"Dense_0": {"kernel": _array([1 << 40, 1 << 20], "float32", GOOD.tobytes())}}})


def lying_dtype(root: Path) -> Path:
    return _checkpoint(root / "dtype.msgpack", {"params": {"Dense_0": {"kernel": _array([8, 6], "float77", GOOD.tobytes())}}})


def malformed_array(root: Path) -> Path:
    bad = msgpack.ExtType(NDARRAY_EXT, b"\x93\x01")
    return _checkpoint(root / "malformed.msgpack", {"params": {"Dense_0": {"kernel": bad}}})


def _chunked(root: Path, name: str, shape: dict[str, Any], chunks: dict[str, Any]) -> Path:
    """An array as Flax splits one over 1 GiB: a map of its shape and flat chunks."""
    array = {"__msgpack_chunked_array__": True, "shape": shape, "chunks": chunks}
    return _checkpoint(root / name, {"params": {"Dense_0": {"kernel": array}}})


def chunks_short_of_the_shape(root: Path) -> Path:
    return _chunked(root, "short.msgpack", {"0": 1000, "1": 1000}, {"0": _array([48], "float32", GOOD.tobytes())})


def chunked_shape_no_count(root: Path) -> Path:
    return _chunked(root, "count.msgpack", {"0": "eight", "1": 6}, {"0": _array([48], "float32", GOOD.tobytes())})


def chunk_lying_about_its_buffer(root: Path) -> Path:
    return _chunked(root, "chunk.msgpack", {"0": 8, "1": 6}, {"0": _array([4800], "float32", GOOD.tobytes())})


def nested_deeply(root: Path) -> Path:
    depth = 100_000
    (root / "deep.msgpack").write_bytes(b"\x81\xa1k" * depth + b"\xc0")  # {"k": {"k": ... nil}}
    return root / "deep.msgpack"


def random_bytes(root: Path) -> Path:
    (root / "noise.msgpack").write_bytes(np.random.default_rng(0).bytes(2048))
    return root / "noise.msgpack"


def empty(root: Path) -> Path:
    (root / "empty.msgpack").write_bytes(b"")
    return root / "empty.msgpack"


HOSTILE: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "shape lying about the buffer": (lying_shape, ("Dense_0/kernel",)),
    "shape of a terabyte": (huge_shape, ("Dense_0/kernel",)),
    "unknown dtype": (lying_dtype, ("Dense_0/kernel",)),
    "malformed array payload": (malformed_array, ("Dense_0/kernel",)),
    "maps nested 100000 deep": (nested_deeply, ("nested too deeply",)),
    "chunks short of the shape": (chunks_short_of_the_shape, ("Dense_0/kernel", "do not hold the 1000000 elements")),
    "chunked shape that is no count": (chunked_shape_no_count, ("Dense_0/kernel", "no count")),
    "chunk lying about its buffer": (chunk_lying_about_its_buffer, ("Dense_0/kernel", "needs 19200 bytes")),
    "random bytes": (random_bytes, ("not a Flax msgpack checkpoint",)),
    "empty file": (empty, ("not a Flax msgpack checkpoint",)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_checkpoint_is_one_error_line_naming_it(tmp_path: Path, case: str) -> None:
    build, needles = HOSTILE[case]
    check_cli_error(build(tmp_path), *needles)
