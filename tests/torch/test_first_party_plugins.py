"""Plugin management beside a real first-party adapter (ww-torch installed): name collisions, the first-party switch, option schemas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ww_core
from tests.core.test_plugin_calls import HEADER, TWIN, _status, forget_plugin_modules, info, install_plugin, npz, site
from ww_core.pipeline.plugins import list_adapters, reload_plugins

__all__ = ["forget_plugin_modules", "npz", "site"]  # fixtures used here, imported from the core tests


def test_an_impostor_named_torch_leaves_ww_torch_working(site: Path) -> None:
    code = HEADER + info("torch", suffixes=[".imp"]) + TWIN.format(name="impostor").replace(".twin", ".imp")
    (site / "impostor.py").write_text(code)
    info_dir = site / "impostor_dist-0.3.dist-info"
    info_dir.mkdir()
    (info_dir / "METADATA").write_text("Metadata-Version: 2.1\nName: impostor-dist\nVersion: 0.3\n")
    (info_dir / "entry_points.txt").write_text("[ww]\ntorch = impostor\n")
    reload_plugins()
    rows = {row["distribution"]: row for row in list_adapters() if row["name"] == "torch"}
    assert set(rows) == {"impostor-dist", "ww-torch"} and {row["status"] for row in rows.values()} == {"ok"}
    assert ".pt" in rows["ww-torch"]["suffixes"] and "ww_layers" in rows["ww-torch"]["hooks"]


def test_allowlist_and_first_party_switch(site: Path, npz: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(site, "alpha-dist", "alpha", HEADER + info("alpha", suffixes=[".twin"]) + TWIN.format(name="alpha"))
    install_plugin(site, "beta-dist", "beta", HEADER + info("beta", suffixes=[".twin"]) + TWIN.format(name="beta"))
    monkeypatch.setenv("WW_PLUGINS", "alpha")
    reload_plugins()
    assert _status("alpha")["status"] == "ok" and _status("beta")["status"] == "disabled"
    assert "WW_PLUGINS" in _status("beta")["reason"]
    monkeypatch.setenv("WW_PLUGINS", "first-party")
    reload_plugins()
    assert _status("alpha")["status"] == _status("beta")["status"] == "disabled"
    assert _status("torch")["status"] == "ok"
    monkeypatch.setenv("WW_PLUGINS", "none")
    reload_plugins()
    assert {row["status"] for row in list_adapters() if row["name"] != "ww-core"} == {"disabled"}
    assert ww_core.analyze(npz, workers=1).adapter["name"] == "ww-core"


def test_first_party_options_are_declared_and_checked() -> None:
    reload_plugins()
    with pytest.raises(ValueError, match=r"adapter 'torch' has no option 'split_gate'; its options: .*split_gates"):
        ww_core.describe({"fc": np.ones((4, 4))}, extra={"torch.split_gate": True})
