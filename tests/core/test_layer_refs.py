"""Layers that travel as file references: a process-pool worker reads its own layer, the client loads no weights."""

from __future__ import annotations

import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from safetensors.numpy import save_file

import ww_core
from ww_core.pipeline import analysis
from ww_core.pipeline.cache import ResultsCache
from ww_core.pipeline.remote_layers import CacheProbe
from ww_core.platform.toolkit import FileSpan, Layout, TensorRef
from ww_core.results.options import AnalysisOptions

SPAWN = multiprocessing.get_context("spawn")  # workers start clean: the client-side read counter below is not inherited
NUMERIC = ("alpha", "D", "sigma", "xmin", "lambda_max", "log_norm", "stable_rank")


def _weights(count: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {f"block.{i}.weight": rng.standard_t(4, size=(40 + 4 * i, 32)).astype(np.float32) for i in range(count)}


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    weights = _weights(6)
    names = list(weights)
    folder = tmp_path / "model"
    folder.mkdir()
    save_file({n: weights[n] for n in names[:3]}, str(folder / "model-1.safetensors"))
    save_file({n: weights[n] for n in names[3:]}, str(folder / "model-2.safetensors"))
    return folder


@pytest.fixture
def client_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Bytes of tensor data read through the toolkit in this (the client) process."""
    counted: list[int] = []
    for cls in TensorRef.__subclasses__():
        real = cls.read

        def read(self: Any, _real: Any = real) -> np.ndarray:
            array = _real(self)
            counted.append(array.nbytes)
            return array

        monkeypatch.setattr(cls, "read", read)
    yield counted


def _same_rows(first: ww_core.Results, second: ww_core.Results) -> None:
    assert [row["name"] for row in first.details] == [row["name"] for row in second.details]
    for a, b in zip(first.details, second.details, strict=True):
        assert a["status"] == b["status"] == "success", (a.get("error"), b.get("error"))
        for column in NUMERIC:
            assert a[column] == pytest.approx(b[column], rel=1e-12, abs=1e-12), column


def test_safetensors_layers_are_picklable_references(shards: Path) -> None:
    layers = list(analysis.model_layers(shards, AnalysisOptions()).layers)
    assert all(isinstance(layer.load, FileSpan) for layer in layers)
    again = pickle.loads(pickle.dumps(layers[0]))
    np.testing.assert_array_equal(again.weights(), layers[0].weights())


def test_npz_layers_are_picklable_references(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    np.savez(path, **_weights(2))
    layer = next(iter(analysis.model_layers(path, AnalysisOptions()).layers))
    again = pickle.loads(pickle.dumps(layer))
    np.testing.assert_array_equal(again.weights(), _weights(2)["block.0.weight"])


def test_layout_picks_then_swaps(tmp_path: Path) -> None:
    array = np.arange(24, dtype="<f4").reshape(6, 4)
    path = tmp_path / "raw.bin"
    path.write_bytes(b"\0" * 8 + array.tobytes())
    span = FileSpan(str(path), 8, "<f4", (6, 4), Layout(pick=(slice(2, 4),), swap=True))
    np.testing.assert_array_equal(span(), array[2:4].T)


def test_process_pool_workers_read_their_own_layers(shards: Path, client_reads: list[int]) -> None:
    serial = ww_core.analyze(shards, workers=1)
    assert sum(client_reads) > 0  # today's route: the client reads every layer
    client_reads.clear()
    with ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        pooled = ww_core.analyze(shards, executor=pool)
    assert client_reads == []  # the workers read the bytes; the client only the headers
    _same_rows(serial, pooled)


def test_worker_that_cannot_see_the_file_gives_a_failed_row_naming_worker_and_path(shards: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = analysis.model_layers
    gone = shards / "model-2.safetensors"

    def listed_then_removed(source: Any, options: AnalysisOptions, *more: Any) -> Any:
        found = real(source, options, *more)
        gone.unlink()  # the client saw the shard; the workers will not
        return found

    monkeypatch.setattr(analysis, "model_layers", listed_then_removed)
    with ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        results = ww_core.analyze(shards, executor=pool)
    failed = [row for row in results.details if row["status"] == "failed"]
    assert [row["name"] for row in failed] == ["block.3", "block.4", "block.5"]
    assert all(str(gone) in row["error"] and "worker " in row["error"] for row in failed)
    assert all(row["status"] == "success" for row in results.details[:3])


def test_worker_keys_the_cache_and_a_hit_computes_nothing(shards: Path) -> None:
    layer = next(iter(analysis.model_layers(shards, AnalysisOptions()).layers))
    options = AnalysisOptions()
    fresh = analysis.run_from_refs(layer, None, options, CacheProbe("fp"))
    assert fresh.rows and fresh.key is not None and not fresh.hit
    again = analysis.run_from_refs(layer, None, options, CacheProbe("fp", frozenset({fresh.key})))
    assert again.hit and again.rows == [] and again.key == fresh.key


def test_cache_works_when_workers_read(shards: Path, tmp_path: Path, client_reads: list[int]) -> None:
    cache = tmp_path / "cache.jsonl"
    with ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        first = ww_core.analyze(shards, executor=pool, cache=cache)
        lines = cache.read_text().splitlines()
        second = ww_core.analyze(shards, executor=pool, cache=cache)
    assert len(lines) == 6 and cache.read_text().splitlines() == lines  # every layer a hit: nothing appended
    assert client_reads == []
    _same_rows(first, second)
    serial = ww_core.analyze(shards, workers=1, cache=cache)  # keys agree across routes: the client hits the workers' keys
    assert cache.read_text().splitlines() == lines
    _same_rows(first, serial)
    assert len(ResultsCache(cache, AnalysisOptions())._stored) == 6  # every record kept for its layer to check


def test_an_npz_replaced_with_the_same_size_and_mtime_is_read_anew(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    np.savez(path, **{"fc.weight": np.ones((8, 4))})
    first = next(iter(analysis.model_layers(path, AnalysisOptions()).layers)).weights()
    stamp = path.stat()
    replacement = tmp_path / "new.npz"
    np.savez(replacement, **{"fc.weight": np.full((8, 4), 2.0)})
    os.utime(replacement, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    os.replace(replacement, path)  # a new file (inode) with the old one's size and mtime
    again = next(iter(analysis.model_layers(path, AnalysisOptions()).layers)).weights()
    assert first[0, 0] == 1.0 and again[0, 0] == 2.0


def _archive_fd(path: str) -> int:
    from ww_core.sources import npz_member

    return npz_member.open_archive(Path(path))[0].fp.fileno()  # type: ignore[union-attr]


def test_a_forked_worker_never_shares_the_parent_npz_archive(tmp_path: Path) -> None:
    """A forked pool worker inherited the client's open archive: processes sharing one file offset read each
    other's positions (a layer failed at random with an empty error under executor=ProcessPoolExecutor)."""
    path = tmp_path / "m.npz"
    np.savez(path, w=np.ones((4, 4)))
    parent = _archive_fd(str(path))
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply(_archive_fd, (str(path),))
    assert child != parent


def _rewrite(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """Rewrite a safetensors file in place with other contents (a header of another length shifts every offset)."""
    save_file(tensors, str(path))


def test_a_safetensors_file_rewritten_after_listing_is_read_by_tensor_name(tmp_path: Path) -> None:
    """The reference kept the listing's byte offset: after the file was rewritten with a longer header it read shifted
    bytes, and a layer came back 'success' with a number from neither the old nor the new weights."""
    path = tmp_path / "m.safetensors"
    first, second = _weights(2)["block.0.weight"], _weights(2)["block.1.weight"][:40]
    _rewrite(path, {"a.weight": first, "b.weight": second})
    layers = list(analysis.model_layers(path, AnalysisOptions()).layers)
    _rewrite(path, {"a.weight": second, "b.weight": first, "a_longer_name_grows_the_header": np.zeros(3, np.float32)})
    np.testing.assert_array_equal(layers[0].weights(), second)  # the file's current tensor of that name
    np.testing.assert_array_equal(layers[1].weights(), first)


def test_a_safetensors_tensor_gone_or_reshaped_after_listing_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    weights = _weights(2)
    _rewrite(path, {"a.weight": weights["block.0.weight"], "b.weight": weights["block.1.weight"]})
    layers = list(analysis.model_layers(path, AnalysisOptions()).layers)
    _rewrite(path, {"a.weight": weights["block.0.weight"].T.copy()})
    with pytest.raises(ValueError, match=rf"{path}: tensor 'a.weight' is now F32 \[32, 40\], listed as .*changed since"):
        layers[0].weights()
    with pytest.raises(ValueError, match=rf"{path}: holds no tensor 'b.weight' any more .*changed since"):
        layers[1].weights()


class _RewritesOnFirstSubmit(ProcessPoolExecutor):
    """A pool whose first submit rewrites the checkpoint: the file changes between the client's listing and the workers' reads."""

    def __init__(self, path: Path, tensors: dict[str, np.ndarray]) -> None:
        super().__init__(2, mp_context=SPAWN)
        self.pending_rewrite: tuple[Path, dict[str, np.ndarray]] | None = (path, tensors)

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        if self.pending_rewrite is not None:
            _rewrite(*self.pending_rewrite)
            self.pending_rewrite = None
        return super().submit(fn, *args, **kwargs)


def test_workers_read_a_rewritten_safetensors_file_by_name_never_at_stale_offsets(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    weights = _weights(3)
    a, b, c = weights["block.0.weight"], weights["block.1.weight"], weights["block.2.weight"]
    _rewrite(path, {"a.weight": a, "b.weight": b, "c.weight": c})
    rewritten = {"a.weight": b[:40], "aa_new_tensor": np.zeros((2, 2), np.float32), "b.weight": c[:40], "c.weight": c}
    with _RewritesOnFirstSubmit(path, rewritten) as pool:
        results = ww_core.analyze(path, executor=pool)
    rows = {row["name"]: row for row in results.details}
    assert rows["a"]["status"] == "success"
    assert rows["a"]["lambda_max"] == pytest.approx(ww_core.analyze({"a.weight": b[:40]}).details[0]["lambda_max"], rel=1e-12)
    assert rows["b"]["status"] == "failed" and str(path) in rows["b"]["error"] and "changed since" in rows["b"]["error"]
    assert rows["c"]["lambda_max"] == pytest.approx(ww_core.analyze({"c.weight": c}).details[0]["lambda_max"], rel=1e-12)


def test_a_relative_path_is_read_by_workers_whose_working_directory_differs(shards: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The references kept the client's relative path: a worker started elsewhere (a Dask worker launched from
    another directory) resolved it from its own working directory, and every layer failed."""
    monkeypatch.chdir(shards.parent)
    serial = ww_core.analyze(shards.name, workers=1)
    with ProcessPoolExecutor(2, mp_context=SPAWN, initializer=os.chdir, initargs=("/",)) as pool:
        pooled = ww_core.analyze(shards.name, executor=pool)
    _same_rows(serial, pooled)
    assert pooled.source == shards.name  # the results still name the source as given
