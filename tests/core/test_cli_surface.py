"""What a newcomer sees in the terminal: the table at 80 and 200 columns (snapshots), selected rows, the legend, the verdict, help.

Snapshots live in tests/core/snapshots/; ``WW_UPDATE_SNAPSHOTS=1`` rewrites them (read the diff before committing).
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pytest

from ww_core.cli import main
from ww_core.pipeline.progress import ProgressBar

SNAPSHOTS = Path(__file__).parent / "snapshots"
LONG = "model.encoder.layers.0.self_attention.query_key_value"


def _model(folder: Path) -> Path:
    """Long and short names, a heavy-tailed and a near-random layer, a failed (NaN) and a skipped (tiny) one."""
    rng = np.random.default_rng(0)
    layers = {
        f"{LONG}.weight": rng.standard_t(3, size=(96, 32)),
        "model.encoder.layers.0.mlp.dense_h_to_4h.weight": rng.standard_normal((128, 32)),
        "head.weight": rng.standard_t(2.5, size=(40, 32)),
        "broken.weight": np.full((40, 32), np.nan),
        "tiny.weight": rng.standard_normal((6, 3)),
    }
    np.savez(folder / "model.npz", **layers)
    return folder / "model.npz"


@pytest.fixture
def in_model_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test model in the current folder, so the table's ``source:`` line is the same in every run."""
    _model(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _matches_snapshot(text: str, name: str) -> None:
    text = re.sub(r"ww-core \d+(\.\d+)+[\w.+-]*", "ww-core <version>", text)  # the source line names the reader's version
    path = SNAPSHOTS / name
    if os.environ.get("WW_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; WW_UPDATE_SNAPSHOTS=1 rewrites it"


@pytest.mark.parametrize("width", [80, 200])
@pytest.mark.parametrize("command", ["analyze", "describe"])
def test_table_snapshot(
    in_model_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], width: int, command: str
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    main([command, "model.npz"])
    out = capsys.readouterr().out
    assert all(len(line) <= width for line in out.splitlines()), out
    _matches_snapshot(out, f"{command}_{width}.txt")


def test_names_use_the_terminal_width(in_model_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A 250-column terminal shows a 53-character name whole (names were capped at 32 whatever the width)."""
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["analyze", "model.npz"]) == 0
    assert LONG in capsys.readouterr().out


def test_names_are_never_cut_when_not_a_terminal(
    in_model_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert main(["analyze", "model.npz"]) == 0
    out = capsys.readouterr().out
    assert LONG in out and "…" not in out
    assert out.splitlines()[1].split()[:4] == ["layer_id", "name", "layer_type", "N"]  # nothing dropped to fit 80 columns


def test_layers_prints_the_selected_rows_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--layers", "1", "2"]) == 0
    table = capsys.readouterr().out.split("summary:")[0]
    assert [line.split()[1] for line in table.splitlines()[2:] if line.strip()] == ["conv2", "fc1"]
    assert "excluded" not in table
    assert main(["demo", "--layers", "1", "2", "-v"]) == 0
    assert "excluded by layers filter" in capsys.readouterr().out


def test_describe_keeps_shape_columns_and_wraps_the_reason(
    in_model_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    assert main(["describe", "model.npz"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]  # after the source line
    assert {"layer_type", "N", "M", "reason"} <= set(lines[0].split())
    assert len(lines) > 6  # the tiny layer's reason wraps under its column


def test_the_legend_lists_only_the_warnings_that_occur(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0  # two layers over-trained, none under-trained or degenerate
    legend = capsys.readouterr().out.split("warnings:")[1]
    assert "over-trained: alpha < 2" in legend
    assert "under-trained" not in legend and "degenerate" not in legend


def test_analyze_ends_with_a_one_line_verdict(
    in_model_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # not a terminal: the verdict is one line (a terminal wraps it to its width)
    assert main(["analyze", "model.npz"]) == 0
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert last.startswith("verdict: 2 of 3 analyzed layers have alpha in 2–6"), last
    assert "under-trained" in last and "dense_h_to_4h" in last and "1 failed" in last


def test_the_demo_explains_its_flags(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """99.1 % accurate, yet two layers flagged: the demo says what that means for a small, well-fit network."""
    monkeypatch.delenv("COLUMNS", raising=False)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out.rstrip().splitlines()
    assert out[-1].startswith("verdict: 3 of 5 analyzed layers have alpha in 2–6") and "over-trained (conv2, fc3)" in out[-1]
    note = " ".join(out[out.index(next(line for line in out if line.startswith("demo:"))) : -1])
    assert "99.1%" in note and "held-out" in note and "10 eigenvalues" in note


@pytest.mark.parametrize("spelling", ["tpl", "Tpl", "e_tpl", "power_LAW"])
def test_fit_is_case_insensitive(spelling: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--fit", spelling, "--layers", "fc1", "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_the_progress_bar_gives_an_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 104.0, 108.0])
    monkeypatch.setattr("ww_core.pipeline.progress.time.monotonic", lambda: next(clock))
    stream = io.StringIO()
    bar = ProgressBar(4, enabled=True, stream=stream)
    bar.advance("fc1")  # 1 of 4 after 4 s: 12 s to go
    assert "ETA 12s" in stream.getvalue()
    bar.advance("fc2")  # 2 of 4 after 8 s: 8 s to go
    assert stream.getvalue().rstrip().endswith("ETA 8s")


def test_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    examples = capsys.readouterr().out.split("examples:")[1]
    lines = [line.strip() for line in examples.splitlines() if line.strip().startswith("ww ")]
    assert 3 <= len(lines) <= 4 and any(line.startswith("ww demo") for line in lines)


def test_analyze_without_a_path_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    """It ran the bundled demo silently; ``ww demo`` does that by name."""
    assert main(["analyze"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ww: error:" in err and "path" in err and "ww demo" in err
    assert main(["demo", "-q"]) == 0
