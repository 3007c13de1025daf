"""How well each ww metric tracks a held-out quality score over the user's own models (the HT-SR trend check).

For every summary metric: Spearman's rho and Kendall's tau (scipy.stats, with p-values; Spearman's p exact for up to 8 models) between
the models' metric and their score, oriented so a positive value means a *lower* metric goes with
a *better* model (HT-SR's expectation for alpha and the norm metrics). The best predictor is the
metric with the largest |tau| whose p-value is below 0.05; none when no metric reaches it.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats

from ww_core.models.comparison import default_names
from ww_core.pipeline.analysis import analyze, source_label
from ww_core.results import export
from ww_core.results.outputs import write_checked
from ww_core.results.results import Results, format_table

#: Summary metrics correlated, in the order shown.
CORRELATED_METRICS = ("alpha", "alpha_median", "alpha_weighted", "log_alpha_norm", "log_norm", "log_spectral_norm", "stable_rank")
#: A predictor is named only below this p-value of Kendall's tau.
SIGNIFICANCE = 0.05
#: Fewest models a rank correlation is computed for.
MIN_MODELS = 3


class ScoresError(ValueError):
    """A scores file that cannot be used: the message names the file and, where it applies, the column and row."""


@dataclass
class Correlation:
    """Per metric: rank correlations between the models' metric and their score, and the best predictor.

    ``sources`` are the models' source labels: ``to_csv(path)`` and kin refuse to write over them.
    """

    score: str
    higher_is_better: bool
    names: list[str]
    scores: list[float]
    values: dict[str, list[float]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    @property
    def best(self) -> str | None:
        """The metric with the largest |Kendall tau| at p < SIGNIFICANCE; None when no metric is significant."""
        significant = [row for row in self.rows if row["kendall_p"] < SIGNIFICANCE]
        return max(significant, key=lambda row: abs(row["kendall"]))["metric"] if significant else None

    def verdict(self) -> str:
        """One line: which metric predicted best, in which direction, or that none did."""
        best = self.best
        quality = f"{self.score} ({'higher' if self.higher_is_better else 'lower'} is better)"
        if best is None:
            return f"no metric predicted {quality} over these {len(self.names)} models (no Kendall p < {SIGNIFICANCE})"
        row = next(r for r in self.rows if r["metric"] == best)
        direction = "lower" if row["kendall"] > 0 else "higher"
        tau = f"Kendall tau {row['kendall']:+.2f}, p = {row['kendall_p']:.2g}"
        return f"best predictor of {quality}: {best} ({direction} {best} = better model, {tau})"

    def to_pandas(self) -> Any:
        """The per-metric table as a pandas DataFrame."""
        return export.to_dataframe(self.rows)

    def to_csv(self, path: str | Path | None = None) -> str:
        """CSV text of the per-metric table, written to ``path`` when given."""
        text = export.rows_to_csv(self.rows)
        if path is not None:
            write_checked(path, text, self.sources)
        return text

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON with the score, the per-metric table, the best predictor and each model's values."""
        models = [
            {"name": n, self.score: s, **{m: export.json_safe(v[i]) for m, v in self.values.items()}}
            for i, (n, s) in enumerate(zip(self.names, self.scores))
        ]
        document = {
            "score": self.score,
            "higher_is_better": self.higher_is_better,
            "best": self.best,
            "metrics": [{k: export.json_safe(v) for k, v in row.items()} for row in self.rows],
            "models": models,
        }
        text = json.dumps(document, indent=2, allow_nan=False)
        if path is not None:
            write_checked(path, text, self.sources)
        return text

    def to_html(self, path: str | Path | None = None) -> str:
        """The self-contained HTML page: the table and one scatter plot per metric, written to ``path`` when given."""
        from ww_core.views.correlation_report import correlation_report

        text = correlation_report(self)
        if path is not None:
            write_checked(path, text, self.sources)
        return text

    def __str__(self) -> str:
        columns = ("metric", "n", "spearman", "spearman_p", "kendall", "kendall_p")
        return format_table(self.rows, columns) + "\n\n(positive: a lower metric goes with a better model)\n" + self.verdict()


#: Up to this many models Spearman's p is exact (all n! orders; scipy's t-approximation gives p = 0 for a perfect order).
EXACT_SPEARMAN_MAX = 8


def spearman_p(x: Sequence[float], y: Sequence[float], rho: float) -> float:
    """Two-sided p of Spearman's rho: exact over every order of y for few models, else scipy's t-approximation."""
    if len(x) > EXACT_SPEARMAN_MAX:
        return float(stats.spearmanr(x, y).pvalue)
    ranks_x, ranks_y = stats.rankdata(x), stats.rankdata(y)
    centred_x, orders = ranks_x - ranks_x.mean(), ranks_y[np.array(list(itertools.permutations(range(len(y)))))]
    centred = orders - orders.mean(axis=1, keepdims=True)
    rhos = centred @ centred_x / (np.linalg.norm(centred, axis=1) * np.linalg.norm(centred_x))
    return float(np.mean(np.abs(rhos) >= abs(rho) - 1e-12))


