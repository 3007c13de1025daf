"""The analysis pipeline: selection, isolation of bad layers, parallel runs, describe, summary."""

from __future__ import annotations

import math
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, Callable

import numpy as np
import pytest

import ww_core
from ww_core.platform.protocol import LayerMatrix


def _model(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "fc1": rng.standard_t(3, size=(120, 60)),
        "fc2": rng.standard_normal((80, 40)),
        "conv": rng.standard_t(4, size=(16, 8, 3, 3)),
        "tiny": rng.standard_normal((5, 4)),
    }


def _comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))} for row in rows]


def test_every_layer_has_a_row_in_order_with_skips_explained() -> None:
    results = ww_core.analyze(_model())
    assert [row["name"] for row in results.details] == ["fc1", "fc2", "conv", "tiny"]
    tiny = results.row("tiny")
    assert tiny["status"] == "skipped" and "min_evals" in tiny["error"]
    assert {row["name"] for row in results.analyzed} == {"fc1", "fc2", "conv"}
    assert results.row("conv")["num_evals"] == 9 * 8


def test_layer_filters_by_index_kind_and_name() -> None:
    by_kind = ww_core.analyze(_model(), layers=["conv2d"])
    assert [row["name"] for row in by_kind.analyzed] == ["conv"]
    by_index = ww_core.analyze(_model(), layers=[1])
    assert [row["name"] for row in by_index.analyzed] == ["fc2"]
    without = ww_core.analyze(_model(), layers=[-1])
    assert "fc2" not in {row["name"] for row in without.analyzed}
    by_name = ww_core.analyze(_model(), layers=["fc1"])
    assert [row["name"] for row in by_name.analyzed] == ["fc1"]


def test_size_limits() -> None:
    results = ww_core.analyze(_model(), max_evals=50, min_evals=4)
    statuses = {row["name"]: row["status"] for row in results.details}
    assert statuses == {"fc1": "skipped", "fc2": "success", "conv": "skipped", "tiny": "success"}
    assert ww_core.analyze(_model(), max_N=100).row("fc1")["error"] == "N=120 > max_N=100"


def _layers_with_one_broken_loader() -> list[LayerMatrix]:
    rng = np.random.default_rng(3)
    good = rng.standard_normal((50, 30))

    def broken() -> np.ndarray:
        raise OSError("disk on fire")

    return [
        LayerMatrix("good.a", 0, "dense", (50, 30), lambda: good, origin="test"),
        LayerMatrix("bad", 1, "dense", (50, 30), broken, origin="test"),
        LayerMatrix("wrong.shape", 2, "dense", (50, 30), lambda: good.T, origin="test"),
        LayerMatrix("good.b", 3, "dense", (50, 30), lambda: 2 * good, origin="test"),
    ]


class _ListSource:
    """A source claimed by a test adapter registered for this module only."""

    def __init__(self, layers: list[LayerMatrix]) -> None:
        self.layers = layers


class _TestAdapter:
    @ww_core.hookimpl
    def ww_adapter_info(self) -> dict[str, Any]:
        return {"name": "test-adapter", "package": "tests", "handles": "_ListSource", "modules": ["tests"]}

    @ww_core.hookimpl
    def ww_layers(self, source: Any, options: dict[str, Any]) -> Any:
        return source.layers if isinstance(source, _ListSource) else None


@pytest.fixture(autouse=True, scope="module")
def _register_test_adapter() -> Any:
    from ww_core.pipeline.plugins import plugin_manager

    adapter = _TestAdapter()
    plugin_manager().register(adapter, name="test-adapter")
    yield
    plugin_manager().unregister(adapter)


def test_bad_layers_become_failed_rows_and_others_survive() -> None:
    results = ww_core.analyze(_ListSource(_layers_with_one_broken_loader()))
    status = {row["name"]: row["status"] for row in results.details}
    assert status == {"good.a": "success", "bad": "failed", "wrong.shape": "failed", "good.b": "success"}
    assert "disk on fire" in results.row("bad")["error"] and "'bad'" in results.row("bad")["error"]
    assert "differs from declared" in results.row("wrong.shape")["error"]
    assert math.isnan(results.row("bad")["alpha"])
    assert results.row("good.a")["alpha"] == pytest.approx(results.row("good.b")["alpha"], rel=1e-9)


def test_nan_weights_fail_that_layer_only() -> None:
    model = _model()
    model["fc2"] = model["fc2"].copy()
    model["fc2"][3, 4] = np.nan
    results = ww_core.analyze(model)
    assert results.row("fc2")["status"] == "failed"
    assert results.row("fc1")["status"] == "success"
    assert math.isfinite(results.summary["alpha"])


def test_summary_is_the_mean_over_successful_rows() -> None:
    results = ww_core.analyze(_model())
    rows = [row for row in results.details if row["status"] == "success"]
    for metric in ("alpha", "log_norm", "alpha_weighted", "log_spectral_norm", "stable_rank", "log_alpha_norm"):
        assert results.summary[metric] == pytest.approx(np.mean([row[metric] for row in rows]), rel=1e-12)


