"""ww-jax's ww_write_weights: NNX modules in place, pytrees and msgpack checkpoints as new ones."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen, nnx, serialization

import ww_core
import ww_jax
from ww_core import testing
from ww_core.models.smoothing import low_rank


class Net(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.tok = nnx.Embed(30, 12, rngs=rngs)
        self.conv = nnx.Conv(12, 16, (3, 2), rngs=rngs)
        self.attn = nnx.MultiHeadAttention(num_heads=2, in_features=16, qkv_features=8, out_features=16, decode=False, rngs=rngs)
        self.general = nnx.LinearGeneral(16, (2, 5), rngs=rngs)
        self.fc = nnx.Linear(10, 9, rngs=rngs)


class LinenNet(linen.Module):
    @linen.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = linen.Embed(30, 12)(tokens)
        x = linen.Conv(16, (3,))(x)
        x = linen.MultiHeadDotProductAttention(num_heads=2, qkv_features=8)(x)
        return linen.Dense(4)(x)


def _linen() -> dict:
    return LinenNet().init(jax.random.PRNGKey(0), jnp.zeros((1, 7), jnp.int32))


def test_kit_round_trip_on_an_nnx_module() -> None:
    net = Net(nnx.Rngs(0))
    assert testing.check_write_back(ww_jax.ww_layers, ww_jax.ww_write_weights, net) is net


def test_kit_round_trip_on_linen_variables_returns_a_new_tree_and_keeps_the_old() -> None:
    variables = _linen()
    before = np.asarray(variables["params"]["Dense_0"]["kernel"]).copy()
    updated = testing.check_write_back(ww_jax.ww_layers, ww_jax.ww_write_weights, variables)
    assert isinstance(updated["params"]["Dense_0"]["kernel"], jax.Array)
    np.testing.assert_array_equal(np.asarray(variables["params"]["Dense_0"]["kernel"]), before)


def test_kit_round_trip_on_a_msgpack_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.msgpack"
    path.write_bytes(serialization.to_bytes(_linen()))
    before = path.read_bytes()
    testing.check_write_back(ww_jax.ww_layers, ww_jax.ww_write_weights, path, output=tmp_path / "new.msgpack")
    assert path.read_bytes() == before


def test_svd_smoothing_of_an_nnx_module() -> None:
    net = Net(nnx.Rngs(0))
    kernel = np.asarray(net.fc.kernel.get_value()).astype(np.float64)  # (in, out)
    assert ww_core.svd_smoothing(net, method="svd", percent=0.5) is net
    np.testing.assert_allclose(np.asarray(net.fc.kernel.get_value()), low_rank(kernel.T, 4).T, atol=1e-5)


def test_unknown_layer_is_named() -> None:
    with pytest.raises(KeyError, match="nope"):
        ww_jax.ww_write_weights(Net(nnx.Rngs(0)), {"nope": np.zeros((2, 2))}, None)


#: svd_smoothing of a msgpack checkpoint in its own process under a file-size limit (EFBIG, as ENOSPC on a full disk)
FULL_DISK = r"""
import resource, signal, sys
import ww_core

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    ww_core.svd_smoothing(sys.argv[1], output=sys.argv[2], method="svd", percent=0.5)
except (OSError, ValueError) as exc:
    print("refused:", exc)
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="RLIMIT_FSIZE is POSIX")
def test_write_back_on_a_full_disk_leaves_no_half_written_file(tmp_path: Path) -> None:
    """Writing the bytes straight onto the output left a truncated .msgpack where the new model was to be."""
    import subprocess
    import sys

    (tmp_path / "src").mkdir()
    source, output = tmp_path / "src" / "ckpt.msgpack", tmp_path / "out" / "ckpt.msgpack"
    source.write_bytes(serialization.to_bytes(_linen()))
    assert source.stat().st_size > 2000
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(source), str(output)], capture_output=True, text=True, timeout=300)
    assert done.stdout.startswith("refused:"), (done.stdout, done.stderr)
    assert not output.exists() and [path.name for path in output.parent.iterdir()] == []
