"""``--ray``: run analyze() on Ray tasks, on a running Ray cluster or a local Ray started for the run.

Needs the optional ``ray`` package (``pip install 'ww-core[ray]'``), imported only when asked for. Each
submitted call is one Ray task with one CPU and one BLAS thread; workers read their own layers from files
both they and the client can see (docs/distributed.md).
"""

from __future__ import annotations

import importlib
import itertools
import logging
import socket
import threading
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any, Callable, Iterator, ParamSpec, TypeVar

from ww_core.pipeline.dask_cluster import local_workers
from ww_core.pipeline.threads import ONE_BLAS_THREAD
from ww_core.platform.tensor_refs import worker_name

P = ParamSpec("P")
T = TypeVar("T")

#: Seconds to wait for a cluster address to accept a connection before calling it unreachable.
CONNECT_TIMEOUT = 5.0


class RayWorkerLostError(RuntimeError):
    """A Ray task whose worker process or node was lost (killed, out of memory, node down) after Ray's own retries."""


def import_ray(flag: str = "RayExecutor") -> Any:
    """The ``ray`` module; ValueError saying how to install it when it is missing."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ValueError(f"{flag} needs the 'ray' package: pip install 'ww-core[ray]'") from None


class _Placements:
    """Where each task started (``host:pid``, one entry per attempt): a lost task's error can name its worker."""

    def __init__(self) -> None:
        self.workers: dict[int, list[str]] = {}

    def started(self, token: int, worker: str) -> None:
        self.workers.setdefault(token, []).append(worker)

    def forget(self, token: int) -> list[str]:
        return self.workers.pop(token, [])

    def forget_all(self, tokens: list[int]) -> None:
        for token in tokens:
            self.workers.pop(token, None)


def _run_task(call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], placements: Any, token: int) -> Any:
    """The Ray task: say where it runs, then run the call (module-level, so Ray ships it by reference).

    Runs the call also when the placements actor is gone (its node died): a lost worker is then named as unknown.
    """
    ray = importlib.import_module("ray")
    try:
        ray.get(placements.started.remote(token, worker_name()), timeout=CONNECT_TIMEOUT)
    except Exception:  # unrecorded, the task still runs; only a lost worker's name is missing then
        pass
    return call(*args, **kwargs)


