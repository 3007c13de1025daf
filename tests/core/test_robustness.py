"""Bad weights through the whole pipeline: each bad layer is a failed or skipped row naming it, the good layers keep their numbers."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

import ww_core
from ww_core.cli import main
from ww_core.pipeline.plugins import EmptyModelError


def _good() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"good.0": rng.standard_t(3, (90, 50)), "good.1": rng.standard_t(4, (64, 64))}


def _bad() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    g = rng.standard_normal((60, 40))
    return {
        "nan": np.where(rng.random(g.shape) < 0.01, np.nan, g),
        "inf": np.where(rng.random(g.shape) < 0.01, -np.inf, g),
        "zero": np.zeros((60, 40)),
        "rank1": rng.standard_normal((60, 1)) @ rng.standard_normal((1, 40)),
        "constant": np.full((50, 30), 0.25),
        "one_by_one": np.ones((1, 1)),
        "wide": rng.standard_normal((2, 50_000)),
        "tall_tiny": rng.standard_normal((20, 1)),
        "tiny": rng.standard_normal((3, 4)),
        "overflowing": g * 1e200,
        "underflowing": g * 1e-310,
    }


FAILED = {
    "nan": "NaN/Inf",
    "inf": "NaN/Inf",
    "zero": "all zero",
    "rank1": "rank-deficient",
    "constant": "rank-deficient",
    "overflowing": "",
    "underflowing": "",
}
SKIPPED = {"one_by_one": "num_evals=1 < min_evals=8", "wide": "num_evals=2", "tall_tiny": "num_evals=1", "tiny": "num_evals=3"}


def _mixed() -> dict[str, np.ndarray]:
    good, bad = _good(), _bad()
    return {"good.0": good["good.0"], **dict(list(bad.items())[:6]), "good.1": good["good.1"], **dict(list(bad.items())[6:])}


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("workers", [1, 2])
def test_bad_layers_fail_by_name_and_good_layers_keep_their_numbers(workers: int) -> None:
    alone = ww_core.analyze(_good())
    mixed = ww_core.analyze(_mixed(), workers=workers)
    assert [row["name"] for row in mixed.details] == list(_mixed())
    for name, reason in FAILED.items():
        row = mixed.row(name)
        assert row["status"] == "failed", name
        assert math.isnan(row["alpha"]) and row["warning"] == ""
        assert name in row["error"] and reason in row["error"], row["error"]
    for name, reason in SKIPPED.items():
        row = mixed.row(name)
        assert row["status"] == "skipped" and reason in row["error"], (name, row)
    for expected in alone.details:
        got = mixed.row(expected["name"])
        assert {k: v for k, v in got.items() if k != "layer_id"} == {k: v for k, v in expected.items() if k != "layer_id"}
    assert mixed.summary == alone.summary
    json.loads(mixed.to_json())  # strict JSON: NaN written as null


def test_results_with_failures_still_export_and_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from ww_core.views import plots

    results = ww_core.analyze({**_good(), "zero": np.zeros((30, 20)), "rank1": np.outer(np.arange(1.0, 31), np.arange(1.0, 21))})
    written = plots.save_all(results, tmp_path)
    assert len(written) == 1 + len(results.esds)
    assert "zero" not in results.esds  # no spectrum was computed for it
    assert results.to_pandas()["status"].tolist() == ["success", "success", "failed", "failed"]


def test_tiny_layers_get_a_row_when_the_user_lowers_min_evals() -> None:
    results = ww_core.analyze({"tiny": np.random.default_rng(2).standard_normal((3, 4)), "one": np.ones((1, 1))}, min_evals=0)
    assert results.row("tiny")["status"] == "success" and results.row("tiny")["num_evals"] == 3
    one = results.row("one")
    assert one["status"] == "failed" and "only 1 eigenvalues" in one["error"]


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_a_layer_whose_bytes_are_corrupt_fails_alone(tmp_path: Path) -> None:
    good = _good()
    broken = np.arange(64 * 64, dtype=np.float64).reshape(64, 64)
    with zipfile.ZipFile(tmp_path / "model.npz", "w") as archive:
        archive.writestr("good.0.npy", _npy(good["good.0"]))
        archive.writestr("broken.npy", _npy(broken))
        archive.writestr("good.1.npy", _npy(good["good.1"]))
    raw = bytearray((tmp_path / "model.npz").read_bytes())
    raw[raw.index(broken[50].tobytes())] ^= 0xFF
    (tmp_path / "model.npz").write_bytes(bytes(raw))
    results = ww_core.analyze(tmp_path / "model.npz")
    row = results.row("broken")
    assert row["status"] == "failed" and "'broken'" in row["error"] and "model.npz" in row["error"] and "CRC" in row["error"]
    assert results.summary == ww_core.analyze(good).summary


def test_empty_models_are_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(EmptyModelError, match="holds no weight matrix"):
        ww_core.analyze({})
    biases = tmp_path / "biases.safetensors"
    save_file({"bias": np.ones(4, np.float32), "scale": np.ones(1, np.float32)}, str(biases))
    with pytest.raises(EmptyModelError, match=r"biases\.safetensors"):
        ww_core.analyze(biases)
    with pytest.raises(EmptyModelError):
        ww_core.describe(biases)
    assert main(["analyze", str(biases)]) == 2
    assert "biases.safetensors" in capsys.readouterr().err


def test_filters_that_exclude_everything_give_skipped_rows_not_an_error() -> None:
    results = ww_core.analyze(_good(), layers=["no-such-layer"])
    assert [row["status"] for row in results.details] == ["skipped", "skipped"] and results.summary == {}


def test_cli_reports_corrupt_files_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ww: error:") and "broken.safetensors" in err and "\n" not in err


@pytest.mark.parametrize("exact", [False, True])
def test_matrix_rank_of_a_rank_deficient_matrix(exact: bool) -> None:
    rng = np.random.default_rng(3)
    weights = rng.standard_normal((60, 5)) @ rng.standard_normal((5, 40))
    row: dict[str, Any] = ww_core.analyze({"r5": weights}, exact=exact).details[0]
    assert (row["matrix_rank"], row["rank_loss"]) == (5, 35) == (np.linalg.matrix_rank(weights), 40 - 5)
