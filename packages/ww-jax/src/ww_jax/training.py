"""Monitor a JAX/Flax model from a train step: pass whatever the step has in hand.

``observe(monitor, model_or_state, step)`` takes an ``nnx.Module``, a ``(graphdef, state)`` pair
from ``nnx.split``, a Linen/optax ``TrainState`` (its ``params`` and ``step``), Linen variables
or a params pytree. The monitor copies the arrays to host memory, so buffers donated to the
next jitted step cannot change what is analyzed.
"""

from __future__ import annotations

import sys
from typing import Any

from ww_core import Monitor


def model_source(value: Any) -> Any:
    """What ww can analyze for ``value``: the module, merged (graphdef, state), a TrainState's params, or the tree."""
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None and isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], nnx.GraphDef):
        return nnx.merge(*value)
    if hasattr(value, "params") and hasattr(value, "apply_fn"):
        return {"params": value.params}
    return value


def observe(monitor: Monitor, value: Any, step: int | None = None) -> bool:
    """``monitor.observe`` for JAX values; ``step`` defaults to a TrainState's own ``step``. True when snapshotted."""
    if step is None and hasattr(value, "step") and hasattr(value, "apply_fn"):
        step = int(value.step)
    return monitor.observe(model_source(value), step=step)
