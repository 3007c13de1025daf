"""Flax msgpack and Orbax checkpoints on a real ``distributed.LocalCluster``: rows equal serial, each worker reads its own leaves.

Run by ``nox -s distributed`` (outside the default matrix: it starts clusters of worker processes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
serialization = pytest.importorskip("flax.serialization")
pytest.importorskip("ww_jax")

import ww_core  # noqa: E402
from ww_core import testing  # noqa: E402
from ww_core.pipeline import analysis  # noqa: E402
from ww_core.results.options import AnalysisOptions  # noqa: E402
from ww_jax.file_refs import StoredLeaves  # noqa: E402

GATES = ("ii", "if", "ig", "io", "hi", "hf", "hg", "ho")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as connected:
            yield connected


def train_state() -> dict[str, Any]:
    """Dense (f32, f16), conv, DenseGeneral and LSTM gate kernels under ``params``, optimizer state beside."""
    rng = np.random.default_rng(4)

    def heavy(*shape: int, dtype: Any = np.float32) -> np.ndarray:
        return rng.standard_t(3, size=shape).astype(dtype)

    params = {
        "conv": {"kernel": heavy(3, 3, 8, 48)},
        "attn": {"query": {"kernel": heavy(48, 4, 16)}},
        "lstm": {"cell": {gate: {"kernel": heavy(48 if gate[0] == "i" else 32, 32)} for gate in GATES}},
        **{f"Dense_{i}": {"kernel": heavy(64 + 8 * i, 56, dtype=np.float16 if i % 2 else np.float32)} for i in range(4)},
    }
    return {"params": params, "opt_state": {"mu": params}}


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "state.msgpack"
    path.write_bytes(serialization.to_bytes(train_state()))
    return path


@pytest.fixture
def orbax_checkpoint(tmp_path: Path) -> Path:
    ocp = pytest.importorskip("orbax.checkpoint")
    path = (tmp_path / "ckpt" / "state").absolute()
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, train_state())
    checkpointer.wait_until_finished()
    return path


@pytest.fixture
def client_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Bytes of tensor data read through ww-jax's references in this, the client, process (workers are spawned, not patched)."""
    counted: list[int] = []
    real = StoredLeaves.read

    def read(self: StoredLeaves) -> np.ndarray:
        array = real(self)
        counted.append(array.nbytes)
        return array

    monkeypatch.setattr(StoredLeaves, "read", read)
    yield counted


@pytest.mark.parametrize("fixture", ["checkpoint", "orbax_checkpoint"])
def test_cluster_rows_equal_serial_and_the_client_reads_no_tensor_bytes(
    client: Any, fixture: str, request: pytest.FixtureRequest, client_reads: list[int]
) -> None:
    checkpoint = request.getfixturevalue(fixture)
    serial = ww_core.analyze(checkpoint, workers=1)
    assert sum(client_reads) > 0  # today's route reads every layer here
    client_reads.clear()
    clustered = ww_core.analyze(checkpoint, executor=client.get_executor(), workers=2)
    assert client_reads == []
    assert [row["status"] for row in serial.details] == ["success"] * 8
    testing.assert_rows_close(clustered.details, serial.details, rtol=1e-12, atol=1e-12, ignore=())
    assert set(serial.esds) == set(clustered.esds)


def test_a_file_truncated_after_listing_gives_failed_rows_naming_worker_and_file(
    client: Any, checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = analysis.model_layers

    def listed_then_truncated(source: Any, options: AnalysisOptions, *more: Any) -> Any:
        found = real(source, options, *more)
        checkpoint.write_bytes(checkpoint.read_bytes()[:-1000])
        return found

    monkeypatch.setattr(analysis, "model_layers", listed_then_truncated)
    results = ww_core.analyze(checkpoint, executor=client.get_executor(), workers=2)
    assert len(results.details) == 8
    for row in results.details:
        assert row["status"] == "failed" and "worker " in row["error"] and str(checkpoint) in row["error"], row.get("error")
        assert "not a Flax msgpack checkpoint" in row["error"]
