"""Flax msgpack layers travel as references: a process-pool worker reads its own leaf bytes; the client reads none."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

import ww_core
import ww_jax
from ww_core import testing
from ww_core.pipeline import analysis
from ww_core.results.options import AnalysisOptions
from ww_jax.file_refs import StoredLeaves
from ww_jax.msgpack_file import MsgpackRef
from ww_jax.orbax_checkpoint import OrbaxRef

SPAWN = multiprocessing.get_context("spawn")  # workers start clean: the client-side read counter below is not inherited
GATES = ("ii", "if", "ig", "io", "hi", "hf", "hg", "ho")


def params(seed: int = 0) -> dict[str, Any]:
    """Every layout a msgpack route reads: embedding, conv, DenseGeneral in/out, LSTM gates, bf16/f16/f64 dense; biases."""
    rng = np.random.default_rng(seed)

    def heavy(*shape: int, dtype: Any = np.float32) -> np.ndarray:
        return np.asarray(rng.standard_t(3, size=shape), dtype=dtype)

    lstm = {gate: {"kernel": heavy(40 if gate[0] == "i" else 24, 24), "bias": heavy(24)} for gate in GATES}
    return {
        "embed": {"embedding": heavy(120, 40)},
        "conv": {"kernel": heavy(3, 3, 8, 40), "bias": heavy(40)},
        "attn": {"query": {"kernel": heavy(40, 4, 16)}, "out": {"kernel": heavy(4, 16, 40)}},
        "lstm": {"cell": lstm},
        "Dense_0": {"kernel": heavy(40, 96, dtype=jnp.bfloat16), "bias": heavy(96)},
        "Dense_1": {"kernel": heavy(96, 64, dtype=np.float16)},
        "Dense_2": {"kernel": heavy(64, 48, dtype=np.float64)},
        "ids": {"kernel": np.arange(12, dtype=np.int32).reshape(3, 4)},
    }


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "state.msgpack"
    path.write_bytes(serialization.to_bytes({"params": params(), "opt_state": {"mu": params(1)}, "step": 7}))
    return path


@pytest.fixture
def client_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Bytes of tensor data read through the references in this (the client) process."""
    counted: list[int] = []
    real = StoredLeaves.read

    def read(self: StoredLeaves) -> np.ndarray:
        array = real(self)
        counted.append(array.nbytes)
        return array

    monkeypatch.setattr(StoredLeaves, "read", read)
    yield counted


def test_msgpack_layers_are_picklable_references_equal_to_flax_own_restore(checkpoint: Path) -> None:
    listed = testing.check_layers(ww_jax.ww_layers(checkpoint, {}))
    restored = serialization.msgpack_restore(checkpoint.read_bytes())
    in_memory = list(ww_jax.ww_layers(restored, {}) or ())  # today's route: flax decodes the leaves
    assert [(m.name, m.kind, m.shape, m.framework_path, m.skip) for m in listed] == [
        (m.name, m.kind, m.shape, m.framework_path, m.skip) for m in in_memory
    ]
    assert [m.name for m in listed] == [
        "embed",
        "conv",
        "attn.query",
        "attn.out",
        "lstm.ih_l0",
        "lstm.hh_l0",
        "Dense_0",
        "Dense_1",
        "Dense_2",
        "ids",
    ]
    for layer, twin in zip(listed, in_memory, strict=True):
        assert isinstance(layer.load, MsgpackRef), layer.name
        shipped = pickle.loads(pickle.dumps(layer))
        if not layer.skip:
            got, want = shipped.load(), twin.load()
            assert got.dtype == want.dtype and got.flags.c_contiguous, layer.name
            np.testing.assert_array_equal(got, want, err_msg=layer.name)
    stacked = next(layer.load for layer in listed if layer.name == "lstm.ih_l0")
    assert [span.leaf[-2] for span in stacked.spans] == ["ii", "if", "ig", "io"]


def test_process_pool_rows_equal_serial_and_the_client_reads_no_tensor_bytes(checkpoint: Path, client_reads: list[int]) -> None:
    serial = ww_core.analyze(checkpoint, workers=1)
    assert sum(client_reads) > 0.9 * sum(np.asarray(layer.load()).nbytes for layer in ww_jax.ww_layers(checkpoint, {}) if not layer.skip)
    client_reads.clear()
    with ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        pooled = ww_core.analyze(checkpoint, executor=pool, workers=2)
    assert client_reads == []
    assert [row["status"] for row in serial.details].count("success") == 9
    testing.assert_rows_close(pooled.details, serial.details, rtol=1e-12, atol=1e-12, ignore=())
    assert set(serial.esds) == set(pooled.esds)


