"""Corrupted and fuzzed inputs to the built-in sources: a clear error naming the file or layer, never a crash or a blow-up."""

from __future__ import annotations

import io
import json
import os
import resource
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

import ww_core
from ww_core.pipeline.plugins import iter_layers
from ww_core.platform.protocol import LayerLoadError
from ww_core.sources.safetensors_file import SafetensorsError

#: Whatever a corrupt file may raise: a clear, catchable error — never RecursionError, MemoryError, OSError from deep inside.
CLEAR_ERRORS = (SafetensorsError, ValueError, FileNotFoundError)


def _safetensors_bytes(header: Any, data: bytes = b"", raw: bytes | None = None) -> bytes:
    text = raw if raw is not None else json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


def _write(tmp_path: Path, name: str, payload: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(payload)
    return path


def _load_all(source: Any) -> list[tuple[str, np.ndarray]]:
    return [(layer.name, layer.weights()) for layer in iter_layers(source)]


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    weights = {"a.weight": rng.standard_normal((16, 12)).astype(np.float32), "b.weight": rng.standard_normal((12, 20)).astype(np.float32)}
    path = tmp_path / "good.safetensors"
    save_file(weights, str(path))
    return path


@pytest.mark.parametrize("keep", [0, 5, 8, 20, -1, -100])
def test_truncated_safetensors_names_the_file(good_file: Path, tmp_path: Path, keep: int) -> None:
    raw = good_file.read_bytes()
    path = _write(tmp_path, "cut.safetensors", raw[:keep])
    with pytest.raises(SafetensorsError, match=r"cut\.safetensors"):
        _load_all(path)


def test_header_claiming_terabytes_is_refused_without_allocating(tmp_path: Path) -> None:
    before = _max_rss_mib()
    claim = _write(tmp_path, "huge_header.safetensors", (1 << 42).to_bytes(8, "little") + b"{}")
    with pytest.raises(SafetensorsError, match=r"huge_header\.safetensors.*header length exceeds"):
        _load_all(claim)
    header = {"w": {"dtype": "F64", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 8 << 40]}}
    tensor = _write(tmp_path, "huge_tensor.safetensors", _safetensors_bytes(header, b"\0" * 64))
    with pytest.raises(SafetensorsError, match=r"huge_tensor\.safetensors.*'w'.*outside"):
        _load_all(tensor)
    assert _max_rss_mib() - before < 100


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 32]}, "spans 32 bytes"),
        ({"dtype": "F32", "shape": [4, 4], "data_offsets": [32, 96]}, "outside"),
        ({"dtype": "F32", "shape": [4, 4], "data_offsets": [64, 0]}, "outside"),
        ({"dtype": "F32", "shape": [4, -4], "data_offsets": [0, 64]}, "invalid shape"),
        ({"dtype": "F32", "shape": [True, 16], "data_offsets": [0, 64]}, "invalid shape"),
        ({"dtype": "F32", "shape": [4.0, 4], "data_offsets": [0, 64]}, "invalid shape"),
        ({"dtype": "F32", "shape": [4, 4], "data_offsets": [0]}, "invalid data_offsets"),
        ({"dtype": "C64", "shape": [4, 4], "data_offsets": [0, 64]}, "unsupported dtype"),
        ({"shape": [4, 4], "data_offsets": [0, 64]}, "malformed"),
        ([1, 2, 3], "malformed"),
    ],
)
def test_header_lying_about_offsets_sizes_or_types_names_the_tensor(tmp_path: Path, entry: Any, reason: str) -> None:
    header = {"ok": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "w": entry}
    path = _write(tmp_path, "liar.safetensors", _safetensors_bytes(header, b"\0" * 64))
    with pytest.raises(SafetensorsError, match=rf"liar\.safetensors.*'w'.*{reason}"):
        _load_all(path)


@pytest.mark.parametrize("header", [b"", b"[1, 2]", b"\xff\xfe not utf8", b"{" * 100_000, b"[" * 100_000 + b"]" * 100_000, b'{"a": '])
def test_header_that_is_not_a_json_object_is_refused(tmp_path: Path, header: bytes) -> None:
    path = _write(tmp_path, "bad.safetensors", _safetensors_bytes(None, raw=header))
    with pytest.raises(SafetensorsError, match=r"bad\.safetensors.*(JSON|object)"):
        _load_all(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0), flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(1, 255)), max_size=4))
def test_fuzzed_safetensors_give_clear_errors_or_float_tensors(
    good_file: Path, tmp_path: Path, cut: int, flips: list[tuple[int, int]]
) -> None:
    raw = bytearray(good_file.read_bytes())
    for position, mask in flips:
        raw[position % len(raw)] ^= mask
    raw = raw[: len(raw) - cut % 64]
    path = _write(tmp_path, "fuzz.safetensors", bytes(raw))
    try:
        loaded = _load_all(path)
    except CLEAR_ERRORS as exc:
        assert "fuzz.safetensors" in str(exc)
        return
    for name, array in loaded:
        assert array.ndim >= 2 and array.dtype in (np.float32, np.float64), name


