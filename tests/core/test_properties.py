"""Invariances HT-SR metrics must have: alpha and D unchanged by W → cW, by permuting rows/columns, and by transposing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import ww_core

SETTINGS = settings(max_examples=25, deadline=None)
shapes = st.tuples(st.integers(24, 90), st.integers(24, 90))
seeds = st.integers(0, 2**32 - 1)
tails = st.sampled_from([2.5, 3.0, 5.0])  # student-t degrees of freedom: heavier to lighter tails


def _matrix(seed: int, shape: tuple[int, int], df: float) -> np.ndarray:
    return np.random.default_rng(seed).standard_t(df, shape)


def _row(weights: np.ndarray) -> dict[str, Any]:
    (row,) = ww_core.analyze({"w": weights}).details
    return row


def _same_fit(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["status"] == b["status"] == "success"
    assert a["num_pl_spikes"] == b["num_pl_spikes"]
    assert math.isclose(a["alpha"], b["alpha"], rel_tol=1e-6)
    assert math.isclose(a["D"], b["D"], rel_tol=1e-6, abs_tol=1e-12)


@SETTINGS
@given(seed=seeds, shape=shapes, df=tails, log_c=st.floats(-2.0, 3.0))
def test_scaling_leaves_alpha_and_D_unchanged(seed: int, shape: tuple[int, int], df: float, log_c: float) -> None:
    weights = _matrix(seed, shape, df)
    c = 10.0**log_c
    base, scaled = _row(weights), _row(c * weights)
    _same_fit(base, scaled)
    assert math.isclose(scaled["xmin"], c * c * base["xmin"], rel_tol=1e-9)
    assert math.isclose(scaled["log_norm"], base["log_norm"] + 2 * log_c, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(scaled["alpha_weighted"], base["alpha"] * scaled["log_spectral_norm"], rel_tol=1e-9, abs_tol=1e-9)


@SETTINGS
@given(seed=seeds, shape=shapes, df=tails)
def test_permuting_rows_and_columns_leaves_the_fit_unchanged(seed: int, shape: tuple[int, int], df: float) -> None:
    weights = _matrix(seed, shape, df)
    rng = np.random.default_rng(seed + 1)
    permuted = weights[rng.permutation(shape[0])][:, rng.permutation(shape[1])]
    base, moved = _row(weights), _row(permuted)
    _same_fit(base, moved)
    assert math.isclose(base["log_norm"], moved["log_norm"], rel_tol=1e-12)


@SETTINGS
@given(seed=seeds, shape=shapes, df=tails)
def test_transposing_leaves_the_fit_unchanged(seed: int, shape: tuple[int, int], df: float) -> None:
    weights = _matrix(seed, shape, df)
    base, flipped = _row(weights), _row(np.ascontiguousarray(weights.T))
    _same_fit(base, flipped)
    assert (base["N"], base["M"], base["num_evals"]) == (flipped["N"], flipped["M"], flipped["num_evals"])
    np.testing.assert_allclose(
        ww_core.get_esd({"w": weights}, "w"), ww_core.get_esd({"w": weights.T}, "w"), rtol=1e-9, atol=1e-9 * base["lambda_max"]
    )
