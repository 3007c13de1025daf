"""The rest of the reference's WeightWatcher API: distances, get_Weights, get_framework_layer, SVDSmoothing/SVDSharpness."""

from __future__ import annotations

import numpy as np
import pytest

import ww_core
from ww_core import WeightWatcher


def _pair() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(2)
    a = {"fc.weight": rng.standard_normal((30, 20)), "conv.weight": rng.standard_normal((4, 6, 3, 3))}
    return a, {key: value + 0.1 * rng.standard_normal(value.shape) for key, value in a.items()}


def test_distances_returns_the_reference_triple() -> None:
    a, b = _pair()
    with pytest.warns(UserWarning, match="reads no biases"):  # the reference's 'raw' adds ||b1 - b2||: ww says it did not
        avg_dw, avg_db, frame = WeightWatcher().distances(a, b)
    raw = [np.linalg.norm(b["fc.weight"] - a["fc.weight"]), np.linalg.norm(b["conv.weight"] - a["conv.weight"])]
    assert list(frame.index) == [1, 2] and list(frame["name"]) == ["fc", "conv"]  # the reference's state-dict ids
    np.testing.assert_allclose(frame["delta_W"], raw, rtol=1e-12)
    assert avg_dw == pytest.approx(np.mean(raw)) and avg_db == 0.0 and (frame["delta_b"] == 0.0).all()
    assert list(frame.columns[:7]) == ["method", "name", "delta_W", "delta_b", "M", "N", "b_shape"]


def test_euclidean_and_cka_average_over_conv_slices() -> None:
    a, b = _pair()
    _, _, euclid = WeightWatcher().distances(a, b, method="euclidean")
    slices = [np.linalg.norm(b["conv.weight"][:, :, i, j] - a["conv.weight"][:, :, i, j]) for i in range(3) for j in range(3)]
    assert euclid.loc[2, "delta_W"] == pytest.approx(np.mean(slices))
    _, _, same = WeightWatcher().distances(a, a, method="CKA")
    np.testing.assert_allclose(same["delta_W"], 1.0, rtol=1e-12)


@pytest.mark.parametrize("bad", [{"method": "cosine"}, {"pool": False}])
def test_distances_refuses_what_it_cannot_do(bad: dict[str, object]) -> None:
    a, b = _pair()
    with pytest.raises(ValueError):
        WeightWatcher().distances(a, b, **bad)


def test_distances_names_a_layer_missing_from_model_2() -> None:
    a, b = _pair()
    del b["fc.weight"]
    with pytest.raises(ValueError, match="'fc'"):
        WeightWatcher().distances(a, b)


def test_get_weights_gives_the_reference_matrices() -> None:
    a, _ = _pair()
    watcher = WeightWatcher(model=a)
    np.testing.assert_array_equal(watcher.get_Weights(layer=1)[0], a["fc.weight"])  # the reference's id of fc.weight
    slices = watcher.get_Weights(layer="conv")
    assert len(slices) == 9 and slices[0].shape == (6, 4)  # made tall, as the reference's Wmats
    with pytest.raises(KeyError, match="nope"):
        watcher.get_Weights(layer="nope")


def test_get_framework_layer_explains_arrays_have_none() -> None:
    a, _ = _pair()
    with pytest.raises(TypeError, match="get_Weights"):
        WeightWatcher(model=a).get_framework_layer(layer=1)


def test_svd_smoothing_and_sharpness_through_the_watcher() -> None:
    a, _ = _pair()
    watcher = WeightWatcher(model=a)
    smoothed = watcher.SVDSmoothing(method="svd", percent=0.5)
    assert np.linalg.matrix_rank(smoothed["fc.weight"]) == 10 and watcher.model is smoothed
    np.testing.assert_array_equal(WeightWatcher().SVDSharpness(model=a)["fc.weight"], ww_core.svd_sharpness(a)["fc.weight"])
    with pytest.warns(UserWarning, match="plot"):
        WeightWatcher(model=a).SVDSmoothing(plot=True)
    with pytest.raises(ValueError, match="svd_method"):
        WeightWatcher(model=a).SVDSmoothing(svd_method="magic")
