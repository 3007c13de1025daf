"""The results cache: rows keyed by the options and the layer's content, and file faults that lose nothing."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

import ww_core
from ww_core.pipeline import analysis
from ww_core.pipeline.cache import CacheWriteError
from ww_core.platform import version


def _heavy(seed: int, shape: tuple[int, int] = (120, 60), power: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32) ** power


def _save_safetensors(path: Path, arrays: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    save_file(arrays, str(path))


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of the layers whose spectra are computed (not restored from the cache)."""
    names: list[str] = []
    real = analysis.run_layer

    def counting(layer: Any, *args: Any) -> Any:
        names.append(layer.name)
        return real(layer, *args)

    monkeypatch.setattr(analysis, "run_layer", counting)
    yield names


def test_in_memory_models_with_the_same_names_and_shapes_do_not_share_rows(tmp_path: Path, computed: list[str]) -> None:
    cache = tmp_path / "rows.jsonl"
    first = ww_core.analyze({"fc": _heavy(1)}, cache=cache, workers=1)
    second = ww_core.analyze({"fc": _heavy(2, power=1)}, cache=cache, workers=1)
    assert computed == ["fc", "fc"]
    assert second.row("fc")["alpha"] == pytest.approx(ww_core.analyze({"fc": _heavy(2, power=1)}).row("fc")["alpha"])
    assert second.row("fc")["alpha"] != first.row("fc")["alpha"]


def test_same_weights_are_restored(tmp_path: Path, computed: list[str]) -> None:
    cache = tmp_path / "rows.jsonl"
    first = ww_core.analyze({"fc": _heavy(1)}, cache=cache, workers=1)
    again = ww_core.analyze({"fc": _heavy(1).copy()}, cache=cache, workers=1)
    assert computed == ["fc"]
    assert again.row("fc")["alpha"] == first.row("fc")["alpha"]


def test_other_options_miss(tmp_path: Path, computed: list[str]) -> None:
    cache = tmp_path / "rows.jsonl"
    ww_core.analyze({"fc": _heavy(1)}, cache=cache, workers=1)
    ww_core.analyze({"fc": _heavy(1)}, cache=cache, workers=1, mp_fit=True)
    assert computed == ["fc", "fc"]


def test_a_shard_rewritten_in_place_is_recomputed(tmp_path: Path, computed: list[str]) -> None:
    folder, cache = tmp_path / "shards", tmp_path / "rows.jsonl"
    folder.mkdir()
    _save_safetensors(folder / "model-00001-of-00002.safetensors", {"a.weight": _heavy(1)})
    _save_safetensors(folder / "model-00002-of-00002.safetensors", {"b.weight": _heavy(2)})
    ww_core.analyze(folder, cache=cache, workers=1)
    stamp = os.stat(folder)
    _save_safetensors(folder / "model-00002-of-00002.safetensors", {"b.weight": _heavy(3, power=1)})
    os.utime(folder, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    again = ww_core.analyze(folder, cache=cache, workers=1)
    assert computed == ["a", "b", "b"]
    assert again.row("b")["alpha"] == pytest.approx(ww_core.analyze(folder).row("b")["alpha"])


def test_a_same_size_rewrite_with_the_mtime_restored_is_recomputed(tmp_path: Path, computed: list[str]) -> None:
    path, cache = tmp_path / "model.safetensors", tmp_path / "rows.jsonl"
    _save_safetensors(path, {"fc.weight": _heavy(1)})
    ww_core.analyze(path, cache=cache, workers=1)
    stamp, size = os.stat(path), os.path.getsize(path)
    _save_safetensors(path, {"fc.weight": _heavy(4, power=1)})
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert os.path.getsize(path) == size
    again = ww_core.analyze(path, cache=cache, workers=1)
    assert computed == ["fc", "fc"]
    assert again.row("fc")["alpha"] == pytest.approx(ww_core.analyze(path).row("fc")["alpha"])


def test_the_same_file_by_absolute_or_relative_path_hits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, computed: list[str]) -> None:
    path, cache = tmp_path / "model.safetensors", tmp_path / "rows.jsonl"
    _save_safetensors(path, {"fc.weight": _heavy(1)})
    shutil.copy(path, tmp_path / "copy.safetensors")
    ww_core.analyze(path.resolve(), cache=cache, workers=1)
    monkeypatch.chdir(tmp_path)
    ww_core.analyze("model.safetensors", cache=cache, workers=1)
    ww_core.analyze("copy.safetensors", cache=cache, workers=1)
    assert computed == ["fc"]


def test_base_model_weights_are_part_of_the_key(tmp_path: Path, computed: list[str]) -> None:
    cache, weights = tmp_path / "rows.jsonl", {"fc": _heavy(1)}
    ww_core.analyze(weights, base_model={"fc": _heavy(2)}, cache=cache, workers=1)
    ww_core.analyze(weights, base_model={"fc": _heavy(3)}, cache=cache, workers=1)
    assert computed == ["fc", "fc"]