def test_shard_index_that_is_not_json_or_escapes_the_folder_is_named(tmp_path: Path) -> None:
    save_file({"w": np.ones((4, 4), np.float32)}, str(tmp_path / "a.safetensors"))
    index = tmp_path / "model.safetensors.index.json"
    index.write_text("{not json")
    with pytest.raises(SafetensorsError, match=r"model\.safetensors\.index\.json.*not valid JSON"):
        _load_all(tmp_path)
    index.write_text(json.dumps({"weight_map": {"w": "../../etc/passwd"}}))
    with pytest.raises(SafetensorsError, match=r"index\.json.*shard file names in this folder"):
        _load_all(tmp_path)


def test_file_shrunk_after_listing_becomes_a_layer_error(good_file: Path) -> None:
    layers = list(iter_layers(good_file))
    raw = good_file.read_bytes()
    good_file.write_bytes(raw[: len(raw) - 100])
    with pytest.raises(LayerLoadError, match=r"'b'.*good\.safetensors"):
        layers[-1].weights()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_corrupted_npz_names_the_file(tmp_path: Path) -> None:
    np.savez(tmp_path / "ok.npz", a=np.ones((6, 6)), b=np.ones((7, 7)))
    raw = (tmp_path / "ok.npz").read_bytes()
    for name, payload in [("garbage.npz", os.urandom(512)), ("cut.npz", raw[: len(raw) // 2]), ("empty.npz", b"")]:
        with pytest.raises(ValueError, match=rf"{name.replace('.', '[.]')}: not a readable \.npz"):
            _load_all(_write(tmp_path, name, payload))


def test_npz_member_with_a_bad_crc_fails_that_layer_only(tmp_path: Path) -> None:
    big = np.arange(4096, dtype=np.float64).reshape(64, 64)
    with zipfile.ZipFile(tmp_path / "crc.npz", "w") as archive:
        archive.writestr("a.npy", _npy(np.ones((6, 6))))
        archive.writestr("big.npy", _npy(big))
    raw = bytearray((tmp_path / "crc.npz").read_bytes())
    raw[raw.index(big[40].tobytes())] ^= 0xFF  # a data byte deep in the member, past its header
    path = _write(tmp_path, "crc.npz", bytes(raw))
    layers = list(iter_layers(path))
    np.testing.assert_array_equal(layers[0].weights(), np.ones((6, 6)))
    with pytest.raises(LayerLoadError, match=r"'big'.*crc\.npz.*CRC"):
        layers[1].weights()


def test_npz_header_lying_about_the_shape_is_refused_before_allocating(tmp_path: Path) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (40000, 15000)})
    with zipfile.ZipFile(tmp_path / "lie.npz", "w") as archive:
        archive.writestr("w.npy", header.getvalue() + b"\0" * 128)
    before = _max_rss_mib()
    with pytest.raises(ValueError, match=r"lie\.npz.*'w\.npy' claims shape \(40000, 15000\)"):
        _load_all(tmp_path / "lie.npz")
    assert _max_rss_mib() - before < 100


def test_npz_ignores_members_that_are_not_arrays(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "extra.npz", "w") as archive:
        archive.writestr("w.npy", _npy(np.eye(5, dtype=np.float32)))
        archive.writestr("README.txt", "notes")
    assert [name for name, _ in _load_all(tmp_path / "extra.npz")] == ["w"]


def test_npz_object_member_is_never_unpickled(tmp_path: Path) -> None:
    np.savez(tmp_path / "objects.npz", w=np.array([[{"x": 1}] * 3] * 3, dtype=object), v=np.eye(4))
    layers = {layer.name: layer for layer in iter_layers(tmp_path / "objects.npz")}
    np.testing.assert_array_equal(layers["v"].weights(), np.eye(4))
    with pytest.raises(LayerLoadError, match=r"'w'.*objects\.npz.*never unpickled"):
        layers["w"].weights()


@pytest.mark.parametrize("array", [np.ones((3, 3), complex), np.full((3, 3), "x"), np.ones((3, 3), bool), np.empty((3, 3), object)])
def test_numpy_mapping_with_non_real_dtype_fails_that_layer(array: np.ndarray) -> None:
    layers = list(iter_layers({"good": np.eye(3), "bad": array}))
    assert layers[0].weights().dtype == np.float64
    with pytest.raises(LayerLoadError, match=r"'bad'.*must return floating-point"):
        layers[1].weights()


def test_npz_object_array_fails_its_layer_saying_it_is_never_unpickled(tmp_path: Path) -> None:
    """numpy's 'Object arrays cannot be loaded when allow_pickle=False' pointed at an option ww never applies to .npz."""
    objects = np.empty((50, 40), dtype=object)
    objects[:] = 1.0
    np.savez(tmp_path / "obj.npz", w=objects, x=np.random.default_rng(0).standard_normal((50, 40)))
    for trust in (False, True):
        results = ww_core.analyze(tmp_path / "obj.npz", trust_pickle=trust, workers=1)
        assert [row["status"] for row in results.details] == ["failed", "success"]
        error = results.details[0]["error"]
        assert "obj.npz" in error and "Python objects" in error and "never unpickled" in error
        assert "allow_pickle" not in error
