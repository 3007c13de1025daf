"""The conformance kit and the toolkit agree with docs/writing-adapters.md: skipped tensors, quantized formats, layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ww_core import LayerMatrix, testing, unanalyzable_reason
from ww_core.platform.toolkit import FileSpan, Layout, dequantize


def _never_loaded() -> np.ndarray:
    raise AssertionError("a skipped tensor must never be loaded")


def test_check_layers_passes_an_adapter_that_follows_the_docs_about_skip() -> None:
    ids = LayerMatrix("ids", 0, "dense", (8, 4), _never_loaded, skip=unanalyzable_reason("int32", (8, 4)))
    empty = LayerMatrix("empty", 1, "dense", (0, 4), _never_loaded, skip=unanalyzable_reason("float32", (0, 4)))
    fc = LayerMatrix("fc", 2, "dense", (6, 4), lambda: np.ones((6, 4), np.float32))
    assert [layer.name for layer in testing.check_layers([ids, empty, fc])] == ["ids", "empty", "fc"]


def test_check_layers_still_checks_a_skipped_layers_description() -> None:
    bad = LayerMatrix("ids", 0, "dense", (8, -4), _never_loaded, skip="integer dtype int32")
    with pytest.raises(AssertionError, match="shape"):
        testing.check_layers([bad])


def test_testing_declares_its_public_names() -> None:
    assert testing.__all__ and all(hasattr(testing, name) for name in testing.__all__)
    assert all(not name.startswith("_") for name in testing.__all__)
    assert {"check_layers", "check_plugin", "check_declines", "assert_rows_close"} <= set(testing.__all__)


def test_dequantize_per_tensor_and_per_axis() -> None:
    codes = np.array([[0, 10], [20, 30], [40, 50]], np.int8)
    np.testing.assert_array_equal(dequantize(codes, 0.5), codes.astype(np.float32) * 0.5)
    np.testing.assert_array_equal(dequantize(codes, 0.5, zero_point=10), (codes.astype(np.float32) - 10) * 0.5)
    scales, zeros = np.array([1.0, 2.0, 4.0]), np.array([0, 1, 2])
    expected = (codes.astype(np.float32) - zeros[:, None]) * scales[:, None]
    np.testing.assert_array_equal(dequantize(codes, scales, zero_point=zeros, axis=0), expected)
    assert dequantize(codes, scales, axis=0).dtype == np.float32
    with pytest.raises(ValueError, match="3 values along axis 1 of shape"):
        dequantize(codes, scales, axis=1)


def test_a_general_axes_layout_needs_no_subclass(tmp_path: Path) -> None:
    ohwi = np.arange(2 * 3 * 3 * 4, dtype=np.float32).reshape(2, 3, 3, 4)
    path = tmp_path / "w.bin"
    path.write_bytes(ohwi.tobytes())
    span = FileSpan(str(path), 0, "<f4", ohwi.shape, Layout(axes=(0, 3, 1, 2)))
    np.testing.assert_array_equal(span.read(), ohwi.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="axes"):
        Layout(axes=(0, 1, 1, 2))


def test_framework_type_is_a_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import ww_core
    from ww_core.cli import main

    rows = ww_core.analyze({"fc": np.random.default_rng(0).standard_normal((40, 20))}, workers=1).details
    assert rows[0]["framework_type"] == "numpy.ndarray"
    path = tmp_path / "m.npz"
    np.savez(path, fc=np.random.default_rng(0).standard_normal((40, 20)))
    assert main(["describe", str(path), "--columns", "name,framework_type"]) == 0
    assert capsys.readouterr().out.splitlines()[2].split() == ["fc", "npz"]
