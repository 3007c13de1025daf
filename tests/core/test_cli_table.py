"""What the terminal shows explains itself: reasons, the requested options' columns, a warning legend, a fitting width."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

import ww_core
from ww_core import cli
from ww_core.cli import main
from ww_core.pipeline.progress import ProgressBar


def _model(path: Path, names: tuple[str, ...] = ("fc1", "fc2"), shape: tuple[int, int] = (60, 30), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, **{name: rng.standard_normal(shape) for name in names})
    return path


def test_failed_and_skipped_rows_show_their_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    bad = rng.standard_normal((60, 30))
    bad[3, 4] = np.nan
    np.savez(tmp_path / "m.npz", good=rng.standard_normal((60, 30)), bad=bad, tiny=rng.standard_normal((5, 3)))
    assert main(["analyze", str(tmp_path / "m.npz")]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[1]
    assert "reason" in header
    bad_line = next(line for line in out.splitlines() if line.split()[1:2] == ["bad"])
    assert "NaN" in bad_line or "nan" in bad_line.lower()
    assert "num_evals=3 < min_evals=8" in " ".join(out.split("tiny")[1].split("summary:")[0].split())


def test_requested_options_add_their_key_columns(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--randomize", "--mp-fit"]) == 0
    header = capsys.readouterr().out.splitlines()[1].split()
    for column in ("rand_distance", "ww_softrank", "num_spikes", "mp_softrank"):
        assert column in header


def test_warnings_are_explained_in_a_legend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "over-trained" in out.split("summary:")[0]
    assert "over-trained: alpha < 2" in out.split("summary:")[1]


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_default_table_fits_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], width: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    rng = np.random.default_rng(0)
    names = ("encoder.layer.10.attention.self.query", "encoder.layer.10.attention.output.dense")
    np.savez(tmp_path / "m.npz", **{name: rng.standard_normal((60, 30)) for name in names}, small=rng.standard_normal((10, 5)))
    assert main(["analyze", str(tmp_path / "m.npz"), "--randomize", "--mp-fit"]) == 0
    table = capsys.readouterr().out.split("\n\nsummary:")[0].splitlines()[1:]
    assert all(len(line) <= width for line in table), "\n".join(table)
    assert any("…" in line and "query" in line for line in table[1:])
    assert "alpha" in table[0] and "reason" in table[0]


def test_columns_picks_what_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--columns", "name,alpha,sv_max"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["name", "alpha", "sv_max"]
    assert main(["demo", "--columns", "name,nope"]) == 2
    assert "no column nope" in capsys.readouterr().err


def test_layers_matching_nothing_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--layers", "99"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ww: error: --layers 99 matched no layer") and err.count("\n") == 1


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from ww_core import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_describe_writes_csv_and_json(tmp_path: Path) -> None:
    assert main(["describe", "--csv", str(tmp_path / "d.csv"), "--json", str(tmp_path / "d.json")]) == 0
    assert (tmp_path / "d.csv").read_text().startswith("layer_id,name,layer_type")
    rows = json.loads((tmp_path / "d.json").read_text())["details"]
    assert [row["name"] for row in rows] == ["conv1", "conv2", "fc1", "fc2", "fc3"]


def test_compare_prints_best_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ww_core.models.comparison import compare

    random = _model(tmp_path / "random.npz", shape=(200, 100))
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "heavy.npz", **{name: rng.standard_t(2.0, size=(200, 100)) for name in ("fc1", "fc2")})
    ranking = compare(str(random), str(tmp_path / "heavy.npz")).ranking
    assert main(["compare", str(random), str(tmp_path / "heavy.npz")]) == 0
    lines = capsys.readouterr().out.splitlines()
    printed = [line.split()[1] for line in lines[1:3]]
    assert printed == [name.removesuffix(".npz") + ".npz" for name in ranking]
    assert [line.split()[0] for line in lines[1:3]] == ["1", "2"]


def test_compare_does_not_rank_models_that_share_no_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _model(tmp_path / "a.npz", names=("fc1", "fc2"), shape=(60, 30))
    other = _model(tmp_path / "b.npz", names=("conv", "head"), shape=(90, 45))
    assert main(["compare", str(first), str(other)]) == 0
    out = capsys.readouterr().out
    assert "no clear ranking: b.npz shares 0 of its 2 layer names with a.npz" in out and "unrelated architectures" in out
    assert main(["compare", str(first), str(_model(tmp_path / "c.npz", seed=2))]) == 0
    assert "unrelated" not in capsys.readouterr().out
    assert main(["compare", str(first), str(other), "--csv"]) == 0
    assert "b.npz shares 0 of its 2 layer names" in capsys.readouterr().err


def test_one_progress_bar_covers_analysis_and_plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    stream = io.StringIO()
    bars: list[ProgressBar] = []

    def drawn(total: int, enabled: bool | None = None) -> ProgressBar:
        bars.append(ProgressBar(total, enabled=enabled is not False, stream=stream))
        return bars[-1]

    monkeypatch.setattr(cli, "ProgressBar", drawn)
    assert main(["demo", "-q"]) == 0
    assert stream.getvalue() == "" and not bars[0].enabled  # quiet: no bar either
    bars.clear()
    assert main(["demo", "--plot", str(tmp_path / "plots")]) == 0
    (bar,) = bars
    assert bar.done == bar.total == 5 + 6  # five layers analyzed, six plots (one flow, five ESDs)
    assert "plot fc3" in stream.getvalue() and stream.getvalue().endswith("\n")
    assert stream.getvalue().count("\n") == 1


@pytest.mark.parametrize("command", ["compare", "report"])
def test_every_command_with_a_cache_flag_uses_it(tmp_path: Path, command: str) -> None:
    first, second = _model(tmp_path / "a.npz", seed=1), _model(tmp_path / "b.npz", seed=2)
    cache = tmp_path / "run.jsonl"
    extra = ["-o", str(tmp_path / "r.html")] if command == "report" else []
    assert main([command, str(first), str(second), "--cache", str(cache), *extra]) == 0
    assert cache.read_text().count("\n") == 4  # two layers of each model


def test_control_characters_in_names_never_reach_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    """A hostile file's tensor names went to the terminal raw: escape sequences (window title, screen clear) and
    newlines that broke the table's rows; they are shown escaped."""
    rng = np.random.default_rng(0)
    hostile = "evil\x1b]0;pwned\x07\x1b[2J\nnext\u202eline"
    results = ww_core.analyze({hostile: rng.standard_t(3, size=(100, 80)), "ok": rng.standard_t(3, size=(100, 80))})
    text = str(results)
    assert not any(char in text for char in "\x1b\x07\u202e")
    table = text.split("\n\n")[0].splitlines()
    assert len(table) == 3 and "evil" in table[1] and "\\x1b" in table[1]
    assert results.details[0]["name"] == hostile  # the data keeps the real name


def test_warnings_are_one_line_each_in_the_terminal() -> None:
    """Python's warning format printed the source file, line and code line of ww ('analysis.py:390: UserWarning: ...'),
    also before the error line it repeated."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "ww_core", "demo", "--layers", "0", "99", "-q"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert done.stderr.splitlines() == ["ww: warning: layers=[0, 99]: no layer has id 99; layer ids that exist: 0-4"]
    done = subprocess.run([sys.executable, "-m", "ww_core", "demo", "--layers", "99"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and done.stderr.startswith("ww: error:")
