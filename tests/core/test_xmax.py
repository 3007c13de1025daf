"""``xmax``: an integer N drops each layer's N largest eigenvalues (weightwatcher 0.7.7's API), a float is an
eigenvalue bound (ww's extension). The two must never be silently confused."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ww_core
from ww_core.cli import main
from ww_core.pipeline.layer_analysis import analyze_layer
from ww_core.platform.protocol import LayerMatrix
from ww_core.results.options import AnalysisOptions


def weights(seed: int = 8, shape: tuple[int, int] = (200, 100)) -> np.ndarray:
    return np.random.default_rng(seed).standard_t(2.5, shape)


def eigenvalues(W: np.ndarray) -> np.ndarray:
    return np.sort(np.linalg.svd(W, compute_uv=False) ** 2)


def row_of(W: np.ndarray, name: str = "fc1", **options: Any) -> dict[str, Any]:
    layer = LayerMatrix(name=name, index=0, kind="dense", shape=W.shape, load=lambda: W)  # type: ignore[arg-type]
    (row,) = analyze_layer(layer, W, AnalysisOptions.from_kwargs(**options))
    return row


def test_a_numpy_integer_drops_eigenvalues_like_an_int() -> None:
    """np.int64(-3) (from np.arange, a DataFrame) was read as the eigenvalue bound -3.0."""
    W = weights()
    assert row_of(W, xmax=np.int64(-3))["alpha"] == row_of(W, xmax=-3)["alpha"]
    assert AnalysisOptions.from_kwargs(xmax=np.int32(4)).xmax == 4
    assert type(AnalysisOptions.from_kwargs(xmax=np.int32(4)).xmax) is int
    assert type(AnalysisOptions.from_kwargs(xmax=np.float32(2.5)).xmax) is float


@pytest.mark.parametrize("value", [True, 0, "5", "auto", -2.5, 0.0, math.nan, math.inf, [3]])
def test_an_xmax_with_no_meaning_is_refused_naming_both_spellings(value: Any) -> None:
    with pytest.raises(ValueError, match="xmax") as caught:
        AnalysisOptions.from_kwargs(xmax=value)
    assert "integer" in str(caught.value) and "bound" in str(caught.value)


def test_false_means_no_xmax_as_in_the_reference() -> None:
    assert AnalysisOptions.from_kwargs(xmax=False).xmax is None


def test_rows_record_how_many_eigenvalues_xmax_left_out() -> None:
    W = weights()
    evals = eigenvalues(W)
    dropped = row_of(W, xmax=-3)
    assert dropped["xmax_clipped"] == 3 and dropped["xmax"] == pytest.approx(evals[-4])
    bound = float(evals[-6] + evals[-5]) / 2
    bounded = row_of(W, xmax=bound)
    assert bounded["xmax_clipped"] == 5 and bounded["xmax"] == pytest.approx(evals[-6])
    assert "xmax_clipped" not in row_of(W) and "xmax_clipped" not in row_of(W, xmax="force")


def test_an_eigenvalue_bound_below_every_eigenvalue_fails_the_layer_naming_it() -> None:
    """xmax=3.0 meant as "drop 3" lies below the whole spectrum: the fit used one eigenvalue and said 'degenerate tail'."""
    W = weights()
    assert eigenvalues(W)[0] > 3.0
    row = row_of(W, xmax=3.0)
    assert row["status"] == "failed"
    assert "'fc1'" in row["error"] and "below every eigenvalue" in row["error"] and "xmax=3 " in row["error"]


def test_an_integer_dropping_more_than_half_fails_the_layer_naming_it_and_the_bound_spelling() -> None:
    W = weights()
    row = row_of(W, xmax=80)
    assert row["status"] == "failed"
    assert "'fc1'" in row["error"] and "80 largest" in row["error"] and "xmax=80.0" in row["error"]


def test_a_bound_is_applied_with_fix_fingers_and_tpl_too() -> None:
    """A float xmax was silently ignored by fix_fingers='xmin_peak'/'clip_xmax' and fit='E_TPL'."""
    W = weights()
    evals = eigenvalues(W)
    bound = float(evals[-11] + evals[-10]) / 2
    for options in ({"fix_fingers": "xmin_peak"}, {"fix_fingers": "clip_xmax"}, {"fit": "E_TPL"}):
        row = row_of(W, xmax=bound, **options)
        assert row["xmax_clipped"] == 10 and row["xmax"] <= evals[-11] * (1 + 1e-12), options


def test_a_truncated_power_law_is_fit_on_the_clipped_eigenvalues() -> None:
    """fit='TPL' with xmax=-3: the TPL stage used all eigenvalues, while the reference fits the clipped ones."""
    rng = np.random.default_rng(0)
    body = np.sort((1 - rng.random(97)) ** (-1 / 2.0))  # a Pareto tail, then 3 fingers far above it
    evals = np.concatenate([body, body[-1] * np.array([30.0, 60.0, 90.0])])
    whole = np.linalg.qr(rng.standard_normal((100, 100)))[0] @ np.diag(np.sqrt(evals))
    clipped = np.linalg.qr(rng.standard_normal((97, 97)))[0] @ np.diag(np.sqrt(body))
    ours, alone = row_of(whole, fit="TPL", xmax=-3), row_of(clipped, fit="TPL")
    assert alone["status"] == "success"
    assert (ours["alpha"], ours["Lambda"], ours["xmin"]) == pytest.approx((alone["alpha"], alone["Lambda"], alone["xmin"]), rel=1e-6)


def test_a_bound_that_clips_no_layer_warns_naming_the_layers() -> None:
    """``--xmax 5.0`` meant as "drop 5" on layers whose eigenvalues are all below 5 changed nothing, silently."""
    model = {"fc1": weights(1) / 100, "fc2": weights(2) / 100}
    assert max(eigenvalues(w)[-1] for w in model.values()) < 5.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = ww_core.analyze(model, xmax=5.0, workers=1)
    assert [row["xmax_clipped"] for row in results.details] == [0, 0]
    (warning,) = [str(w.message) for w in caught if "xmax" in str(w.message)]
    assert "'fc1', 'fc2'" in warning and "nothing was clipped" in warning and "xmax=5 drops" in warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ww_core.analyze(model, xmax=1e12, workers=1)
    (huge,) = [str(w.message) for w in caught if "xmax" in str(w.message)]
    assert "integer" not in huge  # no advice to drop 10^12 eigenvalues


def test_a_bound_that_clips_some_layer_does_not_warn() -> None:
    model = {"fc1": weights(1), "fc2": weights(2, (100, 50))}
    bound = float(eigenvalues(model["fc2"])[-1]) * 1.5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ww_core.analyze(model, xmax=bound, workers=1)
    assert not [w for w in caught if "xmax" in str(w.message)]


def test_results_metadata_says_what_xmax_meant() -> None:
    model = {"fc1": weights(1)}
    dropped = json.loads(ww_core.analyze(model, xmax=5, workers=1).to_json())["meta"]
    assert dropped["option_meanings"]["xmax"].startswith("drop each layer's 5 largest eigenvalues")
    bounded = json.loads(ww_core.analyze(model, xmax=5.0, workers=1).to_json())["meta"]
    assert bounded["option_meanings"]["xmax"].startswith("fit only eigenvalues up to 5")
    assert "option_meanings" not in json.loads(ww_core.analyze(model, workers=1).to_json())["meta"]
    assert "xmax_clipped" in ww_core.analyze(model, xmax=5, workers=1).to_csv().splitlines()[0].split(",")


def test_the_cli_says_what_xmax_meant_and_shows_the_clipped_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.npz"
    np.savez(path, fc1=weights(1))
    assert main(["analyze", str(path), "--xmax", "5", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "xmax: drop each layer's 5 largest eigenvalues" in out and "5.0" in out
    assert "xmax_clipped" in out.splitlines()[2]


def test_the_cli_help_spells_out_both_meanings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "drops each layer's N largest eigenvalues" in text and "5.0" in text and "eigenvalue bound" in text
