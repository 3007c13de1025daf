"""docs/porting.md says what ww does with each reference method and analyze() keyword; check that it does."""

from __future__ import annotations

import ast
import inspect
import warnings

import numpy as np
import pytest

from ww_core import WeightWatcher

from .porting_table import STATUSES, keywords, methods, other_keywords

pytest.importorskip("pandas")


def _model() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"fc.weight": rng.standard_t(3, size=(40, 20)), "conv.weight": rng.standard_normal((8, 4, 3, 3))}


def test_every_row_has_a_known_status() -> None:
    for name, status in {**methods(), **{k: s for k, (_, s) in keywords().items()}}.items():
        assert status in STATUSES, f"{name}: status {status!r} is not one of {STATUSES}"


@pytest.mark.parametrize("name", sorted(methods()))
def test_methods_exist_exactly_when_ported(name: str) -> None:
    ported = methods()[name] != "not ported"
    assert callable(getattr(WeightWatcher, name, None)) == ported, f"{name}: porting.md says {methods()[name]!r}"


@pytest.mark.parametrize("name", sorted(k for k, (_, status) in keywords().items() if status in ("same", "different")))
def test_supported_keywords_accept_the_reference_default(name: str, tmp_path: object) -> None:
    default = ast.literal_eval(keywords()[name][0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if name == "model":
            frame = WeightWatcher().analyze(model=_model())
        else:
            frame = WeightWatcher(model=_model()).analyze(**{name: default})
    assert len(frame) >= 1


@pytest.mark.parametrize("name", sorted(k for k, (_, status) in keywords().items() if status == "warned"))
def test_warned_keywords_warn_naming_themselves(name: str) -> None:
    default = ast.literal_eval(keywords()[name][0])
    with pytest.warns(UserWarning, match=name):
        WeightWatcher(model=_model()).analyze(**{name: default if default not in (None, False) else 1})


@pytest.mark.parametrize("name", sorted(k for k, (_, status) in keywords().items() if status == "refused"))
def test_refused_keywords_raise_naming_themselves(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        WeightWatcher(model=_model()).analyze(**{name: True})


def test_erg_is_detx() -> None:
    frame = WeightWatcher(model=_model()).analyze(ERG=True)
    assert "detX_num" in frame.columns


@pytest.mark.parametrize(("method", "keyword"), sorted(other_keywords()))
def test_other_methods_take_their_listed_keywords(method: str, keyword: str) -> None:
    parameters = inspect.signature(getattr(WeightWatcher, method)).parameters
    assert keyword in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values()), f"{method} does not take {keyword}"
    assert other_keywords()[(method, keyword)] in STATUSES
