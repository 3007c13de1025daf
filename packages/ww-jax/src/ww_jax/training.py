"""Monitor a JAX/Flax model from a train step: pass whatever the step has in hand.

``observe(monitor, model_or_state, step)`` takes an ``nnx.Module``, a ``(graphdef, state)`` pair
from ``nnx.split``, a Linen/optax ``TrainState`` (its ``params`` and ``step``), Linen variables
or a params pytree. The monitor copies the arrays to host memory, so buffers donated to the
next jitted step cannot change what is analyzed. With ``stop_on``, ``observe`` raises
``ww_core.TrainingStopped`` once the monitor has reported the rule, which ends the loop.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

from ww_core import Monitor, TrainingStopped


def model_source(value: Any) -> Any:
    """What ww can analyze for ``value``: the module, merged (graphdef, state), a TrainState's params, or the tree."""
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None and isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], nnx.GraphDef):
        return nnx.merge(*value)
    if hasattr(value, "params") and hasattr(value, "apply_fn"):
        return {"params": value.params}
    return value


def observe(monitor: Monitor, value: Any, step: int | None = None, stop_on: Literal["divergence", "warning"] | None = None) -> bool:
    """``monitor.observe`` for JAX values; ``step`` defaults to a TrainState's own ``step``. True when snapshotted.

    ``stop_on="divergence"`` (or ``"warning"``: any rule) raises TrainingStopped once the monitor has reported it.
    """
    monitor.stop_reason(stop_on)  # refuses an unknown stop_on before observing
    if step is None and hasattr(value, "step") and hasattr(value, "apply_fn"):
        step = int(value.step)
    taken = monitor.observe(model_source(value), step=step)
    reason = monitor.stop_reason(stop_on)
    if reason is not None:
        raise TrainingStopped(reason)
    return taken
