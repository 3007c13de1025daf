"""docs/porting.md lists exactly weightwatcher 0.7.7's public WeightWatcher methods and analyze() keywords."""

from __future__ import annotations

import inspect

import pytest

weightwatcher = pytest.importorskip("weightwatcher")

from ..core.porting_table import keywords, methods, other_keywords  # noqa: E402


def test_every_reference_method_is_listed_once() -> None:
    members = inspect.getmembers(weightwatcher.WeightWatcher)
    reference = {name for name, member in members if callable(member) and not name.startswith("_")}
    listed = set(methods())
    assert listed == reference, f"missing from porting.md: {sorted(reference - listed)}; not the reference's: {sorted(listed - reference)}"


def test_every_analyze_keyword_is_listed_with_the_reference_default() -> None:
    parameters = inspect.signature(weightwatcher.WeightWatcher.analyze).parameters
    reference = {name: repr(p.default) for name, p in parameters.items() if name != "self"}
    listed = {name: default for name, (default, _) in keywords().items()}
    assert set(listed) == set(reference), f"missing: {sorted(set(reference) - set(listed))}; extra: {sorted(set(listed) - set(reference))}"
    wrong = {name: (listed[name], reference[name]) for name in reference if listed[name] != reference[name]}
    assert not wrong, f"defaults differ from the reference's: {wrong}"


def test_every_keyword_of_the_other_ported_methods_is_listed() -> None:
    listed = other_keywords()
    ported = {name for name, status in methods().items() if status != "not ported" and name != "analyze"} | {"__init__"}
    for method in sorted(ported):
        reference = set(inspect.signature(getattr(weightwatcher.WeightWatcher, method)).parameters) - {"self"}
        mine = {keyword for (name, keyword) in listed if name == method}
        assert mine == reference, f"{method}: missing {sorted(reference - mine)}; not the reference's: {sorted(mine - reference)}"
