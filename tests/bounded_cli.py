"""Run ``ww`` on hostile input as a user would, in a child process with bounded memory and time, and watch a folder it must not read.

The class tests of docs/bad-input.md ("Reads") run every hostile input through every reader that can meet
it with ``check_refused``: exit 2, one line ``ww: error: ...`` naming the file, no traceback, within an
address-space limit (``resource.setrlimit``) and a timeout (a reader that blocks on a FIFO or runs for
minutes fails the test instead of hanging the suite). ``OutsideWatch`` records, with Linux inotify, every
open or read of a file in a folder outside the model, also by native code (h5py, tensorstore, torch).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

#: Address space of the child: enough for every framework's import and a small model, far below what a claimed
#: 15000 x 15000 float tensor (0.9 GB as float32, 1.8 GB as float64) or a million rows would take.
MEMORY_LIMIT = 3 << 30
#: A hang guard, not a timing assertion: refusing a hostile file takes seconds; a blocked read never ends.
TIMEOUT = 120

_CHILD = "import sys; from ww_core.cli import main; sys.exit(main(sys.argv[1:]))"


@dataclass(frozen=True)
class Outcome:
    """What a child ``ww`` run left: exit code and both streams."""

    code: int
    stdout: str
    stderr: str


def _limit_memory(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_ww(*args: str | os.PathLike[str], memory: int = MEMORY_LIMIT, timeout: float = TIMEOUT, cwd: Path | None = None) -> Outcome:
    """``ww ARGS`` in a child process limited to ``memory`` bytes of address space; AssertionError when it outlives ``timeout``."""
    command = [sys.executable, "-c", _CHILD, *map(os.fspath, args)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env, preexec_fn=lambda: _limit_memory(memory)
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"ww {' '.join(map(os.fspath, args))}: still running after {timeout} s (blocked or unbounded)") from None
    return Outcome(done.returncode, done.stdout, done.stderr)


def check_refused(path: str | os.PathLike[str], *needles: str, command: str = "analyze", extra: tuple[str, ...] = ()) -> str:
    """``ww COMMAND PATH`` exits 2 with one line ``ww: error: ...`` naming the file and every needle; returns that line."""
    outcome = run_ww(command, path, *extra)
    label = f"ww {command} {os.fspath(path)}"
    assert outcome.code == 2, f"{label}: exit code {outcome.code}, stderr {outcome.stderr[-2000:]!r}"
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ww: error: "), f"{label}: not one error line: {outcome.stderr[-2000:]!r}"
    assert "Traceback" not in outcome.stderr and not outcome.stdout, f"{label}: printed more than one line"
    missing = [needle for needle in (Path(path).name, *needles) if needle not in lines[0]]
    assert not missing, f"{label}: error {lines[0]!r} does not mention {missing}"
    return lines[0]


def analyzed_rows(path: str | os.PathLike[str], output: Path, *extra: str, command: str = "analyze") -> list[dict[str, object]]:
    """The rows of ``ww COMMAND PATH --json OUTPUT`` run as ``run_ww`` runs it: for inputs where one layer fails, not the run."""
    outcome = run_ww(command, path, "--json", output, *(("-q",) if command == "analyze" else ()), *extra)
    assert outcome.code in (0, 1, 2) and "Traceback" not in outcome.stderr, outcome.stderr[-2000:]
    assert output.is_file(), f"ww {command} {os.fspath(path)}: no rows written (exit {outcome.code}): {outcome.stderr[-2000:]!r}"
    rows: list[dict[str, object]] = json.loads(output.read_text())["details"]
    return rows


_IN_ACCESS, _IN_OPEN = 0x1, 0x20
_IN_NONBLOCK = 0o4000


class OutsideWatch:
    """Records every open or read of a file directly inside ``folder`` while active (Linux inotify): ``touched`` names them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.touched: list[str] = []
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._fd = -1

    def __enter__(self) -> OutsideWatch:
        self._fd = self._libc.inotify_init1(_IN_NONBLOCK)
        if self._fd < 0 or self._libc.inotify_add_watch(self._fd, os.fsencode(self.folder), _IN_ACCESS | _IN_OPEN) < 0:
            raise OSError(ctypes.get_errno(), f"inotify on {self.folder}")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        data = b""
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        os.close(self._fd)
        at = 0
        while at + 16 <= len(data):
            name_length = int.from_bytes(data[at + 12 : at + 16], sys.byteorder)
            name = data[at + 16 : at + 16 + name_length].rstrip(b"\0").decode(errors="replace")
            self.touched.append(name or ".")
            at += 16 + name_length
