"""The WeightWatcher drop-in: the reference's calls work and agree with ww_core.analyze."""

from __future__ import annotations

import shutil
from pathlib import Path

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


def _state_dict() -> dict[str, np.ndarray]:
    """As the reference counts a state dict: fc1.weight is 1, norm.weight 2 (1-D, not analyzed), fc2.weight 3."""
    rng = np.random.default_rng(3)
    return {
        "fc1.weight": rng.standard_t(3, size=(80, 40)),
        "fc1.bias": np.zeros(80),
        "norm.weight": np.ones(80),
        "fc2.weight": rng.standard_t(3, size=(60, 80)),
    }


def test_ids_are_the_reference_ids_for_a_state_dict() -> None:
    watcher = WeightWatcher(model=_state_dict())
    assert list(watcher.analyze()["layer_id"]) == [1, 3]
    frame = watcher.analyze(layers=[3])
    assert list(frame["name"]) == ["fc2"] and list(frame["layer_id"]) == [3]
    assert list(watcher.analyze(layers=[-1])["name"]) == ["fc2"]
    np.testing.assert_allclose(watcher.get_ESD(layer=3), ww_core.get_esd(_state_dict(), "fc2"))


def test_an_unknown_id_warns_naming_the_ids_that_exist() -> None:
    with pytest.warns(UserWarning, match=r"no layer has id 2; weightwatcher layer ids that exist: 1, 3"):
        assert WeightWatcher(model=_state_dict()).analyze(layers=[2]).empty
    with pytest.warns(UserWarning, match=r"no layer has id 5; layer ids that exist: 0-1"):
        ww_core.analyze(_state_dict(), layers=[5])
    with pytest.raises(KeyError, match="layer ids that exist: 0-1"):
        ww_core.get_esd(_state_dict(), 7)


def test_every_watcher_method_selects_by_the_reference_ids() -> None:
    a = _state_dict()
    b = {key: value + 0.01 for key, value in a.items()}
    with pytest.warns(UserWarning, match="reads no biases"):
        _, _, frame = WeightWatcher().distances(a, b, layers=[3])
    assert list(frame.index) == [3] and list(frame["name"]) == ["fc2"]
    watcher = WeightWatcher(model=a)
    np.testing.assert_array_equal(watcher.get_Weights(layer=3)[0], a["fc2.weight"])
    smoothed = WeightWatcher(model=dict(a)).SVDSmoothing(layers=[3], percent=0.1)
    np.testing.assert_array_equal(smoothed["fc1.weight"], a["fc1.weight"])
    assert np.linalg.matrix_rank(smoothed["fc2.weight"]) < np.linalg.matrix_rank(a["fc2.weight"])


def test_to_pandas_holds_the_analyzed_rows_and_to_csv_every_row() -> None:
    """docs/differences.md: to_pandas() is the reference's table (analyzed rows), to_csv() every row with its status."""
    results = ww_core.analyze({**_model(), "tiny": np.ones((4, 3))})
    assert len(results.to_pandas()) == 2 and len(results.details) == 3
    assert results.to_csv().count("\n") == 1 + 3
    assert results.to_csv(include_skipped=False).count("\n") == 1 + len(results.to_pandas())


def test_start_ids_shift_a_state_dict_s_ids_as_the_reference(tmp_path: Path) -> None:
    """The reference counts a state dict's ids from 1, or from start_ids when it is set; a negative start is refused."""
    watcher = WeightWatcher(model=_state_dict())
    assert list(watcher.describe(start_ids=1)["layer_id"]) == [1, 3]
    assert list(watcher.describe(start_ids=3)["layer_id"]) == [3, 5]
    assert list(watcher.analyze(layers=[5], start_ids=3)["name"]) == ["fc2"]
    with pytest.raises(ValueError, match="start_ids"):
        watcher.describe(start_ids=-1)
    np.savez(tmp_path / "model.npz", **_model())  # a source the reference does not read: ww's own ids, unshifted
    with pytest.warns(UserWarning, match="start_ids=1 has no effect on this str source"):
        assert list(WeightWatcher(model=str(tmp_path / "model.npz")).describe(start_ids=1)["layer_id"]) == [0, 1]


def test_start_ids_shift_a_safetensors_folder_s_ids_as_the_reference(tmp_path: Path) -> None:
    """The reference counts a safetensors folder's ids from 0, or from start_ids (checked against it: 2 gives 2..6)."""
    from ww_core.cli.demo import model_path

    shutil.copy(model_path(), tmp_path / "model.safetensors")
    watcher = WeightWatcher(model=str(tmp_path))
    assert list(watcher.describe()["layer_id"]) == [0, 1, 2, 3, 4]
    assert list(watcher.describe(start_ids=2)["layer_id"]) == [2, 3, 4, 5, 6]


def test_start_ids_never_shift_an_onnx_model_s_ids() -> None:
    """The reference counts ONNX initializers from 0 whatever start_ids is."""
    from ww_core.compat import id_offset

    with pytest.warns(UserWarning, match="start_ids=2 has no effect"):
        assert id_offset("model.onnx", 2, numbered=True) == 0
    assert id_offset({"a": np.ones((2, 2))}, 2, numbered=True) == 1 and id_offset(object(), 2, numbered=True) == 2


def test_the_randomized_esd_is_seeded() -> None:
    watcher = WeightWatcher(model=_model())
    shuffled = watcher.get_ESD(layer=0, random=True)
    np.testing.assert_array_equal(shuffled, watcher.get_ESD(layer=0, random=True))
    assert len(shuffled) == 5 * 50  # fewer than 100 components: 5 shuffles pooled, as the reference
