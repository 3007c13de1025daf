"""What ``compare`` may claim: the kind of series, the metric that ranks it, and "no clear ranking" where nothing is sure.

Cases are built so the right answer is known: Gaussian layers (no learned correlations, alpha > 6,
an under-trained model) against heavy-tailed ones (alpha 2-6, a trained model).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from ww_core.cli import main
from ww_core.models.comparison import compare
from ww_core.models.verdict import DIFFERENT_SIZES, NEAR_COPIES, REFERENCE, SAME_ARCHITECTURE, UNRELATED, alpha_noise, series_kind

SHAPES = ((200, 100), (300, 200), (150, 300))


def _model(kind: str, seed: int, scale: float = 1.0, shapes: tuple[tuple[int, int], ...] = SHAPES) -> dict[str, np.ndarray]:
    """'trained': Student-t (df 2.5) weights, a heavy-tailed ESD; 'untrained': Gaussian weights, a Marchenko-Pastur ESD."""
    rng = np.random.default_rng(seed)
    draw = (lambda s: rng.standard_t(2.5, s)) if kind == "trained" else rng.standard_normal
    return {f"fc{i}": scale * draw(shape) for i, shape in enumerate(shapes)}


def test_an_under_trained_model_is_never_named_best_over_a_trained_one() -> None:
    comparison = compare(_model("untrained", 1), _model("trained", 2), names=["untrained", "trained"])
    verdict = comparison.verdict
    assert verdict.kind == SAME_ARCHITECTURE and verdict.metric == "alpha"
    assert verdict.best == "trained" and comparison.ranking == ["trained", "untrained"]
    assert "best: trained" in str(comparison) and "ranked by mean alpha" in str(comparison)


def test_alpha_weighted_is_not_used_to_rank_where_lambda_max_is_below_one() -> None:
    """The BERT-checkpoint case: lambda_max < 1 makes alpha_weighted negative, so the old rule named the worse model best."""
    untrained, trained = _model("untrained", 1, scale=0.01), _model("trained", 2, scale=0.01)
    comparison = compare(untrained, trained, names=["untrained", "trained"])
    summaries = comparison.summaries
    assert summaries["untrained"]["alpha_weighted"] < summaries["trained"]["alpha_weighted"] < 0  # the trap
    assert comparison.verdict.best == "trained"
    assert "alpha_weighted is not used" in str(comparison.verdict) and "lambda_max < 1" in str(comparison.verdict)


def test_no_best_below_alpha_2_where_lower_was_not_validated() -> None:
    rng = np.random.default_rng(0)
    very_heavy = {f"fc{i}": rng.standard_t(1.2, shape) for i, shape in enumerate(SHAPES)}
    comparison = compare(_model("untrained", 1), very_heavy, names=["untrained", "very_heavy"])
    assert comparison.summaries["very_heavy"]["alpha"] < 2 and comparison.ranking[0] == "very_heavy"
    assert comparison.verdict.best is None and "over-trained range" in str(comparison.verdict)


def test_models_within_noise_get_no_clear_ranking() -> None:
    comparison = compare(_model("trained", 3), _model("trained", 4), names=["a", "b"])
    assert comparison.verdict.best is None
    assert str(comparison.verdict).startswith("no clear ranking")
    assert "\nbest: " not in str(comparison)


def test_different_sizes_and_unrelated_architectures_are_not_ranked() -> None:
    small = _model("trained", 1, shapes=((200, 100), (300, 200)))
    wide = _model("trained", 2, shapes=((400, 100), (300, 400)))
    verdict = compare(small, wide, names=["small", "wide"]).verdict
    assert verdict.kind == DIFFERENT_SIZES and verdict.best is None and verdict.metric is None
    assert "fc0" in str(verdict) and "ww correlate" in str(verdict)
    other = {"encoder.q": np.random.default_rng(3).standard_t(2.5, (200, 100))}
    verdict = compare(small, other, names=["small", "other"]).verdict
    assert verdict.kind == UNRELATED and verdict.best is None and "no metric is validated" in str(verdict)


def test_series_kind_reads_names_and_shapes() -> None:
    def rows(shapes: dict[str, tuple[int, int]]) -> list[dict[str, object]]:
        return [{"name": n, "N": s[0], "M": s[1], "status": "success"} for n, s in shapes.items()]

    a = rows({"fc0": (20, 10), "fc1": (30, 20)})
    assert series_kind(["a", "b"], [a, a])[0] == SAME_ARCHITECTURE
    assert series_kind(["a", "b"], [a, rows({"fc0": (20, 10), "fc1": (30, 20), "fc2": (30, 30)})])[0] == DIFFERENT_SIZES
    assert series_kind(["a", "b"], [a, rows({"x": (20, 10), "y": (30, 20)})])[0] == UNRELATED


def _quantized(model: dict[str, np.ndarray], levels: int) -> dict[str, np.ndarray]:
    """Rounded to a grid of ``levels`` steps per unit of each layer's standard deviation (a stand-in for Q8/Q4 copies)."""
    return {name: np.round(w / w.std() * levels) / levels * w.std() for name, w in model.items()}


