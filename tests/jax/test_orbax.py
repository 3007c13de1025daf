"""Orbax checkpoints (as Flax's docs save NNX state and Linen variables): same layers and names as the live model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import pytest
from flax import linen, nnx

import ww_core
import ww_jax
from ww_core import testing
from ww_core.cli import main

ocp = pytest.importorskip("orbax.checkpoint")


class Net(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.tok = nnx.Embed(30, 12, rngs=rngs)
        self.conv = nnx.Conv(12, 16, (3, 2), rngs=rngs)
        self.attn = nnx.MultiHeadAttention(num_heads=2, in_features=16, qkv_features=8, out_features=16, decode=False, rngs=rngs)
        self.blocks = nnx.List([nnx.Linear(16, 16, rngs=rngs) for _ in range(11)])


class LinenNet(linen.Module):
    @linen.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = linen.Embed(30, 12)(tokens)
        x = linen.Conv(16, (3,))(x)
        x = linen.MultiHeadDotProductAttention(num_heads=2, qkv_features=8)(x)
        return linen.Dense(4)(x)


def _save(path: Path, tree: Any) -> Path:
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path.absolute(), tree, force=True)
    checkpointer.wait_until_finished()
    return path


def _by_name(results: ww_core.Results) -> list[dict[str, Any]]:
    return sorted(results.details, key=lambda row: row["name"])


@pytest.mark.parametrize("flavour", ["nnx", "linen"])
def test_checkpoint_rows_equal_the_live_models(tmp_path: Path, flavour: str) -> None:
    if flavour == "nnx":
        live: Any = Net(nnx.Rngs(0))
        saved = nnx.split(live)[1]
    else:
        live = saved = LinenNet().init(jax.random.PRNGKey(0), jnp.zeros((1, 7), jnp.int32))
    path = _save(tmp_path / "ckpt" / "state", saved)
    from_file, from_live = ww_core.analyze(path, min_evals=2), ww_core.analyze(live, min_evals=2)
    assert [row["name"] for row in _by_name(from_file)] == [row["name"] for row in _by_name(from_live)]
    testing.assert_rows_close(_by_name(from_file), _by_name(from_live), ignore=(*testing.NAMING_COLUMNS, "layer_id"))
    names = [row["name"] for row in from_file.details]
    if flavour == "nnx":  # numbered blocks in number order: blocks/2 before blocks/10
        assert names.index("blocks.2") < names.index("blocks.10")


def test_conformance_and_laziness(tmp_path: Path) -> None:
    model = Net(nnx.Rngs(0))
    path = _save(tmp_path / "state", nnx.split(model)[1])
    testing.check_layers(ww_jax.ww_layers(path, {}))

    def rewrite() -> None:
        _save(path, jax.tree_util.tree_map(lambda a: a * 2 + 1, nnx.split(model)[1]))

    testing.check_lazy(lambda: ww_jax.ww_layers(path, {}), mutate=rewrite)
    testing.check_declines(ww_jax.ww_layers)


def test_each_array_is_read_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ww_jax import orbax_checkpoint

    path = _save(tmp_path / "state", nnx.split(Net(nnx.Rngs(0)))[1])
    layers = list(ww_jax.ww_layers(path, {}) or [])
    restored: list[int] = []
    real = orbax_checkpoint.restore_leaf
    monkeypatch.setattr(orbax_checkpoint, "restore_leaf", lambda *args: restored.append(1) or real(*args))
    layers[3].load()
    assert restored == [1]


def test_cli_and_corrupt_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _save(tmp_path / "ckpt" / "state", nnx.split(Net(nnx.Rngs(0)))[1])
    assert main(["analyze", str(path), "--min-evals", "2", "-q"]) == 0
    (path / "_METADATA").write_text("{not json")
    with pytest.raises(ValueError, match=str(path)):
        ww_core.analyze(path)
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0]


def test_lost_array_data_fails_those_layers_naming_the_folder(tmp_path: Path) -> None:
    path = _save(tmp_path / "state", nnx.split(Net(nnx.Rngs(0)))[1])
    for data in (path / "ocdbt.process_0" / "d").iterdir():  # the per-process data files; the top-level tree survives
        data.write_bytes(b"")
    results = ww_core.analyze(path, min_evals=2)
    assert results.failed, "emptied data went unnoticed"
    assert all(str(path) in row["error"] and "cannot restore" in row["error"] for row in results.failed)


def test_emptied_checkpoint_is_one_error_naming_the_folder(tmp_path: Path) -> None:
    path = _save(tmp_path / "state", nnx.split(Net(nnx.Rngs(0)))[1])
    for data in path.rglob("*"):
        if data.is_file() and data.parent.name == "d":  # every OCDBT data file, the tree's too
            data.write_bytes(b"")
    with pytest.raises(ValueError, match="not a readable Orbax checkpoint"):
        ww_core.analyze(path)


def test_checkpoint_manager_step_folders(tmp_path: Path) -> None:
    model = Net(nnx.Rngs(0))
    manager = ocp.CheckpointManager((tmp_path / "single").absolute())
    manager.save(100, args=ocp.args.StandardSave(nnx.split(model)[1]))
    manager.wait_until_finished()
    step = tmp_path / "single" / "100"
    testing.assert_rows_close(ww_core.analyze(step, min_evals=2).details, ww_core.analyze(step / "default", min_evals=2).details)
    several = ocp.CheckpointManager((tmp_path / "several").absolute(), item_names=("state", "ema"))
    saved = nnx.split(model)[1]
    several.save(5, args=ocp.args.Composite(state=ocp.args.StandardSave(saved), ema=ocp.args.StandardSave(saved)))
    several.wait_until_finished()
    with pytest.raises(ValueError, match="several PyTree items"):
        ww_core.analyze(tmp_path / "several" / "5")
    assert ww_core.analyze(tmp_path / "several" / "5" / "state", min_evals=2).analyzed
