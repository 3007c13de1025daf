"""Flax NNX modules, Linen variables, plain pytrees and msgpack checkpoints reach core canonically."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen, nnx, serialization

import ww_core
import ww_jax
from ww_core import testing


class Net(nnx.Module):
    """Attributes assigned out of alphabetical order, to prove module order is kept."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.tok = nnx.Embed(30, 12, rngs=rngs)
        self.conv = nnx.Conv(12, 16, (3, 2), rngs=rngs)
        self.attn = nnx.MultiHeadAttention(num_heads=2, in_features=16, qkv_features=8, out_features=16, decode=False, rngs=rngs)
        self.general = nnx.LinearGeneral(16, (2, 5), rngs=rngs)
        self.blocks = nnx.List([nnx.Linear(10, 9, rngs=rngs), nnx.Linear(9, 4, rngs=rngs)])
        self.norm = nnx.LayerNorm(4, rngs=rngs)


class LinenNet(linen.Module):
    @linen.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = linen.Embed(30, 12)(tokens)
        x = linen.Conv(16, (3,))(x)
        x = linen.MultiHeadDotProductAttention(num_heads=2, qkv_features=8)(x)
        x = linen.DenseGeneral((2, 5))(x)
        x = linen.BatchNorm(use_running_average=True)(x)
        return linen.Dense(4)(x.reshape(*x.shape[:-2], 10))


@pytest.fixture
def linen_variables() -> dict:
    return LinenNet().init(jax.random.PRNGKey(0), jnp.zeros((1, 7), jnp.int32))


def scaled(tree: object) -> object:
    """``2·tree + 1`` keeping dict order (``jax.tree_util.tree_map`` sorts keys)."""
    return {key: scaled(value) for key, value in tree.items()} if isinstance(tree, dict) else tree * 2 + 1


def described(source: object) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(layer.name, layer.kind, layer.shape) for layer in testing.check_layers(ww_jax.ww_layers(source, {}))]


def test_nnx_module_in_module_order_with_canonical_shapes() -> None:
    assert described(Net(nnx.Rngs(0))) == [
        ("tok", "embedding", (30, 12)),
        ("conv", "conv2d", (16, 12, 3, 2)),
        ("attn.query", "dense", (8, 16)),
        ("attn.key", "dense", (8, 16)),
        ("attn.value", "dense", (8, 16)),
        ("attn.out", "dense", (16, 8)),
        ("general", "dense", (10, 16)),
        ("blocks.0", "dense", (9, 10)),
        ("blocks.1", "dense", (4, 9)),
    ]


def test_nnx_layouts() -> None:
    net = Net(nnx.Rngs(0))
    found = {layer.name: layer.load() for layer in ww_jax.ww_layers(net, {})}
    np.testing.assert_array_equal(found["blocks.0"], np.asarray(net.blocks[0].kernel[...]).T)
    np.testing.assert_array_equal(found["conv"], np.asarray(net.conv.kernel[...]).transpose(3, 2, 0, 1))
    query = np.asarray(net.attn.query.kernel[...])  # (in, heads, head_dim)
    np.testing.assert_array_equal(found["attn.query"], query.reshape(16, 8).T)
    out = np.asarray(net.attn.out.kernel[...])  # (heads, head_dim, out)
    np.testing.assert_array_equal(found["attn.out"], out.reshape(8, 16).T)
    x = np.linspace(-1, 1, 10, dtype=np.float32)
    dense = net.blocks[0]
    np.testing.assert_allclose(found["blocks.0"] @ x + np.asarray(dense.bias[...]), np.asarray(dense(x)), rtol=1e-5)


def test_linen_variables_params_only_in_creation_order(linen_variables: dict) -> None:
    assert "batch_stats" in linen_variables
    assert described(linen_variables) == [
        ("Embed_0", "embedding", (30, 12)),
        ("Conv_0", "conv1d", (16, 12, 3)),
        ("MultiHeadDotProductAttention_0.query", "dense", (8, 16)),
        ("MultiHeadDotProductAttention_0.key", "dense", (8, 16)),
        ("MultiHeadDotProductAttention_0.value", "dense", (8, 16)),
        ("MultiHeadDotProductAttention_0.out", "dense", (16, 8)),
        ("DenseGeneral_0", "dense", (10, 16)),
        ("Dense_0", "dense", (4, 10)),
    ]
    assert described(linen_variables["params"]) == described(linen_variables)


def test_plain_pytree_of_jax_arrays() -> None:
    tree = {"encoder": [{"w": jnp.ones((6, 9)), "b": jnp.zeros(9)}, {"w": jnp.ones((9, 3), jnp.bfloat16)}], "step": jnp.int32(3)}
    assert described(tree) == [("encoder.0.w", "dense", (9, 6)), ("encoder.1.w", "dense", (3, 9))]
    assert ww_jax.ww_layers(tree, {})[1].load().dtype == np.float32


def test_msgpack_checkpoint_matches_the_variables(linen_variables: dict, tmp_path: Path) -> None:
    path = tmp_path / "ckpt.msgpack"
    path.write_bytes(serialization.to_bytes({"step": 10, "params": linen_variables["params"], "opt_state": linen_variables["params"]}))
    from_file = testing.check_layers(ww_jax.ww_layers(path, {}))
    in_memory = list(ww_jax.ww_layers(linen_variables, {}))
    assert [(a.name, a.kind, a.shape) for a in from_file] == [(b.name, b.kind, b.shape) for b in in_memory]
    for ours, theirs in zip(from_file, in_memory, strict=True):
        np.testing.assert_array_equal(ours.load(), theirs.load())
    testing.assert_rows_close(ww_core.analyze(path).details, ww_core.analyze(linen_variables).details)


def test_msgpack_is_read_at_load_time(linen_variables: dict, tmp_path: Path) -> None:
    path = tmp_path / "ckpt.msgpack"
    path.write_bytes(serialization.to_bytes(linen_variables))
    changed = scaled(linen_variables)
    testing.check_lazy(lambda: ww_jax.ww_layers(path, {}), lambda: path.write_bytes(serialization.to_bytes(changed)))


def test_nnx_parameters_are_read_at_load_time() -> None:
    net = Net(nnx.Rngs(0))

    def change() -> None:
        for _, param in nnx.iter_graph(net):
            if isinstance(param, nnx.Param):
                param.set_value(param.get_value() * 2 + 1)

    testing.check_lazy(lambda: ww_jax.ww_layers(net, {}), change)


def test_errors_and_declines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(b"\xc1\xc1 not msgpack")
    testing.check_clear_error(lambda: ww_jax.ww_layers(bad, {}), str(bad), "not a Flax msgpack checkpoint")
    testing.check_clear_error(lambda: ww_jax.ww_layers(nnx.state(Net(nnx.Rngs(0))), {}), "pass the module itself")
    testing.check_declines(ww_jax.ww_layers)
    testing.check_declines(ww_jax.ww_layers, [{"a": 1}, [np.ones((3, 3))], tmp_path / "missing.msgpack"])
    testing.check_adapter_info(ww_jax.ww_adapter_info())


def test_registered_and_importing_it_imports_no_framework() -> None:
    code = (
        "import sys, ww_core, ww_jax\n"
        "names = [a['name'] for a in ww_core.list_adapters()]\n"
        "assert 'jax' in names, names\n"
        "loaded = [m for m in ('jax', 'flax', 'msgpack') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
