"""The training monitor: snapshots are real copies, every step is analyzed or recorded as skipped, logs survive a kill."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ww_core
from ww_core.training import monitor as monitor_module
from ww_core.training.history import History, load_history
from ww_core.training.signals import EarlyWarning, FractionBelow, SummaryTurnsUp, band_exits, first_warning
from ww_core.training.snapshot import take_snapshot


def _numbers(row: dict[str, Any]) -> list[str]:
    """Every float column of a row: all the metrics it has."""
    return [key for key, value in row.items() if isinstance(value, float)]


def _close(got: float, want: float) -> bool:
    return (math.isnan(got) and math.isnan(want)) or math.isclose(got, want, rel_tol=0, abs_tol=1e-10)


def _model(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "fc1.weight": rng.standard_t(3, size=(96, 48)),
        "conv.weight": rng.standard_t(4, size=(12, 8, 3, 3)),
        "fc2.weight": rng.standard_normal((40, 96)),
    }


def _train_step(model: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """Change the weights in place, as an optimizer does."""
    for array in model.values():
        array += 0.3 * rng.standard_t(3, size=array.shape)


def _same_rows(mine: list[dict[str, Any]], reference: list[dict[str, Any]]) -> None:
    assert [row["name"] for row in mine] == [row["name"] for row in reference]
    for got, want in zip(mine, reference):
        assert len(_numbers(want)) > 10
        for metric in _numbers(want):
            assert _close(got[metric], want[metric]), (got["name"], metric)


def test_series_equal_analyze_of_checkpoints_at_those_steps(tmp_path: Path) -> None:
    model, rng, checkpoints = _model(), np.random.default_rng(1), {}
    with ww_core.Monitor(every=3, log=tmp_path / "run.jsonl", when_behind="wait") as monitor:
        for step in range(1, 13):
            _train_step(model, rng)
            if monitor.observe(model, step=step):
                checkpoints[step] = {name: array.copy() for name, array in model.items()}
    history = load_history(tmp_path / "run.jsonl")
    assert history.steps == [3, 6, 9, 12] == sorted(checkpoints)
    for step, weights in checkpoints.items():
        _same_rows(history.rows[step], ww_core.analyze(weights).analyzed)
        assert history.snapshots[step]["summary"]["alpha"] == pytest.approx(ww_core.analyze(weights).summary["alpha"], abs=1e-10)
    assert list(history.layer_series()) == ["fc1", "conv", "fc2"]
    assert history.layer_series("alpha")["fc1"].steps.tolist() == [3, 6, 9, 12]
    assert monitor.history.steps == history.steps


def test_snapshot_is_a_private_copy_of_live_weights() -> None:
    model = _model()
    before = ww_core.analyze({name: array.copy() for name, array in model.items()})
    snapshot = take_snapshot(model)
    for array in model.values():
        array *= -3.0
        array += 1.0
    _same_rows(ww_core.analyze(snapshot).analyzed, before.analyzed)
    assert all(not layer.load().flags.writeable for layer in snapshot.layers)


def test_layers_skipped_by_the_options_are_not_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = take_snapshot(_model(), ww_core.AnalysisOptions(layers=("fc1",)))
    with pytest.raises(ValueError, match="not copied"):
        next(layer for layer in snapshot.layers if layer.name == "fc2").load()
    assert [row["name"] for row in ww_core.analyze(snapshot, layers=["fc1"]).analyzed] == ["fc1"]


class _Gate:
    """Holds the background analysis until released, so a test controls when it falls behind."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        real = monitor_module.analyze

        def held(*args: Any, **kwargs: Any) -> Any:
            self.started.set()
            assert self.release.wait(30), "test never released the analysis"
            return real(*args, **kwargs)

        monkeypatch.setattr(monitor_module, "analyze", held)


def _observe_in_thread(monitor: ww_core.Monitor, model: dict[str, np.ndarray], steps: range) -> list[bool]:
    """observe() each step from another thread; fails instead of hanging if observe ever blocks."""
    taken: list[bool] = []
    runner = threading.Thread(target=lambda: taken.extend(monitor.observe(model, step=s) for s in steps))
    runner.start()
    runner.join(30)
    assert not runner.is_alive(), "observe() stalled the training loop"
    return taken


