"""A real Keras training run on scikit-learn's digits, watched through MonitorCallback."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import ww_core
from ww_core.training.signals import FractionBelow
from ww_keras.callbacks import MonitorCallback

datasets = pytest.importorskip("sklearn.datasets")

EVERY, BATCH, EPOCHS = 10, 64, 2


def _numbers(row: dict[str, Any]) -> list[str]:
    """Every float column of a row: all the metrics it has."""
    return [key for key, value in row.items() if isinstance(value, float)]


def _close(got: float, want: float) -> bool:
    return (math.isnan(got) and math.isnan(want)) or math.isclose(got, want, rel_tol=0, abs_tol=1e-10)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    digits = datasets.load_digits()
    return (digits.images / 16.0).astype("float32")[..., None], digits.target.astype("int64")


def _cnn() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            keras.layers.Conv2D(32, 3, activation="relu", name="conv2"),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu", name="fc1"),
            keras.layers.Dense(10, name="fc2"),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class _SaveEvery(keras.callbacks.Callback):
    """Saves the model after every ``EVERY``-th batch, for the reference analyses."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder, self.batches = folder, 0

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.batches += 1
        if self.batches % EVERY == 0:
            self.model.save(self.folder / f"step{self.batches}.keras")


def _fit(callbacks: list[keras.callbacks.Callback]) -> keras.Model:
    images, labels = _digits()
    model = _cnn()
    model.fit(images, labels, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)
    return model


def test_every_batch_snapshot_is_recorded_and_equals_analyze_of_the_saved_model(tmp_path: Path) -> None:
    with ww_core.Monitor(every=EVERY, log=tmp_path / "run.jsonl", when_behind="wait") as monitor:
        _fit([MonitorCallback(monitor, unit="batch"), _SaveEvery(tmp_path)])
    history = ww_core.load_history(tmp_path / "run.jsonl")
    batches = EPOCHS * math.ceil(1797 / BATCH)
    assert history.steps == list(range(EVERY, batches + 1, EVERY)) and not history.skipped
    for step in history.steps:
        reference = ww_core.analyze(tmp_path / f"step{step}.keras").analyzed
        assert len(history.rows[step]) == len(reference) == 4
        for got, want in zip(history.rows[step], reference):
            assert len(_numbers(want)) > 10
            for metric in _numbers(want):
                assert _close(got[metric], want[metric]), (step, got["name"], metric)


def test_monitoring_leaves_training_unchanged(tmp_path: Path) -> None:
    plain = _fit([]).get_weights()
    with ww_core.Monitor(every=1, log=tmp_path / "run.jsonl") as monitor:
        watched = _fit([MonitorCallback(monitor, unit="batch")]).get_weights()
    assert monitor.history.steps
    for a, b in zip(plain, watched, strict=True):
        np.testing.assert_array_equal(a, b)


def test_epoch_steps_and_stop_on_warning(tmp_path: Path) -> None:
    with ww_core.Monitor(every=1, when_behind="wait", warn=FractionBelow(fraction=0.01, alpha=100.0, min_evals=0)) as monitor:
        callback = MonitorCallback(monitor, stop_on="warning")
        images, labels = _digits()
        model = _cnn()
        model.fit(images, labels, batch_size=BATCH, epochs=5, verbose=0, callbacks=[callback])
    assert monitor.warning is not None and monitor.warning.step == 1
    assert monitor.history.steps[0] == 1 and len(monitor.history.steps) < 5  # stopped early, with the lag of background analysis
    with pytest.raises(ValueError, match="unit"):
        MonitorCallback(monitor, unit="step")  # type: ignore[arg-type]
