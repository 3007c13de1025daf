"""Monitor a torch model from a plain training loop: one hook on the optimizer, no change to the loop.

``watch(monitor, model, optimizer)`` calls ``monitor.observe(model, step=n)`` after the n-th
``optimizer.step()``; without an optimizer, call ``monitor.observe(model, step=...)`` yourself.
"""

from __future__ import annotations

from typing import Any

import torch

from ww_core import Monitor


def watch(monitor: Monitor, model: torch.nn.Module, optimizer: torch.optim.Optimizer, first_step: int = 1) -> Any:
    """Observe ``model`` after every optimizer step (numbered from ``first_step``); returns the hook handle (``.remove()``)."""
    counter = [first_step - 1]

    def after_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        counter[0] += 1
        monitor.observe(model, step=counter[0])

    return optimizer.register_step_post_hook(after_step)