def test_parallel_runs_equal_the_serial_run() -> None:
    serial = ww_core.analyze(_model())
    threaded = ww_core.analyze(_model(), workers=2)
    assert _comparable(threaded.details) == _comparable(serial.details)


class _RecordingExecutor(Executor):
    """Stands in for a remote executor (Dask, Ray): runs tasks and counts them."""

    def __init__(self) -> None:
        self.inner = ThreadPoolExecutor(max_workers=2)
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return self.inner.submit(fn, *args, **kwargs)


def test_any_executor_is_used_and_gives_identical_rows() -> None:
    executor = _RecordingExecutor()
    results = ww_core.analyze(_model(), executor=executor)
    assert executor.submitted == 3
    assert _comparable(results.details) == _comparable(ww_core.analyze(_model()).details)


def test_describe_loads_nothing() -> None:
    calls = []

    def never() -> np.ndarray:
        calls.append(1)
        raise AssertionError("describe must not load weights")

    source = _ListSource([LayerMatrix("a", 0, "conv2d", (32, 16, 3, 3), never), LayerMatrix("b", 1, "dense", (4, 3), never)])
    results = ww_core.describe(source)
    assert not calls
    assert [(r["name"], r["num_evals"], r["status"]) for r in results.details] == [("a", 144, "selected"), ("b", 3, "skipped")]


def test_exports(tmp_path: Any) -> None:
    results = ww_core.analyze(_model())
    csv_text = results.to_csv(tmp_path / "rows.csv")
    assert csv_text.splitlines()[0].startswith("layer_id,name,layer_type")
    assert len(csv_text.splitlines()) == 1 + len(results.details)
    import json

    document = json.loads(results.to_json(tmp_path / "rows.json"))
    assert document["summary"]["alpha"] == pytest.approx(results.summary["alpha"])
    assert [row["name"] for row in document["details"]] == [row["name"] for row in results.details]
    frame = results.to_pandas()
    assert list(frame["name"]) == [row["name"] for row in results.analyzed]


def test_esd_is_kept_and_matches_get_esd() -> None:
    model = _model()
    results = ww_core.analyze(model)
    esd = results.esds["fc1"]
    expected = np.sort(np.linalg.svd(model["fc1"], compute_uv=False) ** 2)
    np.testing.assert_allclose(esd, expected, rtol=1e-9)
    np.testing.assert_allclose(ww_core.get_esd(model, "fc1"), expected, rtol=1e-9)


def test_unknown_option_is_named() -> None:
    with pytest.raises(TypeError, match="'alpah'"):
        ww_core.analyze(_model(), alpah=3)


def test_unpooled_conv_keeps_one_esd_per_slice() -> None:
    model = _model()
    results = ww_core.analyze({"conv.weight": model["conv"]}, pool=False, min_evals=4)
    assert [row["slice_id"] for row in results.analyzed] == list(range(9))
    assert sorted(results.esds) == [f"conv[{i}]" for i in range(9)]
    scale = 9 / 2  # the reference's per-slice normalization rf/2 on eigenvalues
    first_slice = model["conv"][:, :, 0, 0]
    expected = np.sort(np.linalg.svd(first_slice, compute_uv=False) ** 2) * scale
    np.testing.assert_allclose(results.esds["conv[0]"], expected, rtol=1e-9)


def test_two_tensors_that_normalize_to_one_name_stay_two_layers() -> None:
    """'fc.weight' and 'fc' were both named 'fc': one ESD overwrote the other, row('fc') and layer deltas saw only one."""
    rng = np.random.default_rng(0)
    first, second = rng.standard_t(3, size=(100, 80)), rng.standard_normal((100, 80))
    results = ww_core.analyze({"fc.weight": first, "fc": second}, workers=1)
    names = [row["name"] for row in results.details]
    assert len(set(names)) == 2 and names[0] == "fc"
    alone = [ww_core.analyze({"x": matrix}).details[0]["alpha"] for matrix in (first, second)]
    assert [results.row(name)["alpha"] for name in names] == pytest.approx(alone, rel=1e-12)
    assert len(results.esds) == 2
    deltas = ww_core.compare({"fc.weight": first, "fc": second}, {"fc.weight": first, "fc": second}).layer_deltas("alpha")
    assert len(deltas) == 2


@pytest.mark.parametrize("workers", [0, -3])
def test_workers_below_one_are_refused(workers: int) -> None:
    """workers=0 or -3 (a typo on the command line) ran serially without a word."""
    with pytest.raises(ValueError, match=f"workers must be at least 1, got {workers}"):
        ww_core.analyze({"fc": np.random.default_rng(0).standard_normal((40, 20))}, workers=workers)
