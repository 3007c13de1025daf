"""Plots a reader can read: layer names on the flow's x axis, each legend entry once when models overlay."""

from __future__ import annotations

import numpy as np
import pytest

import ww_core
from ww_core.views import plots

pytest.importorskip("matplotlib")


def _heavy(seed: int, names: list[str]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_t(1.5, size=(120, 60)) for name in names}


def test_flow_x_axis_names_the_layers() -> None:
    names = [f"encoder.layer.{i}.attention.self.query" for i in range(30)]
    results = ww_core.analyze(_heavy(0, names))
    ax = results.plot_correlation_flow()
    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    assert len(labels) == 30
    assert labels[12] == "self.query (12)"
    assert all(len(label) <= plots.TICK_NAME_WIDTH + 5 for label in labels)
    assert ax.get_xticklabels()[0].get_rotation() == 60


def test_many_layers_get_every_kth_name() -> None:
    results = ww_core.analyze({f"l{i}": np.ones((2, 2)) for i in range(100)})
    ax = results.plot_correlation_flow()
    assert len(ax.get_xticklabels()) <= plots.MAX_TICKS


def test_short_name_keeps_the_distinguishing_end() -> None:
    assert plots.short_name("model.layers.10.mlp.down_proj") == "10.mlp.down_proj"
    assert plots.short_name("a" * 40).startswith("…") and len(plots.short_name("a" * 40)) == plots.TICK_NAME_WIDTH


def test_overlaid_flows_list_each_legend_entry_once(tmp_path: object) -> None:
    names = ["fc1", "fc2", "fc3"]
    comparison = ww_core.compare(_heavy(1, names), _heavy(2, names), _heavy(3, names), names=["a", "b", "c"])
    ax = None
    for name, result in zip(comparison.names, comparison.results):
        ax = plots.plot_correlation_flow(result, ax=ax, label=name)
    assert ax is not None
    labels = ax.get_legend_handles_labels()[1]
    assert labels.count(plots.OUT_OF_BAND) == 1
    assert [label for label in labels if label in "abc"] == ["a", "b", "c"]
