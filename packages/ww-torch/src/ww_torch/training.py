"""Monitor a torch model from a plain training loop: one hook on the optimizer, no change to the loop.

``watch(monitor, model, optimizer)`` calls ``monitor.observe(model, step=n)`` after the n-th
``optimizer.step()``; without an optimizer, call ``monitor.observe(model, step=...)`` yourself.
With ``stop_on``, the step after the monitor's rule fired raises ``ww_core.TrainingStopped``
out of ``optimizer.step()``, which ends the loop; catch it to save or report.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from ww_core import Monitor, TrainingStopped


def watch(
    monitor: Monitor,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    first_step: int = 1,
    stop_on: Literal["divergence", "warning"] | None = None,
) -> Any:
    """Observe ``model`` after every optimizer step (numbered from ``first_step``); returns the hook handle (``.remove()``).

    ``stop_on="divergence"`` (or ``"warning"``: any rule) raises TrainingStopped from the first
    optimizer step after the monitor reports it; the weights of that step are already updated.
    """
    monitor.stop_reason(stop_on)  # refuses an unknown stop_on now, not at the first step
    counter = [first_step - 1]

    def after_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        counter[0] += 1
        monitor.observe(model, step=counter[0])
        reason = monitor.stop_reason(stop_on)
        if reason is not None:
            raise TrainingStopped(reason)

    return optimizer.register_step_post_hook(after_step)
