"""Flax recurrent cells read as torch's stacked ``<layer>.ih_l0``/``<layer>.hh_l0`` matrices, and written back per gate."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen, nnx

import ww_jax
from ww_core import testing


def _layers(source: object) -> dict[str, np.ndarray]:
    return {layer.name: layer.load() for layer in ww_jax.ww_layers(source, {}) or ()}


def test_linen_gru_cell_gates_are_stacked_in_torch_order_r_z_n() -> None:
    variables = linen.RNN(linen.GRUCell(features=3), name="gru").init(jax.random.PRNGKey(0), jnp.ones((1, 2, 4)))
    cell = variables["params"]["cell"]
    layers = _layers({"params": {"gru": {"cell": cell}}})
    assert list(layers) == ["gru.ih_l0", "gru.hh_l0"]
    np.testing.assert_array_equal(layers["gru.ih_l0"], np.concatenate([np.asarray(cell[g]["kernel"]).T for g in ("ir", "iz", "in")]))
    np.testing.assert_array_equal(layers["gru.hh_l0"], np.concatenate([np.asarray(cell[g]["kernel"]).T for g in ("hr", "hz", "hn")]))


def test_linen_lstm_cell_gates_are_stacked_in_torch_order_i_f_g_o() -> None:
    variables = linen.RNN(linen.OptimizedLSTMCell(features=3)).init(jax.random.PRNGKey(0), jnp.ones((1, 2, 4)))
    params = variables["params"]["cell"]
    layers = _layers({"params": {"lstm": variables["params"]}})
    assert list(layers) == ["lstm.ih_l0", "lstm.hh_l0"]
    stacked = np.concatenate([np.asarray(params[g]["kernel"]).T for g in ("ii", "if", "ig", "io")])
    np.testing.assert_array_equal(layers["lstm.ih_l0"], stacked)
    assert layers["lstm.hh_l0"].shape == (12, 3)


def test_write_back_splits_stacked_gates_into_each_nnx_cell_kernel() -> None:
    cell = nnx.LSTMCell(4, 3, rngs=nnx.Rngs(0))
    new = np.arange(12 * 4, dtype=np.float32).reshape(12, 4)
    ww_jax.ww_write_weights(cell, {"ih_l0": new}, None)
    for position, gate in enumerate((cell.ii, cell.if_, cell.ig, cell.io)):
        np.testing.assert_array_equal(np.asarray(gate.kernel.get_value()), new[3 * position : 3 * position + 3].T)
    np.testing.assert_array_equal(_layers(cell)["ih_l0"], new)


def test_write_back_round_trips_a_linen_gru_tree() -> None:
    variables = linen.RNN(linen.GRUCell(features=3)).init(jax.random.PRNGKey(0), jnp.ones((1, 2, 4)))
    assert testing.check_write_back(ww_jax.ww_layers, ww_jax.ww_write_weights, variables)
    tree = {"params": {"gru": variables["params"]}}
    before = _layers(tree)
    new = {name: value * 2 for name, value in before.items()}
    written = ww_jax.ww_write_weights(tree, new, None)
    after = _layers(written)
    for name, value in new.items():
        np.testing.assert_allclose(after[name], value, rtol=1e-6)
    np.testing.assert_array_equal(_layers(tree)["gru.hh_l0"], before["gru.hh_l0"])  # the input tree is unchanged
