"""A flat spectrum (an orthogonal kernel) gives a meaningless huge alpha: flagged in the row, with a robust summary beside the mean."""

from __future__ import annotations

import numpy as np
import pytest

import ww_core
from ww_core.results.summary import summarize


def _model(dtype: type) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    orthogonal, _ = np.linalg.qr(rng.standard_normal((400, 100)))  # as an LSTM's orthogonal recurrent init
    return {"recurrent": orthogonal.astype(dtype), "a": rng.standard_t(3, (300, 150)), "b": rng.standard_t(4, (300, 150))}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_orthogonal_kernel_is_flagged_degenerate(dtype: type) -> None:
    rows = {row["name"]: row for row in ww_core.analyze(_model(dtype)).details}
    assert rows["recurrent"]["status"] == "success" and rows["recurrent"]["alpha"] > 1e6
    assert rows["recurrent"]["warning"] == "degenerate-spectrum"
    assert rows["a"]["warning"] != "degenerate-spectrum" and rows["b"]["warning"] != "degenerate-spectrum"


def test_the_summary_keeps_the_mean_and_adds_medians() -> None:
    results = ww_core.analyze(_model(np.float32))
    alphas = [row["alpha"] for row in results.details]
    weighted = [row["alpha_weighted"] for row in results.details]
    summary = results.summary
    assert summary["alpha"] == pytest.approx(np.mean(alphas))  # the reference's mean, dominated by the flat layer
    assert summary["alpha_median"] == pytest.approx(np.median(alphas)) and summary["alpha_median"] < 10 < summary["alpha"]
    assert summary["alpha_weighted_median"] == pytest.approx(np.median(weighted))
    assert summary["num_degenerate"] == 1
    assert "alpha_median" in str(results) and "num_degenerate" in str(results)


def test_medians_leave_out_failed_rows() -> None:
    rows = [{"status": "success", "alpha": 2.0}, {"status": "success", "alpha": 4.0}, {"status": "failed", "alpha": float("nan")}]
    summary = summarize(rows)
    assert summary["alpha"] == 3.0 and summary["alpha_median"] == 3.0 and summary["num_degenerate"] == 0


def test_the_html_summary_names_degenerate_layers_and_leaves_them_out() -> None:
    from ww_core.views.report import WARNING_HINTS, summary_sentences

    results = ww_core.analyze(_model(np.float32))
    text, good = summary_sentences(results)
    assert not good and "1 of 3 layers have a flat spectrum" in text and "of 2 analyzed layers" in text
    assert "e+" not in text and "median alpha" in text
    assert "flat" in WARNING_HINTS["degenerate-spectrum"]
