"""analyze() on Ray tasks (a local Ray): same rows as serial, workers read their own layers, a dying layer fails alone, ``--ray``.

Run by ``nox -s distributed`` (outside the default matrix: it starts a local Ray). The tests of the
``--ray`` flag's errors need no Ray; the others skip where the ``ray`` package is not installed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from safetensors.numpy import save_file

import ww_core
from ww_core.cli import main
from ww_core.pipeline import analysis
from ww_core.platform.toolkit import TensorRef
from ww_core.results.options import AnalysisOptions

from ..interrupt import python_script

NUMERIC = ("alpha", "D", "sigma", "xmin", "lambda_max", "log_norm", "stable_rank", "num_pl_spikes")


@pytest.fixture(scope="module")
def ray() -> Iterator[Any]:
    """A local Ray of two CPUs for this module, stopped after it.

    Started from an environment asking for two BLAS threads (workers inherit it, and Ray then leaves
    OMP_NUM_THREADS alone): the executor itself must give each task one.
    """
    module = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as env:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setenv(name, "2")
        module.init(num_cpus=2, include_dashboard=False)
    yield module
    module.shutdown()


@pytest.fixture
def executor(ray: Any) -> Iterator[Any]:
    from ww_core.pipeline.ray_cluster import RayExecutor

    pool = RayExecutor(max_retries=1)
    yield pool
    pool.shutdown()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-shard safetensors folder: 9 layers of mixed shapes and dtypes."""
    rng = np.random.default_rng(12)
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
    """Bytes of tensor data read through the toolkit in this, the client, process (Ray's workers are other processes)."""
    counted: list[int] = []
    for cls in TensorRef.__subclasses__():
        real = cls.read

        def read(self: Any, _real: Any = real) -> np.ndarray:
            array = _real(self)
            counted.append(array.nbytes)
            return array

        monkeypatch.setattr(cls, "read", read)
    yield counted


