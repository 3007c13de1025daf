"""The terminal table: the columns that explain the rows (reasons, the requested options' columns), fitted to a width."""

from __future__ import annotations

import math
import textwrap
from typing import Any, Mapping, Sequence

from ww_core.platform.messages import printable
from ww_core.results.options import AnalysisOptions
from ww_core.spectra.metrics import DEGENERATE_WARNING, OVER_TRAINED_THRESH, UNDER_TRAINED_THRESH
from ww_core.spectra.xmax import CLIPPED

#: The default columns, in display order.
DEFAULT_COLUMNS = (
    "layer_id",
    "name",
    "layer_type",
    "N",
    "M",
    "num_evals",
    "alpha",
    "D",
    "log_norm",
    "log_spectral_norm",
    "alpha_weighted",
    "stable_rank",
    "warning",
    "status",
)
#: Dropped first, in this order, when the table is wider than the terminal.
DROP_ORDER = ("rf", "stable_rank", "log_spectral_norm", "num_evals", "D", "layer_type", "M", "N", "log_norm", "status", "layer_id")
#: Dropped only when even names cut to MIN_NAME_WIDTH do not fit (the option columns in reverse order follow).
LAST_RESORT = ("alpha_weighted",)
#: The key columns each option adds when it is requested.
OPTION_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "randomize": ("rand_distance", "ww_softrank"),
    "mp_fit": ("num_spikes", "mp_softrank"),
    "fix_fingers": ("num_fingers",),
    "vectors": ("tail_mean_vec_entropy",),
    "detX": ("detX_num",),
    "xmax": (CLIPPED,),
}
REASON = "reason"
NAME_WIDTH, MIN_NAME_WIDTH = 32, 20
MIN_REASON_WIDTH = 16
GAP = "  "

WARNING_LEGEND = (
    f"over-trained: alpha < {OVER_TRAINED_THRESH:g}, a very heavy tail; the layer may be over-fit to its training data.",
    f"under-trained: alpha > {UNDER_TRAINED_THRESH:g}, close to random weights; the layer has learned little.",
    f"well-trained layers have {OVER_TRAINED_THRESH:g} <= alpha <= {UNDER_TRAINED_THRESH:g}.",
    f"{DEGENERATE_WARNING}: the fitted tail is flat (e.g. an orthogonal kernel), so alpha measures nothing;"
    " alpha_median in the summary is not moved by it.",
    "a flag is read from the weights alone: a prompt to check held-out data, not a measured loss of accuracy.",
)
#: The legend's lines each warning needs (the band's line and what a flag is go with either flag).
LEGEND_LINES = {"over-trained": (0, 2, 4), "under-trained": (1, 2, 4), DEGENERATE_WARNING: (3,)}


def default_columns(rows: Sequence[Mapping[str, Any]], options: AnalysisOptions) -> list[str]:
    """The default columns, the requested options' key columns, and ``reason`` when a row is not a success."""
    columns = list(DEFAULT_COLUMNS)
    for option, extra in OPTION_COLUMNS.items():
        if getattr(options, option, False):
            columns[columns.index("warning") : columns.index("warning")] = [c for c in extra if c not in columns]
    if any(row.get("status") not in ("success", "selected") for row in rows):
        columns.append(REASON)
    return [c for c in columns if c == REASON or any(c in row for row in rows)]


def cell(row: Mapping[str, Any], column: str) -> str:
    """One value as text: floats to 4 significant digits, a reason only for rows that are not a success."""
    if column == REASON:
        return "" if row.get("status") in ("success", "selected") else printable(own_reason(row))
    value = row.get(column, "")
    if isinstance(value, float) or hasattr(value, "dtype"):
        number = float(value)
        return "nan" if math.isnan(number) else f"{number:.4g}"
    return "" if value is None else printable(str(value))


def own_reason(row: Mapping[str, Any]) -> str:
    """A row's error less the ``layer 'fc1' (id 3) in FILE: `` it starts with: its row names the layer, the page the file."""
    error = str(row.get("error") or "")
    named = f"layer {row.get('name')!r} (id {row.get('layer_id')})"
    if not error.startswith(named):
        return error
    rest = error[len(named) :]
    if rest.startswith(" in "):
        rest = rest.partition(": ")[2]
    elif rest.startswith(": "):
        rest = rest[2:]
    return rest or error


