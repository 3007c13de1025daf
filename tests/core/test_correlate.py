"""The trend check: ``ww_core.correlate`` and ``ww correlate`` rank-correlate every metric with a held-out score."""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from scipy import stats

import ww_core
from ww_core.cli import main
from ww_core.models.correlation import CORRELATED_METRICS, ScoresError, correlate, correlation_rows, read_scores
from ww_core.views.correlation_report import scatter_svg

#: Student-t degrees of freedom of the models' layers (heavier or lighter tails, so different alphas).
DFS = (2.0, 2.5, 3.5, 5.0, 8.0)


def _model(df: float, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"fc{i}": rng.standard_t(df, (160, 80)) for i in range(2)}


@pytest.fixture(scope="module")
def analyzed() -> list[ww_core.Results]:
    return [ww_core.analyze(_model(df, seed)) for seed, df in enumerate(DFS)]


def test_every_metric_gets_spearman_and_kendall_with_p_values(analyzed: list[ww_core.Results]) -> None:
    alphas = [r.summary["alpha"] for r in analyzed]
    accuracy = [1 - alpha / 10 for alpha in alphas]  # the lowest alpha scores best, as HT-SR expects
    table = correlate(analyzed, accuracy, score="accuracy", names=[f"df{df}" for df in DFS])
    rows = {row["metric"]: row for row in table.rows}
    assert list(rows) == list(CORRELATED_METRICS)
    expected = stats.kendalltau([-a for a in alphas], accuracy)
    assert rows["alpha"]["kendall"] == pytest.approx(expected.statistic) and rows["alpha"]["kendall_p"] == pytest.approx(expected.pvalue)
    assert rows["alpha"]["spearman"] == pytest.approx(stats.spearmanr([-a for a in alphas], accuracy).statistic)
    assert rows["alpha"]["kendall"] == pytest.approx(1.0)
    assert table.best is not None and "accuracy (higher is better)" in table.verdict()
    assert "best predictor" in str(table)


def test_a_loss_is_oriented_the_other_way(analyzed: list[ww_core.Results]) -> None:
    loss = [r.summary["alpha"] / 10 for r in analyzed]
    table = correlate(analyzed, loss, score="loss", higher_is_better=False)
    assert {r["metric"]: r for r in table.rows}["alpha"]["kendall"] == pytest.approx(1.0)
    assert "loss (lower is better)" in table.verdict()


def test_scores_by_name_and_bad_arguments(analyzed: list[ww_core.Results]) -> None:
    names = ["a", "b", "c", "d", "e"]
    by_name = correlate(analyzed, dict(zip(names, [5.0, 4.0, 3.0, 2.0, 1.0])), names=names)
    assert by_name.scores == [5.0, 4.0, 3.0, 2.0, 1.0]
    with pytest.raises(ValueError, match=r"no score for model\(s\) \['e'\]"):
        correlate(analyzed, dict(zip(names[:4], [1.0, 2.0, 3.0, 4.0])), names=names)
    with pytest.raises(ValueError, match="at least 3 models"):
        correlate(analyzed[:2], [1.0, 2.0])
    with pytest.raises(ValueError, match="got 4 scores for 5 models"):
        correlate(analyzed, [1.0, 2.0, 3.0, 4.0])


def test_no_significant_metric_names_no_predictor(analyzed: list[ww_core.Results]) -> None:
    table = correlate(analyzed[:3], [1.0, 3.0, 2.0])
    assert table.best is None and table.verdict().startswith("no metric predicted")
    flat = correlate(analyzed[:3], [1.0, 1.0, 1.0])
    assert all(math.isnan(row["kendall"]) for row in flat.rows)


def test_exports(analyzed: list[ww_core.Results]) -> None:
    table = correlate(analyzed, [5.0, 4.0, 3.0, 2.0, 1.0], score="acc")
    assert table.to_csv().splitlines()[0] == "metric,n,spearman,spearman_p,kendall,kendall_p"
    document = json.loads(table.to_json())
    assert document["score"] == "acc" and document["higher_is_better"] is True and document["best"] == table.best
    assert [m["metric"] for m in document["metrics"]] == list(CORRELATED_METRICS) and len(document["models"]) == len(DFS)
    assert document["models"][0]["acc"] == 5.0 and document["models"][0]["alpha"] == analyzed[0].summary["alpha"]
    pandas = pytest.importorskip("pandas")
    frame = table.to_pandas()
    assert isinstance(frame, pandas.DataFrame) and list(frame["metric"]) == list(CORRELATED_METRICS)


def test_html_has_one_scatter_per_metric_and_no_url(analyzed: list[ww_core.Results]) -> None:
    html = correlate(analyzed, [5.0, 4.0, 3.0, 2.0, 1.0], score="acc").to_html()
    assert html.count('<svg class="scatter"') == len(CORRELATED_METRICS)
    assert html.count("<circle") == len(CORRELATED_METRICS) * len(DFS)
    assert "http://" not in html and "https://" not in html and "best predictor of acc" in html


