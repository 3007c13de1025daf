"""Files written whole or not at all: a full disk or Ctrl-C never leaves half a weights file for a reader to take."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def written_whole(output: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A handle on a temporary file beside ``output``, renamed onto it once written whole, removed on any failure.

    The temporary name (``.NAME.PID.tmp``) is no weights name, so a reader of the folder never takes it for one.
    """
    target = Path(output)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as handle:
            yield handle
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