@pytest.fixture
def by_value(ray: Any) -> Iterator[None]:
    """Ray's workers cannot import this test module: what it defines travels by value."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _assert_same(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> None:
    assert [row["name"] for row in first] == [row["name"] for row in second]
    for a, b in zip(first, second, strict=True):
        assert a["status"] == b["status"] == "success", (a.get("error"), b.get("error"))
        for column in NUMERIC:
            assert a[column] == pytest.approx(b[column], rel=1e-12, abs=1e-12), (a["name"], column)


def test_ray_rows_equal_serial_and_the_client_reads_no_tensor_bytes(executor: Any, checkpoint: Path, client_reads: list[int]) -> None:
    serial = ww_core.analyze(checkpoint, workers=1)
    assert sum(client_reads) >= sum(p.stat().st_size for p in checkpoint.iterdir()) * 0.9  # the serial route reads it all here
    client_reads.clear()
    on_ray = ww_core.analyze(checkpoint, executor=executor, workers=2)
    assert client_reads == []
    _assert_same(serial.details, on_ray.details)
    assert set(serial.esds) == set(on_ray.esds)


def test_cache_works_from_the_client(executor: Any, checkpoint: Path, tmp_path: Path, client_reads: list[int]) -> None:
    cache = tmp_path / "cache.jsonl"
    first = ww_core.analyze(checkpoint, executor=executor, cache=cache)
    written = cache.read_text()
    again = ww_core.analyze(checkpoint, executor=executor, cache=cache)
    assert len(written.splitlines()) == 9 and cache.read_text() == written and client_reads == []
    _assert_same(first.details, again.details)
    _assert_same(first.details, ww_core.analyze(checkpoint, workers=1, cache=cache).details)  # a serial run resumes from it


def test_layers_still_run_when_the_placements_actor_is_gone(ray: Any, executor: Any, checkpoint: Path) -> None:
    """The actor that records where tasks run is no single point of failure (its node may die): tasks run without it."""
    ray.kill(executor._placements, no_restart=True)
    _assert_same(ww_core.analyze(checkpoint, workers=1).details, ww_core.analyze(checkpoint, executor=executor).details)


def test_in_memory_layers_still_ship_their_arrays(executor: Any) -> None:
    rng = np.random.default_rng(3)
    model = {f"fc{i}.weight": rng.standard_normal((60, 40)) for i in range(3)}
    _assert_same(ww_core.analyze(model, workers=1).details, ww_core.analyze(model, executor=executor).details)


def blas_threads() -> list[int]:
    """The thread count of every BLAS/OpenMP library numpy loaded, where this runs."""
    import numpy  # noqa: F401  (loads the BLAS)
    from threadpoolctl import threadpool_info

    return [library["num_threads"] for library in threadpool_info()]


def test_each_task_gets_one_blas_thread(executor: Any, by_value: None) -> None:
    counts = [executor.submit(blas_threads) for _ in range(2)]
    assert all(future.result() and set(future.result()) == {1} for future in counts)


def test_submit_after_shutdown_is_refused(executor: Any) -> None:
    executor.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(len, "abc")


@dataclass(frozen=True)
class KillingRef(TensorRef):
    """Reading it kills the worker process (an OOM kill, a segfault in a reader)."""

    path: str

    def read(self) -> np.ndarray:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


def test_a_layer_that_kills_its_workers_fails_alone_naming_worker_and_path(
    executor: Any, checkpoint: Path, monkeypatch: pytest.MonkeyPatch, by_value: None
) -> None:
    real = analysis.model_layers
    culprit = str(checkpoint / "model-00002-of-00003.safetensors")

    def with_a_killer(source: Any, options: AnalysisOptions, *more: Any) -> Any:
        found = real(source, options, *more)
        layers = list(found.layers)
        layers[4] = replace(layers[4], load=KillingRef(culprit))
        return type(found)(found.adapter, layers)

    monkeypatch.setattr(analysis, "model_layers", with_a_killer)
    results = ww_core.analyze(checkpoint, executor=executor)
    assert [row["status"] for row in results.details] == ["success"] * 4 + ["failed"] + ["success"] * 4
    error = results.details[4]["error"]
    assert culprit in error and "RayWorkerLostError" in error and "WorkerCrashedError" in error
    assert re.search(rf"Ray worker {re.escape(socket.gethostname())}:\d+ was lost", error), error


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
    executor: Any, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by_value: None
) -> None:
    """Ray gave up on it (max_retries=1); ww's own retry runs it once more, as on Dask."""
    real = analysis.model_layers

    def unlucky(source: Any, options: AnalysisOptions, *more: Any) -> Any:
        found = real(source, options, *more)
        layers = list(found.layers)
        layers[4] = replace(layers[4], load=TwiceKillingRef(layers[4].load.path, str(tmp_path), layers[4].load))
        return type(found)(found.adapter, layers)

    monkeypatch.setattr(analysis, "model_layers", unlucky)
    retried = ww_core.analyze(checkpoint, executor=executor)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attempt-0", "attempt-1"]  # it did kill two workers
    monkeypatch.undo()
    _assert_same(ww_core.analyze(checkpoint, workers=1).details, retried.details)


