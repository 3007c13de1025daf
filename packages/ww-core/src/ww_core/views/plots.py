"""Plots of Results: each layer's ESD with its power-law fit, alpha along depth, model comparisons, training histories.

matplotlib is an optional extra, imported on first use. Figures are built with the
object-oriented API on the Agg canvas, so no global backend is switched and nothing is shown.
"""

from __future__ import annotations

import functools
import io
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import numpy as np

from ww_core.platform.install_hints import install_hint
from ww_core.results.outputs import write_atomic
from ww_core.results.rows import esd_key
from ww_core.spectra.constants import ALPHA_HIGH, ALPHA_LOW, EVALS_THRESH

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ww_core.pipeline.progress import ProgressBar
    from ww_core.results.results import Results
    from ww_core.training.history import History

#: The HT-SR range of a well-trained layer; alpha outside it is flagged (docs/metrics.md).
#: Metrics drawn by ``plot_comparison``; lower is better for each within a model series.
COMPARISON_METRICS = ("alpha", "alpha_weighted", "log_norm")
#: Eigenvalues below this are left off log axes, as they are left out of the fit.
EVAL_FLOOR = EVALS_THRESH
#: Layer names on the correlation flow's x axis are cut to this many characters; at most this many ticks.
TICK_NAME_WIDTH, MAX_TICKS = 18, 40
OUT_OF_BAND = f"alpha outside {ALPHA_LOW:g}–{ALPHA_HIGH:g}"

Drawing = TypeVar("Drawing", bound=Callable[..., Any])