def _changed_after_listing(monkeypatch: pytest.MonkeyPatch, change: Callable[[], None]) -> None:
    """Run ``change`` after analyze() has listed the layers and before any is read."""
    real = analysis.model_layers

    def listed_then_changed(source: Any, options: AnalysisOptions, *more: Any) -> Any:
        found = real(source, options, *more)
        change()
        return found

    monkeypatch.setattr(analysis, "model_layers", listed_then_changed)


def _rewrite(path: Path, tree: dict[str, Any]) -> Callable[[], None]:
    return lambda: path.write_bytes(serialization.to_bytes({"params": tree}))


def _truncate(path: Path) -> Callable[[], None]:
    return lambda: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _other_shape(path: Path) -> Callable[[], None]:
    tree = params(2)
    tree["Dense_2"]["kernel"] = tree["Dense_2"]["kernel"][:50]
    return _rewrite(path, tree)


def _leaf_gone(path: Path) -> Callable[[], None]:
    tree = params(2)
    del tree["Dense_2"]
    return _rewrite(path, tree)


@pytest.mark.parametrize(
    ("change", "rows", "says"),
    [
        (_truncate, "all", "not a Flax msgpack checkpoint"),
        (_other_shape, "Dense_2", "leaf 'params/Dense_2/kernel' is float64 (50, 48) now, listed as float64 (64, 48)"),
        (_leaf_gone, "Dense_2", "holds no leaf 'params/Dense_2/kernel' any more"),
    ],
)
@pytest.mark.parametrize("pooled", [False, True], ids=["serial", "process pool"])
def test_a_file_changed_after_listing_gives_failed_rows_naming_it(
    checkpoint: Path, monkeypatch: pytest.MonkeyPatch, change: Callable[[Path], Callable[[], None]], rows: str, says: str, pooled: bool
) -> None:
    _changed_after_listing(monkeypatch, change(checkpoint))
    if pooled:
        with ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
            results = ww_core.analyze(checkpoint, executor=pool, workers=2)
    else:
        results = ww_core.analyze(checkpoint, workers=1)
    failed = [row for row in results.details if row["status"] == "failed"]
    analyzed = [row for row in results.details if row["status"] != "skipped"]
    assert failed == analyzed if rows == "all" else [row["name"] for row in failed] == [rows]
    for row in failed:
        assert str(checkpoint) in row["error"] and says in row["error"], row["error"]
        assert ("worker " in row["error"]) == pooled


def test_a_rewritten_file_whose_leaves_moved_is_read_by_leaf_not_by_old_offset(checkpoint: Path) -> None:
    """Listed, then rewritten with the same shapes in another order and new values: each layer loads its own new leaf."""
    listed = {layer.name: layer for layer in ww_jax.ww_layers(checkpoint, {})}
    new = dict(reversed(params(5).items()))
    checkpoint.write_bytes(serialization.to_bytes({"params": new}))
    fresh = {layer.name: layer for layer in ww_jax.ww_layers(checkpoint, {})}
    assert fresh["Dense_2"].load.spans[0].start != listed["Dense_2"].load.spans[0].start  # the bytes moved
    with ProcessPoolExecutor(1, mp_context=SPAWN) as pool:
        loaded = dict(zip(fresh, pool.map(_load, [listed[name] for name in fresh])))
    for name, layer in fresh.items():
        if not layer.skip:
            np.testing.assert_array_equal(loaded[name], layer.load(), err_msg=name)


def _load(layer: Any) -> np.ndarray:
    return np.asarray(layer.load())


def test_arrays_flax_split_into_chunks_are_references_listed_without_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serialization, "MAX_CHUNK_SIZE", 1 << 16)  # as an array over 1 GiB is split, at a test's size
    tree = params(3)
    tree["big"] = {"kernel": np.random.default_rng(1).standard_t(3, size=(1000, 500)).astype(np.float32)}  # 2 MB: 31 chunks
    tree["Dense_0"]["kernel"] = np.asarray(np.random.default_rng(2).standard_normal((1000, 96)), dtype=jnp.bfloat16)  # 3 chunks
    path = tmp_path / "chunked.msgpack"
    path.write_bytes(serialization.to_bytes({"params": tree}))
    restored = serialization.msgpack_restore(path.read_bytes())
    assert restored["params"]["big"]["kernel"].shape == (1000, 500)  # flax joins its chunks
    weight_bytes = sum(np.asarray(leaf).nbytes for leaf in (tree["big"]["kernel"], tree["Dense_0"]["kernel"]))
    testing.check_lists_without_reading(lambda: ww_jax.ww_layers(path, {}), weight_bytes)
    listed = {layer.name: layer for layer in ww_jax.ww_layers(path, {})}
    in_memory = {layer.name: layer for layer in ww_jax.ww_layers(restored, {}) or ()}
    assert [(m.name, m.shape, m.skip) for m in listed.values()] == [(m.name, m.shape, m.skip) for m in in_memory.values()]
    for name in ("big", "Dense_0"):
        ref = listed[name].load
        assert isinstance(ref, MsgpackRef) and len(ref.spans) > 1, name
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(ref))(), in_memory[name].load(), err_msg=name)
    serial = ww_core.analyze(path, workers=1)
    with ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        pooled = ww_core.analyze(path, executor=pool, workers=2)
    testing.assert_rows_close(pooled.details, serial.details, rtol=1e-12, atol=1e-12, ignore=())


