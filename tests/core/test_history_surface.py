"""``ww plot-history`` and ``History`` in the hands of a newcomer: one-line errors, a short repr, what -o run.html needs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import ww_core
from ww_core.cli import main


@pytest.fixture(scope="module")
def run_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    model = {"fc1.weight": rng.standard_t(3, size=(64, 32)), "fc2.weight": rng.standard_normal((32, 64))}
    path = tmp_path_factory.mktemp("history") / "run.jsonl"
    with ww_core.Monitor(every=1, log=path, when_behind="wait") as monitor:
        for step in range(1, 4):
            model["fc1.weight"] += rng.standard_t(3, size=(64, 32))
            monitor.observe(model, step=step)
    return path


def test_an_unknown_metric_is_one_line(run_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    assert main(["plot-history", str(run_log), "--metric", "nosuch", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ww: error:") and "'nosuch'" in err and "alpha" in err
    assert "'name'" not in err  # the metrics offered are numbers
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("metric", ["warning", "status", "name"])
def test_a_text_column_is_refused_not_drawn_as_empty_axes(
    run_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], metric: str
) -> None:
    pytest.importorskip("matplotlib")
    assert main(["plot-history", str(run_log), "--metric", metric, "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"'{metric}'" in err and "not a number" in err
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(ValueError, match="not a number"):
        ww_core.load_history(run_log).layer_series(metric)


def test_history_repr_is_short(run_log: Path) -> None:
    history = ww_core.load_history(run_log)
    text = repr(history)
    assert len(text) < 200 and text.startswith("History(") and "3 steps" in text and "2 layers" in text
    assert str(history) == text


def test_html_without_matplotlib_says_what_it_needs(
    run_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    for name in [n for n in sys.modules if n.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    assert main(["plot-history", str(run_log), "-o", str(tmp_path / "run.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "matplotlib" in err and ".html" in err and "ww-core[plot]" in err
    with pytest.raises(SystemExit):
        main(["plot-history", "--help"])
    assert "matplotlib" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "said"), [(["nosuch.jsonl"], "no such monitor log"), (["RUN", "--metric", "nosuch"], "'nosuch'")])
def test_without_matplotlib_a_wrong_log_or_metric_is_said_first(
    run_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    """Without matplotlib, a missing log or an unknown metric was answered "install matplotlib": a newcomer
    installed it only to learn that the log was wrong."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    for name in [n for n in sys.modules if n.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.chdir(tmp_path)
    assert main(["plot-history", *[str(run_log) if a == "RUN" else a for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err and "matplotlib" not in err, err
