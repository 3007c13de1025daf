"""BLAS threads for parallel runs: workers × BLAS threads per worker never exceed the cores."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def blas_threads_per_worker(workers: int) -> int:
    """BLAS threads each of ``workers`` parallel workers gets: the cores shared out, at least one."""
    return max(1, available_cores() // max(1, workers))


@contextmanager
def limited_blas_threads(limit: int | None) -> Iterator[None]:
    """Within the block, BLAS/LAPACK (and OpenMP) use at most ``limit`` threads; None changes nothing.

    The limit is process-wide: it holds for every thread of this process while the block runs.
    """
    if limit is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=limit):
        yield


def single_blas_thread() -> None:
    """Executor initializer giving each worker process one BLAS thread.

    ``ProcessPoolExecutor(n, initializer=ww_core.threads.single_blas_thread)`` with n = cores.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
