"""What a newcomer meets first says what the README says it does, and every row of a narrow table stays identifiable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ww_core
from ww_core.cli import main

#: Transformer-style names: they differ only in the layer number, far from their end.
LONG_NAMES = tuple(f"encoder.layers.{i}.self_attention.query_key_value_projection.weight" for i in range(6))


def _table(out: str) -> list[str]:
    """The table's rows (not its header, not a reason's wrapped lines) from ``ww analyze`` output."""
    lines = out.split("\n\nsummary:")[0].splitlines()[2:]
    return [line for line in lines if not line.startswith(" ")]


def test_printing_results_ends_with_the_verdict() -> None:
    """README: ``print(results)`` gives "a row per layer, the summary, the verdict", as ``ww analyze`` does."""
    rng = np.random.default_rng(0)
    results = ww_core.analyze({"fc1.weight": rng.standard_t(2.5, size=(120, 60)), "fc2.weight": rng.standard_normal((90, 40))})
    assert str(results).rstrip().splitlines()[-1].startswith("verdict: "), str(results)


@pytest.mark.parametrize("extra", [[], ["-v"]])
def test_rows_whose_names_are_cut_stay_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    """At 80 columns names are cut to their end; when those ends are alike the layer_id column stays to tell the rows apart."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "m.npz", **{name: rng.standard_normal((60, 30)) for name in LONG_NAMES})
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["analyze", str(tmp_path / "m.npz"), "--layers", "3", "4", "5", *extra]) == 0
    rows = _table(capsys.readouterr().out)
    assert len(rows) == (6 if extra else 3)
    starts = [row.split()[0] for row in rows]
    assert len(set(starts)) == len(rows), "\n".join(rows)


def test_a_failed_row_s_reason_does_not_repeat_its_layer_and_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The row names the layer and the ``source:`` line the file: the wrapped reason says only what went wrong."""
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["demo", "--fit", "TPL"]) == 0
    out = capsys.readouterr().out
    table = out.split("\n\nsummary:")[0].splitlines()[1:]
    assert not any("digits_cnn" in line or "(id " in line for line in table), "\n".join(table)
    conv1 = " ".join(out.split("\nsummary:")[0].split(" conv1 ")[1].split())
    assert "power-law fit failed" in conv1, conv1
