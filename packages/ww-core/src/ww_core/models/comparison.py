"""Compare the models of a series (checkpoints of one run, a hyper-parameter sweep, sizes of one family): table, verdict, layer deltas.

What the comparison may claim is decided in ``models.verdict``: within one architecture the models
are ranked by mean alpha (lower is better) and a best is named only when it is clear; other series
are shown, not ranked. With a ``reference`` model, the others' distances from it are reported instead.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

from ww_core.models.checkpoint_series import series_members
from ww_core.models.model_distances import distances
from ww_core.models.verdict import Verdict, judge
from ww_core.pipeline.analysis import analyze, source_label
from ww_core.results import export
from ww_core.results.options import AnalysisOptions
from ww_core.results.outputs import OutputGuard, write_checked
from ww_core.results.results import Results, format_table

#: Summary metrics shown per model (lower is better for each under HT-SR; only alpha ranks, see models.verdict).
TABLE_METRICS = ("alpha", "alpha_median", "alpha_weighted", "log_alpha_norm", "log_norm")
#: Columns added with a reference model.
REFERENCE_COLUMNS = ("relative_distance", "delta_alpha")


def _sort_value(value: float) -> float:
    return value if math.isfinite(value) else math.inf


@dataclass
class Comparison:
    """Several models' Results in the order given, with the verdict on them and per-layer deltas.

    ``reference`` names the model the others are measured against (``distances``: each model's mean
    relative Frobenius distance from it, when the sources were at hand).
    """

    names: list[str]
    results: list[Results]
    reference: str | None = None
    distances: dict[str, float] = field(default_factory=dict)

    @property
    def summaries(self) -> dict[str, dict[str, float]]:
        """Each model's summary (means over its analyzed layers), by name."""
        return {name: result.summary for name, result in zip(self.names, self.results)}

    def metric(self, name: str, metric: str) -> float:
        """A model's mean of ``metric``; NaN when it has no analyzed layer."""
        return float(self.summaries[name].get(metric, math.nan))

    @cached_property
    def verdict(self) -> Verdict:
        """The series' kind, the metric that ranks it (if any) and whether a best is clear (models.verdict)."""
        return judge(self.names, [result.details for result in self.results], self.summaries, self.reference)

    @property
    def ranking(self) -> list[str]:
        """Model names best first when the series is ranked (verdict.metric); the given order otherwise."""
        return list(self.verdict.ranking)

    def table(self) -> list[dict[str, Any]]:
        """One row per model, in the given order: summary metrics, each one's rank (1 = lowest), the overall rank (None: not ranked)."""
        ranked = self.verdict.metric is not None
        overall = {name: i + 1 for i, name in enumerate(self.ranking)}
        first_alpha = self.metric(self.reference, "alpha") if self.reference else math.nan
        rows = []
        for name, result in zip(self.names, self.results):
            row: dict[str, Any] = {"name": name, "source": result.source, "layers": len(result.analyzed), "failed": len(result.failed)}
            for metric in TABLE_METRICS:
                value = self.metric(name, metric)
                row[metric] = value
                row[f"rank_{metric}"] = 1 + sum(_sort_value(self.metric(other, metric)) < _sort_value(value) for other in self.names)
            if self.reference is not None:
                row["relative_distance"] = self.distances.get(name, math.nan)
                row["delta_alpha"] = self.metric(name, "alpha") - first_alpha
            row["rank"] = overall[name] if ranked else None
            rows.append(row)
        return rows

    def shown_columns(self) -> tuple[str, ...]:
        """The columns printed and put in the report's model table."""
        extra = REFERENCE_COLUMNS if self.reference is not None else ()
        rank = ("rank",) if self.verdict.metric is not None else ()
        return (*rank, "name", "layers", "failed", *TABLE_METRICS, *extra)

    def ordered_table(self) -> list[dict[str, Any]]:
        """The model table best first when ranked, else in the given (series) order."""
        rows = self.table()
        return sorted(rows, key=lambda row: row["rank"]) if self.verdict.metric is not None else rows

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
        """JSON with the verdict (kind, metric, best, the sentence), the ranking, the model table and per-layer alpha deltas."""
        verdict = self.verdict
        document = {
            "kind": verdict.kind,
            "metric": verdict.metric,
            "best": verdict.best,
            "verdict": str(verdict),
            "ranking": self.ranking if verdict.metric is not None else None,
            "reference": self.reference,
            "models": [{k: export.json_safe(v) for k, v in row.items()} for row in self.table()],
            "layers": [{k: export.json_safe(v) for k, v in row.items()} for row in self.layer_deltas()],
        }
        text = json.dumps(document, indent=2, allow_nan=False)
        if path is not None:
            write_checked(path, text, [result.source for result in self.results])
        return text

    def to_html(self, path: str | Path | None = None) -> str:
        """The self-contained HTML report (verdict, model table, flows, per-layer deltas), written to ``path`` when given."""
        from ww_core.views.report import comparison_report

        text = comparison_report(self)
        if path is not None:
            write_checked(path, text, [result.source for result in self.results])
        return text

    def _repr_html_(self) -> str:
        """Jupyter shows a Comparison as its model table (best first when ranked)."""
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

    def failed_notes(self) -> list[str]:
        """One note per model with failed layers: its means, and so its rank, rest on the other layers alone."""
        notes = []
        for name, result in zip(self.names, self.results):
            failed = len(result.failed)
            if failed:
                notes.append(f"{name} has {failed} failed layer{'s' if failed > 1 else ''}, left out of its means")
        return notes

    def __str__(self) -> str:
        text = format_table(self.ordered_table(), self.shown_columns()) + f"\n\n{self.verdict}"
        for note in self.failed_notes():
            text += f"\nwarning: {note}, so its rank rests on its other layers"
        return text