def abbreviate(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` characters, keeping its end after "…" (the end of a layer name tells layers apart)."""
    if len(text) <= width:
        return text
    return "…" + text[len(text) - (width - 1) :]


def _widths(cells: list[list[str]], columns: Sequence[str]) -> list[int]:
    return [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]


def _cells(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], name_width: int | None) -> list[list[str]]:
    return [[abbreviate(cell(r, c), name_width) if name_width and c == "name" else cell(r, c) for c in columns] for r in rows]


def _needed(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], name_width: int) -> int:
    """Characters the table needs with names cut to ``name_width`` and the reason at its narrowest."""
    fixed = [c for c in columns if c != REASON]
    total = sum(_widths(_cells(rows, fixed, name_width), fixed)) + len(GAP) * (len(columns) - 1)
    longest_reason = max((len(cell(r, REASON)) for r in rows), default=0)
    return total + (min(MIN_REASON_WIDTH, longest_reason) if REASON in columns else 0)


def fit_columns(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    width: int,
    drop_order: Sequence[str] = DROP_ORDER,
    last_resort: Sequence[str] = LAST_RESORT,
) -> list[str]:
    """Drop low-priority columns until the table fits in ``width``; no empty reason column.

    Readable names come first: columns in ``drop_order`` go before names are cut below NAME_WIDTH;
    ``last_resort`` and then the requested options' columns go only when even short names do not fit.
    A reason never costs a column: it wraps under its own. ``layer_id`` stays when cut names would read alike.
    """
    kept = {"layer_id"} if alike_when_cut(rows) else set()
    has_reason = any(cell(r, REASON) for r in rows)
    shown = [c for c in columns if c != REASON or has_reason]
    longest_name = max((len(cell(r, "name")) for r in rows), default=0)
    option_columns = [c for extra in OPTION_COLUMNS.values() for c in extra]
    readable = min(NAME_WIDTH, max(longest_name, MIN_NAME_WIDTH))
    stages = ((readable, drop_order), (MIN_NAME_WIDTH, (*last_resort, *reversed(option_columns))))
    for name_width, droppable in stages:
        for column in droppable:
            if _needed(rows, shown, name_width) <= width:
                return shown
            if column in shown and column not in kept:
                shown.remove(column)
    return shown


def alike_when_cut(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether two rows' names read the same once cut to MIN_NAME_WIDTH (transformer names differing only in a layer number)."""
    cut = [abbreviate(cell(r, "name"), MIN_NAME_WIDTH) for r in rows]
    return len(set(cut)) < len(cut)


def name_width_for(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], width: int) -> int:
    """The widest name column that keeps the table within ``width``: a wide terminal shows long names whole."""
    spare = width - _needed(rows, columns, MIN_NAME_WIDTH)
    longest = max((len(cell(r, "name")) for r in rows), default=0)
    return max(MIN_NAME_WIDTH, min(longest, MIN_NAME_WIDTH + spare))


def render(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], width: int | None = None) -> str:
    """A left-aligned table; with ``width``, names are abbreviated and reasons wrap under their column."""
    cells = _cells(rows, columns, name_width_for(rows, columns, width) if width else None)
    widths = _widths(cells, columns)
    wrap_at = columns.index(REASON) if width and REASON in columns else None
    start = sum(widths[: wrap_at or 0]) + len(GAP) * (wrap_at or 0)
    room = max((width or 0) - start, MIN_REASON_WIDTH)
    lines = [GAP.join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    for row_cells in cells:
        more: list[str] = []
        if wrap_at is not None and len(row_cells[wrap_at]) > room:
            first, *more = textwrap.wrap(row_cells[wrap_at], room, break_long_words=True) or [""]
            row_cells[wrap_at] = first
        lines.append(GAP.join(v.ljust(w) for v, w in zip(row_cells, widths)).rstrip())
        lines += [" " * start + line for line in more]
    return "\n".join(lines)


def legend(rows: Sequence[Mapping[str, Any]], width: int | None = None) -> list[str]:
    """What the warnings the table shows mean (those alone); wrapped to ``width``."""
    shown = {str(row.get("warning")) for row in rows if row.get("warning")}
    needed = sorted({line for warning in shown for line in LEGEND_LINES.get(warning, ())})
    if not needed:
        return []
    lines = ["warnings:"]
    for index in needed:
        lines += textwrap.wrap(WARNING_LEGEND[index], (width or 1000) - 2, initial_indent="  ", subsequent_indent="    ")
    return lines
