"""Adapters get a typed, read-only options object: core keys fixed, extras namespaced by adapter;
``exact`` reaches ``ww_eigenvalues``; ``get_esd`` takes the same eigenvalue route as ``analyze``."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pytest

import ww_core
from ww_core import LayerMatrix, hookimpl
from ww_core.pipeline.plugins import plugin_manager
from ww_core.spectra.spectrum import eigenvalues

MODEL = {"fc": np.random.default_rng(3).standard_t(3, size=(60, 30))}


class _Spy:
    """Claims nothing; records the options each hook call received."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    @hookimpl
    def ww_adapter_info(self) -> dict[str, Any]:
        return {"name": "spy", "package": "tests", "handles": "nothing", "modules": ["numpy"]}  # asked about numpy dicts

    @hookimpl
    def ww_layers(self, source: Any, options: Any) -> Iterable[LayerMatrix] | None:
        self.seen.append(options)
        return None


@pytest.fixture
def spies() -> Iterator[dict[str, _Spy]]:
    made = {"spy_a": _Spy(), "spy_b": _Spy()}
    for name, spy in made.items():
        plugin_manager().register(spy, name=name)
    yield made
    for spy in made.values():
        plugin_manager().unregister(spy)


@pytest.mark.parametrize("extra", [{"trust_pickle": True}, {"spy_a": {"trust_pickle": True}}, {"spy_a.trust_pickle": True}])
def test_extra_cannot_grant_trust_pickle(extra: dict[str, Any], spies: dict[str, _Spy]) -> None:
    with pytest.raises(ValueError, match="trust_pickle"):
        ww_core.analyze(MODEL, workers=1, extra=extra)
    assert all(not options.get("trust_pickle") for spy in spies.values() for options in spy.seen)


def test_only_the_trust_pickle_argument_grants_trust(spies: dict[str, _Spy]) -> None:
    ww_core.describe(MODEL, trust_pickle=True)
    assert spies["spy_a"].seen[-1].trust_pickle is True and spies["spy_a"].seen[-1]["trust_pickle"] is True


def test_extras_are_namespaced_by_adapter(spies: dict[str, _Spy]) -> None:
    ww_core.describe(MODEL, extra={"spy_a": {"split_gates": True}, "spy_b.split_gates": False, "spy_b.depth": 2})
    a, b = spies["spy_a"].seen[-1], spies["spy_b"].seen[-1]
    assert dict(a.extra) == {"split_gates": True} and a.get("split_gates") is True and "depth" not in a
    assert dict(b.extra) == {"split_gates": False, "depth": 2} and b["depth"] == 2


def test_options_are_typed_and_read_only(spies: dict[str, _Spy]) -> None:
    ww_core.describe(MODEL, fused_qkv=True, exact=True, extra={"spy_a": {"k": [1]}})
    options = spies["spy_a"].seen[-1]
    assert (options.fused_qkv, options.trust_pickle, options.exact) == (True, False, True)
    with pytest.raises(AttributeError):
        options.trust_pickle = True
    with pytest.raises(TypeError):
        options.extra["trust_pickle"] = True
    with pytest.raises(TypeError):
        options["trust_pickle"] = True  # type: ignore[index]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"split_gates": True}, "name its adapter"),
        ({"no_such_adapter": {"x": 1}}, "no_such_adapter"),
        ({"spy_a": {"exact": True}}, "core option"),
    ],
)
def test_bad_extras_are_refused_naming_the_key(extra: dict[str, Any], message: str, spies: dict[str, _Spy]) -> None:
    with pytest.raises(ValueError, match=message):
        ww_core.analyze(MODEL, workers=1, extra=extra)


class _Recorder:
    """A spectra hook that answers core's eigenvalues, or None (core computes) when asked for exact; records ``exact``."""

    def __init__(self) -> None:
        self.exact_seen: list[bool] = []

    @hookimpl
    def ww_eigenvalues(self, layer: LayerMatrix, matrices: Sequence[Any], options: Any) -> list[np.ndarray] | None:
        self.exact_seen.append(options.exact)
        if options.exact:
            return None
        return eigenvalues(list(matrices))


#: The user gives the recorder options, which is how an adapter that did not read the source is asked for spectra.
ASK_RECORDER = {"extra": {"recorder": {}}}


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    hook = _Recorder()
    plugin_manager().register(hook, name="recorder")
    yield hook
    plugin_manager().unregister(hook)


def test_eigenvalue_hook_receives_exact_and_may_decline(recorder: _Recorder) -> None:
    ww_core.analyze(MODEL, workers=1)
    assert not recorder.exact_seen, "an adapter that neither read the source nor was given options is never asked"
    asked = ww_core.analyze(MODEL, workers=1, **ASK_RECORDER)
    assert recorder.exact_seen and not any(recorder.exact_seen)
    exact = ww_core.analyze(MODEL, workers=1, exact=True, **ASK_RECORDER)
    assert recorder.exact_seen[-1] is True
    core = np.sort(eigenvalues([MODEL["fc"]], exact=True)[0])
    np.testing.assert_allclose(exact.esds["fc"], core, rtol=1e-12)
    np.testing.assert_allclose(asked.esds["fc"], np.sort(eigenvalues([MODEL["fc"]])[0]), rtol=1e-12)


def test_get_esd_takes_the_same_eigenvalue_route_as_analyze(recorder: _Recorder) -> None:
    np.testing.assert_array_equal(
        ww_core.get_esd(MODEL, "fc", **ASK_RECORDER), ww_core.analyze(MODEL, workers=1, **ASK_RECORDER).esds["fc"]
    )
    assert len(recorder.exact_seen) == 2
