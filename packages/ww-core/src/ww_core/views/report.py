"""The HTML report: one self-contained file (inline CSS, JS and SVG; nothing fetched) that opens from disk.

A summary in plain words, the correlation flow, a sortable and filterable table of every row, and
one ESD per analyzed layer drawn on demand from a compact log-binned histogram (so a 300-layer
report stays small and opens quickly). For several models: the ranking and per-layer deltas.
"""

from __future__ import annotations

import json
import statistics
from html import escape
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ww_core.results import table_view
from ww_core.results.outputs import write_output
from ww_core.results.rows import esd_key
from ww_core.results.verdict import BAND_IS_NOT_PROOF
from ww_core.spectra.esd_histogram import esd_histogram
from ww_core.spectra.metrics import DEGENERATE_WARNING, OVER_TRAINED_THRESH, UNDER_TRAINED_THRESH
from ww_core.spectra.tpl_fit import log_normalizer
from ww_core.views.report_svg import finite, flow_svg

if TYPE_CHECKING:
    from ww_core.models.comparison import Comparison
    from ww_core.models.verdict import Verdict
    from ww_core.results.results import Results

#: Columns of the report's layer table.
REPORT_COLUMNS = (
    "layer_id",
    "name",
    "layer_type",
    "N",
    "M",
    "num_evals",
    "alpha",
    "D",
    "alpha_weighted",
    "log_norm",
    "stable_rank",
    "warning",
    "status",
    table_view.REASON,
)
#: What each warning means, shown on hover.
WARNING_HINTS = {
    "over-trained": table_view.WARNING_LEGEND[0],
    "under-trained": table_view.WARNING_LEGEND[1],
    DEGENERATE_WARNING: table_view.WARNING_LEGEND[3],
}
#: What the table's less obvious columns mean: header tooltips and the glossary under the table (docs/metrics.md).
COLUMN_HINTS = {
    "N": "rows of the layer matrix W (the larger side)",
    "M": "columns of W (the smaller side)",
    "num_evals": "eigenvalues of WᵀW in the ESD",
    "alpha": "power-law exponent of the ESD's tail; 2–6 is where well-trained layers usually fall",
    "D": "Kolmogorov–Smirnov distance between the tail and the fitted power law: smaller is a better fit",
    "alpha_weighted": "alpha · log10(largest eigenvalue): alpha weighted by the layer's scale",
    "log_norm": "log10 of the sum of eigenvalues (the squared Frobenius norm of W)",
    "stable_rank": "sum of eigenvalues / largest eigenvalue: roughly how many directions carry weight",
}


def _asset(name: str) -> str:
    return files("ww_core.views").joinpath("report_assets", name).read_text(encoding="utf-8")


def fit_of(row: Mapping[str, Any]) -> dict[str, float | None]:
    """The fit the page draws over a row's ESD: alpha, xmin and xmax (None where the row has none); for a truncated
    power law (``fit='TPL'``) also its rate Lambda and ln of its normalizer over [xmin, ∞), so the page draws that curve."""
    alpha, xmin, rate = finite(row.get("alpha")), finite(row.get("xmin")), finite(row.get("Lambda"))
    lnorm = log_normalizer(alpha, rate, xmin) if alpha is not None and xmin and rate and xmin > 0 and rate > 0 else None
    return {"a": alpha, "xmin": xmin, "xmax": finite(row.get("xmax")), "lam": rate if lnorm is not None else None, "lnorm": lnorm}