def _oriented(scores: Sequence[float], higher_is_better: bool) -> list[float]:
    return [s if higher_is_better else -s for s in scores]


def correlation_rows(values: Mapping[str, Sequence[float]], scores: Sequence[float], higher_is_better: bool) -> list[dict[str, Any]]:
    """Spearman and Kendall (with p-values) of each metric against quality, over the models where the metric is finite.

    Oriented so that +1 means the lowest metric is the best model; NaN when fewer than MIN_MODELS values or a constant column.
    """
    quality = _oriented(scores, higher_is_better)
    rows = []
    for metric, column in values.items():
        pairs = [(-v, q) for v, q in zip(column, quality) if math.isfinite(v) and math.isfinite(q)]
        row: dict[str, Any] = {"metric": metric, "n": len(pairs)}
        constant = len({p[0] for p in pairs}) < 2 or len({p[1] for p in pairs}) < 2
        if len(pairs) < MIN_MODELS or constant:
            row.update(spearman=math.nan, spearman_p=math.nan, kendall=math.nan, kendall_p=math.nan)
        else:
            x, y = [p[0] for p in pairs], [p[1] for p in pairs]
            rho, tau = stats.spearmanr(x, y), stats.kendalltau(x, y)
            row.update(
                spearman=float(rho.statistic),
                spearman_p=spearman_p(x, y, float(rho.statistic)),
                kendall=float(tau.statistic),
                kendall_p=float(tau.pvalue),
            )
        rows.append(row)
    return rows


def correlate(
    sources: Sequence[Any],
    scores: Sequence[float] | Mapping[str, float],
    *,
    score: str = "score",
    higher_is_better: bool = True,
    names: Sequence[str] | None = None,
    metrics: Sequence[str] = CORRELATED_METRICS,
    **options: Any,
) -> Correlation:
    """Analyze each model (or take a ready ``Results``) and rank-correlate every summary metric with its held-out ``score``.

    ``scores`` is one number per model in order, or a mapping from the model's name (``names``, or
    its source label) to its number. ``higher_is_better`` says which way the score points (False for a loss).
    """
    if len(sources) < MIN_MODELS:
        raise ValueError(f"correlate needs at least {MIN_MODELS} models, got {len(sources)}")
    results = [source if isinstance(source, Results) else analyze(source, **options) for source in sources]
    labels = list(names) if names is not None else default_names([source_label(r.source) for r in results])
    if len(labels) != len(results) or len(set(labels)) != len(labels):
        raise ValueError(f"need {len(results)} distinct model names, got {labels}")
    if isinstance(scores, Mapping):
        missing = [label for label in labels if label not in scores]
        if missing:
            raise ValueError(f"no {score} for model(s) {missing}")
        numbers = [float(scores[label]) for label in labels]
    else:
        if len(scores) != len(results):
            raise ValueError(f"got {len(scores)} scores for {len(results)} models")
        numbers = [float(s) for s in scores]
    values = {m: [float(r.summary.get(m, math.nan)) for r in results] for m in metrics}
    rows = correlation_rows(values, numbers, higher_is_better)
    return Correlation(score, higher_is_better, labels, numbers, values, rows, [r.source for r in results])


def read_scores(path: str | Path, column: str | None) -> tuple[list[str], list[float], str]:
    """Model paths (first column, relative to the file's folder) and their ``column`` scores from a CSV file.

    One ScoresError naming the file (and the column or row) for a missing file, header, column, a
    non-numeric or missing score, or a model listed twice.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            table = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ScoresError(f"cannot read scores file {path}: {exc}") from exc
    if len(header) < 2:
        raise ScoresError(f"scores file {path}: need a header with a model column and at least one score column, got {header}")
    model_column, score_columns = header[0], header[1:]
    if column is None:
        if len(score_columns) > 1:
            raise ScoresError(f"scores file {path} has several score columns {score_columns}: name one (--score)")
        column = score_columns[0]
    if column not in score_columns:
        raise ScoresError(f"scores file {path} has no score column {column!r}; its columns: {score_columns}")
    models, scores = [], []
    for line, record in enumerate(table, start=2):
        model, text = (record.get(model_column) or "").strip(), (record.get(column) or "").strip()
        if not model:
            raise ScoresError(f"scores file {path}, line {line}: no model in column {model_column!r}")
        try:
            value = float(text)
        except ValueError:
            raise ScoresError(f"scores file {path}, line {line}: {column} is {text!r}, not a number") from None
        if not math.isfinite(value):
            raise ScoresError(f"scores file {path}, line {line}: {column} is {text!r}, not a finite number")
        resolved = str((path.parent / model) if not Path(model).is_absolute() else Path(model))
        if resolved in models:
            raise ScoresError(f"scores file {path}, line {line}: model {model} is listed twice")
        models.append(resolved)
        scores.append(value)
    if len(models) < MIN_MODELS:
        raise ScoresError(f"scores file {path}: {len(models)} model(s); a rank correlation needs at least {MIN_MODELS}")
    return models, scores, column
