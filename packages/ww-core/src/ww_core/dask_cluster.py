"""``--dask``: run analyze() on a Dask cluster, a running scheduler or a LocalCluster made for the run.

Needs the optional ``distributed`` package (``pip install 'ww-core[dask]'``). Workers read their own layers
from files both they and the client can see (docs/distributed.md).
"""

from __future__ import annotations

from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Any, Iterator

from ww_core.threads import ONE_BLAS_THREAD


def local_workers(address: str, flag: str = "--dask", remote: str = "a scheduler address like tcp://host:8786") -> int | None:
    """N for ``local:N`` (ValueError unless N ≥ 1), None for a cluster's address (``remote`` names that form in the error)."""
    if not address.startswith("local:"):
        return None
    count = address.removeprefix("local:")
    if not count.isdigit() or int(count) < 1:
        raise ValueError(f"{flag} {address}: expected local:N with N ≥ 1 worker processes, or {remote}")
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
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, env=ONE_BLAS_THREAD)
    try:
        client = Client(cluster if cluster is not None else address, timeout=10)
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise ValueError(f"--dask {address}: cannot reach the scheduler ({exc})") from None
    try:
        slots = sum(client.nthreads().values()) or 1
        yield client.get_executor(), slots
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
