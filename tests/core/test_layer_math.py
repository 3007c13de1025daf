"""analyze_layer and the metrics: hand-computed cases, RMT theory, options, bad inputs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from ww_core.pipeline.layer_analysis import _weights_problem, analyze_layer, layer_esd
from ww_core.platform.protocol import LayerMatrix
from ww_core.results.options import AnalysisOptions
from ww_core.spectra.detx import detx_constraint
from ww_core.spectra.fingers import clip_xmax, esd_peak, xmin_peak
from ww_core.spectra.metrics import norm_metrics, warning_for
from ww_core.spectra.randomize import shuffled
from ww_core.spectra.tpl_fit import fit_truncated_power_law


def layer_of(weights: np.ndarray, kind: str = "dense", name: str = "w") -> LayerMatrix:
    return LayerMatrix(name=name, index=3, kind=kind, shape=weights.shape, load=lambda: weights)  # type: ignore[arg-type]


def analyze(weights: np.ndarray, kind: str = "dense", **options: Any) -> list[dict[str, Any]]:
    return analyze_layer(layer_of(weights, kind), weights, AnalysisOptions.from_kwargs(**options))


# --- hand-computed metrics -------------------------------------------------------------


def test_norm_metrics_by_hand() -> None:
    evals = np.array([1.0, 4.0, 9.0])  # W = diag(3, 2, 1)
    m = norm_metrics(evals, alpha=2.0, N=3)
    assert m["norm"] == 14.0
    assert m["log_norm"] == pytest.approx(math.log10(14))
    assert m["spectral_norm"] == 9.0
    assert m["log_spectral_norm"] == pytest.approx(math.log10(9))
    assert m["alpha_weighted"] == pytest.approx(2 * math.log10(9))
    assert m["log_alpha_norm"] == pytest.approx(math.log10(1 + 16 + 81))
    assert m["stable_rank"] == pytest.approx(14 / 9)
    assert m["matrix_rank"] == 3
    p = evals / 14
    assert m["entropy"] == pytest.approx(-np.sum(p * np.log(p)) / math.log(3), rel=1e-8)


def test_matrix_rank_uses_the_float64_tolerance() -> None:
    evals = np.array([0.0, 1e-40, 1.0, 4.0])
    assert norm_metrics(evals, alpha=2.0, N=4)["matrix_rank"] == 2


def test_warnings() -> None:
    assert warning_for(1.5) == "over-trained"
    assert warning_for(6.5) == "under-trained"
    assert warning_for(3.0) == ""
    assert warning_for(math.nan) == ""


def test_row_for_a_diagonal_matrix() -> None:
    W = np.diag(np.arange(1.0, 31.0))
    (row,) = analyze(W)
    evals = np.arange(1.0, 31.0) ** 2
    assert row["num_evals"] == 30 and row["N"] == row["M"] == 30 and row["Q"] == 1.0
    assert row["norm"] == pytest.approx(evals.sum())
    assert row["spectral_norm"] == row["lambda_max"] == pytest.approx(900.0)
    assert row["sv_max"] == pytest.approx(30.0) and row["sv_min"] == pytest.approx(1.0)
    assert row["xmax"] == pytest.approx(900.0)
    assert row["layer_id"] == 3 and row["layer_type"] == "dense" and row["status"] == "success" and row["error"] == ""


# --- theory ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gaussian_weights_follow_marchenko_pastur(seed: int) -> None:
    N, M, sigma = 1000, 500, 0.02
    W = np.random.default_rng(seed).normal(0.0, sigma, (N, M))
    (row,) = analyze(W, mp_fit=True)
    recovered = row["sigma_mp"] / (row["W_scale"] * math.sqrt(N))
    assert recovered == pytest.approx(sigma, rel=0.05)
    assert row["bulk_max"] == pytest.approx(N * sigma**2 * (1 + math.sqrt(M / N)) ** 2, rel=0.05)
    assert row["num_spikes"] <= 2
    assert row["alpha"] > 5.0  # no heavy tail


@pytest.mark.parametrize("mu", [1.0, 1.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_heavy_tailed_weights_give_the_levy_exponent(mu: float, seed: int) -> None:
    """Entries with tail index mu < 2: ESD tail exponent alpha = mu/2 + 1 (Martin & Mahoney 2021)."""
    rng = np.random.default_rng(seed)
    W = (rng.pareto(mu, (1000, 500)) + 1.0) * rng.choice([-1.0, 1.0], (1000, 500))
    (row,) = analyze(W)
    assert row["alpha"] == pytest.approx(mu / 2 + 1, abs=0.25)
    assert row["warning"] == "over-trained"


# --- conv layers -----------------------------------------------------------------------


def test_conv_pooled_and_sliced_rows() -> None:
    C = np.random.default_rng(3).standard_t(3, (24, 12, 3, 3))
    (pooled,) = analyze(C, "conv2d")
    sliced = analyze(C, "conv2d", pool=False)
    assert pooled["num_evals"] == 9 * 12 and pooled["rf"] == 9
    assert [r["slice_id"] for r in sliced] == list(range(9))
    assert all(r["num_evals"] == 12 for r in sliced)
    # pooled scaling 1/2 vs sliced rf/2: the slice ESDs are 9x the pooled ones
    first = C[:, :, 0, 0]
    sv = np.linalg.svd(first, compute_uv=False)
    assert sliced[0]["lambda_max"] == pytest.approx(4.5 * sv.max() ** 2)
    esd = layer_esd(layer_of(C, "conv2d"), C, AnalysisOptions())
    assert len(esd) == 108 and esd.max() == pytest.approx(pooled["lambda_max"])


@pytest.mark.parametrize(("kind", "shape"), [("conv1d", (20, 10, 5)), ("conv3d", (12, 6, 2, 2, 2))])
def test_conv1d_and_conv3d(kind: str, shape: tuple[int, ...]) -> None:
    C = np.random.default_rng(4).standard_normal(shape)
    (row,) = analyze(C, kind)
    assert row["num_evals"] == int(np.prod(shape[2:])) * min(shape[:2])
    assert row["status"] == "success"


# --- options ---------------------------------------------------------------------------


def test_eigenvalue_fn_replaces_the_spectrum() -> None:
    W = np.random.default_rng(5).standard_normal((60, 40))
    calls: list[int] = []

    def doubled(mats: list[np.ndarray]) -> list[np.ndarray]:
        calls.append(len(mats))
        return [2 * np.sort(np.linalg.svd(m, compute_uv=False) ** 2) for m in mats]

    (row,) = analyze_layer(layer_of(W), W, AnalysisOptions(), eigenvalue_fn=doubled)
    (plain,) = analyze(W)
    assert calls == [1]
    assert row["norm"] == pytest.approx(2 * plain["norm"])


def test_base_weights_analyze_the_difference() -> None:
    rng = np.random.default_rng(6)
    W, B = rng.standard_t(3, (80, 50)), rng.standard_normal((80, 50))
    (delta,) = analyze_layer(layer_of(W), W, AnalysisOptions(), base_weights=B)
    (direct,) = analyze(W - B)
    assert delta["alpha"] == pytest.approx(direct["alpha"]) and delta["norm"] == pytest.approx(direct["norm"])
    (bad,) = analyze_layer(layer_of(W), W, AnalysisOptions(), base_weights=B[:, :10])
    assert bad["status"] == "failed" and "base weights" in bad["error"]


def test_inverse_analyzes_reciprocal_eigenvalues() -> None:
    W = np.random.default_rng(7).standard_normal((80, 40))
    (row,) = analyze(W, inverse=True)
    evals = np.linalg.svd(W, compute_uv=False) ** 2
    assert row["spectral_norm"] == pytest.approx(1 / evals.min())


@pytest.mark.parametrize(
    ("weights", "reason"),
    [
        (np.full((20, 10), np.nan), "NaN/Inf"),
        (np.where(np.eye(20, 10) > 0, np.inf, 1.0), "NaN/Inf"),
        (np.zeros((20, 10)), "all zero"),
    ],
)
def test_bad_matrices_give_failed_rows_naming_the_layer(weights: np.ndarray, reason: str) -> None:
    (row,) = analyze_layer(layer_of(weights, name="enc.fc1"), weights, AnalysisOptions())
    assert row["status"] == "failed" and math.isnan(row["alpha"])
    assert reason in row["error"] and "enc.fc1" in row["error"]


def _one_bad_entry(value: float) -> np.ndarray:
    weights = np.random.default_rng(9).standard_normal((30, 20)).astype(np.float32)
    weights[7, 3] = value
    return weights


TOO_LARGE = "weights are too large for float64: the sum of their squares (about 1e401) overflows (largest |w| = 1e+200); rescale the layer"


@pytest.mark.parametrize(
    ("weights", "problem"),
    [
        (_one_bad_entry(np.nan), "weights contain 1 NaN/Inf value(s)"),
        (_one_bad_entry(-np.inf), "weights contain 1 NaN/Inf value(s)"),
        (np.array([[np.inf, -np.inf], [np.nan, 1.0]]), "weights contain 3 NaN/Inf value(s)"),
        (np.zeros((3, 2), dtype=np.float32), "weights are all zero"),
        (np.full((4, 3), 1e200), TOO_LARGE),  # finite, but the Gram matrix would overflow
        (np.full((4, 3), 1e30, dtype=np.float32), ""),  # overflows float32 squares
        (np.full((4, 3), 1e-30, dtype=np.float32), ""),  # squares underflow to 0, entries are not 0
        (_one_bad_entry(0.5)[:, ::2], ""),  # a strided view
    ],
)
def test_weight_checks_count_exactly_where_the_quick_check_cannot_decide(weights: np.ndarray, problem: str) -> None:
    assert _weights_problem(weights) == problem


def test_xmax_int_clips_the_top_eigenvalues() -> None:
    W = np.random.default_rng(8).standard_t(2.5, (200, 100))
    (row,) = analyze(W, xmax=-3)
    evals = np.sort(np.linalg.svd(W, compute_uv=False) ** 2)
    assert row["xmax"] == pytest.approx(evals[-4])
    (bad,) = analyze(W, xmax=-80)
    assert bad["status"] == "failed" and "xmax" in bad["error"]


# --- randomize ---------------------------------------------------------------------------


def test_randomize_is_seeded_and_reproducible() -> None:
    W = np.random.default_rng(9).standard_t(2.5, (120, 60))
    a, b = analyze(W, randomize=True, seed=1)[0], analyze(W, randomize=True, seed=1)[0]
    c = analyze(W, randomize=True, seed=2)[0]
    columns = ["max_rand_eval", "rand_distance", "ww_softrank", "rand_sigma_mp", "rand_bulk_max"]
    assert [a[k] for k in columns] == [b[k] for k in columns]
    assert a["max_rand_eval"] != c["max_rand_eval"]
    assert 0 <= a["rand_distance"] <= 1


def test_shuffle_keeps_the_entries() -> None:
    W = np.arange(20.0).reshape(4, 5)
    (S,) = shuffled([W], np.random.default_rng(0))
    assert S.shape == W.shape and not np.array_equal(S, W)
    np.testing.assert_array_equal(np.sort(S.ravel()), W.ravel())


def test_randomized_trained_layer_loses_its_spike() -> None:
    """A strong rank-one signal is a spike of the real ESD but not of the shuffled one."""
    rng = np.random.default_rng(10)
    W = rng.normal(0, 0.02, (400, 200)) + 0.02 * np.outer(rng.normal(size=400), rng.normal(size=200))
    (row,) = analyze(W, randomize=True, mp_fit=True)
    assert row["num_spikes"] >= 1
    assert row["ww_softrank"] < 0.5
    assert row["rand_num_spikes"] == 0


# --- fingers, TPL, detX ----------------------------------------------------------------


def test_clip_xmax_removes_fingers() -> None:
    """Moderate tails plus a rank-one spike: the unclipped fit latches onto the top few values."""
    rng = np.random.default_rng(0)
    W = rng.standard_t(4.0, (400, 200)) * 0.05 + 0.01 * np.outer(rng.normal(size=400), rng.normal(size=200))
    evals = np.sort(np.linalg.svd(W, compute_uv=False) ** 2)
    result = clip_xmax(evals)
    assert result.num_fingers >= 1
    assert result.fit.alpha + 1.0 < result.raw.alpha
    assert result.fit.xmax < evals[-1] and result.raw.xmax == evals[-1]
    (row,) = analyze(W, fix_fingers="clip_xmax")
    assert row["alpha"] == pytest.approx(result.fit.alpha) and row["raw_alpha"] == pytest.approx(result.raw.alpha)


def test_xmin_peak_searches_near_the_esd_peak() -> None:
    evals = np.random.default_rng(12).lognormal(0.0, 1.0, 3000)
    peak = esd_peak(evals)
    fit = xmin_peak(evals)
    assert 0.95 * peak <= fit.xmin <= 1.5 * peak


def test_truncated_power_law_recovers_its_parameters() -> None:
    rng = np.random.default_rng(13)
    alpha, rate, xmin = 2.5, 0.05, 1.0
    pool = xmin * (1 - rng.random(400000)) ** (-1 / (alpha - 1))
    sample = pool[rng.random(len(pool)) < np.exp(-rate * (pool - xmin))][:20000]
    fit = fit_truncated_power_law(sample, xmin=xmin)
    assert fit.ok
    assert fit.alpha == pytest.approx(alpha, abs=0.05)
    assert fit.Lambda == pytest.approx(rate, rel=0.15)


def test_tpl_rows_have_lambda() -> None:
    W = np.random.default_rng(14).standard_t(2.5, (200, 100))
    (row,) = analyze(W, fit="TPL")
    assert row["status"] == "success" and row["Lambda"] > 0 and row["alpha"] > 1
    # E_TPL fits from the ESD's peak, bulk included: the likelihood (powerlaw 1.5's too) is largest at alpha → 1
    (row,) = analyze(W, fit="E_TPL")
    assert row["status"] == "failed" and "alpha → 1" in row["error"]


def test_detx_by_hand() -> None:
    # mean-1 rescaled values 0.2, 0.3, 0.5, 3.0: top products 3.0, 1.5, then 0.45 < 1 at index 1
    num, idx, scaled = detx_constraint(np.array([0.4, 0.6, 1.0, 6.0]))
    np.testing.assert_allclose(scaled, [0.2, 0.3, 0.5, 3.0])
    assert (num, idx) == (3, 1)
    assert detx_constraint(np.array([1.0, 1.0, 1.0, 1.0001]))[:2] == (4, 1)  # never below 1: the whole ESD