def default_names(labels: Sequence[str]) -> list[str]:
    """Short distinct names: file names when those are distinct, else model_0, model_1, ..."""
    short = [os.path.basename(label.rstrip("/\\")) or label for label in labels]
    return short if len(set(short)) == len(short) else [f"model_{i}" for i in range(len(labels))]


def expand_series(sources: Sequence[Any]) -> list[Any]:
    """A single training-run folder becomes its snapshots in step order (models.checkpoint_series); other sources stay as given."""
    if len(sources) == 1:
        members = series_members(sources[0])
        if members is not None:
            return [str(member) for member in members]
    return list(sources)


def _reference_distances(sources: Sequence[Any], names: Sequence[str], reference: str, options: dict[str, Any]) -> dict[str, float]:
    """Each model's mean relative Frobenius distance from the reference's matching layers (sources, not Results, only)."""
    index = names.index(reference)
    if any(isinstance(source, Results) for source in sources):
        return {}
    known = {option.name for option in fields(AnalysisOptions)}
    chosen = {key: value for key, value in options.items() if key in known}
    return {name: (0.0 if i == index else distances(sources[index], source, **chosen).summary.get("relative", math.nan))
            for i, (name, source) in enumerate(zip(names, sources))}  # fmt: skip


def compare(*sources: Any, names: Sequence[str] | None = None, reference: str | None = None, **options: Any) -> Comparison:
    """Analyze each source (or take a ready ``Results``) with the same ``options`` and compare them.

    Give the models in series order (e.g. training steps), or one training-run folder (its numbered
    checkpoints, in step order); ``names`` labels them. ``reference`` (a name) measures the others
    against that model (e.g. quantized copies against the full-precision one) instead of ranking them.
    """
    sources = tuple(expand_series(sources))
    if len(sources) < 2:
        raise ValueError(f"compare needs at least two models (or a folder of numbered checkpoints), got {len(sources)}")
    if names is not None and len(names) != len(sources):
        raise ValueError(f"got {len(names)} names for {len(sources)} models")
    results = [source if isinstance(source, Results) else analyze(source, **options) for source in sources]
    chosen = list(names) if names is not None else default_names([source_label(r.source) for r in results])
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"model names must be distinct, got {chosen}")
    if reference is not None and reference not in chosen:
        raise ValueError(f"reference {reference!r} is not one of the models {chosen}")
    spread = _reference_distances(sources, chosen, reference, options) if reference is not None else {}
    return Comparison(names=chosen, results=results, reference=reference, distances=spread)
