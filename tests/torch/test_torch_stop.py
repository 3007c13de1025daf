"""watch(..., stop_on=...) ends a torch training loop when the monitor sees divergence (issue 22)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import ww_core
from ww_core.training.monitor import TrainingStopped
from ww_torch.training import watch

datasets = pytest.importorskip("sklearn.datasets")

STEPS, POISONED = 200, 5


def _train(monitor: ww_core.Monitor, stop_on: str | None, steps: int = STEPS) -> int:
    """SGD on digits; after optimizer step ``POISONED`` one weight is set to NaN, as a blown-up step would; returns the steps taken."""
    torch.manual_seed(0)
    digits = datasets.load_digits()
    x, y = torch.tensor(digits.data / 16.0, dtype=torch.float32), torch.tensor(digits.target)
    model = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    watch(monitor, model, optimizer, stop_on=stop_on)  # type: ignore[arg-type]
    for step in range(1, steps + 1):
        loss = nn.functional.cross_entropy(model(x[:256]), y[:256])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == POISONED:
            with torch.no_grad():
                model[0].weight[0, 0] = float("nan")
    return steps


def test_watch_raises_training_stopped_when_the_weights_turn_nan(tmp_path: Path) -> None:
    with ww_core.Monitor(every=1, log=tmp_path / "run.jsonl", when_behind="wait") as monitor:
        with pytest.raises(TrainingStopped) as stopped:
            _train(monitor, "divergence")
    warning = stopped.value.warning
    assert warning == monitor.diverged and warning.rule == "divergence" and warning.step == POISONED + 1
    assert "NaN/Inf" in str(stopped.value)
    history = ww_core.load_history(tmp_path / "run.jsonl")
    assert POISONED + 1 in history.steps and max(history.steps) < STEPS  # stopped early; the log holds the diverged step


def test_without_stop_on_training_runs_to_the_end_and_the_warning_is_logged(tmp_path: Path) -> None:
    with ww_core.Monitor(every=1, log=tmp_path / "run.jsonl", when_behind="wait") as monitor:
        assert _train(monitor, None, steps=POISONED + 3) == POISONED + 3
    assert monitor.diverged is not None and monitor.diverged.step == POISONED + 1


def test_an_unknown_stop_condition_is_refused() -> None:
    model = nn.Linear(4, 4)
    with ww_core.Monitor() as monitor, pytest.raises(ValueError, match="stop_on"):
        watch(monitor, model, torch.optim.SGD(model.parameters(), lr=0.1), stop_on="loss")  # type: ignore[arg-type]
