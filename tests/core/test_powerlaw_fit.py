"""The power-law fit against the powerlaw 1.5 oracle, a plain-loop oracle, and theory."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest

from ww_core.spectra.powerlaw_fit import SMALL_N, fit_power_law, xmin_scan

powerlaw = pytest.importorskip("powerlaw")


def oracle(data: np.ndarray, **kwargs: object) -> object:
    """powerlaw.Fit with its progress chatter swallowed."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return powerlaw.Fit(data, verbose=False, **kwargs)


def heavy_sample(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "pareto":
        return (rng.pareto(1.5, n) + 1.0) * 0.3
    if kind == "student":
        return np.abs(rng.standard_t(2.0, n)) ** 2 + 1e-3
    return rng.lognormal(0.0, 1.5, n)


def assert_rel(got: float, want: float, rtol: float = 1e-9) -> None:
    assert math.isclose(got, want, rel_tol=rtol), f"{got!r} != {want!r}"


@pytest.mark.parametrize("kind", ["pareto", "student", "lognormal"])
@pytest.mark.parametrize("n", [20, 57, 400, 2500])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_equals_powerlaw_1_5(kind: str, n: int, seed: int) -> None:
    data = heavy_sample(kind, n, seed)
    fit, ref = fit_power_law(data), oracle(data)
    assert fit.status == "success"
    for name in ("alpha", "xmin", "D", "sigma"):
        assert_rel(getattr(fit, name), float(getattr(ref, name)))
    assert fit.num_pl_spikes == int(ref.n)
    assert fit.xmax == data.max()


def test_xmin_scan_is_powerlaw_1_5_s_curves() -> None:
    """The D and alpha of every candidate xmin, which the reference plots against xmin (esd4, esd5)."""
    data = heavy_sample("student", 300, 3)
    xmins, alphas, Ds = xmin_scan(data)
    ref = oracle(data)
    np.testing.assert_allclose(xmins, ref.xmins, rtol=1e-12)
    np.testing.assert_allclose(alphas, ref.alphas, rtol=1e-9)
    np.testing.assert_allclose(Ds, ref.Ds, rtol=1e-9)
    assert xmins[np.argmin(Ds)] == fit_power_law(data).xmin


def test_fixed_xmin_equals_powerlaw_1_5() -> None:
    data = heavy_sample("pareto", 800, 5)
    xmin = float(np.sort(data)[600])
    fit, ref = fit_power_law(data, xmin=xmin), oracle(data, xmin=xmin)
    for name in ("alpha", "D", "sigma"):
        assert_rel(getattr(fit, name), float(getattr(ref, name)))


def test_xmin_range_equals_powerlaw_1_5() -> None:
    data = heavy_sample("student", 600, 6)
    low, high = np.quantile(data, [0.5, 0.8])
    fit, ref = fit_power_law(data, xmin=(low, high)), oracle(data, xmin=(low, high))
    assert low <= fit.xmin <= high
    for name in ("alpha", "xmin", "D"):
        assert_rel(getattr(fit, name), float(getattr(ref, name)))


def test_tiny_eigenvalues_are_dropped_like_the_reference() -> None:
    data = np.concatenate([heavy_sample("pareto", 300, 3), np.zeros(50), np.full(10, 1e-6)])
    assert fit_power_law(data) == fit_power_law(data[data > 1e-5])


def loop_small_n(data: np.ndarray) -> tuple[float, float, float]:
    """docs/metrics.md small-n rule as a plain loop: bias-corrected alpha over tails of ≥ 8, argmin D."""
    x = np.sort(data)
    best = (math.inf, math.nan, math.nan)
    for i in range(len(x) - 1):
        tail = x[i:]
        n = len(tail)
        s = float(np.sum(np.log(tail / x[i])))
        if n < 8 or s <= 1e-12:
            continue
        alpha = 1 + (n - 1) / s
        D = max(abs(1 - (tail[j] / x[i]) ** (1 - alpha) - j / n) for j in range(n))
        if D < best[0]:
            best = (D, alpha, float(x[i]))
    return best[1], best[2], best[0]


@pytest.mark.parametrize("n", [8, 9, 12, 16, 19])
@pytest.mark.parametrize("seed", range(4))
def test_small_n_path(n: int, seed: int) -> None:
    assert n < SMALL_N
    data = heavy_sample("student", n, seed)
    alpha, xmin, D = loop_small_n(data)
    fit = fit_power_law(data)
    assert_rel(fit.alpha, alpha)
    assert_rel(fit.xmin, xmin)
    assert_rel(fit.D, D)
    assert fit.num_pl_spikes == int(np.sum(data >= xmin))


def test_small_n_differs_from_the_standard_fit() -> None:
    """The bias correction is really applied below 20 points (the test can fail)."""
    data = heavy_sample("pareto", 15, 1)
    fit = fit_power_law(data)
    tail = np.sort(data)[np.sort(data) >= fit.xmin]
    plain = 1 + len(tail) / np.sum(np.log(tail / fit.xmin))
    assert fit.alpha < plain


@pytest.mark.parametrize(
    "data",
    [np.ones(50), np.zeros(30), np.array([1.0]), np.array([1.0, np.nan, 3.0]), np.full(10, 1e-7)],
    ids=["constant", "zeros", "single", "nan", "below-threshold"],
)
def test_failed_fits_are_nan_with_a_reason(data: np.ndarray) -> None:
    fit = fit_power_law(data)
    assert fit.status == "failed" and not fit.ok
    assert math.isnan(fit.alpha) and math.isnan(fit.D)
    assert fit.reason


@pytest.mark.parametrize("true_alpha", [1.8, 2.5, 3.5])
def test_recovers_the_exponent_of_a_pure_power_law(true_alpha: float) -> None:
    rng = np.random.default_rng(42)
    data = 2.0 * (1 - rng.random(5000)) ** (-1 / (true_alpha - 1))
    fit = fit_power_law(data)
    assert abs(fit.alpha - true_alpha) < 4 * fit.sigma + 0.05


@pytest.mark.parametrize("seed", range(12))
def test_pruned_scan_equals_the_full_scan(seed: int) -> None:
    """The bound-pruned search returns exactly the full O(n²) scan's first argmin, ties included."""
    from ww_core.spectra.powerlaw_fit import _alphas, best_candidate, ks_distances

    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 1200))
    W = rng.standard_normal((n, max(20, n // 2))) if seed % 3 == 0 else rng.standard_t(1.5 + seed % 4, (n, max(20, n // 2)))
    data = np.sort(np.linalg.svd(W, compute_uv=False) ** 2)
    if seed % 4 == 1:
        data = np.sort(np.round(data, 1))  # ties
        data = data[data > 0]
    alphas = _alphas(data)
    candidates = np.arange(len(data) - 1)
    valid = candidates[alphas > 1.0]
    full = ks_distances(data, alphas, valid)
    best, D = best_candidate(data, alphas, candidates)
    assert best == int(valid[np.argmin(full)]) and D == full.min()
