"""A Keras callback that feeds ``model.fit`` to a ww_core.Monitor (imports Keras; import it explicitly).

Steps are epochs completed (``unit="epoch"``) or batches completed across every ``fit`` call
(``unit="batch"``); the monitor's ``every`` decides which steps are snapshotted.
"""

from __future__ import annotations

from typing import Any, Literal

import keras

from ww_core import Monitor


class MonitorCallback(keras.callbacks.Callback):
    """Observe the model at the end of each epoch or batch; ``stop_on_warning`` ends training when a monitor rule fires."""

    def __init__(self, monitor: Monitor, unit: Literal["epoch", "batch"] = "epoch", stop_on_warning: bool = False) -> None:
        super().__init__()
        if unit not in ("epoch", "batch"):
            raise ValueError(f"MonitorCallback: unit must be 'epoch' or 'batch', got {unit!r}")
        self.monitor = monitor
        self.unit = unit
        self.stop_on_warning = stop_on_warning
        self.batches = 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Count the batch; observe it when stepping by batches."""
        self.batches += 1
        if self.unit == "batch":
            self._observe(self.batches)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Observe the epoch (numbered from 1) when stepping by epochs."""
        if self.unit == "epoch":
            self._observe(epoch + 1)

    def _observe(self, step: int) -> None:
        self.monitor.observe(self.model, step=step)
        if self.stop_on_warning and self.monitor.should_stop:
            self.model.stop_training = True