def test_quantized_copies_are_near_copies_not_a_best() -> None:
    full = _model("trained", 5)
    comparison = compare(full, _quantized(full, 16), _quantized(full, 4), names=["f32", "q8", "q4"])
    assert comparison.verdict.kind == NEAR_COPIES and comparison.verdict.best is None
    assert "reference" in str(comparison.verdict)


def test_a_reference_gives_distances_and_no_best() -> None:
    full = _model("trained", 5)
    comparison = compare(full, _quantized(full, 16), _quantized(full, 4), names=["f32", "q8", "q4"], reference="f32")
    assert comparison.verdict.kind == REFERENCE and comparison.verdict.best is None
    table = {row["name"]: row for row in comparison.table()}
    assert table["f32"]["relative_distance"] == 0.0
    assert 0 < table["q8"]["relative_distance"] < table["q4"]["relative_distance"] < 0.2
    assert all(row["rank"] is None for row in table.values())
    assert "\nbest: " not in str(comparison)
    with pytest.raises(ValueError, match="reference 'f16' is not one of"):
        compare(full, full, names=["f32", "q8"], reference="f16")


def test_json_carries_the_verdict(tmp_path: Path) -> None:
    comparison = compare(_model("untrained", 1), _model("trained", 2), names=["untrained", "trained"])
    document = json.loads(comparison.to_json())
    assert document["best"] == "trained" and document["metric"] == "alpha" and document["kind"] == SAME_ARCHITECTURE
    assert document["verdict"] == str(comparison.verdict) and document["ranking"] == ["trained", "untrained"]


def test_cli_compare_prints_the_verdict_and_takes_a_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = []
    for name, weights in (("untrained", _model("untrained", 1)), ("trained", _model("trained", 2))):
        paths.append(str(tmp_path / f"{name}.safetensors"))
        save_file({k: v.astype(np.float32) for k, v in weights.items()}, paths[-1])
    assert main(["compare", *paths]) == 0
    out = capsys.readouterr().out
    assert "best: trained.safetensors" in out and "ranked by mean alpha" in out
    assert main(["compare", *paths, "--reference", "untrained.safetensors"]) == 0
    out = capsys.readouterr().out
    assert "relative_distance" in out and "no best: distances from the reference untrained.safetensors" in out
    assert main(["compare", *paths, "--reference", "nope"]) == 2
    assert "reference 'nope' is not one of" in capsys.readouterr().err
    page = tmp_path / "against.html"
    assert main(["report", *paths, "--reference", "untrained.safetensors", "-o", str(page)]) == 0
    html = page.read_text()
    assert "relative_distance" in html and "no best: distances from the reference untrained.safetensors" in html


def test_noise_is_unknown_for_one_layer_without_fit_errors() -> None:
    one = {"name": "fc", "status": "success", "alpha": 3.0}
    assert math.isnan(alpha_noise([one], [{**one, "alpha": 4.0}]))
    fitted = [{"name": n, "status": "success", "alpha": a, "sigma": 0.1} for n, a in (("a", 3.0), ("b", 3.2))]
    shifted = [{**row, "alpha": row["alpha"] + 1.0} for row in fitted]
    assert alpha_noise(fitted, shifted) == pytest.approx(math.sqrt(2 * 2 * 0.01) / 2)  # the fits' error; the shift is uniform


@pytest.mark.xfail(
    strict=True,
    reason="known defect (qa-verdicts): a coarse per-tensor quantized copy (most weights rounded to 0, the outliers kept) has a "
    "heavier-tailed ESD, so a lower mean alpha beyond the noise; its norms move more than the 5% near-copy tolerance and the "
    "rows carry no sign of quantization, so it is named best. Fix needs a value-level signal (few distinct values per tensor).",
)
def test_a_coarse_absmax_quantized_copy_is_never_named_best() -> None:
    rng = np.random.default_rng(0)
    full = {f"l{i}": rng.standard_t(3, size=(200, 100)) for i in range(12)}
    coarse = {name: np.round(w / np.abs(w).max() * 3) / 3 * np.abs(w).max() for name, w in full.items()}  # codes -3..3 per tensor
    comparison = compare(full, coarse, names=["f32", "q3"])
    assert comparison.verdict.best != "q3"


def test_a_model_with_failed_layers_is_never_named_best() -> None:
    """A copy with NaN in its four untrained-like layers: its mean alpha, over the trained layers only, is far lower, but it is broken."""
    intact = _model("trained", 1, shapes=((300, 150),) * 5)
    rng = np.random.default_rng(1)
    intact.update({f"fc{i}": rng.standard_normal((300, 150)) for i in range(5, 9)})  # Gaussian: alpha far above the others
    broken = {name: w.copy() for name, w in intact.items()}
    for i in range(5, 9):
        broken[f"fc{i}"][0, 0] = np.nan
    comparison = compare(intact, broken, names=["intact", "broken"])
    assert comparison.ranking[0] == "broken"  # the case is what it claims: its mean leaves out the high-alpha layers
    assert comparison.verdict.best is None and "broken has 4 failed layers" in str(comparison.verdict)
