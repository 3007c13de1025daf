"""WeightWatcher.distances and get_Weights against weightwatcher 0.7.7 on a real pretrained net (MTCNN ONet)."""

from __future__ import annotations

import contextlib
import copy
import io
import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
weightwatcher = pytest.importorskip("weightwatcher")
pytest.importorskip("ww_torch")

import ww_core  # noqa: E402

from .test_real_models_parity import MODELS  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")

RTOL = 1e-5  # the reference computes in float32 (its CKA of dense5 is 1.3e-6 off the float64 value)


def _pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    _, module = MODELS["mtcnn-onet"]()
    moved = copy.deepcopy(module)
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in moved.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    return module, moved


@pytest.mark.parametrize("method", ["raw", "euclidean", "cka"])
def test_distances_match_the_reference(method: str) -> None:
    a, b = _pair()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        ref_avg, ref_db, ref = weightwatcher.WeightWatcher().distances(a, b, method=method)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        avg, avg_db, ours = ww_core.WeightWatcher().distances(a, b, method=method)
    assert any("reads no biases" in str(w.message) for w in caught) == (method == "raw")
    assert list(ours.index) == list(ref.index) and list(ours["name"]) == list(ref["name"])
    np.testing.assert_allclose(ours["delta_W"].to_numpy(float), ref["delta_W"].to_numpy(float), rtol=RTOL)
    assert math.isclose(avg, ref_avg, rel_tol=RTOL)
    assert ref_db == avg_db == 0.0  # the reference reports 0 for biases it never compared here; ww reads none


def test_get_weights_matches_the_reference() -> None:
    module, _ = _pair()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        ref = weightwatcher.WeightWatcher(model=module).get_Weights(layer=2)
    ours = ww_core.WeightWatcher(model=module).get_Weights(layer=2)
    assert len(ours) == len(ref)
    for mine, theirs in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(mine, np.asarray(theirs, dtype=np.float64))
