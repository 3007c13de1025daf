"""When a worker process dies (OOM killer, segfault), every layer its pool held fails with it.

``concurrent.futures`` cannot tell which layer killed the process, so each of those layers is
run once more alone, in a fresh one-process pool made like the broken one: the innocent finish,
the culprit dies again and becomes a failed row. Later layers go to a fresh pool of the same kind.
"""

from __future__ import annotations

from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, Callable, TypeVar

Result = TypeVar("Result")


def _process_pool_like(broken: ProcessPoolExecutor, workers: int) -> ProcessPoolExecutor:
    """A new process pool with the broken one's start method and worker initializer."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=getattr(broken, "_mp_context", None),
        initializer=getattr(broken, "_initializer", None),
        initargs=getattr(broken, "_initargs", ()),
    )


def replacement(broken: Executor) -> Executor | None:
    """A working pool like ``broken`` for the layers still to come; None when it is not a process pool (run them here)."""
    if isinstance(broken, ProcessPoolExecutor):
        return _process_pool_like(broken, int(getattr(broken, "_max_workers", 1)))
    return None


def run_alone(broken: Executor, task: Callable[..., Result], *args: Any) -> Result:
    """``task(*args)`` in a fresh one-process pool like ``broken`` (in this thread when it was no process pool).

    Raises ``BrokenExecutor`` again when the task kills that process too.
    """
    if not isinstance(broken, ProcessPoolExecutor):
        return task(*args)
    with _process_pool_like(broken, 1) as pool:
        return pool.submit(task, *args).result()
