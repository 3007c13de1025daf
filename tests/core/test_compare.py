"""Model comparison (ranking, per-layer deltas), distances between models, base_model (delta W), ``ww compare``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import ww_core
from ww_core.cli import main
from ww_core.models.comparison import TABLE_METRICS, compare, default_names
from ww_core.models.model_distances import distances


def _model(seed: int = 0, scale: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "fc1": scale * rng.standard_t(3, (120, 60)),
        "fc2": scale * rng.standard_t(4, (80, 120)),
        "conv": scale * rng.standard_t(3, (16, 8, 3, 3)),
    }


def test_scale_alone_names_no_best() -> None:
    """Scaling W leaves alpha unchanged and moves log lambda_max: the old rule (alpha_weighted first) named the smallest scale best."""
    comparison = compare(_model(scale=10.0), _model(), _model(scale=0.5), names=["x10", "x1", "x0.5"])
    table = {row["name"]: row for row in comparison.table()}
    assert [table[n]["rank_alpha_weighted"] for n in ("x10", "x1", "x0.5")] == [3, 2, 1]
    assert [table[n]["rank_log_norm"] for n in ("x10", "x1", "x0.5")] == [3, 2, 1]
    for name, result in zip(comparison.names, comparison.results):
        for metric in TABLE_METRICS:
            assert table[name][metric] == result.summary[metric]
    assert table["x10"]["alpha"] == pytest.approx(table["x0.5"]["alpha"], rel=1e-9)
    assert comparison.verdict.best is None and "no clear ranking" in str(comparison)


def test_layer_deltas_match_layers_by_name() -> None:
    first, second = _model(0), _model(1)
    second["extra"] = np.random.default_rng(5).standard_normal((40, 30))
    del second["fc2"]
    comparison = compare(first, second, names=["a", "b"])
    deltas = {row["layer"]: row for row in comparison.layer_deltas("alpha")}
    assert set(deltas) == {"fc1", "fc2", "conv", "extra"}
    row = deltas["fc1"]
    a, b = comparison.results[0].row("fc1")["alpha"], comparison.results[1].row("fc1")["alpha"]
    assert (row["a"], row["b"], row["delta_b"]) == (a, b, b - a)
    assert math.isnan(deltas["fc2"]["b"]) and math.isnan(deltas["fc2"]["delta_b"])
    assert math.isnan(deltas["extra"]["a"]) and not math.isnan(deltas["extra"]["b"])


def test_ready_results_are_used_as_given_and_a_model_without_fits_ranks_last() -> None:
    ready = ww_core.analyze(_model(2))
    dead = {name: np.zeros_like(weights) for name, weights in _model(4).items()}
    comparison = compare(dead, ready, _model(3), names=["dead", "ready", "fresh"])
    assert comparison.results[1] is ready
    assert comparison.ranking[-1] == "dead"
    assert math.isnan(comparison.table()[0]["alpha_weighted"])
    document = json.loads(comparison.to_json())
    assert document["ranking"][-1] == "dead" and document["models"][0]["alpha_weighted"] is None
    assert comparison.to_csv().splitlines()[0].startswith("name,source,layers,failed,alpha,rank_alpha")


def test_compare_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least two"):
        compare(_model())
    with pytest.raises(ValueError, match="2 names for 3 models"):
        compare(_model(), _model(1), _model(2), names=["a", "b"])
    with pytest.raises(ValueError, match="distinct"):
        compare(_model(), _model(1), names=["a", "a"])


def test_default_names_are_file_names_unless_they_clash() -> None:
    assert default_names(["/runs/a/step-1.safetensors", "/runs/a/step-2.safetensors/"]) == ["step-1.safetensors", "step-2.safetensors"]
    assert default_names(["/runs/a/model.safetensors", "/runs/b/model.safetensors"]) == ["model_0", "model_1"]


def test_comparison_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    paths = compare(_model(), _model(1), names=["a", "b"]).plot(tmp_path)
    assert [p.name for p in paths] == ["comparison.png", "flows.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)


def test_distances_are_frobenius_relative_and_spectral_of_the_difference() -> None:
    a, b = _model(0), _model(1)
    result = distances(a, b)
    rows = {row["name"]: row for row in result.details}
    for name in a:
        delta = a[name] - b[name]
        assert rows[name]["frobenius"] == pytest.approx(np.linalg.norm(delta.ravel()), rel=1e-12)
        assert rows[name]["relative"] == pytest.approx(np.linalg.norm(delta.ravel()) / np.linalg.norm(a[name].ravel()), rel=1e-12)
        slices = delta.reshape(delta.shape[0], delta.shape[1], -1)
        spectral = max(np.linalg.svd(slices[:, :, k], compute_uv=False)[0] for k in range(slices.shape[2]))
        assert rows[name]["spectral"] == pytest.approx(spectral, rel=1e-9)
    assert result.summary["frobenius"] == pytest.approx(np.mean([r["frobenius"] for r in result.details]))
    same = distances(a, a)
    assert all(row["frobenius"] == row["relative"] == row["spectral"] == 0.0 for row in same.details)


def test_distances_report_unmatched_mismatched_and_non_finite_layers() -> None:
    a = {"shared": np.eye(6), "only_a": np.eye(5), "reshaped": np.ones((4, 6)), "bad": np.eye(7)}
    b = {"shared": 2 * np.eye(6), "only_b": np.eye(5), "reshaped": np.ones((6, 4)), "bad": np.full((7, 7), np.nan)}
    rows = {row["name"]: row for row in distances(a, b).details}
    assert rows["shared"]["status"] == "success" and rows["shared"]["frobenius"] == pytest.approx(math.sqrt(6))
    assert rows["only_a"]["status"] == "unmatched" and rows["only_a"]["error"] == "only in model a"
    assert rows["only_b"]["status"] == "unmatched" and rows["only_b"]["error"] == "only in model b"
    assert rows["reshaped"]["status"] == "failed" and "(4, 6)" in rows["reshaped"]["error"]
    assert rows["bad"]["status"] == "failed" and "non-finite weights" in rows["bad"]["error"] and "model b" in rows["bad"]["error"]
    assert distances(a, b).summary["frobenius"] == pytest.approx(math.sqrt(6))


def test_distances_to_a_zero_model_are_infinite_relative_and_filters_apply() -> None:
    rows = distances({"w": np.zeros((5, 5)), "v": np.eye(5)}, {"w": np.eye(5), "v": np.eye(5)}, layers=["w"]).details
    assert [row["name"] for row in rows] == ["w"]
    assert rows[0]["relative"] == math.inf and rows[0]["spectral"] == pytest.approx(1.0)


def test_base_model_analyzes_the_difference() -> None:
    model, base = _model(0), _model(1, scale=0.3)
    with_base = ww_core.analyze(model, base_model=base)
    delta = ww_core.analyze({name: model[name] - base[name] for name in model})
    for got, expected in zip(with_base.details, delta.details):
        assert got["status"] == expected["status"] == "success"
        for column in ("alpha", "D", "xmin", "log_norm", "alpha_weighted", "stable_rank"):
            assert got[column] == pytest.approx(expected[column], rel=1e-9), column
    assert with_base.esds.keys() == delta.esds.keys()


def test_base_model_missing_or_reshaped_layers_fail_by_name() -> None:
    model = _model(0)
    base = {"fc1": _model(1)["fc1"], "conv": np.ones((16, 8, 1, 1))}
    results = ww_core.analyze(model, base_model=base)
    assert results.row("fc1")["status"] == "success"
    for name in ("fc2", "conv"):
        row = results.row(name)
        assert row["status"] == "failed" and name in row["error"] and "base model" in row["error"]


def test_identical_base_gives_all_zero_failures() -> None:
    model = _model(0)
    results = ww_core.analyze(model, base_model=model)
    assert all(row["status"] == "failed" and "all zero" in row["error"] for row in results.details)
    assert results.summary == {}


def _save(tmp_path: Path, name: str, weights: dict[str, np.ndarray]) -> str:
    path = tmp_path / name
    save_file({k: v.astype(np.float32) for k, v in weights.items()}, str(path))
    return str(path)


def test_cli_compare_prints_csv_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = _save(tmp_path, "big.safetensors", _model(scale=10.0))
    small = _save(tmp_path, "small.safetensors", _model(scale=0.5))
    out = tmp_path / "cmp.json"
    assert main(["compare", big, small, "--json", str(out), "--csv"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("name,source,layers") and len(lines) == 3
    document = json.loads(out.read_text())
    assert document["best"] is None and document["verdict"].startswith("no clear ranking")  # one model, scaled: alpha alike
    assert "no clear ranking" in captured.err
    assert main(["compare", big, small, "--names", "ten", "half", "--layers", "fc1"]) == 0
    text = capsys.readouterr().out
    assert "ten" in text and "half" in text and "no clear ranking" in text


def test_cli_compare_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = _save(tmp_path, "real.safetensors", _model())
    assert main(["compare", real, str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors" in capsys.readouterr().err
    assert main(["compare", real]) == 2
    assert "at least two" in capsys.readouterr().err


def test_a_model_with_failed_layers_is_never_named_best_without_saying_so() -> None:
    """'best: broken' was printed (and 'Best: broken.' in the report) for a model whose NaN layers were left out of its means."""
    rng = np.random.default_rng(0)
    healthy = {f"fc{i}": rng.standard_normal((200, 100)) for i in range(3)}
    broken = {f"fc{i}": rng.standard_t(3, size=(200, 100)) for i in range(3)}
    broken["fc1"] = np.full((200, 100), np.nan)
    comparison = compare(healthy, broken, names=["healthy", "broken"])
    assert comparison.ranking[0] == "broken"
    note = "broken has 1 failed layer, left out of its means"
    assert note in str(comparison)
    assert note in comparison.to_html()
