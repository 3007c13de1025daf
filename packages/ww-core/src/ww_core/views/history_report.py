"""A training history as one self-contained HTML page: the plot as inline SVG and the signals as tables."""

from __future__ import annotations

import io
import math
from html import escape
from typing import Any

from ww_core.results.rows import esd_key
from ww_core.training.history import History
from ww_core.training.signals import ALPHA_HIGH, ALPHA_LOW, DIVERGENCE, MIN_EVALS, band_exits, warnings_of


def figure_bytes(figure: Any, fmt: str) -> bytes:
    """A matplotlib figure rendered in memory as ``fmt`` ("png" or "svg")."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=100)
    return buffer.getvalue()


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.4g}"


def _num_evals(history: History) -> dict[str, str]:
    """Each layer's eigenvalue count, from its last row that has one."""
    counts: dict[str, str] = {}
    for step in history.steps:
        for row in history.rows[step]:
            if isinstance(row.get("num_evals"), int):
                counts[esd_key(row)] = str(row["num_evals"])
    return counts


def _layer_rows(history: History, metric: str) -> str:
    exits = band_exits(history)
    counts = _num_evals(history)
    rows = []
    for name, series in history.layer_series(metric).items():
        first = _number(series.values[0]) if series.values.size else ""
        last = _number(series.values[-1]) if series.values.size else ""
        left = exits.get(name)
        cells = [escape(name), counts.get(name, ""), first, last, "" if left is None else str(left)]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return "\n".join(rows)


def history_html(history: History, metric: str = "alpha") -> str:
    """The page: the per-layer and summary plot, each layer's first and last value and band exit, warnings and skips."""
    from ww_core.views import plots

    svg = figure_bytes(plots.plot_history(history, metric), "svg").decode("utf-8")
    svg = svg[svg.index("<svg") :]
    found = warnings_of(history)
    warnings = "".join(f"<li>step {w.step}: {escape(w.rule)}: {escape(w.message)}</li>" for w in found)
    diverged = next((w for w in found if w.rule == DIVERGENCE), None)
    alert = (
        ""
        if diverged is None
        else f'<p class="alert"><strong>Training diverged at step {diverged.step}</strong>: {escape(diverged.message)}</p>'
    )
    skipped = len(history.skipped)
    title = escape(history.path or "training history")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px}}
.alert{{color:#b00;font-size:1.2em}}</style>
</head><body>
<h1>{title}</h1>
{alert}
<p>{len(history.steps)} analyzed steps, {skipped} skipped (analysis behind or monitor closed), {history.dropped_lines} torn lines.</p>
{svg}
<h2>Layers</h2>
<table><tr><th>layer</th><th>eigenvalues</th><th>first {escape(metric)}</th><th>last {escape(metric)}</th>
<th>step alpha left the {ALPHA_LOW:g}–{ALPHA_HIGH:g} band</th></tr>
{_layer_rows(history, metric)}
</table>
<h2>Early warnings</h2>
<ul>{warnings or "<li>none</li>"}</ul>
<p>Divergence (NaN/Inf or exploding weights, every layer failing) is a fact about the weights. The alpha rules and
band exits are heuristics, not proof of over- or under-training; the rules look only at layers with at least
{MIN_EVALS} eigenvalues, and docs/monitor.md gives what each caught and its false alarms on trained runs.</p>
</body></html>
"""