def test_worker_that_cannot_see_the_file(executor: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_file({"a.weight": np.ones((8, 8), np.float32), "b.weight": np.eye(8, dtype=np.float32)}, str(tmp_path / "m.safetensors"))
    real = analysis.model_layers

    def elsewhere(source: Any, options: AnalysisOptions, *more: Any) -> Any:
        found = real(source, options, *more)
        moved = [replace(layer, load=replace(layer.load, path="/nonexistent/m.safetensors")) for layer in found.layers]
        return type(found)(found.adapter, moved)

    monkeypatch.setattr(analysis, "model_layers", elsewhere)
    for row in ww_core.analyze(tmp_path / "m.safetensors", executor=executor).details:
        assert row["status"] == "failed" and "/nonexistent/m.safetensors" in row["error"] and "worker " in row["error"]


def _ww(*args: str, **popen: Any) -> subprocess.Popen[str]:
    """``python -m ww_core`` in a fresh process (one Ray per process: this one may hold the module's)."""
    return subprocess.Popen([sys.executable, "-m", "ww_core", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_cli_ray_local_gives_the_serial_rows(checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    assert main(["analyze", str(checkpoint), "--workers", "1", "--json", str(tmp_path / "serial.json"), "-q"]) == 0
    elsewhere = {**os.environ, "RAY_ADDRESS": "127.0.0.1:1"}  # local:N starts its own Ray whatever the environment names
    run = _ww("analyze", str(checkpoint), "--ray", "local:2", "--json", str(tmp_path / "ray.json"), "-q", env=elsewhere)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    serial = json.loads((tmp_path / "serial.json").read_text())
    _assert_same(serial["details"], json.loads((tmp_path / "ray.json").read_text())["details"])


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ww: error: ") and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("scheme", ["ray://", ""])
def test_cli_ray_unreachable_address_is_one_line(scheme: str, checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray")
    address = f"{scheme}127.0.0.1:{_closed_port()}"
    assert main(["analyze", str(checkpoint), "--ray", address]) == 2
    assert f"--ray {address}: cannot reach the Ray cluster" in _one_line_error(capsys)


def test_cli_ray_without_ray_installed_is_one_line(
    checkpoint: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError, as where it is not installed
    assert main(["analyze", str(checkpoint), "--ray", "local:2"]) == 2
    assert "--ray needs the 'ray' package: pip install 'ww-core[ray]'" in _one_line_error(capsys)


def test_cli_ray_local_that_cannot_start_is_one_line(
    checkpoint: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray")

    def cannot_start(**_: Any) -> None:
        raise RuntimeError("Failed to start the raylet")  # as Ray says when /dev/shm or the ports do not allow it

    monkeypatch.setattr(ray, "init", cannot_start)
    assert main(["analyze", str(checkpoint), "--ray", "local:2"]) == 2
    assert "--ray local:2: cannot start a local Ray (RuntimeError: Failed to start the raylet)" in _one_line_error(capsys)


@pytest.mark.parametrize("address", ["local:0", "tcp://host:8786", "nowhere"])
def test_cli_ray_refuses_a_malformed_address(address: str, checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray")
    assert main(["analyze", str(checkpoint), "--ray", address]) == 2
    assert "expected" in _one_line_error(capsys)


def _descendants(pid: int) -> dict[int, str]:
    """Every living process below ``pid``, with its command line (Ray names its workers ``ray::<task>``)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = _command(child)
                frontier.append(child)
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


SLOW_RUN = """
import sys, time
from dataclasses import dataclass, replace
import numpy as np
from ww_core.pipeline import analysis
from ww_core.cli import main
from ww_core.platform.toolkit import TensorRef

@dataclass(frozen=True)
class SlowRef(TensorRef):
    path: str
    def read(self) -> np.ndarray:
        time.sleep(600)
        raise AssertionError("interrupted long before")

real = analysis.model_layers
def slow(source, options, *more):
    found = real(source, options, *more)
    return type(found)(found.adapter, [replace(layer, load=SlowRef(layer.load.path)) for layer in found.layers])

analysis.model_layers = slow
sys.exit(main(["analyze", sys.argv[1], "--ray", "local:2", "-q"]))
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="walks /proc for the Ray processes")
def test_ctrl_c_stops_the_local_ray(checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    script = tmp_path / "slow_run.py"
    script.write_text(textwrap.dedent(SLOW_RUN))
    run = subprocess.Popen(python_script(str(script), str(checkpoint)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        ray_processes: dict[int, str] = {}
        while time.monotonic() < deadline and not any("ray::_run_task" in command for command in ray_processes.values()):
            assert run.poll() is None, run.communicate()
            time.sleep(0.5)
            ray_processes = _descendants(run.pid)
        assert any("raylet" in command for command in ray_processes.values()), ray_processes
        assert any("ray::_run_task" in command for command in ray_processes.values()), ray_processes
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 130 and "ww: interrupted" in err, err
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in ray_processes):
        time.sleep(0.5)
    assert not {pid: command for pid, command in ray_processes.items() if _alive(pid)}


def test_ray_is_imported_only_when_asked_for() -> None:
    pytest.importorskip("ray")  # installed, yet neither ww_core, its CLI nor an analysis imports it
    script = (
        "import sys, numpy as np, ww_core, ww_core.pipeline.ray_cluster, ww_core.cli\n"
        "ww_core.cli.build_parser()\n"
        "ww_core.analyze({'w': np.random.default_rng(0).standard_normal((64, 32))})\n"
        "print('RAY', 'ray' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "RAY False" in done.stdout, done.stdout + done.stderr


def test_docs_example_runs(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    page = (Path(__file__).resolve().parents[2] / "docs" / "distributed.md").read_text()
    [block] = [block for block in re.findall(r"```py\n(.*?)```", page, re.S) if "import ray" in block]
    rng = np.random.default_rng(0)
    save_file({f"l.{i}.weight": rng.standard_normal((80, 60)).astype(np.float32) for i in range(3)}, str(tmp_path / "model.safetensors"))
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip().splitlines()[-1]) > 0
