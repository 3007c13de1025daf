"""Drawing a monitor's log: ``plots.plot_history`` and ``ww plot-history``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import ww_core
from ww_core.cli import main
from ww_core.training.signals import FractionBelow

pytest.importorskip("matplotlib")

from ww_core.views import plots


@pytest.fixture
def run_log(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    model = {"fc1.weight": rng.standard_t(3, size=(64, 32)), "fc2.weight": rng.standard_normal((32, 64))}
    path = tmp_path / "run.jsonl"
    with ww_core.Monitor(every=1, log=path, when_behind="wait", warn=FractionBelow(fraction=0.01, alpha=100.0, min_evals=0)) as monitor:
        for step in range(1, 5):
            model["fc1.weight"] += rng.standard_t(3, size=(64, 32))
            monitor.observe(model, step=step)
    return path


def test_plot_history_draws_each_layer_and_the_summary(run_log: Path) -> None:
    figure = plots.plot_history(run_log)
    layers_ax, summary_ax = figure.axes
    lines = {line.get_label(): line for line in layers_ax.get_lines()}
    assert list(lines)[:2] == ["fc1", "fc2"]
    history = ww_core.load_history(run_log)
    np.testing.assert_array_equal(lines["fc1"].get_ydata(), history.layer_series()["fc1"].values)
    summary = next(line for line in summary_ax.get_lines() if line.get_label() == "mean alpha")
    np.testing.assert_array_equal(summary.get_xdata(), [1, 2, 3, 4])
    assert any(label.startswith("warning: fraction_below") for label in lines)


def test_unknown_metric_is_refused_naming_the_known_ones(run_log: Path) -> None:
    with pytest.raises(KeyError, match="no layer has metric 'alhpa'"):
        ww_core.load_history(run_log).plot("alhpa")


def test_cli_plot_history_writes_a_png(run_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot-history", str(run_log)]) == 0
    assert run_log.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert main(["plot-history", str(run_log), "-o", str(tmp_path / "d.png"), "--metric", "log_norm"]) == 0
    assert (tmp_path / "d.png").is_file() and "wrote" in capsys.readouterr().out
    assert main(["plot-history", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such monitor log" in capsys.readouterr().err


def test_cli_plot_history_writes_the_format_its_suffix_names(run_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot-history", str(run_log), "-o", str(tmp_path / "h.svg")]) == 0
    assert (tmp_path / "h.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    assert main(["plot-history", str(run_log), "-o", str(tmp_path / "h.html")]) == 0
    page = (tmp_path / "h.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert not re.search(r"(src|href)=\"https?:", page), "the page must open offline"
    for text in ("fc1", "fc2", "fraction_below", "alpha left the 2–6 band"):
        assert text in page
    assert main(["plot-history", str(run_log), "-o", str(tmp_path / "h.jpg")]) == 2
    assert "h.jpg: plot-history writes .png, .svg or .html" in capsys.readouterr().err


def test_cli_plot_history_of_a_log_without_snapshots_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["plot-history", str(empty), "-o", str(tmp_path / "h.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no analyzed snapshot" in err[0] and "empty.jsonl" in err[0]
    assert not (tmp_path / "h.png").exists()