def test_falling_behind_skips_snapshots_and_records_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = _Gate(monkeypatch)
    monitor = ww_core.Monitor(every=1, log=tmp_path / "run.jsonl", max_pending=1)
    model = _model()
    assert _observe_in_thread(monitor, model, range(1, 2)) == [True]
    assert gate.started.wait(30)
    assert _observe_in_thread(monitor, model, range(2, 6)) == [True, False, False, False]
    gate.release.set()
    monitor.close()
    history = load_history(tmp_path / "run.jsonl")
    assert history.steps == [1, 2]
    assert [record["step"] for record in history.skipped] == [3, 4, 5] == monitor.skipped_steps
    assert all("analysis behind" in record["reason"] for record in history.skipped)


def test_close_without_waiting_records_the_pending_snapshots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = _Gate(monkeypatch)
    monitor = ww_core.Monitor(every=1, log=tmp_path / "run.jsonl", max_pending=2)
    _observe_in_thread(monitor, _model(), range(1, 2))
    assert gate.started.wait(30)
    _observe_in_thread(monitor, _model(), range(2, 4))
    assert monitor.pending == 2
    threading.Timer(0.2, gate.release.set).start()
    monitor.close(wait=False)
    history = load_history(tmp_path / "run.jsonl")
    assert history.steps == [1]
    assert [(r["step"], r["reason"]) for r in history.skipped] == [(step, "monitor closed before analysis") for step in (2, 3)]
    with pytest.raises(RuntimeError, match="after close"):
        monitor.observe(_model(), step=4)


