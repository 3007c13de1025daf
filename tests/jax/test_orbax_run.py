"""An Orbax CheckpointManager folder (numbered step folders) opens as one series in numeric step order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ww_core
from ww_core.cli import main

ocp = pytest.importorskip("orbax.checkpoint")


def test_step_folders_compare_in_numeric_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    run = tmp_path / "run"
    for step in (2, 10, 100):  # shell-glob order would be 10, 100, 2
        manager = ocp.CheckpointManager(run.absolute())
        tree = {
            "fc0": {"kernel": rng.standard_t(2.5, (60, 40)).astype(np.float32)},
            "fc1": {"kernel": rng.standard_normal((40, 30)).astype(np.float32)},
        }
        manager.save(step, args=ocp.args.StandardSave(tree))
        manager.wait_until_finished()
        manager.close()
    comparison = ww_core.compare(str(run))
    assert comparison.names == ["2", "10", "100"]
    assert [len(result.analyzed) for result in comparison.results] == [2, 2, 2]
    assert main(["compare", str(run)]) == 0
    assert "mean alpha" in capsys.readouterr().out
