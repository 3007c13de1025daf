"""The HTML page of a trend check (``ww correlate``): the per-metric table and one inline-SVG scatter plot per metric."""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Sequence

from ww_core.views.report import _page, _simple_table
from ww_core.views.report_svg import short

if TYPE_CHECKING:
    from ww_core.models.correlation import Correlation

SIZE, MARGIN = 300, 48
#: Dot radius, and how far the extreme models' dots sit inside the frame so that they are drawn whole.
DOT, INSET = 4, 6
#: The plot is square (SIZE - 2*MARGIN a side); below it the tick labels and the metric's name.
HEIGHT = SIZE - MARGIN // 2 - 8


def _ticks(low: float, high: float) -> tuple[float, float]:
    return (low - 0.5, high + 0.5) if high == low else (low, high)


def scatter_svg(metric: str, values: Sequence[float], scores: Sequence[float], names: Sequence[str], score: str) -> str:
    """One model per dot (its name on hover): the metric across, the score up; models without the metric left out."""
    points = [(v, s, n) for v, s, n in zip(values, scores, names) if math.isfinite(v) and math.isfinite(s)]
    parts = [
        f'<svg class="scatter" data-metric="{escape(metric)}" width="{SIZE}" height="{HEIGHT}" viewBox="0 0 {SIZE} {HEIGHT}" role="img">'
    ]
    inner = SIZE - 2 * MARGIN
    parts.append(f'<rect x="{MARGIN}" y="{MARGIN / 2}" width="{inner}" height="{inner}" fill="none" stroke="#999"/>')
    if points:
        x_low, x_high = _ticks(min(p[0] for p in points), max(p[0] for p in points))
        y_low, y_high = _ticks(min(p[1] for p in points), max(p[1] for p in points))
        span = inner - 2 * INSET  # the extremes' dots sit INSET inside the frame; the tick labels stand at the extremes
        for v, s, name in points:
            cx = MARGIN + INSET + (v - x_low) / (x_high - x_low) * span
            cy = MARGIN / 2 + INSET + (y_high - s) / (y_high - y_low) * span
            tip = f"{escape(name)}: {escape(metric)} {v:.4g}, {escape(score)} {s:.4g}"
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{DOT}" fill="#36c"><title>{tip}</title></circle>')
        bottom = MARGIN / 2 + inner
        parts.append(f'<text x="{MARGIN + INSET}" y="{bottom + 14:.0f}" text-anchor="start">{x_low:.3g}</text>')
        parts.append(f'<text x="{MARGIN + inner - INSET}" y="{bottom + 14:.0f}" text-anchor="end">{x_high:.3g}</text>')
        parts.append(f'<text x="{MARGIN - 4}" y="{MARGIN / 2 + INSET + 4:.0f}" text-anchor="end">{y_high:.3g}</text>')
        parts.append(f'<text x="{MARGIN - 4}" y="{bottom - INSET + 4:.0f}" text-anchor="end">{y_low:.3g}</text>')
    parts.append(f'<text x="{SIZE / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle">{escape(metric)}</text>')
    middle = MARGIN / 2 + inner / 2
    parts.append(
        f'<text x="14" y="{middle:.0f}" text-anchor="middle" transform="rotate(-90 14 {middle:.0f})">{escape(short(score))}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def correlation_report(correlation: Correlation) -> str:
    """The page: the one-line verdict, the per-metric table, a scatter plot per metric and the models' values."""
    direction = "higher" if correlation.higher_is_better else "lower"
    figures = []
    for row in correlation.rows:
        tau = row["kendall"]
        caption = (
            f"{row['metric']}: Kendall tau {tau:+.2f} (p = {row['kendall_p']:.2g})"
            if math.isfinite(tau)
            else f"{row['metric']}: too few values"
        )
        svg = scatter_svg(row["metric"], correlation.values[row["metric"]], correlation.scores, correlation.names, correlation.score)
        figures.append(f'<figure class="scatter" style="margin:0">{svg}<figcaption>{escape(caption)}</figcaption></figure>')
    models = [
        {"name": n, correlation.score: s, **{m: v[i] for m, v in correlation.values.items()}}
        for i, (n, s) in enumerate(zip(correlation.names, correlation.scores))
    ]
    body = [
        f"<h1>ww correlate: {escape(correlation.score)} over {len(correlation.names)} models</h1>",
        f'<p class="summary{"" if correlation.best else " warn"}">{escape(correlation.verdict())}</p>',
        f"<p>{escape(correlation.score)}: {direction} is better. Correlations are oriented so that a positive value means a lower "
        "metric goes with a better model, as HT-SR expects for alpha and the norm metrics.</p>",
        "<h2>Rank correlation per metric</h2>",
        _simple_table(correlation.rows, ("metric", "n", "spearman", "spearman_p", "kendall", "kendall_p"), "correlations"),
        "<h2>Each metric against the score</h2>",
        '<div class="scatters" style="display:flex;flex-wrap:wrap;gap:4px 16px">' + "".join(figures) + "</div>",
        "<h2>Models</h2>",
        _simple_table(models, ("name", correlation.score, *correlation.values), "models"),
    ]
    return _page(f"ww correlate: {correlation.score}", "\n".join(body), {"esd": {}})
