"""Corrupted torch files: a clear error naming the file; pickled code never runs unless trust_pickle=True."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

import ww_core
from ww_core.cli import main

STATE = {"fc1.weight": torch.randn(30, 20, generator=torch.Generator().manual_seed(0)), "fc2.weight": torch.randn(20, 30)}


class Payload:
    """Unpickling this calls ``open(marker, "w")``: creates the marker file, proving code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


@pytest.fixture(params=["zip", "legacy"])
def saved(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / f"model_{request.param}.pt"
    torch.save(STATE, path, _use_new_zipfile_serialization=request.param == "zip")
    return path


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("keep", [0, 1, 10, 100, 0.5, -10, -1])
def test_truncated_file_names_the_file(saved: Path, keep: float) -> None:
    raw = saved.read_bytes()
    cut = saved.with_name("cut.pt")
    cut.write_bytes(raw[: int(len(raw) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(ValueError, match=r"cut\.pt"):
        ww_core.analyze(cut)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_flipped_bytes_give_a_clear_error_or_rows(saved: Path) -> None:
    raw = saved.read_bytes()
    rng = random.Random(0)
    for _ in range(80):
        damaged = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] ^= rng.randint(1, 255)
        path = saved.with_name("flipped.pt")
        path.write_bytes(bytes(damaged))
        try:
            results = ww_core.analyze(path)
        except ValueError as exc:  # PickledCodeError is a ValueError too
            assert "flipped.pt" in str(exc)
            continue
        assert len(results.details) == 2  # a flipped byte may land in a name or in the weights: no checksum to catch it
        assert all(row["status"] in ("success", "failed") for row in results.details)


def test_pickled_code_is_refused_without_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pt"
    torch.save({**STATE, "extra": Payload(marker)}, path)
    with pytest.raises(ValueError, match=r"evil\.pt.*trust_pickle=True"):
        ww_core.analyze(path)
    assert main(["analyze", str(path)]) == 2
    assert "evil.pt" in capsys.readouterr().err
    assert not marker.exists()
    results = ww_core.analyze(path, trust_pickle=True)  # the user vouches for the file: it loads, and the code runs
    assert marker.exists()
    assert [row["name"] for row in results.details] == ["fc1", "fc2"]


def test_nan_tensor_in_a_file_fails_only_its_layer(tmp_path: Path) -> None:
    path = tmp_path / "nan.pt"
    torch.save({**STATE, "fc1.weight": torch.full((30, 20), float("nan"))}, path)
    results = ww_core.analyze(path)
    assert results.row("fc1")["status"] == "failed" and "NaN" in results.row("fc1")["error"]
    assert results.row("fc2")["status"] == "success"
