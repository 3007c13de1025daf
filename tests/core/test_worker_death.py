"""A worker process killed mid-run (OOM killer, segfault): its layer becomes a failed row naming the cause, the others finish."""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pytest

import ww_core
from ww_core.pipeline import analysis

FORK = multiprocessing.get_context("fork")  # workers inherit the patched analyze_layer below


@pytest.fixture
def dying_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Analyzing the layer named ``die`` kills the process doing it (SIGKILL: nothing can catch it)."""
    real = analysis.analyze_layer

    def analyze_or_die(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if layer.name == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        return real(layer, *args, **kwargs)

    monkeypatch.setattr(analysis, "analyze_layer", analyze_or_die)


def _model(count: int, dying_at: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    names = [f"fc{i}" if i != dying_at else "die" for i in range(count)]
    return {f"{name}.weight": rng.standard_t(4, size=(48, 32)) for name in names}


@pytest.mark.usefixtures("dying_layer")
@pytest.mark.parametrize("dying_at", [0, 3, 7])
def test_a_killed_worker_loses_only_its_layer(dying_at: int) -> None:
    model = _model(8, dying_at)
    with ProcessPoolExecutor(2, mp_context=FORK) as pool:
        results = ww_core.analyze(model, executor=pool, workers=2)
    rows = {row["name"]: row for row in results.details}
    assert len(rows) == 8
    dead = rows.pop("die")
    assert dead["status"] == "failed" and "worker process died" in dead["error"] and "retried" in dead["error"]
    survivors = {name: model[f"{name}.weight"] for name in rows}
    expected = {row["name"]: row["alpha"] for row in ww_core.analyze(survivors, workers=1).details}
    assert {name: row["status"] for name, row in rows.items()} == dict.fromkeys(expected, "success")
    assert {name: row["alpha"] for name, row in rows.items()} == pytest.approx(expected, rel=1e-12)


def _broken_initializer() -> None:
    raise RuntimeError("this pool cannot start a worker")


def test_a_pool_that_cannot_start_workers_still_gives_every_row() -> None:
    """A thread pool whose initializer fails is broken from the start: its layers run in the calling thread instead."""
    from concurrent.futures import ThreadPoolExecutor

    model = _model(5, dying_at=-1)
    with ThreadPoolExecutor(2, initializer=_broken_initializer) as pool:
        results = ww_core.analyze(model, executor=pool, workers=2)
    assert [row["status"] for row in results.details] == ["success"] * 5
    expected = ww_core.analyze(model, workers=1).details
    assert [row["alpha"] for row in results.details] == pytest.approx([row["alpha"] for row in expected], rel=1e-12)
