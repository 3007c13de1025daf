"""A Keras callback that feeds ``model.fit`` to a ww_core.Monitor (imports Keras; import it explicitly).

Steps are epochs completed (``unit="epoch"``) or batches completed across every ``fit`` call
(``unit="batch"``); the monitor's ``every`` decides which steps are snapshotted. With
``stop_on``, fit ends (``model.stop_training``) after the batch during which the rule was reported.
"""

from __future__ import annotations

from typing import Any, Literal

import keras

from ww_core import Monitor


class MonitorCallback(keras.callbacks.Callback):
    """Observe the model at the end of each epoch or batch; ``stop_on`` ends training once the monitor reports
    divergence (``"divergence"``) or any rule firing (``"warning"``)."""

    def __init__(
        self, monitor: Monitor, unit: Literal["epoch", "batch"] = "epoch", stop_on: Literal["divergence", "warning"] | None = None
    ) -> None:
        super().__init__()
        if unit not in ("epoch", "batch"):
            raise ValueError(f"MonitorCallback: unit must be 'epoch' or 'batch', got {unit!r}")
        monitor.stop_reason(stop_on)  # refuses an unknown stop_on now, not at the first step
        self.monitor = monitor
        self.unit = unit
        self.stop_on = stop_on
        self.batches = 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Count the batch; observe it when stepping by batches; stop when asked and the monitor has reported."""
        self.batches += 1
        if self.unit == "batch":
            self.monitor.observe(self.model, step=self.batches)
        self._stop_if_reported()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Observe the epoch (numbered from 1) when stepping by epochs."""
        if self.unit == "epoch":
            self.monitor.observe(self.model, step=epoch + 1)
        self._stop_if_reported()

    def _stop_if_reported(self) -> None:
        if self.monitor.stop_reason(self.stop_on) is not None:
            self.model.stop_training = True
