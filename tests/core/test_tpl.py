"""The truncated power-law fit against powerlaw 1.5's as the oracle, on samples of known TPLs, and its refusals."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest

import ww_core
from ww_core.spectra.tpl_fit import fit_truncated_power_law

powerlaw = pytest.importorskip("powerlaw")


def _tpl_sample(alpha: float, rate: float, xmin: float, n: int, seed: int) -> np.ndarray:
    """Exact draws from p(x) ∝ x^−α e^−rate·x on x ≥ xmin: power-law proposals kept with probability e^−rate(x−xmin)."""
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    while sum(len(k) for k in kept) < n:
        proposals = xmin * (1 - rng.random(4 * n)) ** (-1 / (alpha - 1))
        kept.append(proposals[rng.random(len(proposals)) < np.exp(-rate * (proposals - xmin))])
    return np.concatenate(kept)[:n]


def _oracle(sample: np.ndarray, xmin: float) -> tuple[float, float, float]:
    with contextlib.redirect_stderr(io.StringIO()):
        fit = powerlaw.Fit(sample, xmin=xmin, verbose=False).truncated_power_law
    return float(fit.alpha), float(fit.Lambda), float(fit.D)


#: Agreement with powerlaw 1.5 (whose Nelder–Mead stops at xtol 1e-4 in alpha and Lambda directly).
ALPHA_TOL, LAMBDA_REL, D_TOL = 0.01, 0.03, 0.002


@pytest.mark.parametrize(("alpha", "rate"), [(2.5, 0.05), (1.5, 0.5), (3.5, 0.2)])
def test_tpl_equals_powerlaw_1_5_on_samples_of_a_known_tpl(alpha: float, rate: float) -> None:
    sample = _tpl_sample(alpha, rate, 1.0, 3000, seed=1)
    xmin = float(sample.min())
    fit = fit_truncated_power_law(sample, xmin=xmin)
    want_alpha, want_rate, want_D = _oracle(sample, xmin)
    assert fit.ok
    assert fit.alpha == pytest.approx(want_alpha, abs=ALPHA_TOL)
    assert fit.Lambda == pytest.approx(want_rate, rel=LAMBDA_REL)
    assert fit.D == pytest.approx(want_D, abs=D_TOL)
    assert fit.alpha == pytest.approx(alpha, abs=0.1) and fit.Lambda == pytest.approx(rate, rel=0.25)  # and the truth


def test_a_tail_that_falls_off_exponentially_is_refused_not_alpha_1() -> None:
    """A random matrix's ESD ends at the Marchenko–Pastur edge: the TPL likelihood is largest at the bound alpha → 1."""
    W = np.random.default_rng(0).standard_normal((300, 150)) / math.sqrt(300)
    (row,) = ww_core.analyze({"w": W}, fit="TPL").details
    assert row["status"] == "failed" and math.isnan(row["alpha"])
    assert "alpha → 1" in row["error"] and "'w'" in row["error"]


def test_tpl_rows_report_the_tpl_fits_own_ks_distance() -> None:
    W = np.random.default_rng(14).standard_t(2.5, (200, 100))
    (pl,) = ww_core.analyze({"w": W}).details
    (tpl,) = ww_core.analyze({"w": W}, fit="TPL").details
    assert tpl["status"] == "success" and tpl["xmin"] == pl["xmin"]
    evals = ww_core.get_esd({"w": W}, "w")
    _, _, want_D = _oracle(evals, tpl["xmin"])
    assert tpl["D"] != pl["D"] and tpl["D"] == pytest.approx(want_D, abs=D_TOL)
