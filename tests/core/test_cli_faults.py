"""Faults around a run lose nothing: unwritable outputs, disk full, Ctrl-C, a closed pipe, a failing cache."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ww_core
from ww_core import cli
from ww_core.cli import main
from ww_core.pipeline import analysis
from ww_core.pipeline.cache import ResultsCache
from ww_core.results import outputs

from ..interrupt import python_module


def _model(path: Path, layers: int = 3, shape: tuple[int, int] = (60, 30)) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, **{f"layer{i:03d}": rng.standard_normal(shape).astype(np.float32) for i in range(layers)})
    return path


def _disk_full(*args: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_an_unwritable_output_is_refused_before_analyzing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "analyze", lambda *a, **k: pytest.fail("analyzed although the output cannot be written"))
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    for flag in ("--csv", "--json", "--plot"):
        assert main(["demo", flag, str(not_a_folder / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ww: error: ") and str(not_a_folder) in err and err.count("\n") == 1


def test_a_read_only_folder_is_refused_before_analyzing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "analyze", lambda *a, **k: pytest.fail("analyzed although the output cannot be written"))

    def read_only(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(outputs.tempfile, "TemporaryFile", read_only)
    assert main(["demo", "--csv", str(tmp_path / "rows.csv")]) == 2
    assert capsys.readouterr().err == f"ww: error: cannot write {tmp_path / 'rows.csv'}: Permission denied\n"


def test_disk_full_after_the_analysis_still_prints_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rows.json").write_text("previous")
    monkeypatch.setattr(outputs.os, "fsync", _disk_full)
    assert main(["demo", "--csv", str(tmp_path / "rows.csv"), "--json", str(tmp_path / "rows.json")]) == 2
    captured = capsys.readouterr()
    assert "fc1" in captured.out and "summary:" in captured.out
    assert captured.err.splitlines() == [
        f"ww: error: cannot write {tmp_path / 'rows.csv'}: No space left on device",
        f"ww: error: cannot write {tmp_path / 'rows.json'}: No space left on device",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.json"]  # no half file, no temp file
    assert (tmp_path / "rows.json").read_text() == "previous"


def test_plots_are_never_left_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(outputs.os, "fsync", _disk_full)
    assert main(["demo", "--plot", str(tmp_path / "plots")]) == 2
    assert "summary:" in capsys.readouterr().out
    assert list((tmp_path / "plots").iterdir()) == []


def test_results_exports_write_whole_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = ww_core.analyze({"fc": np.random.default_rng(0).standard_normal((50, 20))})
    monkeypatch.setattr(outputs.os, "fsync", _disk_full)
    with pytest.raises(OSError):
        results.to_csv(tmp_path / "rows.csv")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_exits_130_with_one_line_naming_the_cache(tmp_path: Path) -> None:
    model = _model(tmp_path / "big.npz", layers=150, shape=(400, 300))
    cache = tmp_path / "run.jsonl"
    # --exact --randomize: ~4 s of work after the first rows, so the signal lands mid-run on a slow or busy machine too
    # (without them the whole run takes ~1 s, leaving under a second for the signal to land mid-run)
    command = python_module("ww_core", "analyze", str(model), "--cache", str(cache), "--workers", "1", "--exact", "--randomize")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (cache.exists() and cache.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    cached = cache.read_text().count("\n")
    assert err == f"ww: interrupted; {cached} layers cached in {cache}\n"
    assert out == ""


def test_the_api_still_raises_keyboard_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(analysis, "run_layer", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ww_core.analyze({"fc": np.ones((20, 10))}, workers=1)


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    model = _model(tmp_path / "m.npz")
    for extra in ([], ["--csv", "-"]):
        process = subprocess.Popen(
            [sys.executable, "-m", "ww_core", "analyze", str(model), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the reader went away, as `| head -1` does after its line
        err = process.stderr.read().decode()
        assert process.wait(timeout=60) == 141
        assert err == ""


def test_a_cache_write_failure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def failing_put(self: ResultsCache, *args: object) -> None:
        raise OSError(errno.ENOSPC, f"cannot append to results cache {self.path}: No space left on device")

    monkeypatch.setattr(ResultsCache, "put", failing_put)
    assert main(["demo", "--cache", str(tmp_path / "c.jsonl"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "c.jsonl" in err and "No space left" in err


def test_stdout_is_written_in_place_of_a_file_named_dash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.chdir(tmp_path)
    for argv in (["demo", "--csv", "-"], ["demo", "--json", "-"], ["describe", "--csv", "-"], ["describe", "--json", "-"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert out.startswith(("layer_id,", "{")) and "summary:" not in out
    assert not (tmp_path / "-").exists()
    assert main(["demo", "--csv", "-", "--json", "-"]) == 2
    assert capsys.readouterr().err == "ww: error: only one output can go to stdout ('-'); write the others to files\n"


def test_a_full_disk_under_the_cache_still_shows_the_rows_so_far(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ww_core.pipeline.cache import CacheWriteError

    real_put = ResultsCache.put

    def put_twice(self: ResultsCache, *args: object) -> None:
        if self.written >= 2:
            raise CacheWriteError(self.path, self.written, OSError(errno.ENOSPC, "No space left on device"))
        real_put(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ResultsCache, "put", put_twice)
    cache = tmp_path / "c.jsonl"
    assert main(["demo", "--cache", str(cache), "--workers", "1"]) == 2
    captured = capsys.readouterr()
    assert "conv1" in captured.out and "conv2" in captured.out and "summary:" in captured.out
    assert captured.err.count("\n") == 1 and "No space left" in captured.err and "2 layers cached" in captured.err


@pytest.mark.parametrize(
    "command",
    [
        ["analyze", "{model}", "--csv", "{model}"],
        ["analyze", "{other}", "--base", "{model}", "--json", "{model}"],
        ["analyze", "{other}", "--cache", "{cache}", "--csv", "{cache}"],
        ["describe", "{model}", "--json", "{model}"],
        ["compare", "{other}", "{model}", "--csv", "{model}"],
        ["report", "{model}", "-o", "{model}"],
    ],
    ids=["analyze", "base", "cache", "describe", "compare", "report"],
)
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """`ww analyze model.npz --csv model.npz` replaced the model with its own CSV rows."""
    model, other = _model(tmp_path / "model.npz"), _model(tmp_path / "other.npz")
    cache = tmp_path / "rows.jsonl"
    ww_core.analyze(other, cache=cache, workers=1)
    before = {path: path.read_bytes() for path in (model, other, cache)}
    monkeypatch.chdir(tmp_path)
    argv = [part.format(model="./model.npz" if i > 2 else str(model), other=str(other), cache=str(cache)) for i, part in enumerate(command)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ww: error:") and "would overwrite" in err[0]
    assert {path: path.read_bytes() for path in before} == before


def test_plots_left_out_for_cached_rows_are_named_not_silent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A resumed run with --plot drew only correlation_flow.png with exit 0 and no word (the cache keeps no eigenvalues).

    A report needs only the histogram the cache keeps: it draws every ESD and says nothing (test_report_surface.py).
    """
    pytest.importorskip("matplotlib")
    model, cache = _model(tmp_path / "model.npz"), tmp_path / "rows.jsonl"
    assert main(["analyze", str(model), "--cache", str(cache), "-q"]) == 0
    capsys.readouterr()
    argv = ["analyze", str(model), "--plot", str(tmp_path / "plots"), "-q"]
    assert main([*argv, "--cache", str(cache)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ww: warning: 3 layers restored from the cache") and "ESD plots are left out" in err[0]
    assert main(argv) == 0  # without the cache: every ESD, no warning
    assert capsys.readouterr().err == ""
    assert main(["report", str(model), "-o", str(tmp_path / "r.html"), "--cache", str(cache)]) == 0
    assert capsys.readouterr().err == ""


def test_a_model_whose_every_layer_failed_is_an_error_after_its_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every layer NaN or zero printed failed rows and an empty summary with exit 0, as if the model had been judged."""
    np.savez(tmp_path / "broken.npz", a=np.full((50, 40), np.nan), b=np.zeros((50, 40)))
    assert main(["analyze", str(tmp_path / "broken.npz"), "--csv", str(tmp_path / "rows.csv")]) == 2
    captured = capsys.readouterr()
    assert "failed" in captured.out and (tmp_path / "rows.csv").exists()  # the reasons are still shown and written
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ww: error: no layer of") and "2 failed" in err[0]
