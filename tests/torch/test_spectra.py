"""The torch spectra hook equals core's numpy path within the documented tolerances (CPU tensors here)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import ww_core
from ww_core import LayerMatrix
from ww_core.spectra.spectrum import eigenvalues as numpy_eigenvalues
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


def test_conv2d_fft_complex_matrices_keep_their_imaginary_part() -> None:
    """``conv2d_fft`` hands complex matrices: the hook cast them to real (torch warned "discards the imaginary part")
    and a conv row came back 'success' with alpha 7.0 where core gives 29.2."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(32, 64, 3), nn.Conv2d(64, 64, 3))
    columns = ["alpha", "D", "xmin", "log_norm", "log_spectral_norm", "stable_rank"]
    plain: Any = ww_core.analyze(model, conv2d_fft=True).details
    for extra in ({"torch_spectra": True}, {"torch_device": "cpu"}, {"torch_spectra": True, "torch_precision": "float32"}):
        torch_path: Any = ww_core.analyze(model, conv2d_fft=True, extra={"torch": extra}).details
        tolerance = 1e-4 if extra.get("torch_precision") == "float32" else 1e-9
        for a, b in zip(plain, torch_path, strict=True):
            assert a["status"] == b["status"] == "success"
            for column in columns:
                assert b[column] == pytest.approx(a[column], rel=tolerance), (extra, a["name"], column)


def test_torch_device_claims_every_layer_and_equals_numpy() -> None:
    """``torch_device`` routes CPU layers (any source) through torch on that device, with core's eigenvalues."""
    found = ww_eigenvalues(layer(), matrices(), {"torch_device": "cpu"})
    assert found is not None
    for got, want in zip(found, numpy_eigenvalues(matrices()), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * want.max())


@pytest.mark.parametrize("device", ["nonsense", "meta", "cuda:7" if not torch.cuda.is_available() else "cuda:4096"])
def test_unusable_torch_device_is_one_clear_error(device: str) -> None:
    with pytest.raises(ValueError, match=rf"torch_device '{device}' is not usable here: \S"):
        ww_eigenvalues(layer(), matrices(), {"torch_device": device})


def test_unusable_torch_device_fails_each_row_with_the_reason(tmp_path: Any) -> None:
    """A safetensors file (read by core) asked onto a device torch cannot use: failed rows saying why, never numbers."""
    from safetensors.numpy import save_file

    save_file({"a.weight": matrices()[0].astype(np.float32), "b.weight": matrices()[1].astype(np.float32)}, str(tmp_path / "m.safetensors"))
    rows: Any = ww_core.analyze(tmp_path / "m.safetensors", min_evals=5, extra={"torch": {"torch_device": "nonsense"}}).details
    assert len(rows) == 2
    for row in rows:
        assert row["status"] == "failed" and "torch_device 'nonsense' is not usable here" in row["error"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on a GPU machine)")
def test_cuda_module_and_cuda_device_option_equal_core_on_cpu(tmp_path: Any) -> None:
    """On a GPU: a model moved to cuda (conv2d_fft's complex matrices too), and a file with torch_device=cuda, give core's CPU rows."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(300, 200), nn.Linear(200, 250), nn.Conv2d(16, 32, 3))
    columns = ["alpha", "D", "xmin", "log_norm", "log_spectral_norm", "stable_rank"]
    cpu: Any = ww_core.analyze(model).details
    on_gpu: Any = ww_core.analyze(model.cuda()).details
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "m.safetensors"))
    from_file: Any = ww_core.analyze(tmp_path / "m.safetensors", extra={"torch": {"torch_device": "cuda"}}).details
    fft_cpu: Any = ww_core.analyze(model.cpu(), conv2d_fft=True).details
    fft_gpu: Any = ww_core.analyze(model.cuda(), conv2d_fft=True).details  # complex matrices on the device
    for a, b in zip(fft_cpu, fft_gpu, strict=True):
        for column in columns:
            assert b[column] == pytest.approx(a[column], rel=1e-10, abs=1e-12), (a["name"], column, b.get("error"))
    for a, b, c in zip(cpu, on_gpu, from_file, strict=True):
        for column in columns:
            assert b[column] == pytest.approx(a[column], rel=1e-10, abs=1e-12), (a["name"], column, b.get("error"))
            assert c[column] == pytest.approx(a[column], rel=1e-10, abs=1e-12), (a["name"], column, c.get("error"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on a GPU machine)")
def test_first_cuda_spectra_from_many_threads_at_once() -> None:
    """torch loads its CUDA solvers lazily, not thread-safely: the first spectra, from 8 threads at once, all succeed.

    In a fresh process, since the load happens once per process.
    """
    import subprocess
    import sys

    script = """
import threading, numpy as np, torch
from ww_torch import spectra
barrier = threading.Barrier(8)
errors = []
def one(seed):
    matrix = np.random.default_rng(seed).normal(size=(64, 48))
    barrier.wait()
    try:
        spectra.eigenvalues([matrix], torch.device("cuda"), torch.float64)
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(errors)
assert not errors, errors
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
