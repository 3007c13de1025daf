"""The results cache keys a module's layers by their content: a module retrained in place is recomputed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ww_core


def test_a_module_changed_in_place_is_recomputed(tmp_path: Path) -> None:
    cache = tmp_path / "rows.jsonl"
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(60, 120), torch.nn.ReLU(), torch.nn.Linear(120, 30))
    with torch.no_grad():
        net[0].weight.pow_(3)
    before = ww_core.analyze(net, cache=cache, workers=1).details
    with torch.no_grad():  # "training": the same module object, new weights
        net[0].weight.copy_(torch.randn(120, 60))
    after = ww_core.analyze(net, cache=cache, workers=1).details
    fresh = ww_core.analyze(net).details
    assert [row["alpha"] for row in after] == pytest.approx([row["alpha"] for row in fresh])
    assert after[0]["alpha"] != pytest.approx(before[0]["alpha"])
    assert after[1]["alpha"] == before[1]["alpha"]
