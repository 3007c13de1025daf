"""Adapters declare their own options (name, type, default, help): misspelled or mistyped keys are refused naming the valid ones."""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Iterator

import pytest

import ww_core
from tests.core import test_plugin_isolation
from ww_core.pipeline.plugins import reload_plugins

#: plugins installed as distributions into a folder on sys.path (the fixture), as load-time isolation tests do
site = test_plugin_isolation.site
install_plugin = test_plugin_isolation.install_plugin

OPTY = """
import numpy as np
from ww_core import AdapterOptions, LayerMatrix, hookimpl

seen = []

@hookimpl
def ww_adapter_info():
    return {
        "name": "opty", "package": "opty-dist", "handles": ".opty files", "suffixes": [".opty"],
        "options": [
            {"name": "order", "type": "str", "default": "name", "help": "how layers are ordered"},
            {"name": "limit", "type": "int", "default": None, "help": "at most this many layers"},
        ],
    }

@hookimpl
def ww_layers(source, options: AdapterOptions):
    if not str(source).endswith(".opty"):
        return None
    seen.append(dict(options.extra))
    return [LayerMatrix("w", 0, "dense", (30, 20), lambda: np.random.default_rng(0).standard_normal((30, 20)))]
"""


@pytest.fixture
def opty(site: Path, tmp_path: Path) -> Iterator[Path]:
    install_plugin(site, "opty-dist", "opty", OPTY)
    reload_plugins()
    model = tmp_path / "m.opty"
    model.write_bytes(b"")
    yield model
    sys.modules.pop("opty", None)


def test_declared_defaults_reach_the_adapter(opty: Path) -> None:
    ww_core.describe(opty, extra={"opty.limit": 3})
    assert sys.modules["opty"].seen[-1] == {"order": "name", "limit": 3}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"opty.ordr": "mtime"}, r"adapter 'opty' has no option 'ordr'; its options: limit, order"),
        ({"opty-dist": {"limit": "3"}}, r"option opty\.limit must be int, got str '3'"),
        ({"opty.order": 1.5}, r"option opty\.order must be str, got float 1\.5"),
    ],
)
def test_misspelled_or_mistyped_options_are_refused(opty: Path, extra: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ww_core.describe(opty, extra=extra)


def test_ww_plugins_name_lists_the_options(opty: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ww_core.cli import main

    assert main(["plugins", "opty"]) == 0
    out = capsys.readouterr().out
    assert "order (str, default 'name'): how layers are ordered" in out and "limit (int, default None)" in out


FIRST_PARTY = ("ww_torch", "ww_keras", "ww_jax", "ww_onnx", "ww_gguf")


@pytest.mark.parametrize("package", FIRST_PARTY)
def test_every_first_party_hook_annotates_adapter_options(package: str) -> None:
    pytest.importorskip(package)
    module = importlib.import_module(package)
    for name in ("ww_layers", "ww_eigenvalues", "ww_write_weights"):
        hook = getattr(module, name, None)
        if hook is not None and "options" in inspect.signature(hook).parameters:
            assert inspect.signature(hook).parameters["options"].annotation == "AdapterOptions", f"{package}.{name}"