class RayExecutor(Executor):
    """A ``concurrent.futures.Executor`` whose calls are Ray tasks: one CPU and one BLAS thread each.

    Needs a connected Ray (``ray.init()``). A task whose worker dies is retried by Ray ``max_retries``
    times; then its future fails with ``RayWorkerLostError`` naming the last worker it ran on. ``shutdown`` cancels
    or waits for the tasks; the Ray connection stays the caller's.
    """

    def __init__(self, *, max_retries: int = 3) -> None:
        self._ray = import_ray()
        if not self._ray.is_initialized():
            raise RuntimeError("RayExecutor needs a connected Ray: call ray.init() first")
        remote = self._ray.remote(num_cpus=1, max_retries=max_retries, runtime_env={"env_vars": ONE_BLAS_THREAD})
        self._task = remote(_run_task)
        self._placements = self._ray.remote(num_cpus=0, max_restarts=-1)(_Placements).remote()  # back, empty, after its node died
        self._tokens = itertools.count()
        self._running: dict[int, Any] = {}
        self._futures: dict[int, Future[Any]] = {}
        self._settled: list[int] = []  # tokens whose placements can be forgotten, sent with the next submit
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` as a Ray task; its Future completes from the task's ObjectRef."""
        outcome: Future[T] = Future()
        outcome.set_running_or_notify_cancel()  # a Ray task cannot be withdrawn through its Future: it is running
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a RayExecutor after shutdown")
            token = next(self._tokens)
            if self._settled:
                self._placements.forget_all.remote(self._settled)
                self._settled = []
            ref = self._task.remote(fn, args, kwargs, self._placements, token)
            self._running[token] = ref
            self._futures[token] = outcome
        ref.future().add_done_callback(lambda done: self._settle(token, done, outcome))
        return outcome

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new tasks; with ``cancel_futures`` the queued and running ones are cancelled; with ``wait``, wait for them all."""
        with self._lock:
            self._closed = True
            running = list(self._running.values())
            futures = list(self._futures.values())
        if cancel_futures:
            for ref in running:
                self._ray.cancel(ref, force=True)
        if wait:
            for future in futures:
                future.exception()

    def _settle(self, token: int, done: Future[Any], outcome: Future[Any]) -> None:
        """Complete ``outcome`` from the task's Ray future; a lost worker is named by a helper thread (Ray's callback calls no Ray API)."""
        with self._lock:
            self._running.pop(token, None)
        error = done.exception()
        if error is not None and self._lost_worker(error):
            threading.Thread(target=self._name_lost_worker, args=(token, error, outcome), daemon=True).start()
            return
        with self._lock:
            self._settled.append(token)
        self._finish(token, outcome, done.result() if error is None else None, error)

    def _lost_worker(self, error: BaseException) -> bool:
        """True when Ray lost the process or node that ran the task (not when the task itself raised or was cancelled)."""
        exceptions = self._ray.exceptions
        return isinstance(error, exceptions.RayError) and not isinstance(error, (exceptions.RayTaskError, exceptions.TaskCancelledError))

    def _name_lost_worker(self, token: int, error: BaseException, outcome: Future[Any]) -> None:
        try:
            workers = self._ray.get(self._placements.forget.remote(token), timeout=CONNECT_TIMEOUT)
        except Exception:  # the placements actor went down with its node: the error says the worker is unknown
            workers = []
        where = f"Ray worker {workers[-1]}" if workers else "its Ray worker (unknown)"
        tries = f" after {len(workers)} attempts" if len(workers) > 1 else ""
        lost = RayWorkerLostError(f"{where} was lost while running the task{tries}: {type(error).__name__}: {error}")
        self._finish(token, outcome, None, lost)

    def _finish(self, token: int, outcome: Future[Any], result: Any, error: BaseException | None) -> None:
        with self._lock:
            self._futures.pop(token, None)
        if error is None:
            outcome.set_result(result)
        else:
            outcome.set_exception(error)


def reachable(address: str) -> None:
    """ValueError unless ``address`` (``ray://host:port`` or ``host:port``) accepts a TCP connection within CONNECT_TIMEOUT."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or "://" in host:
        raise ValueError(f"--ray {address}: expected auto, ray://host:port, host:port or local:N")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise ValueError(f"--ray {address}: cannot reach the Ray cluster ({exc})") from None


def _connect(ray: Any, address: str, workers: int | None) -> None:
    """``ray.init``: a local Ray of ``workers`` CPUs, or the cluster at ``address``; ValueError when it cannot connect."""
    quiet = {"logging_level": logging.WARNING}
    if workers is not None:
        try:
            ray.init(address="local", num_cpus=workers, include_dashboard=False, **quiet)  # a new Ray, whatever RAY_ADDRESS names
        except Exception as exc:
            ray.shutdown()  # whatever part of it did start
            raise ValueError(f"--ray {address}: cannot start a local Ray ({type(exc).__name__}: {exc})") from None
        return
    if address != "auto":
        reachable(address)
    try:
        ray.init(address=address, **quiet)
    except Exception as exc:  # ConnectionError, an auth or version mismatch: one line, never a traceback
        raise ValueError(f"--ray {address}: cannot connect to the Ray cluster ({exc})") from None


@contextmanager
def ray_executor(address: str) -> Iterator[tuple[Executor, int]]:
    """A RayExecutor on the cluster at ``address`` (``local:N``: a local Ray of N CPUs started here) and its CPU count.

    Leaving (normally, on an error or on Ctrl-C) cancels what still runs and disconnects; a local Ray stops.
    """
    workers = local_workers(address, "--ray", "auto, ray://host:port or host:port")
    ray = import_ray("--ray")
    _connect(ray, address, workers)
    executor: RayExecutor | None = None
    try:
        executor = RayExecutor()
        yield executor, int(ray.cluster_resources().get("CPU", 0)) or 1
    finally:
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        ray.shutdown()
