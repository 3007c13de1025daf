"""peft: LoRA factors A (r, in) and B (out, r) are analyzed as the update B·A."""

from __future__ import annotations

import numpy as np
import pytest

import ww_core


def _lora_model() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(21)
    return {
        "q.base_layer.weight": rng.standard_normal((64, 48)),
        "q.lora_A.default.weight": rng.standard_t(3, size=(8, 48)),
        "q.lora_B.default.weight": rng.standard_t(3, size=(64, 8)),
        "v.weight": rng.standard_normal((64, 48)),
    }


def test_peft_analyzes_only_the_lora_update() -> None:
    model = _lora_model()
    results = ww_core.analyze(model, peft=True, min_evals=4)
    assert [row["name"] for row in results.analyzed] == ["q.lora_BA.default"]
    product = model["q.lora_B.default.weight"] @ model["q.lora_A.default.weight"]
    expected = ww_core.analyze({"delta": product}, min_evals=4).analyzed[0]
    row = results.analyzed[0]
    assert (row["N"], row["M"], row["layer_id"]) == (64, 48, 4)
    for column in ("alpha", "D", "log_norm", "stable_rank", "matrix_rank"):
        assert row[column] == pytest.approx(expected[column], rel=1e-12)
    assert row["matrix_rank"] == 8
    assert "peft=True" in results.row("v")["error"]


def test_peft_with_base_keeps_every_layer() -> None:
    results = ww_core.analyze(_lora_model(), peft="with_base", min_evals=4)
    assert [row["name"] for row in results.analyzed] == ["q.base_layer", "q.lora_A.default", "q.lora_B.default", "v", "q.lora_BA.default"]


def test_peft_without_lora_layers_and_bad_values() -> None:
    results = ww_core.analyze({"w": np.random.default_rng(0).standard_normal((30, 20))}, peft=True)
    assert results.analyzed == [] and results.row("w")["status"] == "skipped"
    with pytest.raises(ValueError, match="peft"):
        ww_core.analyze(_lora_model(), peft="yes")


def test_a_lora_pair_whose_ranks_disagree_gets_a_skipped_row_saying_so() -> None:
    """B (64, 8) with A (6, 48) has no product: the pair vanished from the table, with no row saying why."""
    model = _lora_model()
    model["k.lora_A.default.weight"] = np.random.default_rng(3).standard_normal((6, 48))
    model["k.lora_B.default.weight"] = np.random.default_rng(4).standard_normal((64, 8))
    results = ww_core.analyze(model, peft=True, min_evals=4)
    row = results.row("k.lora_BA.default")
    assert row["status"] == "skipped" and "(64, 8)" in row["error"] and "(6, 48)" in row["error"], row
    assert [row["name"] for row in results.analyzed] == ["q.lora_BA.default"]
