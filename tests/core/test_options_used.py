"""No accepted option is a silent no-op: each AnalysisOptions field changes the rows, reaches the adapters, or is refused."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

import numpy as np
import pytest

import ww_core
from ww_core import AnalysisOptions, LayerMatrix, hookimpl
from ww_core.pipeline.plugins import plugin_manager

#: field → (non-default value, other options it needs to matter).
CHANGES_ROWS: dict[str, tuple[Any, dict[str, Any]]] = {
    "layers": ((1,), {}),
    "min_evals": (60, {}),
    "max_evals": (55, {}),
    "max_N": (90, {}),
    "pool": (False, {}),
    "conv2d_norm": (False, {}),
    "conv2d_fft": (True, {}),
    "randomize": (True, {}),
    "seed": (1, {"randomize": True}),
    "mp_fit": (True, {}),
    "fix_fingers": ("clip_xmax", {}),
    "xmin_max": (0.5, {"fix_fingers": "xmin_peak"}),
    "max_fingers": (2, {"fix_fingers": "clip_xmax", "finger_thresh": -100.0, "min_evals": 0}),  # counts only for a tiny ESD
    "finger_thresh": (-100.0, {"fix_fingers": "clip_xmax"}),
    "fit": ("TPL", {}),
    "xmax": (3, {}),
    "vectors": (True, {}),
    "detX": (True, {}),
    "inverse": (True, {}),
    "peft": (True, {}),
    "exact": (True, {}),
}
#: Fields refused with an error naming them.
REFUSED = {"intra": True}
#: Fields only adapters read: they must arrive in the ``options`` handed to ``ww_layers``.
FOR_ADAPTERS = {"fused_qkv": True, "trust_pickle": True, "extra": {"spy": {"spy_option": 1}}}
#: Fields that choose which adapter reads the source.
ROUTES = {"adapter": "ww-core"}


def _model() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    return {
        "a": rng.standard_t(3, size=(100, 50)),
        "b": rng.standard_t(4, size=(80, 64)),
        "c": rng.standard_t(3, size=(32, 16, 3, 3)),
        "tiny": rng.standard_t(2, size=(8, 4)),
    }


def _rows(**options: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items()} for row in ww_core.analyze(_model(), workers=1, **options).details]


def test_every_option_is_listed_here() -> None:
    fields = {f.name for f in dataclasses.fields(AnalysisOptions)}
    listed = set(CHANGES_ROWS) | set(REFUSED) | set(FOR_ADAPTERS) | set(ROUTES)
    assert fields == listed, f"options not checked: {sorted(fields - listed)}; listed but gone: {sorted(listed - fields)}"


@pytest.mark.parametrize("name", sorted(CHANGES_ROWS))
def test_option_changes_the_rows(name: str) -> None:
    value, context = CHANGES_ROWS[name]
    assert _rows(**context, **{name: value}) != _rows(**context), f"{name}={value!r} changed nothing"


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_option_is_refused_naming_itself(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        ww_core.analyze(_model(), **{name: REFUSED[name]})


class _Spy:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    @hookimpl
    def ww_adapter_info(self) -> dict[str, Any]:
        return {"name": "spy", "package": "tests", "handles": "nothing", "modules": ["numpy"]}  # asked about numpy dicts

    @hookimpl
    def ww_layers(self, source: Any, options: dict[str, Any]) -> Iterable[LayerMatrix] | None:
        self.seen.append(dict(options))
        return None


@pytest.mark.parametrize("name", sorted(FOR_ADAPTERS))
def test_adapter_option_reaches_the_adapters(name: str) -> None:
    spy = _Spy()
    plugin_manager().register(spy, name="spy")
    try:
        ww_core.analyze(_model(), **{name: FOR_ADAPTERS[name]})
    finally:
        plugin_manager().unregister(spy)
    expected = FOR_ADAPTERS[name] if name != "extra" else None
    if name == "extra":
        assert spy.seen and all(seen.get("spy_option") == 1 for seen in spy.seen)
    else:
        assert spy.seen and all(seen.get(name) == expected for seen in spy.seen)


def test_adapter_option_asks_only_that_adapter() -> None:
    spy = _Spy()
    plugin_manager().register(spy, name="spy")
    try:
        results = ww_core.analyze(_model(), workers=1, **ROUTES)
    finally:
        plugin_manager().unregister(spy)
    assert not spy.seen and results.adapter["name"] == ROUTES["adapter"]


def test_min_size_warns_as_the_reference_does() -> None:
    with pytest.warns(UserWarning, match="min_size"):
        ww_core.analyze(_model(), min_size=10)
