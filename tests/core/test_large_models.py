"""Large models: layers streamed from memory-mapped files, any Executor, BLAS threads, resume."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

import ww_core
from ww_core.pipeline import analysis, threads
from ww_core.sources import safetensors_file


def _write_safetensors(path: Path, shapes: list[tuple[int, int]], seed: int = 0) -> None:
    """Float32 layers ``layer.{i}.weight`` (heavy-tailed: Gaussian cubed), written with safetensors itself."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    save_file({f"layer.{i}.weight": rng.standard_normal(shape, dtype=np.float32) ** 3 for i, shape in enumerate(shapes)}, str(path))


def _rows(results: Any) -> list[dict[str, Any]]:
    """Rows with NaNs dropped (NaN != NaN) and everything else kept for exact comparison."""
    return [{k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))} for row in results.details]


class _LiveCounter:
    """Wraps loaders so that the number of loaded weight arrays still alive is tracked."""

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0
        self.loads = 0

    def _gone(self) -> None:
        self.live -= 1

    def wrap(self, load: Callable[[], np.ndarray]) -> Callable[[], np.ndarray]:
        def counted() -> np.ndarray:
            array = np.array(load())  # a private copy: its lifetime is the layer's time in memory
            self.loads += 1
            self.live += 1
            self.peak = max(self.peak, self.live)
            weakref.finalize(array, self._gone)
            return array

        return counted


@pytest.fixture
def counted_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, _LiveCounter]:
    path = tmp_path / "model.safetensors"
    _write_safetensors(path, [(96, 48)] * 10)
    counter = _LiveCounter()
    real = safetensors_file.tensor_loader
    monkeypatch.setattr(safetensors_file, "tensor_loader", lambda *args: counter.wrap(real(*args)))
    return path, counter


def test_a_file_backed_model_is_streamed_one_layer_at_a_time(counted_file: tuple[Path, _LiveCounter]) -> None:
    path, counter = counted_file
    results = ww_core.analyze(path, workers=1)
    assert len(results.analyzed) == 10 and counter.loads == 10
    assert counter.peak == 1


def test_the_default_runs_one_worker_per_core_with_bounded_memory(
    counted_file: tuple[Path, _LiveCounter], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, counter = counted_file
    monkeypatch.setattr(threads, "available_cores", lambda: 3)
    pools: list[int] = []
    real_pool = analysis.ThreadPoolExecutor

    def recording_pool(max_workers: int) -> Any:
        pools.append(max_workers)
        return real_pool(max_workers=max_workers)

    monkeypatch.setattr(analysis, "ThreadPoolExecutor", recording_pool)
    ww_core.analyze(path)
    assert pools == [3] and counter.loads == 10 and counter.peak <= 6


def test_default_workers_are_capped_by_cores_layers_and_the_bound_and_need_threadpoolctl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "available_cores", lambda: 64)
    assert threads.default_workers(100) == threads.MAX_AUTO_WORKERS
    assert threads.default_workers(2) == 2  # a two-layer model: two workers, each with half the cores' BLAS threads
    assert threads.default_workers(0) == 1
    monkeypatch.setattr(threads, "_controller", lambda: None)
    assert threads.default_workers(100) == 1  # BLAS threads cannot be shared out: workers would oversubscribe


@pytest.mark.parametrize("workers", [2, 3])
def test_parallel_runs_hold_at_most_two_layers_per_worker(counted_file: tuple[Path, _LiveCounter], workers: int) -> None:
    path, counter = counted_file
    ww_core.analyze(path, workers=workers)
    assert counter.loads == 10
    assert counter.peak <= 2 * workers  # at most 2·workers − 1 queued while the next one loads