def esd_payload(evals: np.ndarray, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """A compact ESD for the page: a log-binned histogram, the eigenvalue count, the fit (alpha, xmin, xmax) and tail size."""
    fit = fit_of(row)
    histogram = esd_histogram(evals, fit["xmin"])
    return None if histogram is None else {**histogram, **fit}


def summary_sentences(results: Results) -> tuple[str, bool]:
    """Two sentences a non-expert can read about the 2–6 band, and whether every analyzed layer is inside it."""
    fitted = [row for row in results.details if row.get("status") == "success" and finite(row.get("alpha")) is not None]
    degenerate = sum(row.get("warning") == DEGENERATE_WARNING for row in fitted)
    alphas = [float(row["alpha"]) for row in fitted if row.get("warning") != DEGENERATE_WARNING]
    if not fitted:
        return "No layer could be analyzed, so there is nothing to judge. The table below gives each layer's reason.", False
    inside = sum(OVER_TRAINED_THRESH <= a <= UNDER_TRAINED_THRESH for a in alphas)
    below = sum(a < OVER_TRAINED_THRESH for a in alphas)
    above = sum(a > UNDER_TRAINED_THRESH for a in alphas)
    first = (
        f"{inside} of {len(alphas)} analyzed layers have alpha between {OVER_TRAINED_THRESH:g} and {UNDER_TRAINED_THRESH:g}, "
        f"the range where the layers of well-trained networks usually fall (median alpha {statistics.median(alphas):.2f})."
        if alphas
        else ""
    )
    if degenerate:
        first = (
            f"{degenerate} of {len(fitted)} layers have a flat spectrum (degenerate: their alpha measures nothing and is left "
            f"out here). {first}"
        ).strip()
    failed = len(results.failed)  # never "looks well trained" beside layers that could not be analyzed
    layers = "layer" if failed == 1 else "layers"
    failed_note = f" {failed} {layers} failed (the table gives each reason), so the model is not judged whole." if failed else ""
    if not below and not above and not degenerate and not failed:
        return first + f" No layer is flagged, but the band alone does not prove training: {BAND_IS_NOT_PROOF}.", True
    flagged = []
    if below:
        flagged.append(
            f"{below} below {OVER_TRAINED_THRESH:g} may be over-trained (very heavy-tailed weights, which HT-SR links to "
            "over-fitting; weight decay put every layer of a network that generalized well there too, so check held-out data)"
        )
    if above:
        flagged.append(f"{above} above {UNDER_TRAINED_THRESH:g} may be under-trained (weights still close to random)")
    if not flagged:
        return first + failed_note, False
    return first + f" Of the others, {' and '.join(flagged)}; they are marked red in the flow below.{failed_note}", False


def _number_cell(value: Any) -> str:
    number = finite(value)
    if number is None:
        return '<td class="num" data-v="">' + ("nan" if value is not None and value != "" else "") + "</td>"
    text = f"{number:.4g}" if isinstance(value, (float, np.floating)) else str(value)
    return f'<td class="num" data-v="{number!r}">{escape(text)}</td>'


def _cell(row: Mapping[str, Any], column: str) -> str:
    if column == table_view.REASON:
        reason = table_view.cell(row, column)
        return f'<td class="reason">{escape(reason)}</td>'
    if column == "warning" and row.get("warning"):
        warning = str(row["warning"])
        return f'<td><span class="warning" title="{escape(WARNING_HINTS.get(warning, warning))}">{escape(warning)}</span></td>'
    if row.get(column) is None:
        return '<td data-v=""></td>'
    value = row[column]
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return _number_cell(value)
    return f"<td>{escape(str(value))}</td>"


def layer_table(results: Results, with_esd: bool = True) -> str:
    """Every row of ``results`` as an HTML table; rows carry what the page script needs to open their ESD."""
    with_reason = any(table_view.cell(row, table_view.REASON) for row in results.details)
    columns = [c for c in REPORT_COLUMNS if (c == table_view.REASON and with_reason) or any(c in row for row in results.details)]
    head = "".join(_header(c) for c in columns)
    body = []
    for index, row in enumerate(results.details):
        status = str(row.get("status", ""))
        attributes = f' class="layer {escape(status)}" data-id="{index}" data-name="{escape(str(row.get("name", "")))}"'
        if with_esd and "name" in row and (esd_key(row) in results.esds or esd_key(row) in results.esd_histograms):
            attributes += f' data-esd="{index}"'
        if row.get("error"):
            attributes += f' data-reason="{escape(str(row["error"]))}"'
        cells = "".join(f'<td class="name">{escape(str(row[c]))}</td>' if c == "name" and c in row else _cell(row, c) for c in columns)
        body.append(f"<tr{attributes}>{cells}</tr>")  # long names wrap (class name) rather than widen the table past the page
    table = f'<table id="layers" class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    return f'<div class="table-scroll">{table}</div>'


def _header(column: str) -> str:
    """A column's header: it may break after an underscore (narrow columns keep the table within the page), with its hint."""
    text = escape(column).replace("_", "_<wbr>")
    hint = COLUMN_HINTS.get(column)
    return f'<th title="{escape(hint)}">{text}</th>' if hint else f"<th>{text}</th>"


def glossary(columns: Sequence[str]) -> str:
    """The meaning of each hinted column the table shows, as a definition list under it."""
    items = "".join(f"<dt>{escape(c)}</dt><dd>{escape(COLUMN_HINTS[c])}</dd>" for c in columns if c in COLUMN_HINTS)
    return f'<dl class="glossary">{items}</dl>' if items else ""


def worst_layer(results: Results) -> int | None:
    """The row whose ESD opens with the page: the analyzed layer farthest outside 2–6, else the one nearest an edge of it."""
    fitted = [
        (max(OVER_TRAINED_THRESH - alpha, alpha - UNDER_TRAINED_THRESH), index)
        for index, row in enumerate(results.details)
        if row.get("status") == "success"
        and row.get("warning") != DEGENERATE_WARNING
        and (alpha := finite(row.get("alpha"))) is not None
        and "name" in row
        and (esd_key(row) in results.esds or esd_key(row) in results.esd_histograms)
    ]
    return max(fitted)[1] if fitted else None


def _esd_data(results: Results) -> dict[str, Any]:
    """Each row's ESD for the page: from its eigenvalues, or from the histogram a results cache kept."""
    payload: dict[str, Any] = {}
    for index, row in enumerate(results.details):
        if "name" not in row:
            continue
        key = esd_key(row)
        if key in results.esds:
            found = esd_payload(results.esds[key], row)
        elif key in results.esd_histograms:
            found = {**results.esd_histograms[key], **fit_of(row)}
        else:
            continue
        if found is not None:
            payload[str(index)] = found
    return payload


def _script_json(document: Any) -> str:
    """JSON safe inside a <script> element (no "</" can end it early)."""
    return json.dumps(document, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def _page(title: str, body: str, data: Mapping[str, Any]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_asset('report.css')}</style></head><body>\n{body}\n"
        f'<script type="application/json" id="ww-data">{_script_json(data)}</script>\n'
        f"<script>{_asset('report.js')}</script>\n</body></html>\n"
    )


def _meta(results: Results) -> str:
    from ww_core.platform.version import __version__

    done = len(results.analyzed) - len(results.failed)
    counts = f"{len(results.details)} rows: {done} analyzed, {len(results.failed)} failed, {len(results.skipped)} skipped"
    from ww_core.results.results import adapter_label

    read_by = f" · read by {escape(adapter_label(results.adapter))}" if results.adapter else ""
    return f'<p class="meta">{escape(results.source)} · {counts}{read_by} · ww-core {escape(__version__)}</p>'


def summary_block(results: Results) -> str:
    """The two summary sentences, in a box that is green when no layer is flagged."""
    text, good = summary_sentences(results)
    return f'<p class="summary{"" if good else " warn"}">{escape(text)}</p>'


def results_report(results: Results, title: str | None = None) -> str:
    """The report page of one model."""
    name = title or Path(results.source).name
    rows = [(i, row) for i, row in enumerate(results.details) if row.get("status") in ("success", "failed")]
    body = [
        f"<h1>ww report: {escape(name)}</h1>",
        _meta(results),
        summary_block(results),
        "<h2>Correlation flow</h2>",
        f"<p>alpha of each layer along depth; the green band is {OVER_TRAINED_THRESH:g}–{UNDER_TRAINED_THRESH:g}, "
        "red points lie outside it. Hover for a layer's name, click for its ESD.</p>",
        flow_svg({name: rows}),
        "<h2>Layers</h2>",
        "<p>Click a column to sort, a row to see its ESD (eigenvalues of WᵀW, log-log, with the fitted power law and xmin); "
        "the page opens on the layer farthest from the 2–6 band. Hover a column's name or a warning for what it means.</p>",
        '<input id="filter" type="search" placeholder="filter rows: name, kind, status, warning">',
        '<div id="esd-panel" class="empty">Click a row to draw its ESD here.</div>',
        layer_table(results),
        glossary([column for column in REPORT_COLUMNS if any(column in row for row in results.details)]),
    ]
    worst = worst_layer(results)
    data = {"esd": _esd_data(results), "open": None if worst is None else str(worst)}
    return _page(f"ww report: {name}", "\n".join(body), data)


def _simple_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], table_id: str) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(row, c) for c in columns) + "</tr>" for row in rows)
    return f'<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _series_trend(comparison: Comparison) -> str:
    """Each model's mean alpha in the order given (training steps for a run folder), drawn as a flow whose points are models."""
    points = [
        (i, {"name": name, "alpha": comparison.metric(name, "alpha"), "status": "success"}) for i, name in enumerate(comparison.names)
    ]
    return flow_svg({"mean alpha": points})


