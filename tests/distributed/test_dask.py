"""analyze() on a real ``distributed.LocalCluster``: same rows as serial, workers read their own layers, a dying layer fails alone.

Run by ``nox -s distributed`` (outside the default matrix: it starts clusters of worker processes).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import cloudpickle
import dask
import numpy as np
import pytest
from safetensors.numpy import save_file

import ww_core
from ww_core.cli import main
from ww_core.pipeline import analysis
from ww_core.platform.toolkit import TensorRef
from ww_core.results.options import AnalysisOptions

from ..interrupt import python_module

distributed = pytest.importorskip("distributed")
NUMERIC = ("alpha", "D", "sigma", "xmin", "lambda_max", "log_norm", "stable_rank", "num_pl_spikes")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with distributed.Client(cluster) as connected:
                yield connected


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-shard safetensors folder: 9 layers of mixed shapes and dtypes."""
    rng = np.random.default_rng(11)
    folder = tmp_path_factory.mktemp("sharded")
    for shard in range(3):
        tensors = {}
        for i in range(3):
            n = 3 * shard + i
            array = rng.standard_t(3 + n % 3, size=(64 + 8 * n, 48))
            tensors[f"model.layers.{n}.mlp.weight"] = array.astype(np.float32 if n % 2 else np.float64)
        save_file(tensors, str(folder / f"model-0000{shard + 1}-of-00003.safetensors"))
    return folder


@pytest.fixture
def client_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Bytes of tensor data read through the toolkit in this, the client, process (workers are spawned, not patched)."""
    counted: list[int] = []
    for cls in TensorRef.__subclasses__():
        real = cls.read

        def read(self: Any, _real: Any = real) -> np.ndarray:
            array = _real(self)
            counted.append(array.nbytes)
            return array

        monkeypatch.setattr(cls, "read", read)
    yield counted


def _assert_same(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> None:
    assert [row["name"] for row in first] == [row["name"] for row in second]
    for a, b in zip(first, second, strict=True):
        assert a["status"] == b["status"] == "success", (a.get("error"), b.get("error"))
        for column in NUMERIC:
            assert a[column] == pytest.approx(b[column], rel=1e-12, abs=1e-12), (a["name"], column)


def test_cluster_rows_equal_serial_and_the_client_reads_no_tensor_bytes(client: Any, checkpoint: Path, client_reads: list[int]) -> None:
    serial = ww_core.analyze(checkpoint, workers=1)
    checkpoint_bytes = sum(client_reads)
    assert checkpoint_bytes >= sum(p.stat().st_size for p in checkpoint.iterdir()) * 0.9  # today's route reads it all here
    client_reads.clear()
    clustered = ww_core.analyze(checkpoint, executor=client.get_executor(), workers=2)
    assert client_reads == []
    _assert_same(serial.details, clustered.details)
    assert set(serial.esds) == set(clustered.esds)


def test_cache_works_from_the_client(client: Any, checkpoint: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.jsonl"
    first = ww_core.analyze(checkpoint, executor=client.get_executor(), cache=cache)
    written = cache.read_text()
    again = ww_core.analyze(checkpoint, executor=client.get_executor(), cache=cache)
    assert len(written.splitlines()) == 9 and cache.read_text() == written
    _assert_same(first.details, again.details)


def test_in_memory_layers_still_ship_their_arrays(client: Any) -> None:
    rng = np.random.default_rng(2)
    model = {f"fc{i}.weight": rng.standard_normal((60, 40)) for i in range(3)}
    _assert_same(ww_core.analyze(model, workers=1).details, ww_core.analyze(model, executor=client.get_executor()).details)


@dataclass(frozen=True)
class KillingRef(TensorRef):
    """Reading it kills the worker process (an OOM kill, a segfault in a reader)."""

    path: str

    def read(self) -> np.ndarray:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


def test_a_layer_that_kills_its_workers_fails_alone_naming_worker_and_path(
    client: Any, checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    real = analysis.model_layers

    def with_a_killer(source: Any, options: AnalysisOptions, *more: Any) -> Any:
        found = real(source, options, *more)
        layers = list(found.layers)
        layers[4] = replace(layers[4], load=KillingRef(str(checkpoint / "model-00002-of-00003.safetensors")))
        return type(found)(found.adapter, layers)

    monkeypatch.setattr(analysis, "model_layers", with_a_killer)
    try:
        results = ww_core.analyze(checkpoint, executor=client.get_executor())
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    statuses = [row["status"] for row in results.details]
    assert statuses == ["success"] * 4 + ["failed"] + ["success"] * 4
    error = results.details[4]["error"]
    assert "model-00002-of-00003.safetensors" in error and "tcp://" in error  # the file, and the last worker that died on it


@dataclass(frozen=True)
class TwiceKillingRef(TensorRef):
    """Kills the worker reading it on its first two reads (counted by marker files), then reads ``inner``: a layer that was only unlucky."""

    path: str
    marks: str
    inner: TensorRef

    def read(self) -> np.ndarray:
        for attempt in range(2):
            try:
                os.close(os.open(os.path.join(self.marks, f"attempt-{attempt}"), os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.read()


def test_a_layer_whose_workers_died_twice_succeeds_when_retried(
    client: Any, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dask failed it (KilledWorker after allowed-failures); the retry must run it again, not get Dask's cached failure for the same key."""
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    real = analysis.model_layers

    def unlucky(source: Any, options: AnalysisOptions, *more: Any) -> Any:
        found = real(source, options, *more)
        layers = list(found.layers)
        layers[4] = replace(layers[4], load=TwiceKillingRef(layers[4].load.path, str(tmp_path), layers[4].load))
        return type(found)(found.adapter, layers)

    monkeypatch.setattr(analysis, "model_layers", unlucky)
    try:
        retried = ww_core.analyze(checkpoint, executor=client.get_executor())
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attempt-0", "attempt-1"]  # it did kill two workers
    monkeypatch.undo()
    _assert_same(ww_core.analyze(checkpoint, workers=1).details, retried.details)


