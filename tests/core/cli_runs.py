"""Run the ``ww`` command in-process and capture it: exit code, stdout, stderr; anything escaping ``main`` fails the test."""

from __future__ import annotations

import contextlib
import io

from ww_core.cli import main


def run_ww(argv: list[str]) -> tuple[int, str, str]:
    """``ww ARGV`` as exit code, stdout and stderr; an exception escaping ``main`` would be a traceback, so it fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except BaseException as exc:
            raise AssertionError(f"ww {' '.join(argv)}: {type(exc).__name__} escaped: {exc}") from exc
    return code, out.getvalue(), err.getvalue()
