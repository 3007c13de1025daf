"""Divergence is on by default: NaN/Inf weights, weights beyond float32, norms grown by orders of magnitude and every layer
failing fire one warning, which the log, load_history, plot-history and the history page show (issue 22)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import ww_core
from ww_core.cli import main
from ww_core.training.history import History, load_history
from ww_core.training.monitor import Monitor
from ww_core.training.signals import MIN_EVALS, Divergence, EarlyWarning, FractionBelow, SummaryTurnsUp, divergence_of

Change = Callable[[dict[str, np.ndarray]], None]


def _model(dtype: Any = np.float64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"fc1.weight": rng.standard_normal((96, 64)).astype(dtype), "fc2.weight": rng.standard_normal((64, 96)).astype(dtype)}


def _run(log: Path, change: Change, at: int, steps: int = 4, dtype: Any = np.float64, **kwargs: Any) -> Monitor:
    """``steps`` snapshots of a slowly changing model; ``change`` is applied to the weights from step ``at`` on."""
    rng = np.random.default_rng(1)
    model = _model(dtype)
    with ww_core.Monitor(every=1, log=log, when_behind="wait", **kwargs) as monitor:
        for step in range(1, steps + 1):
            for array in model.values():
                array += (0.01 * rng.standard_normal(array.shape)).astype(dtype)
            if step >= at:
                change(model)
            monitor.observe(model, step=step)
    return monitor


def _nan(model: dict[str, np.ndarray]) -> None:
    model["fc2.weight"][3, 5] = np.nan


def _zero(model: dict[str, np.ndarray]) -> None:
    for array in model.values():
        array[...] = 0


def _logged(log: Path) -> list[tuple[int, str]]:
    return [(warning["step"], warning["rule"]) for warning in load_history(log).warnings]


def test_nan_weights_fire_divergence_by_default_once(tmp_path: Path) -> None:
    monitor = _run(tmp_path / "run.jsonl", _nan, at=3)
    assert monitor.diverged is not None and monitor.diverged.step == 3 and monitor.diverged.rule == "divergence"
    assert "fc2" in monitor.diverged.message and "NaN/Inf" in monitor.diverged.message
    assert monitor.should_stop and monitor.warning == monitor.diverged
    assert _logged(tmp_path / "run.jsonl") == [(3, "divergence")]  # step 4 is NaN too: still one warning


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weights_of_1e30_fire_divergence_even_at_the_first_snapshot(tmp_path: Path, dtype: Any) -> None:
    def blow_up(model: dict[str, np.ndarray]) -> None:
        model["fc1.weight"] *= dtype(1e30)

    monitor = _run(tmp_path / "run.jsonl", blow_up, at=1, steps=1, dtype=dtype)
    assert monitor.diverged is not None and monitor.diverged.step == 1
    assert "fc1" in monitor.diverged.message
    assert _logged(tmp_path / "run.jsonl") == [(1, "divergence")]


def test_a_norm_grown_by_orders_of_magnitude_fires_and_a_tenfold_growth_does_not(tmp_path: Path) -> None:
    def grow(factor: float) -> Change:
        def change(model: dict[str, np.ndarray]) -> None:
            model["fc2.weight"] *= factor

        return change

    monitor = _run(tmp_path / "big.jsonl", grow(100.0), at=3, steps=5)  # 100-fold at step 3, 10^4-fold at step 4
    assert monitor.diverged is not None and monitor.diverged.step == 4
    assert "fc2" in monitor.diverged.message and "grew" in monitor.diverged.message
    assert _run(tmp_path / "ten.jsonl", grow(10.0), at=3, steps=3).warnings == []


def test_every_layer_failing_fires(tmp_path: Path) -> None:
    monitor = _run(tmp_path / "run.jsonl", _zero, at=2, steps=3)
    assert monitor.diverged is not None and monitor.diverged.step == 2
    assert "every analyzed layer failed" in monitor.diverged.message and "all zero" in monitor.diverged.message


def test_divergence_can_be_turned_off(tmp_path: Path) -> None:
    monitor = _run(tmp_path / "run.jsonl", _nan, at=2, divergence=None)
    assert monitor.warnings == [] and monitor.diverged is None and not monitor.should_stop


def test_each_rule_fires_once_and_every_firing_is_logged_and_passed_on(tmp_path: Path) -> None:
    seen: list[EarlyWarning] = []
    rule = FractionBelow(fraction=0.01, alpha=100.0, min_evals=0)
    monitor = _run(tmp_path / "run.jsonl", _nan, at=3, warn=[rule], on_warning=seen.append)
    assert [(w.step, w.rule) for w in monitor.warnings] == [(1, "fraction_below"), (3, "divergence")]
    assert seen == monitor.warnings and monitor.warning == monitor.warnings[0]
    assert _logged(tmp_path / "run.jsonl") == [(1, "fraction_below"), (3, "divergence")]
    assert monitor.stop_reason("divergence") == monitor.diverged
    assert monitor.stop_reason("warning") == monitor.warnings[0]
    assert monitor.stop_reason(None) is None


def test_an_unknown_stop_condition_is_refused(tmp_path: Path) -> None:
    with ww_core.Monitor() as monitor, pytest.raises(ValueError, match="'divergence', 'warning'"):
        monitor.stop_reason("loss")  # type: ignore[arg-type]


def _rows(**columns: list[Any]) -> History:
    """A history of one layer per column list entry at each step (steps 10, 20, ...)."""
    history = History()
    steps = len(next(iter(columns.values())))
    for i in range(steps):
        rows = [{"layer_id": 0, "name": "a", "num_evals": 100, "status": "success", **{k: v[i] for k, v in columns.items()}}]
        history.add_snapshot({"step": 10 * (i + 1), "summary": {}}, rows)
    return history


def test_divergence_scan_reads_each_sign_from_the_rows() -> None:
    assert Divergence().scan(_rows(log_norm=[2.0, 3.0, 7.9], sv_max=[1.0, 1.0, 1.0])) is None
    grown = Divergence().scan(_rows(log_norm=[2.0, 3.0, 8.0], sv_max=[1.0, 1.0, 1.0]))
    assert grown is not None and grown.step == 30 and "grew 1e+03-fold" in grown.message
    assert Divergence(orders=1.0).scan(_rows(log_norm=[2.0, 4.0], sv_max=[1.0, 1.0])) == EarlyWarning(
        20, "divergence", "layer 'a': Frobenius norm grew 10-fold since its first analyzed step"
    )
    huge = Divergence().scan(_rows(log_norm=[40.0], sv_max=[2e19]))
    assert huge is not None and huge.step == 10 and "float32" in huge.message
    failed = _rows(status=["success", "failed"], error=["", "layer 'a': weights contain 3 NaN/Inf value(s)"], log_norm=[2.0, math.nan])
    assert Divergence().scan(failed) == EarlyWarning(20, "divergence", "layer 'a': weights contain 3 NaN/Inf value(s)")
    with pytest.raises(ValueError, match="orders"):
        Divergence(orders=0)


def test_alpha_rules_look_only_at_layers_with_enough_eigenvalues() -> None:
    history = History()
    for step, small_alpha in ((1, 3.0), (2, 1.5), (3, 1.4), (4, 1.6), (5, 1.7)):
        rows = [
            {"layer_id": 0, "name": "big", "num_evals": MIN_EVALS, "alpha": 3.0, "status": "success"},
            {"layer_id": 1, "name": "out", "num_evals": 10, "alpha": small_alpha, "status": "success"},
        ]
        history.add_snapshot({"step": step, "summary": {"alpha": (3.0 + small_alpha) / 2}}, rows)
    assert FractionBelow(fraction=0.5).scan(history) is None
    assert FractionBelow(fraction=0.5, min_evals=10).scan(history) is not None
    assert SummaryTurnsUp(patience=2).scan(history) is None  # the mean over "big" alone never moves
    assert SummaryTurnsUp(patience=2, min_evals=0).scan(history) is not None


def _diverged_log(tmp_path: Path, **kwargs: Any) -> Path:
    """A run whose every layer is NaN at every snapshot (the lr-0.5 run of issue 22 failed the same way)."""
    log = tmp_path / "run.jsonl"
    _run(log, lambda model: [array.fill(np.nan) for array in model.values()], at=1, steps=3, **kwargs)
    return log


def test_load_history_reports_a_logged_divergence(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = _diverged_log(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ww_core"):
        history = load_history(log)
    assert "diverged at step 1" in caplog.text and str(log) in caplog.text
    found = divergence_of(history)
    assert found is not None and found.step == 1


@pytest.mark.parametrize("logged", [True, False], ids=["logged", "found-in-the-rows"])
def test_plot_history_shows_the_divergence_instead_of_empty_axes(tmp_path: Path, logged: bool) -> None:
    pytest.importorskip("matplotlib")
    from ww_core.views import plots

    log = _diverged_log(tmp_path, **({} if logged else {"divergence": None}))
    figure = plots.plot_history(log)
    layers_ax = figure.axes[0]
    texts = " ".join(text.get_text() for text in layers_ax.texts)
    assert "diverged at step 1" in texts and "NaN/Inf" in texts
    assert any(line.get_label() == "warning: divergence" for line in layers_ax.get_lines())


@pytest.mark.parametrize("logged", [True, False], ids=["logged", "found-in-the-rows"])
def test_history_page_and_cli_name_the_divergence(tmp_path: Path, logged: bool, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    log = _diverged_log(tmp_path, **({} if logged else {"divergence": None}))
    assert main(["plot-history", str(log), "-o", str(tmp_path / "h.html")]) == 0
    page = (tmp_path / "h.html").read_text()
    assert "Training diverged at step 1" in page and "NaN/Inf" in page
    assert "<li>none</li>" not in page
    assert "diverged at step 1" in capsys.readouterr().err
