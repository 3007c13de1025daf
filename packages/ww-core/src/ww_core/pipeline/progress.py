"""A dependency-free progress bar on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def eta(elapsed: float, done: int, total: int) -> str:
    """``ETA 12s`` (``ETA 3m05s``): the time left at the pace so far, padded so that a redraw leaves no stale characters."""
    left = max(total - done, 0)
    seconds = round(elapsed / done * left) if done else 0
    text = "" if not left or not done else f"ETA {seconds}s" if seconds < 60 else f"ETA {seconds // 60}m{seconds % 60:02d}s"
    return text.ljust(10)


class ProgressBar:
    """``[#####.....] 12/40 name  3.1s  ETA 7s`` redrawn in place; silent when disabled."""

    def __init__(self, total: int, enabled: bool | None = None, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = max(total, 1)
        self.width = width
        self.done = 0
        self.closed = False
        self.started = time.monotonic()

    def expect(self, more: int) -> None:
        """Count ``more`` items still to come (e.g. plots after the analysis), so one bar covers every stage."""
        self.total = max(self.done + more, 1)

    def advance(self, label: str) -> None:
        """Count one finished item and redraw."""
        self.done += 1
        if not self.enabled:
            return
        filled = int(self.width * min(self.done, self.total) / self.total)
        elapsed = time.monotonic() - self.started
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {label[:40]:<40} {elapsed:6.1f}s  {eta(elapsed, self.done, self.total)}")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (once)."""
        if self.enabled and self.done and not self.closed:
            self.closed = True
            self.stream.write("\n")
            self.stream.flush()
