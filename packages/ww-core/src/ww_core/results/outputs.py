"""Output files written whole or not at all (temp file + rename), ``-`` meaning stdout, checked before long work."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

STDOUT = "-"


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder renamed over it.

    A failure (disk full, permissions) leaves no partial file and any previous file intact.
    A target that exists and is not a regular file (``/dev/stdout``, a FIFO) is written directly.
    """
    target = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    if target.exists() and not stat.S_ISREG(target.stat().st_mode):
        with target.open("wb") as device:
            device.write(payload)
        return
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_output(target: str | os.PathLike[str], data: str | bytes) -> None:
    """Write to ``target``, or to stdout when it is ``-``."""
    if os.fspath(target) == STDOUT:
        if isinstance(data, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data if data.endswith("\n") else data + "\n")
        sys.stdout.flush()
        return
    write_atomic(target, data)


def check_writable_file(target: str | os.PathLike[str]) -> None:
    """Raise OSError naming ``target`` now, before any analysis, when a file cannot be created there."""
    if os.fspath(target) == STDOUT:
        return
    path = Path(target)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder")
    _probe(path.parent if str(path.parent) else Path("."), path)


def check_writable_folder(folder: str | os.PathLike[str]) -> None:
    """Create ``folder`` if needed and raise OSError naming it when files cannot be created inside."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise type(exc)(f"cannot create output folder {path}: {exc.strerror or exc}") from exc
    _probe(path, path)


def _probe(folder: Path, named: Path) -> None:
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise type(exc)(f"cannot write {named}: {exc.strerror or exc}") from exc
