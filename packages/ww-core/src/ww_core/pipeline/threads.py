"""BLAS threads for parallel runs: workers × BLAS threads per worker never exceed the cores.

Uses ``threadpoolctl`` when installed (``pip install 'ww-core[threads]'``, part of ``[all]``);
without it the limits are skipped and results are unchanged, only parallel runs may oversubscribe.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator

from ww_core.spectra.shapes import matrix_dims

#: Layers under this many Gram multiply-adds (N·M² per matrix, times the kernel positions) run
#: on one BLAS thread in a serial run: as fast on an idle machine, and many times faster on a
#: busy one, where spinning BLAS threads wait for a core. A 1024² matrix sits at the limit;
#: a 30522×384 embedding is above it.
SMALL_WORK = 1 << 30


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


#: One BLAS thread per worker process (Dask, Ray): the cluster's processes, not BLAS, share the cores.
ONE_BLAS_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

#: Most workers an analysis picks by itself: at most twice this many layers are in memory at once.
MAX_AUTO_WORKERS = 4


def default_workers(layer_count: int) -> int:
    """Workers when the caller names none: one per core, at most MAX_AUTO_WORKERS and one per layer.

    One when BLAS threads cannot be shared out (no threadpoolctl): threads would oversubscribe.
    """
    if _controller() is None:
        return 1
    return max(1, min(available_cores(), MAX_AUTO_WORKERS, layer_count))


def idle_cores() -> int:
    """Cores other work leaves free now: the available cores less the 1-minute load average, at least one.

    On a busy machine more BLAS threads than idle cores do not run faster: they spin waiting for a
    core and slow everyone down (a 10x slower ``--workers 1`` run on a loaded 2-core machine).
    A run reads it once, as it starts: read later, the load would count the run's own threads.
    """
    cores = available_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform: assume the cores are free
        return cores
    return max(1, min(cores, int(cores - load + 0.5)))


def blas_threads_per_worker(workers: int, idle: int | None = None) -> int:
    """BLAS threads each of ``workers`` parallel workers gets: the ``idle`` cores (default: now) shared out, at least one."""
    return max(1, (idle_cores() if idle is None else idle) // max(1, workers))


def serial_blas_threads(shape: tuple[int, ...], idle: int | None = None) -> int | None:
    """BLAS threads for one layer analyzed in the calling thread: one for little work, else the ``idle`` cores (default: now;
    None: all cores)."""
    dims = matrix_dims(shape)
    if dims.N * dims.M * dims.M * dims.rf < SMALL_WORK:
        return 1
    idle = idle_cores() if idle is None else idle
    return idle if idle < available_cores() else None


@lru_cache(maxsize=1)
def _controller() -> Any:
    """The BLAS/OpenMP libraries loaded by now (numpy's and scipy's), found once; None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


@contextmanager
def limited_blas_threads(limit: int | None) -> Iterator[None]:
    """Within the block, BLAS/LAPACK (and OpenMP) use at most ``limit`` threads; None changes nothing.

    The limit is process-wide: it holds for every thread of this process while the block runs.
    """
    controller = _controller()
    if limit is None or controller is None:
        yield
        return
    with controller.limit(limits=limit):
        yield


def _load_blas_libraries() -> None:
    """Load numpy's and scipy's BLAS/LAPACK now (importing them is what loads the shared libraries), so threadpoolctl sees both."""
    import numpy.linalg  # noqa: F401
    import scipy.linalg  # noqa: F401


def single_blas_thread() -> None:
    """Executor initializer giving each worker process one BLAS thread.

    ``ProcessPoolExecutor(n, initializer=ww_core.pipeline.threads.single_blas_thread)`` with n = cores.
    Libraries loaded later read the environment; numpy's and scipy's are loaded now and limited.
    """
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    _load_blas_libraries()

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without it the environment variables above still reach later libraries
        return
    threadpool_limits(limits=1)