def _write_series(folder: Path) -> list[str]:
    names = []
    for seed, df in enumerate(DFS):
        names.append(f"m{seed}.safetensors")
        save_file({k: v.astype(np.float32) for k, v in _model(df, seed).items()}, str(folder / names[-1]))
    return names


def _scores(folder: Path, rows: list[list[str]], header: tuple[str, ...] = ("model", "test_accuracy", "loss")) -> Path:
    path = folder / "scores.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_cli_correlate_prints_the_table_and_writes_the_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = _write_series(tmp_path)
    scores = _scores(tmp_path, [[n, str(0.9 - 0.1 * i), str(0.1 * i)] for i, n in enumerate(names)])
    page = tmp_path / "trend.html"
    assert main(["correlate", str(scores), "--score", "test_accuracy", "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert "kendall" in out and "best predictor of test_accuracy (higher is better): " in out
    assert page.read_text().count('<svg class="scatter"') == len(CORRELATED_METRICS)
    assert main(["correlate", str(scores), "--score", "loss", "--lower-is-better"]) == 0
    assert "loss (lower is better)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("model\n", "need a header with a model column and at least one score column"),
        ("model,acc,loss\na,1,2\nb,1,2\nc,1,2\n", "has several score columns ['acc', 'loss']: name one (--score)"),
        ("model,acc\na,0.9\nb,high\nc,0.7\n", "line 3: acc is 'high', not a number"),
        ("model,acc\na,0.9\nb,\nc,0.7\n", "line 3: acc is '', not a number"),
        ("model,acc\na,0.9\na,0.8\nc,0.7\n", "line 3: model a is listed twice"),
        ("model,acc\na,0.9\nb,0.8\n", "2 model(s); a rank correlation needs at least 3"),
        ("model,acc\na,0.9\n,0.8\nc,0.7\n", "line 3: no model in column 'model'"),
    ],
)
def test_bad_scores_files_are_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "scores.csv"
    path.write_text(content)
    with pytest.raises(ScoresError) as caught:
        read_scores(path, None)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_cli_scores_errors_are_one_line_naming_file_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores = _scores(tmp_path, [["a", "1", "2"], ["b", "1", "2"], ["c", "1", "2"]])
    assert main(["correlate", str(scores), "--score", "bleu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(scores) in err and "no score column 'bleu'" in err and "Traceback" not in err
    assert main(["correlate", str(tmp_path / "missing.csv"), "--score", "acc"]) == 2
    assert "missing.csv" in capsys.readouterr().err
    assert main(["correlate", str(scores), "--score", "loss"]) == 2  # a.safetensors ... do not exist
    assert "a" in capsys.readouterr().err


def test_spearman_p_of_a_perfect_order_over_few_models_is_exact_not_zero() -> None:
    """Four models in perfect order: scipy's t-approximation says p = 0; the exact (permutation) p is 2/4! = 0.083."""
    rows = {row["metric"]: row for row in correlation_rows({"alpha": [2.0, 3.0, 4.0, 5.0]}, [0.9, 0.8, 0.7, 0.6], True)}
    assert rows["alpha"]["spearman"] == pytest.approx(1.0)
    assert rows["alpha"]["spearman_p"] == pytest.approx(2 / 24)
    assert rows["alpha"]["kendall_p"] == pytest.approx(2 / 24)


def test_spearman_p_over_few_models_counts_every_order_as_extreme() -> None:
    """Five models, rho = 0.9: the exact two-sided p is the share of the 120 orders with |rho| >= 0.9."""
    values, scores = [1.0, 2.0, 3.0, 4.0, 5.0], [0.5, 0.3, 0.4, 0.2, 0.1]
    rows = {row["metric"]: row for row in correlation_rows({"alpha": values}, scores, True)}
    observed = stats.spearmanr([-v for v in values], scores).statistic
    orders = list(itertools.permutations(range(5)))
    extreme = sum(abs(stats.spearmanr(order, scores).statistic) >= abs(observed) - 1e-12 for order in orders)
    assert rows["alpha"]["spearman_p"] == pytest.approx(extreme / len(orders))


def test_every_dot_of_a_scatter_lies_wholly_inside_its_frame() -> None:
    """The dots of the extreme models sat on the frame, half outside the plot."""
    svg = scatter_svg("alpha", [1.0, 2.0, 3.0], [0.5, 0.7, 0.9], ["a", "b", "c"], "accuracy")
    frame = re.search(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', svg)
    assert frame is not None
    left, top, width, height = map(float, frame.groups())
    dots = [(float(x), float(y), float(r)) for x, y, r in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="([\d.]+)"', svg)]
    assert len(dots) == 3
    assert all(left <= x - r and x + r <= left + width and top <= y - r and y + r <= top + height for x, y, r in dots), dots
