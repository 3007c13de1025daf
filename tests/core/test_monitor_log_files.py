"""A monitor log that is no regular file (a FIFO) is one error naming it, never a hang or a wrong "no such log".

Found by trying it: ``Monitor(log=fifo)`` blocked forever opening the FIFO, and ``load_history``/``ww plot-history``
on one said "no such monitor log" of a file that exists.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ww_core
from ww_core.cli import main

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")

MONITOR = """
import sys, numpy as np, ww_core
try:
    ww_core.Monitor(every=1, log=sys.argv[1])
except ValueError as exc:
    print("refused:", exc)
"""


def test_a_monitor_refuses_a_fifo_as_its_log(tmp_path: Path) -> None:
    fifo = tmp_path / "run.jsonl"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-c", MONITOR, str(fifo)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused:") and "run.jsonl" in done.stdout and "not a regular file (a FIFO)" in done.stdout


def test_load_history_and_plot_history_name_a_fifo_as_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "run.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"run\.jsonl: not a regular file \(a FIFO\)"):
        ww_core.load_history(fifo)
    assert main(["plot-history", str(fifo), "-o", str(tmp_path / "h.png")]) == 2
    err = capsys.readouterr().err
    assert "not a regular file (a FIFO)" in err and "no such" not in err, err
    with pytest.raises(FileNotFoundError, match="no such monitor log"):
        ww_core.load_history(tmp_path / "missing.jsonl")
