"""``.keras`` and legacy ``.h5`` layers travel as references: a process-pool worker reads its own dataset; the client reads none."""

from __future__ import annotations

import multiprocessing
import pickle
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import keras
import numpy as np
import pytest

import ww_core
import ww_keras
from ww_core import testing
from ww_core.pipeline import analysis
from ww_core.results.options import AnalysisOptions
from ww_keras.file_refs import KerasFileRef

SPAWN = multiprocessing.get_context("spawn")  # workers start clean: the client-side read counter below is not inherited


@pytest.fixture
def client_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Bytes of tensor data read through the references in this (the client) process."""
    counted: list[int] = []
    real = KerasFileRef.read

    def read(self: KerasFileRef) -> np.ndarray:
        array = real(self)
        counted.append(array.nbytes)
        return array

    monkeypatch.setattr(KerasFileRef, "read", read)
    yield counted


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_file_layers_are_picklable_references_equal_to_the_live_model(zoo: keras.Model, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"zoo{suffix}"
    zoo.save(path)
    live = list(ww_keras.ww_layers(zoo, {}))
    saved = testing.check_layers(ww_keras.ww_layers(path, {}))
    assert [(m.name, m.kind, m.shape, m.framework_path) for m in saved] == [(m.name, m.kind, m.shape, m.framework_path) for m in live]
    for ours, theirs in zip(saved, live, strict=True):
        assert isinstance(ours.load, KerasFileRef), ours.name
        shipped = pickle.loads(pickle.dumps(ours))
        np.testing.assert_array_equal(shipped.load(), theirs.load(), err_msg=ours.name)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_process_pool_rows_equal_serial_and_the_client_reads_no_tensor_bytes(
    zoo: keras.Model, tmp_path: Path, suffix: str, client_reads: list[int]
) -> None:
    path = tmp_path / f"zoo{suffix}"
    zoo.save(path)
    serial = ww_core.analyze(path, workers=1, min_evals=2)
    assert client_reads
    client_reads.clear()
    with ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        pooled = ww_core.analyze(path, executor=pool, workers=2, min_evals=2)
    assert client_reads == []
    assert {row["status"] for row in serial.details} == {"success"}
    testing.assert_rows_close(pooled.details, serial.details, rtol=1e-12, atol=1e-12, ignore=())


def test_a_file_rewritten_after_listing_fails_the_changed_layer_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = (tmp_path / "net.keras").absolute()
    keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, name="a"), keras.layers.Dense(5, name="b")]).save(path)
    real = analysis.model_layers

    def listed_then_rewritten(source: Any, options: AnalysisOptions, *more: Any) -> Any:
        found = real(source, options, *more)
        keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, name="a"), keras.layers.Dense(7, name="b")]).save(path)
        return found

    monkeypatch.setattr(analysis, "model_layers", listed_then_rewritten)
    with ProcessPoolExecutor(1, mp_context=SPAWN) as pool:
        results = ww_core.analyze(path, executor=pool, min_evals=2)
    assert [row["status"] for row in results.details] == ["success", "failed"]
    error = results.details[1]["error"]
    assert "worker " in error and str(path) in error and "(8, 7)" in error and "listed as (8, 5)" in error, error


def test_an_archive_rewritten_into_a_zip_bomb_after_listing_is_refused_by_the_reference(tmp_path: Path) -> None:
    path = tmp_path / "net.keras"
    keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, name="a")]).save(path)
    (layer,) = ww_keras.ww_layers(path, {})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", bytes(200 << 20))  # 200 MiB of zeros in a few hundred kB
    testing.check_clear_error(pickle.loads(pickle.dumps(layer.load)).read, str(path.absolute()), "model.weights.h5", "zip bomb")