def test_a_chunked_array_rewritten_with_more_whole_chunks_fails_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its first chunks keep their shapes: only the array's own shape, read again, tells the change."""
    monkeypatch.setattr(serialization, "MAX_CHUNK_SIZE", 1 << 16)  # 16384 float32 a chunk
    rng = np.random.default_rng(6)
    path = tmp_path / "chunked.msgpack"
    path.write_bytes(serialization.to_bytes({"params": {"big": {"kernel": rng.standard_normal((256, 256)).astype(np.float32)}}}))
    (layer,) = ww_jax.ww_layers(path, {})
    assert len(layer.load.spans) == 4
    path.write_bytes(
        serialization.to_bytes(
            {
                "params": {
                    "w": {"kernel": rng.standard_normal((2, 2)).astype(np.float32)},
                    "big": {"kernel": rng.standard_normal((320, 256)).astype(np.float32)},
                }
            }
        )
    )
    message = str(
        testing.check_clear_error(layer.weights, str(path), "'params/big/kernel' is float32 (320, 256) now, listed as float32 (256, 256)")
    )
    assert "changed since its layers were listed" in message
    new = rng.standard_normal((256, 256)).astype(np.float32)
    path.write_bytes(serialization.to_bytes({"params": {"w": {"kernel": new[:3, :3]}, "big": {"kernel": new}}}))
    np.testing.assert_array_equal(layer.weights(), new.T)


def _orbax(path: Path, tree: Any) -> Path:
    ocp = pytest.importorskip("orbax.checkpoint")
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path.absolute(), tree, force=True)
    checkpointer.wait_until_finished()
    return path


def test_orbax_layers_are_picklable_references_a_process_pool_reads(tmp_path: Path, client_reads: list[int]) -> None:
    tree = params()
    path = _orbax(tmp_path / "ckpt" / "state", {"params": tree})
    listed = testing.check_layers(ww_jax.ww_layers(path, {}))
    in_memory = {layer.name: layer for layer in ww_jax.ww_layers({"params": tree}, {}) or ()}
    assert sorted((m.name, m.kind, m.shape, m.skip) for m in listed) == sorted(
        (m.name, m.kind, m.shape, m.skip) for m in in_memory.values()
    )
    for layer in listed:
        assert isinstance(layer.load, OrbaxRef), layer.name
        if not layer.skip:
            np.testing.assert_array_equal(pickle.loads(pickle.dumps(layer)).load(), in_memory[layer.name].load(), err_msg=layer.name)
    assert next(layer.load for layer in listed if layer.name == "lstm.ih_l0").leaves[1][-2:] == ("if", "kernel")
    client_reads.clear()
    serial = ww_core.analyze(path, workers=1)
    assert client_reads
    client_reads.clear()
    with ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        pooled = ww_core.analyze(path, executor=pool, workers=2)
    assert client_reads == []
    assert [row["status"] for row in serial.details].count("success") == 9
    testing.assert_rows_close(pooled.details, serial.details, rtol=1e-12, atol=1e-12, ignore=())


def test_an_orbax_array_reshaped_after_listing_fails_its_row_naming_the_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _orbax(tmp_path / "state", {"params": params()})
    changed = params(2)
    changed["Dense_2"]["kernel"] = changed["Dense_2"]["kernel"][:50]
    _changed_after_listing(monkeypatch, lambda: _orbax(path, {"params": changed}))
    with ProcessPoolExecutor(1, mp_context=SPAWN) as pool:
        results = ww_core.analyze(path, executor=pool)
    failed = [row for row in results.details if row["status"] == "failed"]
    assert [row["name"] for row in failed] == ["Dense_2"]
    assert str(path) in failed[0]["error"] and "worker " in failed[0]["error"]
    assert "'params/Dense_2/kernel' is (50, 48) now, listed as (64, 48)" in failed[0]["error"]


def test_references_name_the_file_absolutely_for_workers_in_other_folders(checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(checkpoint.parent)
    (layer, *_) = ww_jax.ww_layers(checkpoint.name, {})
    assert layer.load.path == str(checkpoint)
    monkeypatch.chdir("/")
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(layer)).load(), params()["embed"]["embedding"])
