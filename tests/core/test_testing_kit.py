"""The conformance kit itself: it passes a good adapter and names the problem in a bad one."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from ww_core import LayerMatrix, testing


def layer(name: str, index: int, shape: tuple[int, ...], kind: Any = "dense", load: Callable[[], Any] | None = None) -> LayerMatrix:
    array = np.ones(shape, dtype=np.float32)
    return LayerMatrix(name=name, index=index, kind=kind, shape=shape, load=load or (lambda: array))


def good_layers() -> list[LayerMatrix]:
    return [layer("emb", 0, (10, 4), "embedding"), layer("conv", 1, (6, 4, 3), "conv1d"), layer("fc", 2, (3, 6))]


def test_good_layers_pass() -> None:
    assert [x.name for x in testing.check_layers(good_layers())] == ["emb", "conv", "fc"]


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (None, "returned None"),
        ([], "at least 1"),
        ([layer("a", 1, (3, 3))], "indices must be 0..0"),
        ([layer("a", 0, (3, 3)), layer("a", 1, (3, 3))], "used by layers 0 and 1"),
        ([layer("a", 0, (3, 3), load=lambda: np.ones((3, 4)))], "canonical shape is (3, 3)"),
        ([layer("a", 0, (3, 3), load=lambda: np.ones((3, 3), dtype=np.int64))], "floating point"),
        ([layer("a", 0, (3, 3), load=lambda: [[1.0]])], "numpy array"),
        ([layer("a", 0, (3, 3), load=lambda: np.full((3, 3), np.nan))], "NaN"),
        ([layer("a", 0, (np.int64(3), 3))], "Python ints"),  # type: ignore[arg-type]
    ],
)
def test_bad_layers_are_named(layers: list[LayerMatrix] | None, message: str) -> None:
    with pytest.raises(AssertionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        testing.check_layers(layers)


class Store:
    """A toy source whose weights live in a dict; ``eager`` copies them while listing."""

    def __init__(self, eager: bool) -> None:
        self.weights = {"a": np.ones((4, 4)), "b": np.ones((5, 3))}
        self.eager = eager

    def layers(self) -> list[LayerMatrix]:
        out = []
        for index, (name, array) in enumerate(self.weights.items()):
            copy = array.copy()
            out.append(
                LayerMatrix(name, index, "dense", array.shape, (lambda c=copy: c) if self.eager else (lambda n=name: self.weights[n]))
            )
        return out

    def mutate(self) -> None:
        self.weights = {name: array * 2 for name, array in self.weights.items()}


def test_check_lazy_accepts_lazy_and_rejects_eager() -> None:
    lazy = Store(eager=False)
    testing.check_lazy(lazy.layers, lazy.mutate)
    eager = Store(eager=True)
    with pytest.raises(AssertionError, match="captured while listing"):
        testing.check_lazy(eager.layers, eager.mutate)
    still = Store(eager=False)
    with pytest.raises(AssertionError, match="did not change"):
        testing.check_lazy(still.layers, lambda: None)


def test_check_declines() -> None:
    testing.check_declines(lambda source, options: None)
    with pytest.raises(AssertionError, match="claimed a foreign source"):
        testing.check_declines(lambda source, options: [] if isinstance(source, int) else None)
    with pytest.raises(AssertionError, match="raised RuntimeError"):
        testing.check_declines(lambda source, options: (_ for _ in ()).throw(RuntimeError("boom")) if source == 42 else None)


def test_check_clear_error() -> None:
    def fail() -> None:
        raise ValueError("model.bin: layer 'fc' has shape (3,)")

    assert isinstance(testing.check_clear_error(fail, "model.bin", "fc", error=ValueError), ValueError)
    with pytest.raises(AssertionError, match="does not mention"):
        testing.check_clear_error(fail, "other.bin")
    with pytest.raises(AssertionError, match="nothing was raised"):
        testing.check_clear_error(lambda: None, "x")


def test_check_adapter_info() -> None:
    testing.check_adapter_info({"name": "x", "package": "ww-x", "handles": "x files"})
    with pytest.raises(AssertionError, match="handles"):
        testing.check_adapter_info({"name": "x", "package": "ww-x"})
    info = {"name": "x", "package": "ww-x", "handles": "x files"}
    testing.check_adapter_info({**info, "suffixes": [".x"], "modules": ["xlib"]})
    with pytest.raises(AssertionError, match="suffixes"):
        testing.check_adapter_info({**info, "suffixes": ".x"})  # a string, not a list
    with pytest.raises(AssertionError, match="suffixes"):
        testing.check_adapter_info({**info, "suffixes": ["X"]})  # no dot, not lower case
    with pytest.raises(AssertionError, match="modules"):
        testing.check_adapter_info({**info, "modules": ["xlib.sub"]})  # top-level module names only


def test_assert_rows_close() -> None:
    rows = [{"name": "a", "layer_type": "dense", "alpha": 2.5, "D": float("nan"), "N": 8, "status": "success"}]
    twin = [{**rows[0], "name": "other", "alpha": 2.5 + 1e-13}]
    testing.assert_rows_close(twin, rows)
    with pytest.raises(AssertionError, match="alpha"):
        testing.assert_rows_close([{**rows[0], "alpha": 2.6}], rows)
    with pytest.raises(AssertionError, match="layer_type"):
        testing.assert_rows_close([{**rows[0], "layer_type": "conv2d"}], rows)
    with pytest.raises(AssertionError, match=r"D = 1\.0"):
        testing.assert_rows_close([{**rows[0], "D": 1.0}], rows)
    with pytest.raises(AssertionError, match="2 rows"):
        testing.assert_rows_close(rows * 2, rows)
    testing.assert_rows_close([{**rows[0], "alpha": 2.6}], rows, columns=["N"])


def test_kit_imports_no_framework() -> None:
    import subprocess
    import sys

    code = "import sys, ww_core.testing\nassert not {'torch', 'tensorflow', 'keras', 'jax', 'flax', 'onnx'} & set(sys.modules)\n"
    subprocess.run([sys.executable, "-c", code], check=True)
