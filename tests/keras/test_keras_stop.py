"""MonitorCallback(stop_on=...) ends model.fit cleanly when the monitor sees divergence (issue 22)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

import ww_core
from ww_keras.callbacks import MonitorCallback

datasets = pytest.importorskip("sklearn.datasets")

EPOCHS, POISONED = 20, 2


class _PoisonAfter(keras.callbacks.Callback):
    """Sets the first kernel to NaN at the end of epoch ``POISONED``, as a blown-up step would."""

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch + 1 == POISONED:
            kernel = self.model.layers[0].kernel
            kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))


def _fit(monitor: ww_core.Monitor, stop_on: str | None) -> keras.callbacks.History:
    digits = datasets.load_digits()
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(96, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callbacks = [_PoisonAfter(), MonitorCallback(monitor, stop_on=stop_on)]  # type: ignore[arg-type]
    return model.fit(digits.data / 16.0, digits.target, batch_size=256, epochs=EPOCHS, verbose=0, callbacks=callbacks)


def test_stop_on_divergence_ends_fit_early() -> None:
    with ww_core.Monitor(every=1, when_behind="wait") as monitor:
        history = _fit(monitor, "divergence")
    assert monitor.diverged is not None and monitor.diverged.step == POISONED and "NaN/Inf" in monitor.diverged.message
    assert len(history.epoch) < EPOCHS


def test_without_stop_on_fit_runs_every_epoch() -> None:
    with ww_core.Monitor(every=1, when_behind="wait") as monitor:
        history = _fit(monitor, None)
    assert monitor.diverged is not None and len(history.epoch) == EPOCHS


def test_an_unknown_stop_condition_is_refused() -> None:
    with ww_core.Monitor() as monitor, pytest.raises(ValueError, match="stop_on"):
        MonitorCallback(monitor, stop_on="loss")  # type: ignore[arg-type]