# --- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "junk",
    [
        b"1\n",
        b'{"rows":[]}\n',
        b'{"key": 3, "rows": 5}\n',
        b'{"key": "k", "rows": [1, 2]}\n',
        b"[]\n",
        b"null\n",
        b"\xff\xfe\x00garbage\x9c\n",
    ],
    ids=["number", "no-key", "wrong-types", "rows-not-objects", "list", "null", "random-bytes"],
)
def test_corrupt_lines_are_ignored_with_one_warning(tmp_path: Path, junk: bytes, caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "rows.jsonl"
    ww_core.analyze({"fc": _heavy(1)}, cache=cache, workers=1)
    good = cache.read_bytes()
    cache.write_bytes(junk + good + junk + junk)
    with caplog.at_level(logging.WARNING, logger="ww_core"):
        again = ww_core.analyze({"fc": _heavy(1), "fc2": _heavy(5)}, cache=cache, workers=1)
    assert [row["status"] for row in again.details] == ["success", "success"]
    warnings = [record.getMessage() for record in caplog.records if "cache" in record.getMessage()]
    assert len(warnings) == 1 and str(cache) in warnings[0] and "3" in warnings[0]


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path: Path, computed: list[str]) -> None:
    cache = tmp_path / "rows.jsonl"
    ww_core.analyze({"a": _heavy(1)}, cache=cache, workers=1)
    with cache.open("ab") as handle:
        handle.write(b'{"key": "torn", "rows": [{"na')  # a run killed mid-write
    ww_core.analyze({"a": _heavy(1), "b": _heavy(2)}, cache=cache, workers=1)
    ww_core.analyze({"a": _heavy(1), "b": _heavy(2)}, cache=cache, workers=1)
    assert computed == ["a", "b"]
    lines = cache.read_bytes().split(b"\n")
    assert json.loads(lines[-2])["rows"][0]["name"] == "b"


class _DiskFullAfter:
    """Opens the cache normally for the first ``records`` appends, then like a full disk (ENOSPC on write)."""

    def __init__(self, cache: Path, records: int) -> None:
        self.cache, self.left = cache, records
        self.real_open = Path.open

    def __call__(self, path: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = self.real_open(path, mode, *args, **kwargs)
        if path != self.cache or "a" not in mode:
            return handle
        if self.left > 0:
            self.left -= 1
            return handle
        return _FullHandle(handle)


class _FullHandle:
    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def __enter__(self) -> "_FullHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.handle.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    def write(self, data: bytes) -> int:
        self.handle.write(data[: len(data) // 2])  # part of the record reaches the disk
        self.handle.flush()
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_stops_the_run_cleanly_and_keeps_the_rows_so_far(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "rows.jsonl"
    model = {f"fc{i}": _heavy(i) for i in range(5)}
    full = _DiskFullAfter(cache, records=2)
    monkeypatch.setattr(Path, "open", lambda path, *args, **kwargs: full(path, *args, **kwargs))
    with pytest.raises(CacheWriteError) as caught:
        ww_core.analyze(model, cache=cache, workers=1)
    monkeypatch.undo()
    error = caught.value
    assert isinstance(error, OSError) and error.errno == errno.ENOSPC
    assert str(cache) in str(error) and "2 layers cached" in str(error)
    assert [row["name"] for row in error.results.details] == ["fc0", "fc1", "fc2"]
    resumed = ww_core.analyze(model, cache=cache, workers=1)
    assert [row["status"] for row in resumed.details] == ["success"] * 5
    assert resumed.row("fc2")["alpha"] == pytest.approx(error.results.row("fc2")["alpha"])


def test_the_cache_write_error_is_public() -> None:
    assert ww_core.CacheWriteError is CacheWriteError


def test_the_cli_reports_a_full_disk_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ww_core import cli

    model, cache = tmp_path / "model.safetensors", tmp_path / "rows.jsonl"
    _save_safetensors(model, {f"fc{i}.weight": _heavy(i) for i in range(3)})
    full = _DiskFullAfter(cache, records=1)
    monkeypatch.setattr(Path, "open", lambda path, *args, **kwargs: full(path, *args, **kwargs))
    assert cli.main(["analyze", str(model), "--cache", str(cache), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ww: error: cannot write the cache") and "1 layers cached" in err[0]


def test_a_cache_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a regular file"):
        ww_core.analyze({"fc": _heavy(1)}, cache="/dev/zero")


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".json"])
def test_a_file_that_is_not_a_cache_is_refused_and_left_untouched(tmp_path: Path, suffix: str) -> None:
    """`--cache model.safetensors` (meant --base) appended JSON lines to the user's model file."""
    other = tmp_path / f"model{suffix}"
    if suffix == ".safetensors":
        _save_safetensors(other, {"fc": _heavy(1)})
    elif suffix == ".npz":
        np.savez(other, fc=_heavy(1))
    else:
        other.write_text('{"architectures": ["Bert"]}\n')
    before = other.read_bytes()
    with pytest.raises(ValueError, match="not a ww results cache") as caught:
        ww_core.analyze({"fc": _heavy(1)}, cache=other, workers=1)
    assert str(other) in str(caught.value)
    assert other.read_bytes() == before


def test_the_cli_refuses_a_model_file_as_cache_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ww_core import cli

    model = tmp_path / "model.safetensors"
    _save_safetensors(model, {"fc": _heavy(1)})
    before = model.read_bytes()
    assert cli.main(["analyze", str(model), "--cache", str(model), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ww: error:") and f"--cache {model} would overwrite {model}" in err[0]
    assert model.read_bytes() == before


def test_rows_cached_by_another_ww_core_version_are_computed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, computed: list[str]
) -> None:
    """After an upgrade that fixes a number, the cache restored the old (wrong) rows: the version is part of the key."""
    cache = tmp_path / "rows.jsonl"
    ww_core.analyze({"fc": _heavy(1)}, cache=cache, workers=1)
    monkeypatch.setattr(version, "__version__", "9.9.9")
    ww_core.analyze({"fc": _heavy(1)}, cache=cache, workers=1)
    assert computed == ["fc", "fc"]


def test_an_unwritable_cache_is_refused_before_any_layer_is_computed(tmp_path: Path, computed: list[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot write the cache") as raised:
        ww_core.analyze({"fc.weight": _heavy(1)}, cache=blocker / "rows.jsonl")
    assert str(blocker / "rows.jsonl") in str(raised.value)
    assert computed == []
