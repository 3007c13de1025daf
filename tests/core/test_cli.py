"""The ww command: demo, analyze with exports, describe, plugins, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ww_core.cli import main


def test_demo_analyzes_the_bundled_trained_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for layer in ("conv1", "conv2", "fc1", "fc2", "fc3"):
        assert layer in out
    assert "alpha" in out and "summary:" in out


def test_no_arguments_runs_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "fc1" in capsys.readouterr().out


def test_analyze_writes_csv_and_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    model = tmp_path / "m.npz"
    np.savez(model, a=rng.standard_normal((60, 30)), b=rng.standard_normal((40, 20)))
    assert main(["analyze", str(model), "--csv", str(tmp_path / "o.csv"), "--json", str(tmp_path / "o.json"), "-q"]) == 0
    document = json.loads((tmp_path / "o.json").read_text())
    assert [row["name"] for row in document["details"]] == ["a", "b"]
    assert (tmp_path / "o.csv").read_text().count("\n") == 3


def test_describe_and_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe"]) == 0
    assert "num_evals" in capsys.readouterr().out
    assert main(["plugins", "--json"]) == 0
    names = [adapter["name"] for adapter in json.loads(capsys.readouterr().out)]
    assert names[0] == "ww-core"


def test_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x05\x00")
    done = subprocess.run([sys.executable, "-m", "ww_core", "analyze", str(bad)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("ww: error:") and "broken.safetensors" in done.stderr
    assert "Traceback" not in done.stderr
    missing = subprocess.run([sys.executable, "-m", "ww_core", "analyze", str(tmp_path / "nope.npz")], capture_output=True, text=True)
    assert missing.returncode == 2 and "nope.npz" in missing.stderr