def test_worker_that_cannot_see_the_file(client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_file({"a.weight": np.ones((8, 8), np.float32), "b.weight": np.eye(8, dtype=np.float32)}, str(tmp_path / "m.safetensors"))
    real = analysis.model_layers

    def elsewhere(source: Any, options: AnalysisOptions, *more: Any) -> Any:
        found = real(source, options, *more)
        moved = [replace(layer, load=replace(layer.load, path="/nonexistent/m.safetensors")) for layer in found.layers]
        return type(found)(found.adapter, moved)

    monkeypatch.setattr(analysis, "model_layers", elsewhere)
    results = ww_core.analyze(tmp_path / "m.safetensors", executor=client.get_executor())
    for row in results.details:
        assert row["status"] == "failed" and "/nonexistent/m.safetensors" in row["error"] and "worker " in row["error"]


def test_cli_dask_local(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(checkpoint), "--workers", "1", "--json", str(tmp_path / "serial.json"), "-q"]) == 0
    assert main(["analyze", str(checkpoint), "--dask", "local:2", "--json", str(tmp_path / "dask.json"), "-q"]) == 0
    serial = json.loads((tmp_path / "serial.json").read_text())
    clustered = json.loads((tmp_path / "dask.json").read_text())
    _assert_same(serial["details"], clustered["details"])


def test_cli_dask_local_says_nothing_of_a_dashboard_port_in_use(checkpoint: Path) -> None:
    """Its scheduler served HTTP on 8787 even without a dashboard: with another cluster (or ww run) holding that
    port, every run printed 'ww: warning: Port 8787 is already in use. Perhaps you already have a cluster running?'."""
    import socket

    holder = socket.socket()
    try:
        holder.bind(("", 8787))
        holder.listen()
    except OSError:
        pass  # already held by someone else: the same situation
    try:
        command = [sys.executable, "-m", "ww_core", "analyze", str(checkpoint), "--dask", "local:1", "-q"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    finally:
        holder.close()
    assert done.returncode == 0, done.stderr[-2000:]
    assert "8787" not in done.stderr and "already in use" not in done.stderr, done.stderr


def test_cli_dask_refuses_a_bad_address(capsys: pytest.CaptureFixture[str], checkpoint: Path) -> None:
    assert main(["analyze", str(checkpoint), "--dask", "local:zero"]) != 0
    assert "expected local:N" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["foo", "inproc://x", "tcp://host:abc", "ucx://127.0.0.1:1"])