def test_context_manager_finishes_pending_work_and_an_error_does_not_lose_it(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        with ww_core.Monitor(every=1, log=tmp_path / "run.jsonl", when_behind="wait") as monitor:
            monitor.observe(_model(), step=1)
            raise KeyError("training crashed")
    history = load_history(tmp_path / "run.jsonl")
    assert history.steps + [r["step"] for r in history.skipped] == [1]


def test_a_failed_snapshot_is_recorded_and_the_monitor_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = monitor_module.analyze, []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(monitor_module, "analyze", flaky)
    with ww_core.Monitor(every=1, log=tmp_path / "run.jsonl", when_behind="wait") as monitor:
        monitor.observe(_model(), step=1)
        monitor.observe(_model(), step=2)
    history = load_history(tmp_path / "run.jsonl")
    assert history.steps == [2]
    assert history.errors[0]["step"] == 1 and "MemoryError: out of memory" in history.errors[0]["error"]
    assert monitor.errors and "step 1" in monitor.errors[0]


def test_steps_between_intervals_take_no_snapshot() -> None:
    with ww_core.Monitor(every=5, when_behind="wait") as monitor:
        taken = [monitor.observe(_model()) for _ in range(10)]
    assert taken == [False] * 4 + [True] + [False] * 4 + [True]
    assert monitor.history.steps == [5, 10]


@pytest.mark.parametrize("kwargs", [{"every": 0}, {"every": 1.5}, {"max_pending": 0}, {"when_behind": "block"}, {"alpha": 3}])
def test_bad_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        ww_core.Monitor(**kwargs)


def test_a_torn_last_line_is_ignored_and_the_next_run_starts_on_a_fresh_line(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with ww_core.Monitor(every=1, log=path, when_behind="wait") as monitor:
        monitor.observe(_model(0), step=1)
    text = path.read_text()
    path.write_text(text + text.splitlines()[1][:40])  # killed while writing the next layer line
    torn = load_history(path)
    assert torn.steps == [1] and torn.dropped_lines == 1
    with ww_core.Monitor(every=1, log=path, when_behind="wait") as monitor:
        monitor.observe(_model(1), step=2)
    resumed = load_history(path)
    assert resumed.steps == [1, 2] and resumed.dropped_lines == 1
    _same_rows(resumed.rows[2], ww_core.analyze(_model(1)).analyzed)


def test_layer_lines_without_their_snapshot_line_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with ww_core.Monitor(every=1, log=path, when_behind="wait") as monitor:
        monitor.observe(_model(0), step=1)
        monitor.observe(_model(1), step=2)
    lines = path.read_text().splitlines()
    cut = [line for line in lines if not ('"snapshot"' in line and '"step": 2' in line)]
    path.write_text("\n".join(cut) + "\n")
    history = load_history(path)
    assert history.steps == [1] and history.dropped_lines == 3


def test_a_file_that_is_no_monitor_log_is_refused_with_its_name(tmp_path: Path) -> None:
    other = tmp_path / "results.jsonl"
    other.write_text(json.dumps({"key": "x", "rows": []}) + "\n")
    with pytest.raises(ValueError, match=r"results\.jsonl:1: not a ww monitor record"):
        load_history(other)
    garbage = tmp_path / "notes.txt"
    garbage.write_text("hello\nworld\n")
    with pytest.raises(ValueError, match=r"notes\.txt: no ww monitor record"):
        load_history(garbage)
    with pytest.raises(FileNotFoundError, match=r"missing\.jsonl"):
        load_history(tmp_path / "missing.jsonl")


def _history(alphas: dict[str, list[float]]) -> History:
    history = History()
    steps = len(next(iter(alphas.values())))
    for i in range(steps):
        rows = [
            {"layer_id": j, "name": name, "num_evals": 100, "alpha": values[i], "status": "success"}
            for j, (name, values) in enumerate(alphas.items())
        ]
        history.add_snapshot({"step": 10 * (i + 1), "summary": {"alpha": float(np.mean([row["alpha"] for row in rows]))}}, rows)
    return history


def test_band_exits_count_only_leaving_the_band() -> None:
    history = _history({"a": [8.0, 5.0, 3.0, 1.8], "b": [9.0, 7.0, 6.5, 6.2], "c": [4.0, math.nan, 6.5, 5.0]})
    assert band_exits(history) == {"a": 40, "b": None, "c": 30}


def test_fraction_below_fires_at_the_first_step_reaching_the_share() -> None:
    history = _history({"a": [3.0, 1.9, 1.5], "b": [3.0, 3.0, 1.8], "c": [3.0, 3.0, 3.0]})
    warning = FractionBelow(fraction=0.6).scan(history)
    assert warning == EarlyWarning(30, "fraction_below", "2 of 3 layers (those with >= 50 eigenvalues) have alpha < 2 (threshold 60%)")
    assert FractionBelow(fraction=1.0).scan(history) is None
    with pytest.raises(ValueError):
        FractionBelow(fraction=0)


def test_summary_turns_up_needs_patience_above_the_minimum() -> None:
    history = _history({"a": [5.0, 4.0, 3.0, 3.2, 2.9, 3.3, 3.4]})
    warning = SummaryTurnsUp(patience=2, min_rise=0.05).scan(history)
    assert warning is not None and warning.step == 70 and "minimum 2.9 (step 50)" in warning.message
    assert SummaryTurnsUp(patience=3).scan(history) is None
    assert first_warning(history, [SummaryTurnsUp(patience=3), SummaryTurnsUp(patience=1)]) == SummaryTurnsUp(patience=1).scan(history)


def test_a_fired_rule_sets_should_stop_and_is_logged(tmp_path: Path) -> None:
    seen: list[EarlyWarning] = []
    rule = FractionBelow(fraction=0.01, alpha=100.0, min_evals=0)
    with ww_core.Monitor(every=1, log=tmp_path / "run.jsonl", when_behind="wait", warn=rule, on_warning=seen.append) as monitor:
        monitor.observe(_model(), step=1)
    assert monitor.should_stop and seen == [monitor.warning]
    history = load_history(tmp_path / "run.jsonl")
    assert [(w["step"], w["rule"]) for w in history.warnings] == [(1, "fraction_below")]


def test_close_from_the_warning_callback_stops_observing_without_deadlock(tmp_path: Path) -> None:
    monitor = ww_core.Monitor(
        every=1, log=tmp_path / "run.jsonl", when_behind="wait", warn=FractionBelow(fraction=0.01, alpha=100.0, min_evals=0)
    )
    closed_by_callback = threading.Event()

    def close_on_warning(warning: EarlyWarning) -> None:
        monitor.close()
        closed_by_callback.set()

    monitor.on_warning = close_on_warning
    monitor.observe(_model(), step=1)
    assert closed_by_callback.wait(30), "close() from the callback never returned"
    closer = threading.Thread(target=monitor.close)
    closer.start()
    closer.join(30)
    assert not closer.is_alive(), "close() deadlocked"
    assert monitor.history.steps == [1] and monitor.should_stop and not monitor.errors
    with pytest.raises(RuntimeError, match="after close"):
        monitor.observe(_model(), step=2)


@pytest.mark.parametrize("content", [b"\x08\x00\x00\x00\x00\x00\x00\x00{}", b'{"key": "x", "rows": []}\n', b"step,alpha\n1,3.0\n"])
def test_a_log_that_is_another_file_is_refused_and_left_untouched(tmp_path: Path, content: bytes) -> None:
    """Monitor(log="model.safetensors") appended JSON lines to the model (a cache or CSV named by mistake, too)."""
    other = tmp_path / "other"
    other.write_bytes(content)
    with pytest.raises(ValueError, match="not a ww monitor log") as caught:
        ww_core.Monitor(every=1, log=other)
    assert str(other) in str(caught.value)
    assert other.read_bytes() == content
