"""The outcome of one analysis: per-layer rows, the summary, and the ways to export them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ww_core.results import export, table_view
from ww_core.results.options import AnalysisOptions
from ww_core.results.outputs import write_checked
from ww_core.results.summary import summarize, summary_lines
from ww_core.results.verdict import verdict_line


@dataclass
class Results:
    """Rows for every layer seen (analyzed, failed, or skipped with its reason) and the model summary.

    ``details`` holds every row; ``analyzed`` only rows whose spectrum was computed.
    ``esds`` maps a row's name (``name[slice]`` for unpooled conv slices) to its sorted eigenvalues, for plots.
    ``esd_histograms`` holds, under the same keys, the histograms of rows restored from a results cache (which keeps
    no eigenvalues), so their report still draws an ESD.
    ``adapter`` names the adapter that read the source: ``name``, ``distribution``, ``version``.
    """

    source: str
    options: AnalysisOptions
    details: list[dict[str, Any]]
    esds: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    esd_histograms: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    adapter: dict[str, str] = field(default_factory=dict)

    @property
    def analyzed(self) -> list[dict[str, Any]]:
        """Rows whose spectrum was computed (status success or failed)."""
        return [row for row in self.details if row.get("status") in ("success", "failed")]

    @property
    def skipped(self) -> list[dict[str, Any]]:
        """Rows left out by the filters or size limits, each with its ``error`` reason."""
        return [row for row in self.details if row.get("status") == "skipped"]

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Rows whose loading or fit failed, each with its ``error`` reason."""
        return [row for row in self.details if row.get("status") == "failed"]

    @property
    def summary(self) -> dict[str, float]:
        """Means of the summary metrics over successful rows."""
        return summarize(self.details)

    def row(self, name: str) -> dict[str, Any]:
        """The row of the layer called ``name``; KeyError listing the names otherwise."""
        for candidate in self.details:
            if candidate.get("name") == name:
                return candidate
        raise KeyError(f"no layer named {name!r}; layers: {[r.get('name') for r in self.details]}")

    def to_pandas(self, include_skipped: bool = False) -> Any:
        """A pandas DataFrame of the analyzed rows (all rows with ``include_skipped``)."""
        return export.to_dataframe(self.details if include_skipped else self.analyzed)

    def to_csv(self, path: str | Path | None = None, include_skipped: bool = True) -> str:
        """CSV text of the rows, written to ``path`` when given; the last columns name the adapter and the options used."""
        meta = {"adapter": adapter_label(self.adapter), "options": json.dumps(export.json_safe_tree(self.options.changed()))}
        text = export.rows_to_csv([{**row, **meta} for row in (self.details if include_skipped else self.analyzed)])
        if path is not None:
            write_checked(path, text, [self.source])
        return text

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text with meta, summary and details, written to ``path`` when given."""
        from ww_core.platform.version import __version__

        meta = {"source": self.source, "ww_core_version": __version__, "adapter": self.adapter, "options": self.options.changed()}
        if self.options.meanings():
            meta["option_meanings"] = self.options.meanings()
        text = export.to_json_text(self.details, self.summary, meta)
        if path is not None:
            write_checked(path, text, [self.source])
        return text

    def to_html(self, path: str | Path | None = None) -> str:
        """The self-contained HTML report (summary, correlation flow, sortable table, ESDs), written to ``path`` when given."""
        from ww_core.views.report import results_report

        text = results_report(self)
        if path is not None:
            write_checked(path, text, [self.source])
        return text

    def _repr_html_(self) -> str:
        """Jupyter shows a Results as its summary sentences and table."""
        from ww_core.views.report import repr_html

        return repr_html(self)

    def plot_esd(self, name: str, ax: Any = None) -> Any:
        """Draw layer ``name``'s ESD (``name[slice]`` for an unpooled conv slice) with its power-law fit; returns the Axes."""
        from ww_core.results.rows import esd_key
        from ww_core.views import plots

        if name not in self.esds:
            raise KeyError(f"no ESD for layer {name!r}; layers with one: {list(self.esds)}")
        row = next(row for row in self.details if esd_key(row) == name)
        return plots.plot_esd(self.esds[name], row, ax=ax)

    def plot_correlation_flow(self, ax: Any = None) -> Any:
        """Draw alpha along depth with the 2–6 band; returns the Axes."""
        from ww_core.views import plots

        return plots.plot_correlation_flow(self, ax=ax)

    def table(self, columns: Sequence[str] | None = None) -> str:
        """A plain-text table of the rows: by default the main metrics, the requested options' columns and reasons."""
        return table_view.render(self.details, columns or table_view.default_columns(self.details, self.options))

    def __str__(self) -> str:
        lines = [self.table(), "", "summary:"]
        lines += summary_lines(self.summary)
        return "\n".join([*lines, *table_view.legend(self.details), verdict_line(self.details)])


def adapter_label(adapter: dict[str, str]) -> str:
    """``name (distribution version)``, or "" when unknown."""
    if not adapter:
        return ""
    where = " ".join(part for part in (adapter.get("distribution", ""), adapter.get("version", "")) if part)
    return f"{adapter.get('name', '?')} ({where})" if where else adapter.get("name", "?")


def _cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """Left-aligned text table of the given columns that any row has."""
    shown = [c for c in columns if any(c in row for row in rows)]
    cells = [[_cell(row.get(c, "")) for c in shown] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(shown)]
    header = "  ".join(c.ljust(w) for c, w in zip(shown, widths))
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join([header, *body])
