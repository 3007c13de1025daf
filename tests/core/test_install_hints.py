"""Install hints in error messages work both ways: by name from the registry and from a ww checkout."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib

from ww_core.platform.adapter_hints import FIRST_PARTY, Hints, advice
from ww_core.views import plots

REPO = Path(__file__).resolve().parents[2]
HINT = re.compile(
    r"pip install '?(?P<name>[\w-]+)(\[(?P<extra>\w+)\])?'? "
    r"\(from a ww checkout: pip install '?(?P<path>\./packages/[\w-]+)(\[(?P<path_extra>\w+)\])?'?\)"
)


def _project(folder: Path) -> dict[str, object]:
    return tomllib.loads((folder / "pyproject.toml").read_text())["project"]


def check_hint(message: str) -> None:
    """The message's hint names a distribution (and extra) this repository builds, and its folder."""
    found = HINT.search(message)
    assert found, f"no install hint valid for both ways in {message!r}"
    project = _project(REPO / found["path"])
    assert project["name"] == found["name"], f"{found['path']} builds {project['name']}, not {found['name']}"
    assert found["extra"] == found["path_extra"]
    if found["extra"]:
        assert found["extra"] in project["optional-dependencies"], f"{found['name']} has no extra {found['extra']!r}"


@pytest.mark.parametrize("hints", FIRST_PARTY, ids=lambda hints: hints.package)
def test_adapter_hints_name_a_package_of_this_repository(tmp_path: Path, hints: Hints) -> None:
    check_hint(advice(str(tmp_path / f"model{hints.suffixes[0]}"), []))  # the advice when that adapter is not installed


def test_plot_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError) as caught:
        plots.new_figure()
    check_hint(str(caught.value))


def test_pandas_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import ww_core

    results = ww_core.analyze({"w": np.random.default_rng(0).standard_normal((64, 32))})
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError) as caught:
        results.to_pandas()
    check_hint(str(caught.value))


def test_an_orbax_checkpoint_folder_points_to_ww_jax(tmp_path: Path) -> None:
    for name in ("_METADATA", "_CHECKPOINT_METADATA", "manifest.ocdbt"):
        (tmp_path / name).write_text("{}")
    message = advice(str(tmp_path), [])
    check_hint(message)
    assert "ww-jax" in message
