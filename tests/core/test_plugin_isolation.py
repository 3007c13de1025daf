"""A broken third-party plugin never breaks ww; WW_DISABLE_PLUGINS and adapter= choose who reads a source."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

import ww_core
from ww_core.pipeline.plugins import AmbiguousSourceError, UnknownSourceError, list_adapters, reload_plugins

GOOD = """
    import numpy as np
    from ww_core import LayerMatrix, hookimpl

    @hookimpl
    def ww_adapter_info():
        return {{"name": "{name}", "package": "{dist}", "handles": ".twin files", "suffixes": [".twin"]}}

    @hookimpl
    def ww_layers(source, options):
        if not str(source).endswith(".twin"):
            return None
        rng = np.random.default_rng(0)
        return [LayerMatrix("{name}.w", 0, "dense", (40, 20), lambda: rng.standard_normal((40, 20)))]
"""


def install_plugin(root: Path, dist: str, module: str, code: str) -> None:
    """A distribution as pip leaves it: the module plus a dist-info with a ``ww`` entry point."""
    (root / f"{module}.py").write_text(textwrap.dedent(code))
    info = root / f"{dist.replace('-', '_')}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[ww]\n{module} = {module}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path to install plugins into; plugins are found again before and after the test."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    reload_plugins()
    yield root
    reload_plugins()


def _status(name: str) -> dict[str, object]:
    return next(row for row in list_adapters() if row["name"] == name)


MODEL = {"fc": np.random.default_rng(1).standard_normal((60, 30))}

BROKEN = {
    "bad argument name": ("@hookimpl\ndef ww_layers(src, options):\n    return None\n", "src"),
    "misspelled hook": ("@hookimpl\ndef ww_layer(source, options):\n    return None\n", "ww_layer is not a ww hook"),
    "hook not marked": ("def ww_layers(source, options):\n    return None\n", "not marked with @ww_core.hookimpl"),
    "import error": ("raise ImportError('needs frobnicate')\n", "ImportError: needs frobnicate"),
    "no hook at all": ("VALUE = 1\n", "implements no ww hook"),
    "other protocol": (
        "@hookimpl\ndef ww_adapter_info():\n    return {'name': 'x', 'package': 'x', 'handles': 'x', 'protocol': 99}\n"
        "@hookimpl\ndef ww_layers(source, options):\n    return None\n",
        "written for adapter protocol 99",
    ),
    "info raises": (
        "@hookimpl\ndef ww_adapter_info():\n    raise RuntimeError('no info')\n"
        "@hookimpl\ndef ww_layers(source, options):\n    return None\n",
        "RuntimeError: no info",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_plugin_is_skipped_with_one_warning(case: str, site: Path, caplog: pytest.LogCaptureFixture) -> None:
    body, reason = BROKEN[case]
    module = "broken_" + case.replace(" ", "_")
    install_plugin(site, "broken-dist", module, "from ww_core import hookimpl\n" + body)
    with caplog.at_level(logging.WARNING, logger="ww_core"):
        results = ww_core.analyze(MODEL, workers=1)
        ww_core.analyze(MODEL, workers=1)
    assert [row["status"] for row in results.details] == ["success"]
    warnings = [record.getMessage() for record in caplog.records if "plugin" in record.getMessage()]
    assert len(warnings) == 1 and "broken-dist" in warnings[0] and reason in warnings[0], warnings
    row = _status(module)
    assert row["status"] == "broken" and reason in str(row["reason"]) and row["distribution"] == "broken-dist"


def test_plugins_lists_distribution_version_hooks_and_status(site: Path) -> None:
    install_plugin(site, "twin-a", "alpha", GOOD.format(name="alpha", dist="twin-a"))
    row = _status("alpha")
    assert row["distribution"] == "twin-a" and row["version"] == "0.3" and row["status"] == "ok"
    assert row["hooks"] == ["ww_adapter_info", "ww_layers"] and row["handles"] == ".twin files"


def test_disabled_plugin_is_not_loaded(site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(site, "twin-a", "alpha", GOOD.format(name="alpha", dist="twin-a"))
    monkeypatch.setenv("WW_DISABLE_PLUGINS", " other ,twin-a")
    reload_plugins()
    assert _status("alpha")["status"] == "disabled"
    model = tmp_path / "m.twin"
    model.write_bytes(b"")
    with pytest.raises(UnknownSourceError):
        ww_core.describe(model)


def test_routing_order_and_adapter_choice(site: Path, tmp_path: Path) -> None:
    install_plugin(site, "twin-b", "beta", GOOD.format(name="beta", dist="twin-b"))
    install_plugin(site, "twin-a", "alpha", GOOD.format(name="alpha", dist="twin-a"))
    model = tmp_path / "m.twin"
    model.write_bytes(b"")
    with pytest.raises(AmbiguousSourceError, match=r"alpha \(twin-a 0\.3\) and beta \(twin-b 0\.3\)"):
        ww_core.describe(model)  # both declare .twin and claim it: never a silent choice
    first = ww_core.describe(model, adapter="alpha")
    assert [row["name"] for row in first.details] == ["alpha.w"]
    assert first.adapter == {"name": "alpha", "distribution": "twin-a", "version": "0.3"}
    for choice in ("beta", "twin-b"):
        chosen = ww_core.analyze(model, adapter=choice, workers=1)
        assert [row["name"] for row in chosen.details] == ["beta.w"]
        assert chosen.adapter == {"name": "beta", "distribution": "twin-b", "version": "0.3"}
    meta = json.loads(chosen.to_json())["meta"]
    assert meta["adapter"]["name"] == "beta" and meta["options"] == {"adapter": "twin-b"}
    header, row = chosen.to_csv().splitlines()[:2]
    assert header.split(",")[-2:] == ["adapter", "options"] and "beta (twin-b 0.3)" in row
    with pytest.raises(UnknownSourceError, match="no installed adapter named 'gamma'"):
        ww_core.analyze(model, adapter="gamma")
    with pytest.raises(UnknownSourceError, match="adapter 'ww-core' does not recognize"):
        ww_core.analyze(model, adapter="ww-core")


def test_cli_works_and_names_broken_plugins(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site, "bad-args", "bad_args", "from ww_core import hookimpl\n" + BROKEN["bad argument name"][0])
    install_plugin(site, "typo-hook", "typo_hook", "from ww_core import hookimpl\n" + BROKEN["misspelled hook"][0])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    def ww(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ww_core", *args], capture_output=True, text=True, env=env, timeout=300)

    demo = ww("demo", "--workers", "1")
    assert demo.returncode == 0 and "summary" in demo.stdout, demo.stderr
    assert demo.stderr.count("is broken and was skipped") == 2, demo.stderr
    listing = ww("plugins")
    assert listing.returncode == 0
    lines = {line.split()[0]: line for line in listing.stdout.splitlines()}
    assert "[broken:" in lines["bad_args"] and "bad-args 0.3" in lines["bad_args"]
    assert "ww_layer is not a ww hook" in lines["typo_hook"]


def test_unknown_source_is_one_cli_error_line(tmp_path: Path) -> None:
    from ww_core.cli import main

    source = tmp_path / "model.weird"
    source.write_bytes(b"??")
    result = subprocess.run([sys.executable, "-m", "ww_core", "analyze", str(source)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "no installed adapter recognizes" in result.stderr and "model.weird" in result.stderr
    assert main(["analyze", str(source), "--adapter", "nobody"]) == 2