def test_peak_memory_is_a_few_layers_not_the_model(tmp_path: Path) -> None:
    """A fresh process analyzing a 128 MiB file grows its peak RSS by a few layers, far less than the file."""
    path = tmp_path / "big.safetensors"
    shape = (4096, 256)
    _write_safetensors(path, [shape] * 32)
    script = textwrap.dedent(
        f"""
        import resource, numpy, ww_core
        ww_core.analyze({{"warm": numpy.ones((64, 32))}})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        results = ww_core.analyze({str(path)!r})
        assert len(results.analyzed) == 32, results.details
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        """
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # keeps it quick on a busy CI machine; memory is the point
    grown_kib = int(subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, env=env).stdout)
    layer_mib, file_mib = np.prod(shape) * 4 / 2**20, path.stat().st_size / 2**20
    assert grown_kib / 1024 < min(8 * layer_mib, file_mib / 4), (grown_kib / 1024, layer_mib, file_mib)


def test_a_process_pool_gives_the_serial_rows(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    _write_safetensors(path, [(120, 60), (80, 40), (64, 64), (90, 30)])
    serial = ww_core.analyze(path)
    from threadpoolctl import threadpool_info

    from ww_core.pipeline.threads import single_blas_thread

    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn, initializer=single_blas_thread) as pool:
        parallel = ww_core.analyze(path, executor=pool)
        worker_blas = [lib for lib in pool.submit(threadpool_info).result() if lib["user_api"] == "blas"]
    assert worker_blas and all(lib["num_threads"] == 1 for lib in worker_blas)  # numpy's and scipy's (pip wheels: two)
    assert _rows(parallel) == _rows(serial)
    assert all(np.array_equal(parallel.esds[name], serial.esds[name]) for name in serial.esds)


class _RemoteExecutor(Executor):
    """Stands in for Dask or Ray: every task and its result make a pickle round trip, as over a wire."""

    def __init__(self) -> None:
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        import pickle

        self.submitted += 1
        task = pickle.loads(pickle.dumps((fn, args, kwargs)))
        future: Future[Any] = Future()
        future.set_result(pickle.loads(pickle.dumps(task[0](*task[1], **task[2]))))
        return future


def test_a_remote_executor_gets_every_layer_as_a_picklable_task(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    _write_safetensors(path, [(120, 60), (80, 40), (64, 64), (4, 3)])
    executor = _RemoteExecutor()
    results = ww_core.analyze(path, executor=executor)
    assert executor.submitted == 3  # the 4x3 layer is skipped before any task is made
    assert _rows(results) == _rows(ww_core.analyze(path))


class _OneSlowLayerExecutor(Executor):
    """Runs every task at once but holds the first one's result back until the last task is submitted."""

    def __init__(self, tasks: int) -> None:
        self.tasks = tasks
        self.submitted = 0
        self.held: tuple[Future[Any], Any] | None = None
        self.safety = threading.Timer(10, self._release)  # a runner that waits in submission order would hang here

    def _release(self) -> None:
        if self.held is not None:
            future, result = self.held
            self.held = None
            future.set_result(result)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        future: Future[Any] = Future()
        if self.submitted == 1:
            self.held = (future, fn(*args, **kwargs))
            self.safety.start()
        else:
            future.set_result(fn(*args, **kwargs))
        if self.submitted == self.tasks:
            self._release()
        return future


def test_a_slow_layer_does_not_hold_back_the_ones_that_finished(tmp_path: Path) -> None:
    """The runner collects whichever queued layer finished first, so one slow layer never idles the workers."""
    path, cache = tmp_path / "model.safetensors", tmp_path / "rows.jsonl"
    _write_safetensors(path, [(60 + i, 30) for i in range(6)])
    executor = _OneSlowLayerExecutor(tasks=6)
    try:
        results = ww_core.analyze(path, executor=executor, cache=cache)
    finally:
        executor.safety.cancel()
    collected = [json.loads(line)["key"] for line in cache.read_text().splitlines()]
    assert len(collected) == 6 and "|layer.0|" not in collected[0]
    assert _rows(results) == _rows(ww_core.analyze(path))  # rows still in layer order


_INTERRUPTED_RUN = """
import sys, time
from ww_core.sources import safetensors_file
real = safetensors_file.tensor_loader
def slow(*args):
    load = real(*args)
    def loader():
        time.sleep(0.3)  # a slow disk: gives the parent time to kill this run mid-way
        return load()
    return loader
safetensors_file.tensor_loader = slow
import ww_core
ww_core.analyze(sys.argv[1], cache=sys.argv[2])
"""


def test_a_killed_run_resumes_from_its_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, cache = tmp_path / "model.safetensors", tmp_path / "rows.jsonl"
    _write_safetensors(path, [(100 + 10 * i, 50) for i in range(12)])
    child = subprocess.Popen([sys.executable, "-c", _INTERRUPTED_RUN, str(path), str(cache)])
    deadline = time.monotonic() + 60
    while (not cache.exists() or len(cache.read_text().splitlines()) < 3) and time.monotonic() < deadline:
        assert child.poll() is None, "the run finished before it could be interrupted"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    finished = {json.loads(line)["key"] for line in cache.read_text().splitlines() if line.endswith("}")}
    assert 3 <= len(finished) < 12

    computed: list[str] = []
    real_run_layer = analysis.run_layer

    def counting_run_layer(layer: Any, *args: Any) -> Any:
        computed.append(layer.name)
        return real_run_layer(layer, *args)

    monkeypatch.setattr(analysis, "run_layer", counting_run_layer)
    resumed = ww_core.analyze(path, cache=cache)
    assert len(computed) == 12 - len(finished)
    assert not any(f"|{name}|" in key for key in finished for name in computed)
    monkeypatch.undo()
    assert _rows(resumed) == _rows(ww_core.analyze(path))
    assert len(cache.read_text().splitlines()) >= 12


@pytest.fixture
def blas_threads_seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[set[int], list[set[int]]]]:
    """BLAS thread counts outside analysis, and the ones in force at each spectrum computed inside."""
    from threadpoolctl import threadpool_info

    from ww_core.spectra import spectrum

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    before = blas_threads()
    if before == {1}:
        pytest.skip("BLAS runs one thread here already")
    seen: list[set[int]] = []
    real = spectrum.eigenvalues

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(spectrum, "eigenvalues", recording)
    yield before, seen
    assert blas_threads() == before


