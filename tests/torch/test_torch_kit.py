"""ww_torch against the conformance kit's checks for common adapter mistakes."""

from __future__ import annotations

import ww_torch
from ww_core import testing

SUFFIXES = [".pt", ".pth", ".bin"]


def test_registers_as_a_valid_plugin() -> None:
    testing.check_plugin(ww_torch)


def test_declines_foreign_sources_without_importing_a_framework() -> None:
    testing.check_declines(ww_torch.ww_layers, suffixes=SUFFIXES)
    testing.check_declines_quietly("ww_torch")


def test_spectra_hook_agrees_with_core() -> None:
    import numpy as np

    from ww_core import LayerMatrix

    rng = np.random.default_rng(2)
    layers = [
        LayerMatrix("fc", 0, "dense", (48, 32), lambda: rng.standard_normal((48, 32))),
        LayerMatrix("conv", 1, "conv2d", (8, 4, 3, 3), lambda: rng.standard_normal((8, 4, 3, 3)).astype(np.float32)),
    ]
    testing.check_eigenvalues(ww_torch.ww_eigenvalues, layers, rtol=1e-10, extra={"torch_spectra": True})
