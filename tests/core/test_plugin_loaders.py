"""A plugin's ``load()`` is plugin code too: what it prints goes to stderr, and its ``sys.exit`` fails its row, never ww.

Found by trying a real installed plugin from the command line: a loader's print landed in ``--csv -``,
and a loader calling ``sys.exit(7)`` ended ``ww analyze`` with exit code 7 and no message.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ww_core
from tests.core import test_plugin_isolation
from ww_core import LayerMatrix
from ww_core.pipeline.plugins import reload_plugins

site = test_plugin_isolation.site
install_plugin = test_plugin_isolation.install_plugin

PLUGIN = """
import sys
import numpy as np
import pytest
from ww_core import LayerMatrix, hookimpl

@hookimpl
def ww_adapter_info():
    return {"name": "lp", "package": "lp-dist", "handles": ".lp files", "suffixes": [".lp"]}

def noisy():
    print("printed by load")
    return np.random.default_rng(0).standard_normal((60, 30))

def exits():
    sys.exit(7)

@hookimpl
def ww_layers(source, options):
    if not str(source).endswith(".lp"):
        return None
    second = exits if "exit" in str(source) else noisy
    return [LayerMatrix("a", 0, "dense", (60, 30), noisy), LayerMatrix("b", 1, "dense", (60, 30), second)]
"""


def _ww(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    paths = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    environment = {**os.environ, "PYTHONPATH": paths, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "ww_core", *args], capture_output=True, text=True, env=environment, timeout=300)


def test_a_loaders_print_goes_to_stderr_so_csv_stays_clean(site: Path, tmp_path: Path) -> None:
    install_plugin(site, "lp-dist", "lpplug", PLUGIN)
    source = tmp_path / "model.lp"
    source.touch()
    done = _ww(site, "analyze", str(source), "--csv", "-", "-q")
    assert done.returncode == 0, done.stderr
    assert "printed by load" not in done.stdout and "printed by load" in done.stderr
    assert done.stdout.splitlines()[0].startswith("layer_id,name,")
    assert len(done.stdout.splitlines()) == 3


def test_a_loaders_sys_exit_fails_its_row_and_ww_goes_on(site: Path, tmp_path: Path) -> None:
    install_plugin(site, "lp-dist", "lpplug", PLUGIN)
    reload_plugins()
    source = tmp_path / "exit.lp"
    source.touch()
    results = ww_core.analyze(source, workers=1)
    assert [row["status"] for row in results.details] == ["success", "failed"]
    assert "'b'" in results.details[1]["error"] and "SystemExit: 7" in results.details[1]["error"]
    assert np.isfinite(results.details[0]["alpha"])
    done = _ww(site, "analyze", str(source))
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert "SystemExit: 7" in done.stdout


def test_only_plugin_loaders_run_with_stdout_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """Core's own loaders (a monitor's snapshot, on its background thread) leave ``sys.stdout`` alone: swapping it
    there sent the training loop's own prints, made meanwhile on the main thread, to stderr."""
    seen: list[object] = []

    def core_loader() -> np.ndarray:
        seen.append(sys.stdout)
        return np.ones((4, 3))

    def plugin_loader() -> np.ndarray:
        seen.append(sys.stdout)
        return np.ones((4, 3))

    core_loader.__module__ = "ww_core.training.snapshot"
    LayerMatrix("core", 0, "dense", (4, 3), core_loader).weights()
    LayerMatrix("plugin", 1, "dense", (4, 3), plugin_loader).weights()
    assert seen[0] is sys.stdout and seen[1] is sys.stderr
