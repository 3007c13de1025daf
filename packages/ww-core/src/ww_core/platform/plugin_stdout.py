"""While plugin code runs (a hook or a layer's ``load``), ``sys.stdout`` is stderr: its prints never reach ``--csv -``."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any


class _StdoutToStderr:
    """While any plugin code runs (in any thread), ``sys.stdout`` is stderr; the first to enter swaps, the last restores."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.saved: Any = None

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        with self.lock:
            if self.depth == 0:
                self.saved, sys.stdout = sys.stdout, sys.stderr
            self.depth += 1
        try:
            yield
        finally:
            with self.lock:
                self.depth -= 1
                if self.depth == 0:
                    sys.stdout = self.saved
                    self.saved = None


stdout_to_stderr = _StdoutToStderr().active
