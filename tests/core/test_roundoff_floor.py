"""Eigenvalues below the method's round-off floor are zero for the fit: a rank-deficient layer fails, never fits noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ww_core


def _rank_one(scale: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    return scale * np.outer(rng.standard_normal(200), rng.standard_normal(100))


DEFICIENT = {
    "rank-1 x 1e4": _rank_one(1e4),
    "ones x 1000": np.ones((200, 100)) * 1000,
    "float32-max constant": np.full((200, 100), np.finfo(np.float32).max, dtype=np.float32),
}


@pytest.mark.parametrize("exact", [False, True], ids=["gram", "exact"])
@pytest.mark.parametrize("name", list(DEFICIENT))
def test_a_rank_deficient_layer_fails_saying_so(name: str, exact: bool) -> None:
    (row,) = ww_core.analyze({"w": DEFICIENT[name]}, exact=exact).details
    assert row["status"] == "failed" and math.isnan(row["alpha"]) and row["warning"] == ""
    assert "rank-deficient" in row["error"] and "round-off floor" in row["error"] and "'w'" in row["error"]


def test_a_large_scale_alone_changes_no_fit() -> None:
    W = np.random.default_rng(1).standard_t(3.0, (300, 150))
    (plain,) = ww_core.analyze({"w": W}).details
    (scaled,) = ww_core.analyze({"w": W * 1e6}).details
    assert scaled["status"] == "success"
    assert scaled["alpha"] == pytest.approx(plain["alpha"], rel=1e-9)
    assert scaled["num_pl_spikes"] == plain["num_pl_spikes"]


def test_a_low_rank_layer_is_fitted_on_its_rank_only() -> None:
    rng = np.random.default_rng(2)
    W = 1e4 * rng.standard_t(3.0, (300, 40)) @ rng.standard_normal((40, 150))  # rank 40 of 150
    (row,) = ww_core.analyze({"w": W}).details
    evals = ww_core.get_esd({"w": W}, "w")
    assert row["status"] == "success" and row["matrix_rank"] == 40
    assert row["num_pl_spikes"] <= 40 and row["xmin"] >= evals[-40]