def test_cli_dask_refuses_a_malformed_address_in_one_line_naming_the_flag(
    address: str, capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    """Dask's own errors came through bare ('ww: error: not enough values to unpack (expected 3, got 1)'), or as a
    traceback (ucx:// without UCX installed: TypeError)."""
    assert main(["analyze", str(checkpoint), "--dask", address]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ww: error: --dask {address}: ") and len(err.strip().splitlines()) == 1, err


def test_cli_dask_refuses_zero_workers(capsys: pytest.CaptureFixture[str], checkpoint: Path) -> None:
    """``--workers 0`` was taken for 'not given' with --dask and silently became the cluster's thread count."""
    assert main(["analyze", str(checkpoint), "--dask", "local:1", "--workers", "0"]) == 2
    assert "workers must be at least 1, got 0" in capsys.readouterr().err


def test_docs_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "distributed.md").read_text()
    [block] = [block for block in re.findall(r"```py\n(.*?)```", page, re.S) if "LocalCluster" in block]
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    save_file({f"l.{i}.weight": rng.standard_normal((80, 60)).astype(np.float32) for i in range(3)}, "model.safetensors")
    script = tmp_path / "example.py"
    script.write_text(block)
    # as a user runs it, a script: Dask's spawned workers import the script again (no guard: "Nanny failed to start")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) > 0


def _worker_processes(pid: int) -> list[Any]:
    psutil = pytest.importorskip("psutil")
    return [child for child in psutil.Process(pid).children(recursive=True) if "spawn_main" in " ".join(child.cmdline())]


def test_ctrl_c_on_a_local_cluster_run_is_one_line_and_leaves_no_process(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the whole process group: the LocalCluster's workers printed KeyboardInterrupt tracebacks."""
    rng = np.random.default_rng(2)
    path = tmp_path / "many.safetensors"
    save_file({f"l.{i}.weight": rng.standard_normal((24, 16)).astype(np.float32) for i in range(1000)}, str(path))
    command = python_module("ww_core", "analyze", str(path), "--dask", "local:2", "--cache", str(tmp_path / "c.jsonl"), "-q")
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    cache, deadline = tmp_path / "c.jsonl", time.monotonic() + 120
    while not (cache.exists() and cache.read_text()) and time.monotonic() < deadline:  # until the analysis is under way
        assert run.poll() is None, run.communicate()[1][-2000:]
        time.sleep(0.05)
    workers = _worker_processes(run.pid)
    assert len(workers) == 2 and run.poll() is None, "the run finished before it could be interrupted"
    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("ww: interrupted")
    time.sleep(2)
    assert not [worker for worker in workers if worker.is_running() and worker.status() != "zombie"]
    for line in cache.read_text().splitlines():
        json.loads(line)  # every cached row is whole


def test_local_cluster_of_absurd_size_is_refused_before_anything_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--dask local:99999999999`` hung building the cluster (and local:100000 would start 100000 processes)."""
    from ww_core.pipeline import dask_cluster

    monkeypatch.setattr(dask_cluster, "available_cores", lambda: 2)
    assert dask_cluster.local_workers("local:8") == 8  # up to 4 per core: still a choice, if a poor one
    for address in ("local:9", "local:100000", "local:99999999999"):
        with pytest.raises(ValueError, match=rf"--dask {address}: at most 8 worker processes here \(4 per core, 2 cores\)"):
            dask_cluster.local_workers(address)
