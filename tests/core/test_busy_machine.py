"""On a busy machine BLAS gets the idle cores only: ``--workers 1`` ran 10x slower with two BLAS threads fighting for busy cores.

The speed itself is measured by benchmarks/bench_busy_blas.py; here, which thread counts are chosen.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

import ww_core
from ww_core.pipeline import analysis, threads

LARGE = (1536, 1024)  # N·M² above threads.SMALL_WORK: a layer that would use every BLAS thread


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "available_cores", lambda: 2)


@pytest.mark.parametrize(("load", "idle"), [(0.0, 2), (0.4, 2), (1.0, 1), (3.8, 1), (40.0, 1)])
def test_idle_cores_follow_the_load(two_cores: None, monkeypatch: pytest.MonkeyPatch, load: float, idle: int) -> None:
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, load, load))
    assert threads.idle_cores() == idle


def test_a_large_layer_gets_the_idle_cores_only(two_cores: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (3.8, 3.4, 2.0))
    assert threads.serial_blas_threads(LARGE) == 1
    assert threads.blas_threads_per_worker(2) == 1
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert threads.serial_blas_threads(LARGE) is None  # idle: every core, as before
    assert threads.serial_blas_threads((64, 32)) == 1  # little work: one thread either way


@pytest.mark.parametrize("entry", ["analyze", "monitor"])
def test_workers_1_and_the_monitor_limit_blas_on_a_busy_machine(two_cores: None, monkeypatch: pytest.MonkeyPatch, entry: str) -> None:
    limits: list[int | None] = []

    @contextlib.contextmanager
    def record(limit: int | None) -> Iterator[None]:
        limits.append(limit)
        yield

    monkeypatch.setattr(threads.os, "getloadavg", lambda: (3.8, 3.4, 2.0))
    monkeypatch.setattr(analysis, "limited_blas_threads", record)
    monkeypatch.setattr(threads, "SMALL_WORK", 1)  # the test's small layer counts as large
    model = {"fc.weight": np.random.default_rng(0).standard_normal((64, 32))}
    if entry == "analyze":
        ww_core.analyze(model, workers=1)
    else:
        with ww_core.Monitor(every=1) as monitor:
            monitor.observe(model, step=1)
    assert 1 in limits, limits


def test_the_idle_cores_are_read_once_when_a_run_starts(two_cores: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read per layer, the load a long run makes itself would take its own BLAS threads away (2 idle cores, then 1)."""
    loads = iter([0.0] + [2.0] * 10)  # idle when the run starts; the run's own threads then raise the load
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (next(loads), 0.0, 0.0))
    limits: list[int | None] = []

    def record(shape: tuple[int, ...], *idle: int) -> int | None:
        limits.append(real(shape, *idle))
        return limits[-1]

    real = threads.serial_blas_threads
    monkeypatch.setattr(analysis, "serial_blas_threads", record)
    monkeypatch.setattr(threads, "SMALL_WORK", 1)
    rng = np.random.default_rng(0)
    ww_core.analyze({f"fc{i}.weight": rng.standard_normal((64, 32)) for i in range(3)}, workers=1)
    assert limits == [None, None, None]  # every core for every layer, as the machine was idle when the run began
