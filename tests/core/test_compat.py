"""The WeightWatcher drop-in: the reference's calls work and agree with ww_core.analyze."""

from __future__ import annotations

import numpy as np
import pytest

import ww_core
from ww_core import WeightWatcher


def _model() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {"a": rng.standard_t(3, size=(100, 50)), "b": rng.standard_normal((64, 64))}


def test_analyze_returns_the_details_frame_and_summary() -> None:
    watcher = WeightWatcher(model=_model())
    details = watcher.analyze()
    expected = ww_core.analyze(_model())
    assert list(details["name"]) == ["a", "b"]
    np.testing.assert_allclose(details["alpha"], [row["alpha"] for row in expected.analyzed], rtol=1e-12)
    assert watcher.get_summary() == pytest.approx(expected.summary)
    assert watcher.get_summary(details)["alpha"] == pytest.approx(expected.summary["alpha"])
    assert list(watcher.get_details()["name"]) == ["a", "b"]


def test_get_esd_and_describe() -> None:
    watcher = WeightWatcher(model=_model())
    esd = watcher.get_ESD(layer=1)
    assert esd.shape == (64,) and np.all(np.diff(esd) >= 0)
    assert list(watcher.describe()["name"]) == ["a", "b"]


def test_ignored_reference_options_warn() -> None:
    with pytest.warns(UserWarning, match="glorot_fix"):
        WeightWatcher(model=_model()).analyze(glorot_fix=False)
