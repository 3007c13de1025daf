"""observe(..., stop_on=...) ends a JAX training loop when the monitor sees divergence (issue 22)."""

from __future__ import annotations

import jax.numpy as jnp
import pytest
from flax import nnx

import ww_core
from ww_jax.training import observe

STEPS, POISONED = 50, 3


def test_observe_raises_training_stopped_once_the_weights_turn_nan() -> None:
    model = nnx.Linear(64, 96, rngs=nnx.Rngs(0))
    taken = []
    with ww_core.Monitor(every=1, when_behind="wait") as monitor, pytest.raises(ww_core.TrainingStopped) as stopped:
        for step in range(1, STEPS + 1):
            if step == POISONED:
                model.kernel.value = model.kernel.value.at[0, 0].set(jnp.nan)
            taken.append(step)
            observe(monitor, model, step=step, stop_on="divergence")
    assert stopped.value.warning == monitor.diverged and monitor.diverged is not None and monitor.diverged.step == POISONED
    assert len(taken) < STEPS
    with pytest.raises(ValueError, match="stop_on"):
        observe(monitor, model, step=STEPS + 1, stop_on="loss")  # type: ignore[arg-type]
