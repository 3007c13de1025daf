"""Weights whose squares leave float64's range: a failed row saying so, never a LAPACK error code."""

from __future__ import annotations

import numpy as np
import pytest

import ww_core


@pytest.mark.parametrize(("scale", "words"), [(1e200, "overflow"), (1e160, "overflow"), (1e-200, "underflow")])
def test_weights_out_of_float64_range_fail_their_layer_saying_why(scale: float, words: str) -> None:
    rng = np.random.default_rng(0)
    model = {"big.weight": rng.standard_normal((64, 32)) * scale, "ok.weight": rng.standard_normal((64, 32))}
    results = ww_core.analyze(model, workers=1)
    bad, good = results.details
    assert bad["status"] == "failed" and words in bad["error"] and "'big'" in bad["error"], bad["error"]
    assert "dsyevd" not in bad["error"] and "info=" not in bad["error"]
    assert good["status"] == "success"


def test_float32_weights_whose_float32_squares_overflow_are_still_analyzed() -> None:
    """1e20 squared overflows float32 but not the float64 Gram matrix: a scale, not a fault."""
    rng = np.random.default_rng(0)
    weights = rng.standard_t(4, size=(64, 32))
    scaled = ww_core.analyze({"w.weight": (weights * 1e20).astype(np.float32)}, workers=1).details[0]
    plain = ww_core.analyze({"w.weight": weights.astype(np.float32)}, workers=1).details[0]
    assert scaled["status"] == "success", scaled.get("error")
    assert scaled["alpha"] == pytest.approx(plain["alpha"], rel=1e-5)