def plain_text(draw: Drawing) -> Drawing:
    """Run ``draw`` with matplotlib's mathtext off: every label (a tensor name like ``$\\frac{$``, a ``--names`` label)
    is drawn as written. Text keeps the setting it was made with, so a figure saved later draws the same; the
    user's own ``rcParams`` are restored on return."""

    @functools.wraps(draw)
    def plainly(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
            return draw(*args, **kwargs)

    return plainly  # type: ignore[return-value]


def new_figure(ncols: int = 1, width: float = 6.4, height: float = 4.4) -> tuple[Figure, list[Axes]]:
    """A figure on the Agg canvas with ``ncols`` axes side by side; clear error without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # matplotlib is the optional [plot] extra
        raise ImportError(f"plots need matplotlib: {install_hint('ww-core', 'plot')}") from exc
    figure = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, [figure.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def power_law_curve(evals: np.ndarray, alpha: float, xmin: float, xmax: float) -> tuple[np.ndarray, np.ndarray]:
    """The fitted density over [xmin, xmax], scaled by the tail's share of all eigenvalues.

    p(x) = (n_tail/n) · (alpha−1)/xmin · (x/xmin)^(−alpha): a straight line of slope −alpha on
    log-log axes that overlays the whole ESD's density histogram.
    """
    share = np.count_nonzero(evals >= xmin) / evals.size
    x = np.geomspace(xmin, max(xmax, xmin * (1 + 1e-9)), 64)
    return x, share * (alpha - 1) / xmin * (x / xmin) ** (-alpha)


@plain_text
def plot_esd(evals: np.ndarray, row: Mapping[str, Any] | None = None, ax: Axes | None = None) -> Axes:
    """Log-log density of one ESD, with the fitted power law and the xmin line when ``row`` has a fit."""
    if ax is None:
        ax = new_figure()[1][0]
    row = row or {}
    positive = np.sort(np.asarray(evals, dtype=np.float64))
    positive = positive[np.isfinite(positive) & (positive > EVAL_FLOOR)]
    name = str(row.get("name", "ESD"))
    if positive.size == 0:
        ax.text(0.5, 0.5, "no eigenvalues above 1e-5", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(name)
        return ax
    low, high = positive[0], positive[-1]
    bins = max(10, min(80, positive.size // 4))
    edges = np.geomspace(low, high * (1 + 1e-9), bins + 1) if high > low else np.array([low * 0.9, low * 1.1])
    density, _ = np.histogram(positive, bins=edges, density=True)
    ax.stairs(density, edges, fill=True, alpha=0.45, color="tab:blue", label=f"ESD ({positive.size} eigenvalues)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    alpha, xmin, xmax = _finite(row.get("alpha")), _finite(row.get("xmin")), _finite(row.get("xmax"))
    title = name
    if alpha is not None and xmin is not None and alpha > 1 and xmin > 0:
        x, y = power_law_curve(positive, alpha, xmin, xmax or high)
        ax.plot(x, y, color="tab:red", linewidth=2, label=f"power-law fit, alpha={alpha:.3g}")
        ax.axvline(xmin, color="tab:red", linestyle="--", linewidth=1, label=f"xmin={xmin:.3g}")
        D = _finite(row.get("D"))
        title += f"  alpha={alpha:.3g}" + (f"  D={D:.3g}" if D is not None else "")
    elif row.get("status") == "failed":
        title += "  (fit failed)"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("eigenvalue λ of WᵀW")
    ax.set_ylabel("density")
    ax.legend(fontsize=8, loc="lower left")
    return ax


def _once(ax: Axes, label: str) -> str:
    """``label``, or matplotlib's "no legend entry" when the axes' legend already has it (overlaid models)."""
    return "_nolegend_" if label in ax.get_legend_handles_labels()[1] else label


def short_name(name: str, width: int = TICK_NAME_WIDTH) -> str:
    """A layer name cut to its last dotted parts (then its end) so a tick label stays readable."""
    parts = name.split(".")
    shown = parts[-1]
    for part in reversed(parts[:-1]):
        if len(part) + 1 + len(shown) > width:
            break
        shown = f"{part}.{shown}"
    return shown if len(shown) <= width else "…" + shown[-(width - 1) :]


def _name_ticks(ax: Axes, results: Results) -> None:
    """Layer names (shortened, rotated) under the layer ids; every k-th one when there are many."""
    named = sorted({int(row["layer_id"]): str(row.get("name", "")) for row in results.details if "layer_id" in row}.items())
    step = max(1, math.ceil(len(named) / MAX_TICKS))
    shown = named[::step]
    ax.set_xticks([i for i, _ in shown], [f"{short_name(name)} ({i})" for i, name in shown], rotation=60, ha="right", fontsize=7)


@plain_text
def plot_correlation_flow(results: Results, ax: Axes | None = None, label: str | None = None) -> Axes:
    """Alpha of each analyzed layer along depth, with the 2–6 band; failed layers marked on the axis.

    The x axis names the layers (shortened, rotated). Call again with the same ``ax`` and a
    ``label`` to overlay several models; shared legend entries appear once.
    """
    new = ax is None
    if ax is None:
        ax = new_figure(width=8.0)[1][0]
    fitted = [(row["layer_id"], float(row["alpha"])) for row in results.details if _finite(row.get("alpha")) is not None]
    failed = sorted({row["layer_id"] for row in results.failed})
    if new or label is None:
        ax.axhspan(ALPHA_LOW, ALPHA_HIGH, color="tab:green", alpha=0.12, label=f"{ALPHA_LOW:g} ≤ alpha ≤ {ALPHA_HIGH:g}")
        for level in (ALPHA_LOW, ALPHA_HIGH):
            ax.axhline(level, color="tab:green", linestyle="--", linewidth=1)
    if fitted:
        ids, alphas = zip(*fitted)
        ax.plot(ids, alphas, marker="o", markersize=4, linewidth=1, label=label or "alpha")
        outside = [(i, a) for i, a in fitted if not ALPHA_LOW <= a <= ALPHA_HIGH]
        if outside:
            out_ids, out_alphas = zip(*outside)
            ax.scatter(out_ids, out_alphas, s=40, facecolors="none", edgecolors="tab:red", zorder=3, label=_once(ax, OUT_OF_BAND))
    if failed:
        on_axis = ax.get_xaxis_transform()
        ax.plot(failed, [0.0] * len(failed), "x", color="black", transform=on_axis, clip_on=False, label=_once(ax, "failed"))
    _name_ticks(ax, results)
    ax.set_xlabel("layer (id)")
    ax.set_ylabel("alpha")
    ax.set_title(f"correlation flow: {label or Path(results.source).name}", fontsize=10)
    ax.legend(fontsize=8)
    return ax


@plain_text
def plot_comparison(summaries: Mapping[str, Mapping[str, float]], metrics: Sequence[str] = COMPARISON_METRICS) -> Figure:
    """One panel per summary metric across models, in the given order (e.g. checkpoints of a run)."""
    figure, axes = new_figure(ncols=len(metrics), width=4.2, height=3.8)
    names = list(summaries)
    for ax, metric in zip(axes, metrics):
        values = [summaries[name].get(metric, math.nan) for name in names]
        ax.plot(range(len(names)), values, marker="o")
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"mean {metric} (lower is better)", fontsize=10)
        if metric == "alpha":
            ax.axhspan(ALPHA_LOW, ALPHA_HIGH, color="tab:green", alpha=0.12)
    return figure


def _file_stem(row: Mapping[str, Any]) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(row.get("name", "layer"))).strip("._") or "layer"
    return f"esd_{int(row.get('layer_id', 0)):04d}_{safe[:80]}"


def save_figure(figure: Figure, path: Path) -> None:
    """Write a figure as PNG whole or not at all (rendered in memory, then renamed into place)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_atomic(path, buffer.getvalue())


@plain_text
def save_all(results: Results, directory: str | Path, progress: ProgressBar | None = None) -> list[Path]:
    """Write the correlation flow and one ESD plot per layer with an ESD as PNGs; returns the paths.

    ``progress`` (e.g. the bar the analysis drew) is advanced once per plot.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        progress.expect(1 + len(results.esds))
    written = [folder / "correlation_flow.png"]
    save_figure(plot_correlation_flow(results).get_figure(), written[0])  # type: ignore[arg-type]
    if progress is not None:
        progress.advance("correlation_flow.png")
    rows = {esd_key(row): row for row in results.details if "name" in row}
    used: set[str] = set()
    for name, evals in results.esds.items():
        row = rows.get(name, {"name": name})
        stem = _file_stem(row)
        while stem in used:
            stem += "_"
        used.add(stem)
        path = folder / f"{stem}.png"
        save_figure(plot_esd(evals, row).get_figure(), path)  # type: ignore[arg-type]
        written.append(path)
        if progress is not None:
            progress.advance(f"plot {name}")
    return written


@plain_text
def plot_history(history: History | str | Path, metric: str = "alpha") -> Figure:
    """Two panels over training steps: ``metric`` per layer (with the 2–6 band for alpha) and the model summary.

    Takes a History or the path of a monitor's log. Early warnings are dashed vertical lines,
    steps skipped because analysis was behind are ticks on the step axis; a diverged run says
    so on the layer panel, which has nothing else to show once every layer fails.
    """
    from ww_core.training.history import load_history
    from ww_core.training.signals import DIVERGENCE, warnings_of

    if isinstance(history, (str, Path)):
        history = load_history(history)
    figure, (layers_ax, summary_ax) = new_figure(ncols=2, width=6.0)
    drawn = False
    for name, series in history.layer_series(metric).items():
        layers_ax.plot(series.steps, series.values, marker=".", linewidth=1, label=name)
        drawn = drawn or bool(np.isfinite(series.values).any())
    summary = history.summary_series(metric)
    summary_ax.plot(summary.steps, summary.values, marker="o", color="black", label=f"mean {metric}")
    warnings = warnings_of(history)
    for ax in (layers_ax, summary_ax):
        if metric == "alpha":
            ax.axhspan(ALPHA_LOW, ALPHA_HIGH, color="tab:green", alpha=0.12)
        for warning in warnings:
            ax.axvline(warning.step, color="tab:red", linestyle="--", linewidth=1, label=f"warning: {warning.rule}")
        skipped = [record["step"] for record in history.skipped]
        if skipped:
            ax.plot(skipped, [0.0] * len(skipped), "|", color="gray", transform=ax.get_xaxis_transform(), clip_on=False, label="skipped")
        ax.set_xlabel("step")
        ax.set_ylabel(metric)
        if history.steps and not drawn:  # only NaN to plot: still span the analyzed steps
            ax.set_xlim(history.steps[0] - 1, history.steps[-1] + 1)
    diverged = next((warning for warning in warnings if warning.rule == DIVERGENCE), None)
    if not history.steps:
        layers_ax.text(0.5, 0.5, "no analyzed step", ha="center", va="center", transform=layers_ax.transAxes)
    elif diverged is not None:
        note = textwrap.fill(f"training diverged at step {diverged.step}: {diverged.message}", 48)
        x, y, ha, va = (0.02, 0.98, "left", "top") if drawn else (0.5, 0.5, "center", "center")
        box = {"facecolor": "white", "edgecolor": "tab:red", "alpha": 0.85}
        layers_ax.text(x, y, note, ha=ha, va=va, fontsize=8, color="tab:red", bbox=box, transform=layers_ax.transAxes)
    elif not drawn:
        layers_ax.text(0.5, 0.5, f"no layer has a {metric} at any step", ha="center", va="center", transform=layers_ax.transAxes)
    layers_ax.set_title(f"{metric} per layer over training", fontsize=10)
    summary_ax.set_title(f"model summary: mean {metric}", fontsize=10)
    layers_ax.legend(fontsize=7, ncols=1 + len(history.layer_names) // 12)
    summary_ax.legend(fontsize=8)
    return figure
