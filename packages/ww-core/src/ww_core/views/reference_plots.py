"""``WeightWatcher.analyze(plot=True)``'s files under the reference's names: ``ww.layer{id}.esd.png`` … ``.esd5.png``.

weightwatcher 0.7.7 saves, per analyzed layer, the log-log ESD with its power-law fit (``esd``), the
linear histogram with xmin (``esd2``), the log10 histogram with xmin and xmax (``esd3``), and the
fit's KS distance D (``esd4``) and alpha (``esd5``) against each candidate xmin; a ported script that
opens those files finds them. ``ww --plot`` keeps ww's own names (``plots.save_all``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ww_core.spectra.powerlaw_fit import xmin_scan
from ww_core.views.plots import EVAL_FLOOR, new_figure, plot_esd, save_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _fit_lines(ax: Axes, row: Mapping[str, Any], scale: Callable[[float], float] = float) -> None:
    """Vertical lines at the fit's xmin and xmax, where the row has them (a failed fit has none)."""
    for column, color in (("xmin", "red"), ("xmax", "orange")):
        try:
            value = float(row.get(column))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isfinite(value) and value > 0:
            ax.axvline(scale(value), color=color, label=f"λ {column}")


def plot_linear_histogram(evals: np.ndarray, row: Mapping[str, Any]) -> Axes:
    """The reference's ``esd2``: the ESD's density on linear axes, with the fit's xmin."""
    ax = new_figure()[1][0]
    ax.hist(evals, bins=100, density=True)
    _fit_lines(ax, {"xmin": row.get("xmin")})
    ax.set_title(f"Lin-Lin ESD for {row.get('name', '')}", fontsize=10)
    ax.set_xlabel("eigenvalue λ")
    return ax


def plot_log_histogram(evals: np.ndarray, row: Mapping[str, Any]) -> Axes:
    """The reference's ``esd3``: the density of log10 λ, with the fit's xmin and xmax."""
    ax = new_figure()[1][0]
    positive = evals[evals > EVAL_FLOOR]
    ax.hist(np.log10(positive) if positive.size else positive, bins=100, density=True)
    _fit_lines(ax, row, np.log10)
    ax.set_title(f"Log-Lin ESD for {row.get('name', '')}", fontsize=10)
    ax.set_xlabel("log10 eigenvalue λ")
    return ax


def plot_xmin_scan(evals: np.ndarray, row: Mapping[str, Any], curve: str) -> Axes:
    """The reference's ``esd4`` (``curve='D'``) or ``esd5`` (``'alpha'``): that quantity of the fit at every candidate xmin."""
    ax = new_figure()[1][0]
    xmins, alphas, Ds = xmin_scan(evals)
    ax.plot(xmins, Ds if curve == "D" else alphas, label=f"{curve}(xmin)")
    _fit_lines(ax, {"xmin": row.get("xmin")})
    ax.set_xlabel("xmin")
    ax.set_ylabel(curve)
    ax.set_title(f"{curve} vs. xmin for {row.get('name', '')}", fontsize=10)
    ax.legend(fontsize=8)
    return ax


def save_reference_plots(evals: np.ndarray, row: Mapping[str, Any], plot_id: str, directory: str | Path) -> list[Path]:
    """Write one layer's ``ww.layer{plot_id}.esd.png`` … ``.esd5.png`` into ``directory``; returns the paths."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    evals = np.sort(np.asarray(evals, dtype=np.float64))
    written = []
    drawn: dict[str, Callable[[], Axes]] = {
        "esd": lambda: plot_esd(evals, row),
        "esd2": lambda: plot_linear_histogram(evals, row),
        "esd3": lambda: plot_log_histogram(evals, row),
        "esd4": lambda: plot_xmin_scan(evals, row, "D"),
        "esd5": lambda: plot_xmin_scan(evals, row, "alpha"),
    }
    for suffix, draw in drawn.items():
        path = folder / f"ww.layer{plot_id}.{suffix}.png"
        save_figure(draw().get_figure(), path)  # type: ignore[arg-type]
        written.append(path)
    return written