def test_parallel_workers_share_the_cores_as_blas_threads(
    blas_threads_seen: tuple[set[int], list[set[int]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    ww_core.analyze({f"w{i}": np.random.default_rng(i).standard_normal((60, 30)) for i in range(4)}, workers=2)
    assert blas_threads_seen[1] == [{1}] * 4  # 2 cores / 2 workers


def test_serial_runs_give_small_matrices_one_blas_thread(
    blas_threads_seen: tuple[set[int], list[set[int]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(threads, "SMALL_WORK", 100_000)  # 60·30² below, 80·60² above
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # an idle machine: the large one gets every core
    ww_core.analyze({"small": np.ones((60, 30)), "large": np.random.default_rng(0).standard_normal((80, 60))}, workers=1)
    before, seen = blas_threads_seen
    assert seen == [{1}, before]


def test_without_threadpoolctl_parallel_runs_still_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """threadpoolctl is an optional extra: without it the BLAS limits are skipped, results unchanged."""
    rng = np.random.default_rng(11)
    model = {f"w{i}": rng.standard_t(3, size=(90, 60)) for i in range(3)}
    expected = ww_core.analyze(model).details
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    threads._controller.cache_clear()
    try:
        assert threads._controller() is None
        with threads.limited_blas_threads(1):
            pass
        assert ww_core.analyze(model, workers=2).details == expected
    finally:
        threads._controller.cache_clear()


def test_cache_is_not_reused_for_a_rewritten_checkpoint(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    path, cache = tmp_path / "m.safetensors", tmp_path / "rows.jsonl"
    rng = np.random.default_rng(12)
    save_file({"a.weight": rng.standard_t(3, size=(80, 40))}, str(path))
    first = ww_core.analyze(path, cache=cache).row("a")["alpha"]
    save_file({"a.weight": rng.standard_normal((80, 40))}, str(path))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    second = ww_core.analyze(path, cache=cache).row("a")["alpha"]
    assert second != first
    assert second == ww_core.analyze(path).row("a")["alpha"]
