"""Integer, bool and empty tensors from torch: a skipped row with the same reason as every other route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

import ww_core


def _state() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "fc.weight": torch.randn(60, 30, generator=generator) ** 3,
        "ids": torch.randint(0, 100, (60, 30), generator=generator, dtype=torch.int32),
        "codes": torch.randint(0, 255, (60, 30), generator=generator, dtype=torch.uint8),
        "position_ids": torch.arange(512).reshape(1, 512),
        "mask": torch.rand(60, 30, generator=generator) > 0.5,
        "empty.weight": torch.zeros(0, 30),
    }


def _outcome(results: Any) -> dict[str, tuple[str, str]]:
    return {row["name"]: (row["status"], row.get("error") or "") for row in results.details}


def test_state_dict_and_pt_file_skip_like_numpy(tmp_path: Path) -> None:
    expected = _outcome(ww_core.analyze({name: tensor.numpy() for name, tensor in _state().items()}))
    assert expected["ids"][0] == expected["mask"][0] == expected["empty"][0] == "skipped"
    assert _outcome(ww_core.analyze(_state())) == expected
    torch.save(_state(), tmp_path / "model.pt")
    assert _outcome(ww_core.analyze(tmp_path / "model.pt")) == expected


def test_an_empty_module_weight_is_skipped_with_the_same_reason() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(0, 5), torch.nn.Linear(30, 60))
    found = _outcome(ww_core.analyze(net))
    assert found["0"] == ("skipped", "empty tensor, shape (5, 0): no spectrum")
    assert found["1"][0] == "success"
    assert np.isfinite(ww_core.analyze(net).row("1")["alpha"])
