"""Compare the models of a series (e.g. checkpoints of one run): rank them and diff their layers.

Ranking rule (HT-SR, Martin, Peng & Mahoney 2021): within a series of models of one
architecture, a *lower* mean alpha_weighted (alpha·log10 lambda_max) tracks better test
accuracy, and so does a lower mean log_norm; mean alpha is shown too (lower is better while
it stays above 2, the over-trained limit). Models are ranked by mean alpha_weighted, ties broken
by log_norm then alpha; a model with no analyzed layer (NaN metrics) ranks last.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ww_core.pipeline.analysis import analyze, source_label
from ww_core.results import export
from ww_core.results.outputs import OutputGuard, write_checked
from ww_core.results.results import Results, format_table

#: Summary metrics compared, in ranking priority; lower is better for each.
RANK_METRICS = ("alpha_weighted", "log_norm", "alpha")


def _sort_value(value: float) -> float:
    return value if math.isfinite(value) else math.inf


@dataclass
class Comparison:
    """Several models' Results in the order given, with their ranking and per-layer deltas."""

    names: list[str]
    results: list[Results]

    @property
    def summaries(self) -> dict[str, dict[str, float]]:
        """Each model's summary (means over its analyzed layers), by name."""
        return {name: result.summary for name, result in zip(self.names, self.results)}

    def metric(self, name: str, metric: str) -> float:
        """A model's mean of ``metric``; NaN when it has no analyzed layer."""
        return float(self.summaries[name].get(metric, math.nan))

    @property
    def ranking(self) -> list[str]:
        """Model names from best to worst under the module's ranking rule."""
        return sorted(self.names, key=lambda n: tuple(_sort_value(self.metric(n, m)) for m in RANK_METRICS))

    def table(self) -> list[dict[str, Any]]:
        """One row per model, in the given order: the ranked metrics, each one's rank (1 = lowest) and the overall rank."""
        overall = {name: i + 1 for i, name in enumerate(self.ranking)}
        rows = []
        for name, result in zip(self.names, self.results):
            row: dict[str, Any] = {"name": name, "source": result.source, "layers": len(result.analyzed), "failed": len(result.failed)}
            for metric in RANK_METRICS:
                value = self.metric(name, metric)
                row[metric] = value
                row[f"rank_{metric}"] = 1 + sum(_sort_value(self.metric(other, metric)) < _sort_value(value) for other in self.names)
            row["rank"] = overall[name]
            rows.append(row)
        return rows

    def layer_deltas(self, metric: str = "alpha") -> list[dict[str, Any]]:
        """Per layer (matched by name): each model's ``metric`` and its change from the first model.

        Columns are the model names and ``delta_<name>`` = value − first model's value; NaN where a
        model lacks the layer or its fit failed.
        """
        values: dict[str, dict[str, float]] = {}
        for name, result in zip(self.names, self.results):
            for row in result.analyzed:
                values.setdefault(str(row["name"]), {})[name] = float(row.get(metric, math.nan))
        first = self.names[0]
        rows = []
        for layer, by_model in values.items():
            delta = {f"delta_{name}": by_model.get(name, math.nan) - by_model.get(first, math.nan) for name in self.names[1:]}
            rows.append({"layer": layer, **{name: by_model.get(name, math.nan) for name in self.names}, **delta})
        return rows

    def to_pandas(self) -> Any:
        """The model table as a pandas DataFrame."""
        return export.to_dataframe(self.table())

    def to_csv(self, path: str | Path | None = None) -> str:
        """CSV text of the model table, written to ``path`` when given."""
        text = export.rows_to_csv(self.table())
        if path is not None:
            write_checked(path, text, [result.source for result in self.results])
        return text

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON with the ranking, the model table and per-layer alpha deltas, written to ``path`` when given."""
        document = {
            "ranking": self.ranking,
            "rule": f"lower is better; ranked by {', then '.join(RANK_METRICS)}",
            "models": [{k: export.json_safe(v) for k, v in row.items()} for row in self.table()],
            "layers": [{k: export.json_safe(v) for k, v in row.items()} for row in self.layer_deltas()],
        }
        text = json.dumps(document, indent=2, allow_nan=False)
        if path is not None:
            write_checked(path, text, [result.source for result in self.results])
        return text

    def to_html(self, path: str | Path | None = None) -> str:
        """The self-contained HTML report of the comparison (ranking, flows, per-layer deltas), written to ``path`` when given."""
        from ww_core.views.report import comparison_report

        text = comparison_report(self)
        if path is not None:
            write_checked(path, text, [result.source for result in self.results])
        return text

    def _repr_html_(self) -> str:
        """Jupyter shows a Comparison as its ranking table, best first."""
        from ww_core.views.report import comparison_repr_html

        return comparison_repr_html(self)

    def plot(self, directory: str | Path) -> list[Path]:
        """Write comparison.png (summary metrics across models) and flows.png (every model's alpha along depth)."""
        from ww_core.views import plots

        OutputGuard([result.source for result in self.results]).claim(directory, "plot folder", folder=True)
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "comparison.png", folder / "flows.png"]
        plots.save_figure(plots.plot_comparison(self.summaries), paths[0])
        ax = None
        for name, result in zip(self.names, self.results):
            ax = plots.plot_correlation_flow(result, ax=ax, label=name)
        ax.set_title("correlation flow of each model", fontsize=10)  # type: ignore[union-attr]
        plots.save_figure(ax.get_figure(), paths[1])  # type: ignore[arg-type, union-attr]
        return paths

    def unrelated(self) -> list[str]:
        """Why the ranking may compare unrelated architectures: each model sharing no layer name, or no layer shape, with the first."""
        first = self.results[0].analyzed
        names, shapes = {row["name"] for row in first}, {(row.get("N"), row.get("M")) for row in first}
        notes = []
        for name, result in zip(self.names[1:], self.results[1:]):
            rows = result.analyzed
            if not names & {row["name"] for row in rows}:
                notes.append(f"{name} shares no layer name with {self.names[0]}")
            if not shapes & {(row.get("N"), row.get("M")) for row in rows}:
                notes.append(f"{name} shares no layer shape with {self.names[0]}")
        return notes

    def failed_notes(self) -> list[str]:
        """One note per model with failed layers: its means, and so its rank, rest on the other layers alone."""
        notes = []
        for name, result in zip(self.names, self.results):
            failed = len(result.failed)
            if failed:
                notes.append(f"{name} has {failed} failed layer{'s' if failed > 1 else ''}, left out of its means")
        return notes

    def __str__(self) -> str:
        columns = ("rank", "name", "layers", "failed", *RANK_METRICS)
        best_first = sorted(self.table(), key=lambda row: row["rank"])
        text = format_table(best_first, columns) + f"\n\nbest: {self.ranking[0]}  (lower is better; ranked by {', '.join(RANK_METRICS)})"
        for note in self.failed_notes():
            text += f"\nwarning: {note}, so its rank rests on its other layers"
        notes = self.unrelated()
        if notes:
            text += "\nwarning: these models may not be one architecture, so the ranking may mean little: " + "; ".join(notes)
        return text


def default_names(labels: Sequence[str]) -> list[str]:
    """Short distinct names: file names when those are distinct, else model_0, model_1, ..."""
    short = [os.path.basename(label.rstrip("/\\")) or label for label in labels]
    return short if len(set(short)) == len(short) else [f"model_{i}" for i in range(len(labels))]


def compare(*sources: Any, names: Sequence[str] | None = None, **options: Any) -> Comparison:
    """Analyze each source (or take a ready ``Results``) with the same ``options`` and compare them.

    Give the models in series order (e.g. training steps); ``names`` labels them.
    """
    if len(sources) < 2:
        raise ValueError(f"compare needs at least two models, got {len(sources)}")
    if names is not None and len(names) != len(sources):
        raise ValueError(f"got {len(names)} names for {len(sources)} models")
    results = [source if isinstance(source, Results) else analyze(source, **options) for source in sources]
    chosen = list(names) if names is not None else default_names([source_label(r.source) for r in results])
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"model names must be distinct, got {chosen}")
    return Comparison(names=chosen, results=results)
