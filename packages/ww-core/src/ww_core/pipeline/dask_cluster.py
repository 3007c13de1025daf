"""``--dask``: run analyze() on a Dask cluster, a running scheduler or a LocalCluster made for the run.

Needs the optional ``distributed`` package (``pip install 'ww-core[dask]'``). Workers read their own layers
from files both they and the client can see (docs/distributed.md).
"""

from __future__ import annotations

import signal
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Any, Iterator

from ww_core.pipeline.threads import ONE_BLAS_THREAD, available_cores

#: The most ``local:N`` worker processes per core: a typo's 100000 would start that many processes.
PROCESSES_PER_CORE = 4


def local_workers(address: str, flag: str = "--dask", remote: str = "a scheduler address like tcp://host:8786") -> int | None:
    """N for ``local:N`` (ValueError unless 1 ≤ N ≤ 4 per core), None for a cluster's address (``remote`` names that form in the error)."""
    if not address.startswith("local:"):
        return None
    count = address.removeprefix("local:")
    if not (count.isascii() and count.isdigit()) or int(count) < 1:  # '²' and '٣' are digits to str.isdigit
        raise ValueError(f"{flag} {address}: expected local:N with N ≥ 1 worker processes, or {remote}")
    cores = available_cores()
    if int(count) > PROCESSES_PER_CORE * cores:  # each process runs one layer on one BLAS thread: more only cost memory
        limit = PROCESSES_PER_CORE * cores
        raise ValueError(f"{flag} {address}: at most {limit} worker processes here ({PROCESSES_PER_CORE} per core, {cores} cores)")
    return int(count)


@contextmanager
def dask_executor(address: str) -> Iterator[tuple[Executor, int]]:
    """An Executor on the cluster at ``address`` (``local:N``: a LocalCluster of N processes, one thread each) and its thread count."""
    workers = local_workers(address)
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("--dask needs the 'distributed' package: pip install 'ww-core[dask]'") from None
    cluster: Any = None
    if workers is not None:
        cluster = _local_cluster(LocalCluster, workers)
    try:
        client = Client(cluster if cluster is not None else address, timeout=10)
    except Exception as exc:  # Dask's own: OSError unreachable, ValueError/TypeError a malformed or unsupported address
        if cluster is not None:
            cluster.close()
        if isinstance(exc, OSError):
            raise ValueError(f"--dask {address}: cannot reach the scheduler ({exc})") from None
        raise ValueError(f"--dask {address}: not a usable scheduler address ({exc}); expected tcp://host:port or local:N") from None
    executor: Executor | None = None
    try:
        slots = sum(client.nthreads().values()) or 1
        executor = client.get_executor()
        yield executor, slots
    finally:
        if executor is not None:  # cancel what is still queued (Ctrl-C) before the connection goes: no tracebacks logged for it
            executor.shutdown(wait=False)
        client.close()
        if cluster is not None:
            cluster.close()


def _local_cluster(local_cluster: Any, workers: int) -> Any:
    """A LocalCluster of ``workers`` processes, one thread and one BLAS thread each, that ignore Ctrl-C (``dask_setup``)."""
    return local_cluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # its HTTP server (no dashboard) on any free local port, not 8787
        env=ONE_BLAS_THREAD,
        preload=[__name__],
    )


def dask_setup(worker: Any) -> None:
    """Dask's preload hook, run in each worker process of a LocalCluster made here: ignore SIGINT.

    A terminal's Ctrl-C goes to the whole process group: the workers printed KeyboardInterrupt tracebacks.
    The client alone handles it and closes them.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
