"""Start a Python child that takes Ctrl-C as a terminal's Python would, whatever this process inherited.

A shell runs background jobs (``cmd &``, nohup) with SIGINT ignored, and Python then installs no
KeyboardInterrupt handler: a Ctrl-C test run from such a job saw the child finish (exit 0) or hang.
"""

from __future__ import annotations

import sys

_DEFAULT_SIGINT = "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); del sys.argv[0]; "


def python_module(module: str, *args: str) -> list[str]:
    """``python -m module args`` with Python's own Ctrl-C handler."""
    return [sys.executable, "-c", _DEFAULT_SIGINT + f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)", module, *args]


def python_script(script: str, *args: str) -> list[str]:
    """``python script args`` with Python's own Ctrl-C handler."""
    return [sys.executable, "-c", _DEFAULT_SIGINT + "runpy.run_path(sys.argv[0], run_name='__main__')", script, *args]