def table_order(verdict: Verdict) -> str:
    """How the model table is ordered: 'best first' only when a best is named, since a ranking within the noise names none."""
    if verdict.metric is None:
        return "in the order given"
    return "best first" if verdict.best else f"ordered by mean {verdict.metric}, lowest first; no best named"


def comparison_report(comparison: Comparison) -> str:
    """The report page of several models: verdict, model table, mean alpha along the series, each model's flow, per-layer alpha deltas."""
    verdict = comparison.verdict
    summary = str(verdict) + "".join(f" Note: {note}." for note in comparison.failed_notes())
    series = {name: [(i, row) for i, row in enumerate(result.details) if row.get("status") in ("success", "failed")]
              for name, result in zip(comparison.names, comparison.results)}  # fmt: skip
    deltas = [{column: None if finite(value) is None and column != "layer" else value for column, value in row.items()}
              for row in comparison.layer_deltas("alpha")]  # fmt: skip
    delta_columns = ["layer", *comparison.names, *[f"delta_{name}" for name in comparison.names[1:]]]
    order = table_order(verdict)
    body = [
        f"<h1>ww report: {escape(' vs '.join(comparison.names))}</h1>",
        f'<p class="summary{"" if verdict.best else " warn"}">{escape(summary)}</p>',
        f"<h2>Models ({order})</h2>",
        _simple_table(comparison.ordered_table(), comparison.shown_columns(), "ranking"),
        "<h2>Mean alpha along the series</h2>",
        "<p>each model's mean alpha over its fitted layers, in the order given (step order for a training-run folder).</p>",
        _series_trend(comparison),
        "<h2>Correlation flows</h2>",
        f"<p>alpha of each model's layers along depth; the green band is {OVER_TRAINED_THRESH:g}–{UNDER_TRAINED_THRESH:g}. "
        "Where the models' layers differ the axis numbers the positions; hover a point for its layer.</p>",
        flow_svg(series),
        "<h2>Per-layer alpha and its change from the first model</h2>",
        "<p>Layers are matched by name; an empty cell: that model has no such layer, or its fit failed.</p>",
        _simple_table(deltas, delta_columns, "deltas"),
    ]
    return _page(f"ww report: {' vs '.join(comparison.names)}", "\n".join(body), {"esd": {}})


def comparison_repr_html(comparison: Comparison) -> str:
    """A static HTML fragment for notebooks: the verdict and the model table (ordered by the ranking metric when ranked)."""
    return f"<p>{escape(str(comparison.verdict))}</p>" + _simple_table(comparison.ordered_table(), comparison.shown_columns(), "ranking")


def repr_html(results: Results) -> str:
    """A static HTML fragment for notebooks: the summary sentences and the table (no script needed)."""
    return summary_block(results) + layer_table(results, with_esd=False)


def write_report(target: str | Path, html: str) -> None:
    """Write a report whole (temporary file renamed into place), or to stdout for ``-``."""
    write_output(target, html)
