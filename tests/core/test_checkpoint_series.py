"""A training-run folder opens as one series in numeric step order; ``ww compare run/`` and ``ww report run/`` use it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from ww_core.cli import main
from ww_core.models.checkpoint_series import series_members
from ww_core.models.comparison import compare


def _weights(trained: bool, seed: int) -> dict[str, np.ndarray]:
    """Trained: heavy-tailed (Student-t) layers; not trained: Gaussian ones (alpha far above 6)."""
    rng = np.random.default_rng(seed)
    draw = (lambda s: rng.standard_t(2.5, s)) if trained else rng.standard_normal
    return {f"fc{i}": draw(shape).astype(np.float32) for i, shape in enumerate(((200, 100), (300, 200), (150, 300)))}


def _trainer_run(folder: Path) -> Path:
    """checkpoint-50 (barely trained), checkpoint-500, checkpoint-1000, as the Hugging Face Trainer lays them out."""
    for step, trained in ((1000, True), (50, False), (500, True)):
        checkpoint = folder / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        save_file(_weights(trained, step), str(checkpoint / "model.safetensors"))
        (checkpoint / "trainer_state.json").write_text("{}")
    (folder / "runs").mkdir()
    return folder


def test_trainer_orbax_and_numbered_files_open_in_numeric_step_order(tmp_path: Path) -> None:
    run = _trainer_run(tmp_path / "run")
    assert [p.name for p in series_members(run) or []] == ["checkpoint-50", "checkpoint-500", "checkpoint-1000"]
    orbax = tmp_path / "orbax"
    for step in (100, 20, 3):
        (orbax / str(step) / "default").mkdir(parents=True)
    assert [p.name for p in series_members(orbax) or []] == ["3", "20", "100"]
    files = tmp_path / "files"
    files.mkdir()
    for step in (10, 9, 100):
        (files / f"epoch_{step}.safetensors").write_bytes(b"")
    (files / "notes.txt").write_text("")
    assert [p.name for p in series_members(files) or []] == ["epoch_9.safetensors", "epoch_10.safetensors", "epoch_100.safetensors"]


def test_model_folders_are_not_runs(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    for i in (1, 2):
        (shards / f"model-0000{i}-of-00002.safetensors").write_bytes(b"")
    assert series_members(shards) is None
    model = tmp_path / "model"
    model.mkdir()
    for name in ("model.safetensors", "layer1.safetensors", "layer2.safetensors"):
        (model / name).write_bytes(b"")
    assert series_members(model) is None
    one = tmp_path / "one"
    (one / "checkpoint-5").mkdir(parents=True)
    assert series_members(one) is None and series_members(tmp_path / "missing") is None
    assert series_members(str(shards / "model-00001-of-00002.safetensors")) is None


def test_compare_on_a_run_folder_never_names_the_barely_trained_checkpoint_best(tmp_path: Path) -> None:
    comparison = compare(str(_trainer_run(tmp_path / "run")))
    assert comparison.names == ["checkpoint-50", "checkpoint-500", "checkpoint-1000"]
    assert comparison.ranking[-1] == "checkpoint-50" and comparison.verdict.best != "checkpoint-50"
    with pytest.raises(ValueError, match="at least two models"):
        compare(str(tmp_path))


def test_cli_compare_and_report_on_a_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _trainer_run(tmp_path / "run")
    assert main(["compare", str(run)]) == 0
    out = capsys.readouterr().out
    assert "checkpoint-1000" in out and "ranked by mean alpha" in out and not re.search(r"best: checkpoint-50\b", out)
    page = tmp_path / "run.html"
    assert main(["report", str(run), "-o", str(page)]) == 0
    html = page.read_text()
    assert "Mean alpha along the series" in html
    assert "<h1>ww report: checkpoint-50 vs checkpoint-500 vs checkpoint-1000</h1>" in html


def test_a_checkpoint_folder_still_empty_is_not_a_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Mid-training the Trainer makes checkpoint-N before writing into it: that empty folder must not fail the whole run."""
    run = _trainer_run(tmp_path / "run")
    (run / "checkpoint-1500").mkdir()
    members = series_members(run)
    assert members is not None and [m.name for m in members] == ["checkpoint-50", "checkpoint-500", "checkpoint-1000"]
    assert main(["compare", str(run)]) == 0
    assert "checkpoint-1000" in capsys.readouterr().out


def test_temporary_checkpoint_folders_being_written_are_not_snapshots(tmp_path: Path) -> None:
    """Orbax writes ``<step>.orbax-checkpoint-tmp-<time>``, the Trainer (4.36-4.37) ``tmp-checkpoint-<step>``: their name ends in a
    number, but they are partial copies, not steps (the timestamp would sort last as a huge step)."""
    run = _trainer_run(tmp_path / "run")
    for partial in ("tmp-checkpoint-1500", "1500.orbax-checkpoint-tmp-1717171717"):
        (run / partial).mkdir()
        (run / partial / "model.safetensors").write_bytes(b"partial")
    members = series_members(run)
    assert members is not None and [m.name for m in members] == ["checkpoint-50", "checkpoint-500", "checkpoint-1000"]
