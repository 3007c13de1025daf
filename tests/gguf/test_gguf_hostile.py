"""GGUF files whose header lies: one clear error naming the file, never a hang, a crash or a wrong number."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

pytest.importorskip("gguf")
pytest.importorskip("ww_gguf")

import ww_core
from ww_core.cli import main

from .gguf_files import patch_after, patch_tensor, write_gguf

RNG = np.random.default_rng(2)


def _good(path: Path) -> Path:
    tensors = {
        "blk.0.ffn_up.weight": RNG.standard_normal((16, 32)).astype(np.float32),
        "blk.0.ffn_down.weight": RNG.standard_normal((32, 16)).astype(np.float32),
    }
    metadata = {"x.context_length": 8, "tokenizer.ggml.tokens": ["a", "b", "c"], "x.list": [1, 2, 3]}
    return write_gguf(path, tensors, arch="x", metadata=metadata)


def _truncate(keep: float) -> Callable[[Path], None]:
    def cut(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    return cut


def _tokens_count(count: int) -> Callable[[Path], None]:
    key = b"tokenizer.ggml.tokens"
    return lambda path: patch_after(path, key, 8, "Q", count)  # after the key: value type (4), item type (4), count


LIES: dict[str, tuple[Callable[[Path], None], str]] = {
    "bad magic": (lambda p: patch_after(p, b"", 0, "I", 0x46554747 ^ 1), "GGUF magic"),
    "future version": (lambda p: patch_after(p, b"GGUF", 0, "I", 99), "version 99"),
    "tensor count": (lambda p: patch_after(p, b"GGUF", 4, "Q", 2**62), "tensors"),
    "string array length": (_tokens_count(2**60), "claims"),
    "numeric array length": (lambda p: patch_after(p, b"x.list", 8, "Q", 2**40), "needs"),
    "rank": (lambda p: patch_tensor(p, "blk.0.ffn_up.weight", "n_dims", 7), "dimensions"),
    "dimension": (lambda p: patch_tensor(p, "blk.0.ffn_up.weight", "dim0", 2**40), "beyond the end"),
    "offset": (lambda p: patch_tensor(p, "blk.0.ffn_down.weight", "offset", 2**50), "beyond the end"),
    "overlap": (lambda p: patch_tensor(p, "blk.0.ffn_down.weight", "offset", 0), "overlap"),
    "type": (lambda p: patch_tensor(p, "blk.0.ffn_up.weight", "type", 777), "unknown GGML type 777"),
    "truncated header": (_truncate(0.05), "needs"),
    "truncated data": (_truncate(0.9), "beyond the end"),
}


@pytest.mark.parametrize("lie", sorted(LIES))
def test_lying_header_is_one_clear_error_naming_the_file(tmp_path: Path, lie: str) -> None:
    path = _good(tmp_path / "m.gguf")
    assert [row["status"] for row in ww_core.analyze(path, min_evals=2).details] == ["success", "success"]
    corrupt, needle = LIES[lie]
    corrupt(path)
    with pytest.raises(ValueError) as caught:
        ww_core.analyze(path, min_evals=2)
    assert str(path) in str(caught.value) and needle in str(caught.value), str(caught.value)


def test_cli_reports_a_lying_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _good(tmp_path / "m.gguf")
    patch_tensor(path, "blk.0.ffn_down.weight", "offset", 2**50)
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ww: error: ") and str(path) in err[0]


def test_file_shrunk_after_listing_fails_that_layer_naming_the_file(tmp_path: Path) -> None:
    path = _good(tmp_path / "m.gguf")
    layers = list(ww_core.describe(path).details)
    assert len(layers) == 2
    from ww_gguf import ww_layers

    listed = list(ww_layers(path, {}) or [])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 64])
    with pytest.raises(ValueError, match=str(path).replace("\\", "\\\\")):
        listed[-1].load()


def test_big_endian_files_are_refused_by_name(tmp_path: Path) -> None:
    path = _good(tmp_path / "m.gguf")
    patch_after(path, b"GGUF", 0, "I", struct.unpack("<I", struct.pack(">I", 3))[0])
    with pytest.raises(ValueError, match="big-endian"):
        ww_core.analyze(path)


def test_metadata_arrays_nested_without_end_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An array of arrays 100000 deep raised RecursionError with a traceback."""

    def text(value: str) -> bytes:
        return struct.pack("<Q", len(value)) + value.encode()

    nested = struct.pack("<IQ", 9, 1) * 100_000 + struct.pack("<IQ", 4, 0)  # array of (array of ...)
    path = tmp_path / "nest.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + text("nest") + struct.pack("<I", 9) + nested)
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "nested" in err[0], err
