"""The conformance kit's checks for what adapter authors get wrong; each is shown catching its mistake."""

from __future__ import annotations

import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest

from ww_core import LayerLoadError, LayerMatrix, hookimpl, testing
from ww_core.spectra.spectrum import eigenvalues

WEIGHTS = np.random.default_rng(0).standard_normal((512, 256)).astype(np.float32)  # 512 KiB


def _module(**hooks: Any) -> types.ModuleType:
    module = types.ModuleType("ww_kit_probe")
    for name, function in hooks.items():
        setattr(module, name, function)
    return module


def test_check_plugin_catches_bad_hooks() -> None:
    @hookimpl
    def ww_layers(source: Any, options: Any) -> None:
        return None

    @hookimpl
    def ww_layer(source: Any, options: Any) -> None:
        return None

    @hookimpl
    def ww_layers_bad(src: Any, options: Any) -> None:
        return None

    def ww_adapter_info() -> dict[str, str]:
        return {}

    testing.check_plugin(_module(ww_layers=ww_layers))
    with pytest.raises(AssertionError, match="ww_layer is not a ww hook"):
        testing.check_plugin(_module(ww_layers=ww_layers, ww_layer=ww_layer))
    with pytest.raises(AssertionError, match="src"):
        testing.check_plugin(_module(ww_layers=ww_layers_bad))
    with pytest.raises(AssertionError, match="not marked"):
        testing.check_plugin(_module(ww_layers=ww_layers, ww_adapter_info=ww_adapter_info))


def test_check_lists_without_reading_catches_an_eager_adapter() -> None:
    def lazy() -> list[LayerMatrix]:
        return [LayerMatrix("w", 0, "dense", WEIGHTS.shape, lambda: WEIGHTS.copy())]

    def eager() -> list[LayerMatrix]:
        copy = WEIGHTS.copy()  # what decoding every tensor while listing does
        return [LayerMatrix("w", 0, "dense", copy.shape, lambda: copy)]

    testing.check_lists_without_reading(lazy, WEIGHTS.nbytes)
    with pytest.raises(AssertionError, match="while listing"):
        testing.check_lists_without_reading(eager, WEIGHTS.nbytes)


def test_check_declines_catches_a_greedy_suffix_match_and_leaks_no_temp_dirs() -> None:
    def by_suffix(source: Any, options: Any) -> Any:  # claims anything named *.pt, file or folder, whatever it holds
        if isinstance(source, (str, os.PathLike)) and str(source).endswith(".pt"):
            return [LayerMatrix("w", 0, "dense", (2, 2), lambda: np.ones((2, 2)))]
        return None

    def careful(source: Any, options: Any) -> Any:
        return None

    before = set(os.listdir(tempfile.gettempdir()))
    testing.check_declines(careful)
    with pytest.raises(AssertionError, match=r"right suffix, wrong content|folder named like"):
        testing.check_declines(by_suffix, suffixes=[".pt"])
    testing.check_declines(careful, suffixes=[".pt"])
    assert set(os.listdir(tempfile.gettempdir())) == before, "the kit left temporary files behind"


def test_check_declines_quietly_catches_a_heavy_import(tmp_path: Path) -> None:
    package = tmp_path / "heavy_probe"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from ww_core import hookimpl\n"
        "@hookimpl\n"
        "def ww_layers(source, options):\n"
        "    import numpy.polynomial  # stands in for a framework imported before recognizing the source\n"
        "    return None\n"
    )
    (tmp_path / "light_probe.py").write_text("from ww_core import hookimpl\n@hookimpl\ndef ww_layers(source, options):\n    return None\n")
    sys.path.insert(0, str(tmp_path))
    try:
        testing.check_declines_quietly("light_probe", heavy=["numpy.polynomial"])
        with pytest.raises(AssertionError, match=r"numpy\.polynomial"):
            testing.check_declines_quietly("heavy_probe", heavy=["numpy.polynomial"])
    finally:
        sys.path.remove(str(tmp_path))


class _Spectra:
    def __init__(self, factor: float) -> None:
        self.factor = factor

    @hookimpl
    def ww_eigenvalues(self, layer: LayerMatrix, matrices: Sequence[Any], options: Any) -> list[np.ndarray] | None:
        return [self.factor * e for e in eigenvalues(list(matrices))]


def test_check_eigenvalues_catches_wrong_spectra() -> None:
    layer = LayerMatrix("w", 0, "dense", WEIGHTS.shape, lambda: WEIGHTS)
    testing.check_eigenvalues(_Spectra(1.0).ww_eigenvalues, [layer])
    with pytest.raises(AssertionError, match="'w'"):
        testing.check_eigenvalues(_Spectra(1.01).ww_eigenvalues, [layer])


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint16, np.bool_, np.complex64])
def test_kit_and_weights_agree_on_dtypes(dtype: Any) -> None:
    """LayerMatrix.weights(), its docstring and the kit all say: load() returns floating-point weights."""
    array = np.ones((4, 3), dtype=dtype)
    layer = LayerMatrix("q", 0, "dense", (4, 3), lambda: array)
    with pytest.raises(AssertionError, match="floating point"):
        testing.check_layer(layer)
    with pytest.raises(LayerLoadError, match="floating-point"):
        layer.weights()
    assert "floating-point dtype" in (LayerMatrix.__doc__ or "")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_weights_are_widened(dtype: Any) -> None:
    layer = LayerMatrix("f", 0, "dense", (4, 3), lambda: np.ones((4, 3), dtype=dtype))
    assert testing.check_layer(layer).dtype == dtype and layer.weights().dtype in (np.float32, np.float64)
