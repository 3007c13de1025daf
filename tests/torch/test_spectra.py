"""The torch spectra hook equals core's numpy path within the documented tolerances (CPU tensors here)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from torch import nn

import ww_core
from ww_core import LayerMatrix
from ww_core.spectrum import eigenvalues as numpy_eigenvalues
from ww_torch import ww_eigenvalues


def layer(device: str = "cpu") -> LayerMatrix:
    return LayerMatrix("fc", 0, "dense", (30, 20), load=lambda: np.zeros((30, 20)), device=device)


def matrices() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.standard_t(3, size=(30, 20)), rng.normal(size=(12, 40)), rng.normal(size=(30, 20)).astype(np.float32)]


def test_cpu_layers_left_to_core_unless_asked() -> None:
    assert ww_eigenvalues(layer(), matrices(), {}) is None


@pytest.mark.parametrize(("precision", "tolerance"), [("float64", 1e-10), ("float32", 1e-4)])
def test_equal_to_numpy_within_tolerance(precision: str, tolerance: float) -> None:
    options = {"torch_spectra": True, "torch_precision": precision}
    found = ww_eigenvalues(layer(), matrices(), options)
    assert found is not None
    for got, want in zip(found, numpy_eigenvalues(matrices()), strict=True):
        assert got.dtype == np.float64 and got.shape == want.shape
        assert np.all(np.diff(got) >= 0)
        np.testing.assert_allclose(got, want, rtol=0, atol=tolerance * want.max())


def test_exact_is_left_to_core() -> None:
    """Asked for an exact SVD, the hook declines: its Gram + eigvalsh route is not one."""
    assert ww_eigenvalues(layer(), matrices(), {"torch_spectra": True, "exact": True}) is None
    assert ww_eigenvalues(layer(), matrices(), {"torch_spectra": True}) is not None


def test_fp16_precision_refused() -> None:
    with pytest.raises(ValueError, match="torch_precision"):
        ww_eigenvalues(layer(), matrices(), {"torch_spectra": True, "torch_precision": "float16"})


def test_accelerator_device_claims_the_layer() -> None:
    from ww_torch.recognize import wants_torch_spectra

    assert wants_torch_spectra("cuda:0", {}) and wants_torch_spectra("mps", {}) and not wants_torch_spectra("cpu", {})


def test_whole_model_rows_equal_with_and_without_torch_spectra() -> None:
    model = nn.Sequential(nn.Linear(64, 48), nn.Conv2d(16, 32, 3), nn.Linear(48, 20))
    columns = ["alpha", "D", "xmin", "log_norm", "log_spectral_norm", "stable_rank"]
    plain: Any = ww_core.analyze(model).details
    torch_path: Any = ww_core.analyze(model, extra={"torch": {"torch_spectra": True}}).details
    for a, b in zip(plain, torch_path, strict=True):
        for column in columns:
            assert b[column] == pytest.approx(a[column], rel=1e-9), (a["name"], column)
