"""A real Flax NNX training run on scikit-learn's digits, watched from the train step."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen, nnx, serialization
from flax.training import train_state

import ww_core
from ww_core.training.snapshot import take_snapshot
from ww_jax.training import model_source, observe

datasets = pytest.importorskip("sklearn.datasets")

STEPS, EVERY, BATCH = 60, 10, 64


def _numbers(row: dict[str, Any]) -> list[str]:
    """Every float column of a row: all the metrics it has."""
    return [key for key, value in row.items() if isinstance(value, float)]


def _close(got: float, want: float) -> bool:
    return (math.isnan(got) and math.isnan(want)) or math.isclose(got, want, rel_tol=0, abs_tol=1e-10)


class CNN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.conv1 = nnx.Conv(1, 16, (3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(16, 32, (3, 3), padding="VALID", rngs=rngs)
        self.fc1 = nnx.Linear(32 * 6 * 6, 64, rngs=rngs)
        self.fc2 = nnx.Linear(64, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.relu(self.conv2(nnx.relu(self.conv1(x))))
        return self.fc2(nnx.relu(self.fc1(x.reshape(x.shape[0], -1))))


def _digits() -> tuple[jax.Array, jax.Array]:
    digits = datasets.load_digits()
    return jnp.asarray(digits.images / 16.0, dtype=jnp.float32)[..., None], jnp.asarray(digits.target)


@nnx.jit
def _train_step(model: CNN, optimizer: nnx.Optimizer, images: jax.Array, labels: jax.Array) -> jax.Array:
    def loss_fn(model: CNN) -> jax.Array:
        return optax.softmax_cross_entropy_with_integer_labels(model(images), labels).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


def _train(monitor: ww_core.Monitor | None, checkpoints: Path | None = None) -> CNN:
    images, labels = _digits()
    model = CNN(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.sgd(0.1, momentum=0.9), wrt=nnx.Param)
    order = np.random.default_rng(1).permutation(len(labels))
    for step in range(1, STEPS + 1):
        batch = order[(step * BATCH) % (len(labels) - BATCH) :][:BATCH]
        _train_step(model, optimizer, images[batch], labels[batch])
        if monitor is not None:
            observe(monitor, model, step=step)
        if checkpoints is not None and step % EVERY == 0:
            (checkpoints / f"step{step}.msgpack").write_bytes(serialization.to_bytes(nnx.to_pure_dict(nnx.state(model, nnx.Param))))
    return model


def test_every_snapshot_is_recorded_and_equals_analyze_of_the_checkpoints(tmp_path: Path) -> None:
    with ww_core.Monitor(every=EVERY, log=tmp_path / "run.jsonl", when_behind="wait") as monitor:
        _train(monitor, checkpoints=tmp_path)
    history = ww_core.load_history(tmp_path / "run.jsonl")
    assert history.steps == list(range(EVERY, STEPS + 1, EVERY)) and not history.skipped
    for step in history.steps:
        reference = ww_core.analyze(tmp_path / f"step{step}.msgpack").analyzed
        assert len(history.rows[step]) == len(reference) == 4
        for got, want in zip(history.rows[step], reference):
            assert len(_numbers(want)) > 10
            for metric in _numbers(want):
                assert _close(got[metric], want[metric]), (step, got["name"], metric)


def test_monitoring_leaves_training_unchanged(tmp_path: Path) -> None:
    plain = nnx.to_pure_dict(nnx.state(_train(None), nnx.Param))
    with ww_core.Monitor(every=1, log=tmp_path / "run.jsonl") as monitor:
        watched = nnx.to_pure_dict(nnx.state(_train(monitor), nnx.Param))
    assert monitor.history.steps
    for a, b in zip(jax.tree_util.tree_leaves(plain), jax.tree_util.tree_leaves(watched), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_split_pairs_and_train_states_are_understood() -> None:
    model = CNN(nnx.Rngs(0))
    direct = ww_core.analyze(model).analyzed
    merged = ww_core.analyze(model_source(nnx.split(model))).analyzed
    assert [row["alpha"] for row in merged] == [row["alpha"] for row in direct]
    dense = linen.Dense(16)
    variables = dense.init(jax.random.PRNGKey(0), jnp.zeros((1, 32)))
    state = train_state.TrainState.create(apply_fn=dense.apply, params=variables["params"], tx=optax.sgd(0.1)).replace(step=7)
    with ww_core.Monitor(every=7, when_behind="wait") as monitor:
        assert observe(monitor, state)
    assert monitor.history.steps == [7]


def test_snapshot_holds_host_copies_not_views_of_jax_buffers() -> None:
    model = CNN(nnx.Rngs(0))
    snapshot = take_snapshot(model)
    live = np.asarray(model.fc2.kernel[...])
    copied = next(layer for layer in snapshot.layers if "fc2" in layer.name).load()
    np.testing.assert_array_equal(copied, live.T)
    assert not np.shares_memory(copied, live)
