"""A real training run on scikit-learn's digits, watched by the monitor through an optimizer hook."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import ww_core
from ww_core.training.snapshot import take_snapshot
from ww_torch.training import watch

datasets = pytest.importorskip("sklearn.datasets")

STEPS, EVERY, BATCH = 60, 10, 64


def _numbers(row: dict[str, Any]) -> list[str]:
    """Every float column of a row: all the metrics it has."""
    return [key for key, value in row.items() if isinstance(value, float)]


def _close(got: float, want: float) -> bool:
    return (math.isnan(got) and math.isnan(want)) or math.isclose(got, want, rel_tol=0, abs_tol=1e-10)


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    digits = datasets.load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    return images, torch.tensor(digits.target, dtype=torch.long)


def _cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 6 * 6, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def _train(monitor: ww_core.Monitor | None, checkpoints: Path | None = None) -> nn.Module:
    """STEPS of SGD on digits from seed 0; saves a checkpoint at each monitored step when asked."""
    torch.manual_seed(0)
    images, labels = _digits()
    model = _cnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    if monitor is not None:
        watch(monitor, model, optimizer)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))
    for step in range(1, STEPS + 1):
        batch = order[(step * BATCH) % (len(labels) - BATCH) :][:BATCH]
        loss = nn.functional.cross_entropy(model(images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if checkpoints is not None and step % EVERY == 0:
            torch.save(model.state_dict(), checkpoints / f"step{step}.pt")
    return model


def test_monitor_records_every_snapshot_equal_to_analyze_of_checkpoints(tmp_path: Path) -> None:
    with ww_core.Monitor(every=EVERY, log=tmp_path / "run.jsonl", when_behind="wait") as monitor:
        _train(monitor, checkpoints=tmp_path)
    history = ww_core.load_history(tmp_path / "run.jsonl")
    assert history.steps == list(range(EVERY, STEPS + 1, EVERY)) and not history.skipped
    for step in history.steps:
        reference = ww_core.analyze(tmp_path / f"step{step}.pt").analyzed
        assert [row["name"] for row in history.rows[step]] == [row["name"] for row in reference]
        for got, want in zip(history.rows[step], reference):
            assert len(_numbers(want)) > 10
            for metric in _numbers(want):
                assert _close(got[metric], want[metric]), (step, got["name"], metric)
    assert len(history.layer_series()) == 4


def test_monitoring_leaves_training_unchanged(tmp_path: Path) -> None:
    plain = _train(None).state_dict()
    with ww_core.Monitor(every=1, log=tmp_path / "run.jsonl") as monitor:
        watched = _train(monitor).state_dict()
    assert monitor.history.steps, "nothing was monitored"
    for name, tensor in plain.items():
        assert torch.equal(tensor, watched[name]), name


def test_snapshot_does_not_see_later_in_place_updates() -> None:
    model = _cnn()
    before = ww_core.analyze({k: v.detach().numpy().copy() for k, v in model.state_dict().items()}).analyzed
    snapshot = take_snapshot(model)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(-2.0).add_(0.5)
    after = ww_core.analyze(snapshot).analyzed
    assert [r["alpha"] for r in after] == [r["alpha"] for r in before]
    assert not np.shares_memory(snapshot.layers[0].load(), model[0].weight.detach().numpy())


def test_a_named_adapter_reads_the_model_and_is_recorded(tmp_path: Path) -> None:
    with ww_core.Monitor(every=1, log=tmp_path / "run.jsonl", when_behind="wait", adapter="torch") as monitor:
        monitor.observe(_cnn(), step=1)
    history = ww_core.load_history(tmp_path / "run.jsonl")
    assert not history.errors and history.steps == [1]
    assert history.snapshots[1]["adapter"] == "torch"
