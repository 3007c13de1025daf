"""The correlation flow (alpha along depth over the 2–6 band) as inline SVG, for the HTML report: no matplotlib needed."""

from __future__ import annotations

import math
from html import escape
from typing import Any, Mapping, Sequence

from ww_core.spectra.metrics import OVER_TRAINED_THRESH, UNDER_TRAINED_THRESH

WIDTH, HEIGHT = 1000, 360
LEFT, RIGHT, TOP, BOTTOM = 80, 16, 16, 120
#: At most this many layer names under the axis; every k-th one beyond that.
MAX_LABELS = 60
LABEL_WIDTH = 22
COLORS = ("#36c", "#e80", "#393", "#c3c", "#088", "#963", "#666")


def finite(value: Any) -> float | None:
    """A float when ``value`` is a finite number, else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def short(name: str, width: int = LABEL_WIDTH) -> str:
    """The end of a layer name (its last dotted parts tell layers apart), "…" where it was cut."""
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def flow_svg(series: Mapping[str, Sequence[tuple[int, Mapping[str, Any]]]]) -> str:
    """One line per model of ``(row index, row)`` pairs in depth order; out-of-band points red, failed layers ×, names under the axis."""
    points = {label: [(i, row, finite(row.get("alpha"))) for i, row in rows] for label, rows in series.items()}
    alphas = [a for rows in points.values() for _, _, a in rows if a is not None]
    low = min([1.0, *alphas])
    high = min(max([8.0, *alphas]), 20.0)
    depth = max((len(rows) for rows in series.values()), default=1)
    span_x = (WIDTH - LEFT - RIGHT) / max(depth - 1, 1)

    def x(position: int) -> float:
        return LEFT + position * span_x if depth > 1 else (LEFT + WIDTH - RIGHT) / 2

    def y(alpha: float) -> float:
        return TOP + (high - min(alpha, high)) / (high - low) * (HEIGHT - TOP - BOTTOM)

    parts = [f'<svg class="flow" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img">']
    band_top, band_bottom = y(UNDER_TRAINED_THRESH), y(OVER_TRAINED_THRESH)
    band = f'x="{LEFT}" y="{band_top:.1f}" width="{WIDTH - LEFT - RIGHT}" height="{band_bottom - band_top:.1f}"'
    parts.append(f'<rect class="band" {band} fill="#4a4" opacity="0.12"/>')
    for level in range(math.ceil(low), math.floor(high) + 1):
        parts.append(f'<text x="{LEFT - 6}" y="{y(level) + 4:.1f}" text-anchor="end">{level}</text>')
    middle = (TOP + HEIGHT - BOTTOM) / 2
    turned = f'transform="rotate(-90 {LEFT - 34} {middle:.1f})"'
    parts.append(f'<text x="{LEFT - 34}" y="{middle:.1f}" text-anchor="middle" {turned}>alpha</text>')
    for color, (label, rows) in zip(_cycle(len(points)), points.items()):
        fitted = [(x(pos), y(a)) for pos, (_, _, a) in enumerate(rows) if a is not None]
        if len(fitted) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in fitted)
            line = f'points="{path}" fill="none" stroke="{color}" stroke-width="1.5"'
            parts.append(f"<polyline {line}><title>{escape(label)}</title></polyline>")
        for pos, (index, row, alpha) in enumerate(rows):
            if alpha is None:
                if row.get("status") == "failed":
                    tip = f"{row.get('name')}: failed: {row.get('error', '')}"
                    parts.append(
                        f'<text class="failed" data-row="{index}" x="{x(pos):.1f}" y="{HEIGHT - BOTTOM - 2}" text-anchor="middle"'
                        f' fill="#333">×<title>{escape(tip)}</title></text>'
                    )
                continue
            out = not OVER_TRAINED_THRESH <= alpha <= UNDER_TRAINED_THRESH
            tip = f"{row.get('name')}: alpha {alpha:.3g}" + (" (outside 2–6)" if out else "")
            if alpha > high:  # drawn at the top of the axis: an up-pointing mark and the true value say so
                tip += f", above the axis: drawn at {high:g}"
                px, py = x(pos), y(high)
                arrow = f"{px - 6:.1f},{py - 4:.1f} {px + 6:.1f},{py - 4:.1f} {px:.1f},{py - 13:.1f}"
                parts.append(
                    f'<polygon class="capped" data-row="{index}" points="{arrow}" fill="#d22"><title>{escape(tip)}</title></polygon>'
                )
            parts.append(
                f'<circle class="{"out" if out else "in"}" data-row="{index}" cx="{x(pos):.1f}" cy="{y(alpha):.1f}" r="{5 if out else 3.5}"'
                f' fill="{"#d22" if out else color}"><title>{escape(tip)}</title></circle>'
            )
    labels = axis_labels(list(series.values()))
    step = max(1, math.ceil(len(labels) / MAX_LABELS))
    for pos in range(0, len(labels), step):
        lx, ly = x(pos), HEIGHT - BOTTOM + 10
        place = f'x="{lx:.1f}" y="{ly}" text-anchor="end" transform="rotate(-60 {lx:.1f} {ly})"'
        parts.append(f'<text class="layer-name" {place}>{escape(labels[pos])}</text>')
    if len(points) > 1:
        for i, (color, label) in enumerate(zip(_cycle(len(points)), points)):
            parts.append(f'<text x="{WIDTH - RIGHT - 4}" y="{TOP + 12 + 14 * i}" text-anchor="end" fill="{color}">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def axis_labels(series: Sequence[Sequence[tuple[int, Mapping[str, Any]]]]) -> list[str]:
    """Under each depth position: the layer name every model with that position agrees on, else the position number;
    names whose cut ends read alike (``…value_projection``) lead with their ``layer_id``, as the table's first column."""
    depth = max((len(rows) for rows in series), default=0)
    held = [[rows[pos][1] for rows in series if pos < len(rows)] for pos in range(depth)]
    names = [{str(row.get("name", "")) for row in rows} for rows in held]
    labels = [short(next(iter(found))) if len(found) == 1 else str(pos) for pos, found in enumerate(names)]
    if len(set(labels)) == len(labels):
        return labels
    labels = []
    for pos, (rows, found) in enumerate(zip(held, names)):
        lead = f"{rows[0].get('layer_id', pos)} "
        labels.append(lead + short(next(iter(found)), LABEL_WIDTH - len(lead)) if len(found) == 1 else str(pos))
    return labels


def _cycle(count: int) -> list[str]:
    return [COLORS[i % len(COLORS)] for i in range(count)]
