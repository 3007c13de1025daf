"""Plots: files are written, and what is drawn is the fit in the row (slope −alpha, xmin line, bands)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from ww_core.results.options import AnalysisOptions
from ww_core.results.results import Results
from ww_core.views import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _heavy_tailed_esd(alpha: float = 3.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bulk = rng.uniform(0.05, 1.0, 300)
    tail = (1.0 - rng.random(100)) ** (-1.0 / (alpha - 1.0))
    return np.sort(np.concatenate([bulk, tail]))


def _results(alphas: list[float]) -> Results:
    evals = _heavy_tailed_esd()
    rows: list[dict[str, Any]] = []
    esds = {}
    for i, alpha in enumerate(alphas):
        name = f"layers.{i}.mlp/fc weight"
        rows.append({"layer_id": i, "name": name, "alpha": alpha, "xmin": 1.0, "xmax": float(evals[-1]), "D": 0.04, "status": "success"})
        esds[name] = evals
    rows.append({"layer_id": len(alphas), "name": "broken", "alpha": math.nan, "status": "failed", "error": "fit failed"})
    rows.append({"layer_id": len(alphas) + 1, "name": "tiny", "status": "skipped", "error": "num_evals=3 < min_evals=8"})
    return Results(source="/models/run/model.safetensors", options=AnalysisOptions(), details=rows, esds=esds)


def _line(ax: Any, prefix: str) -> Any:
    return next(line for line in ax.get_lines() if str(line.get_label()).startswith(prefix))


def test_esd_fit_line_has_slope_minus_alpha_and_matches_the_tail_density() -> None:
    evals = _heavy_tailed_esd()
    row = {"name": "w", "alpha": 2.7, "xmin": 1.0, "xmax": float(evals[-1]), "D": 0.05, "status": "success"}
    ax = plots.plot_esd(evals, row)
    x, y = (np.asarray(v, dtype=float) for v in _line(ax, "power-law fit").get_data())
    slopes = np.diff(np.log10(y)) / np.diff(np.log10(x))
    np.testing.assert_allclose(slopes, -2.7, rtol=1e-9)
    share = np.count_nonzero(evals >= 1.0) / evals.size
    assert x[0] == pytest.approx(1.0) and x[-1] == pytest.approx(evals[-1])
    assert y[0] == pytest.approx(share * 1.7)  # (n_tail/n)·(alpha−1)/xmin at x = xmin
    xmin_x, _ = _line(ax, "xmin").get_data()
    assert list(xmin_x) == [1.0, 1.0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "alpha=2.7" in ax.get_title()


def test_histogram_is_a_density_over_the_positive_eigenvalues() -> None:
    evals = np.concatenate([[0.0, 1e-9], _heavy_tailed_esd()])
    ax = plots.plot_esd(evals, {"name": "w"})
    (stairs,) = ax.patches
    heights, edges = stairs.get_data().values, stairs.get_data().edges
    assert float(np.sum(heights * np.diff(edges))) == pytest.approx(1.0)
    assert edges[0] > 1e-5
    assert not [line for line in ax.get_lines() if str(line.get_label()).startswith("power-law")]


def test_failed_or_empty_layers_still_draw() -> None:
    ax = plots.plot_esd(np.zeros(10), {"name": "dead", "alpha": math.nan, "status": "failed"})
    assert "no eigenvalues" in ax.texts[0].get_text()
    ax = plots.plot_esd(np.full(12, 3.0), {"name": "flat", "alpha": math.nan, "status": "failed"})
    assert "fit failed" in ax.get_title()


def test_correlation_flow_draws_alpha_by_layer_with_bands_and_failures() -> None:
    results = _results([1.5, 3.0, 4.0, 7.0])
    ax = results.plot_correlation_flow()
    x, y = _line(ax, "alpha").get_data()
    assert list(x) == [0, 1, 2, 3] and list(y) == [1.5, 3.0, 4.0, 7.0]
    levels = sorted(line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--")
    assert levels == [2.0, 6.0]
    (outside,) = [c for c in ax.collections if c.get_label() == "alpha outside 2–6"]
    assert sorted(map(tuple, outside.get_offsets())) == [(0.0, 1.5), (3.0, 7.0)]
    failed_x, _ = _line(ax, "failed").get_data()
    assert list(failed_x) == [4]


def test_flows_of_several_models_overlay_on_one_axes() -> None:
    ax = _results([3.0, 4.0]).plot_correlation_flow()
    plots.plot_correlation_flow(_results([2.5, 2.8]), ax=ax, label="later")
    labels = [line.get_label() for line in ax.get_lines()]
    assert "alpha" in labels and "later" in labels


def test_results_plot_esd_uses_the_row_and_names_missing_layers() -> None:
    results = _results([3.0])
    ax = results.plot_esd("layers.0.mlp/fc weight")
    assert "alpha=3" in ax.get_title()
    with pytest.raises(KeyError, match="broken"):
        results.plot_esd("broken")


def test_save_all_writes_pngs_with_safe_distinct_names(tmp_path: Path) -> None:
    results = _results([2.5, 3.5, 4.5])
    results.esds["layers.0.mlp/fc_weight"] = _heavy_tailed_esd(seed=1)  # same file stem as a real layer
    written = plots.save_all(results, tmp_path / "plots")
    assert written[0].name == "correlation_flow.png"
    assert len(written) == 1 + len(results.esds) == len({p.name for p in written})
    for path in written:
        assert path.parent == tmp_path / "plots"
        assert "/" not in path.name and " " not in path.name
        assert path.read_bytes()[:8] == PNG_MAGIC


def test_comparison_figure_has_one_panel_per_metric() -> None:
    summaries = {"step-1": {"alpha": 5.0, "alpha_weighted": 4.0, "log_norm": 2.0}, "step-2": {"alpha": 4.0, "alpha_weighted": 3.0}}
    figure = plots.plot_comparison(summaries)
    axes = figure.get_axes()
    assert [ax.get_title() for ax in axes] == [f"mean {m} (lower is better)" for m in plots.COMPARISON_METRICS]
    _, y = axes[2].get_lines()[0].get_data()
    assert y[0] == 2.0 and math.isnan(y[1])


def test_missing_matplotlib_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'ww-core\[plot\]'"):
        plots.new_figure()
