"""Watch a model while it trains: snapshot its layers every few steps and analyze them in the background.

``observe`` runs in the training loop: it copies the selected layers' weights (so the next
optimizer step cannot change them) and hands the copy to one background thread. When that
thread is still busy with ``max_pending`` snapshots, ``observe`` skips the step and records
the skip, so training never waits for analysis (``when_behind="wait"`` waits instead).
"""

from __future__ import annotations

import atexit
import logging
import operator
import queue
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Literal, Sequence

from ww_core.pipeline.analysis import analyze
from ww_core.platform.messages import printable
from ww_core.results.options import AnalysisOptions
from ww_core.results.outputs import OutputGuard
from ww_core.training.history import STEP_RANGE, History, HistoryLog
from ww_core.training.signals import Divergence, EarlyWarning, Rule
from ww_core.training.snapshot import Snapshot, take_snapshot

log = logging.getLogger("ww_core")

_OPEN: weakref.WeakSet[Monitor] = weakref.WeakSet()
_STOP = object()

#: The divergence rule a Monitor checks unless told otherwise.
DEFAULT_DIVERGENCE = Divergence()

#: What the framework helpers' ``stop_on`` accepts: stop on divergence only, or on any rule that fires.
StopOn = Literal["divergence", "warning"]
STOP_ON: tuple[str, ...] = ("divergence", "warning")


class TrainingStopped(Exception):  # noqa: N818 - a request to stop, like StopIteration, not an error
    """Raised by the framework helpers (``ww_torch.training.watch``, ``ww_jax.training.observe``) given ``stop_on``,
    to end the training loop once the monitor's rule fired; ``warning`` is what fired."""

    def __init__(self, warning: EarlyWarning) -> None:
        super().__init__(f"training stopped by the ww monitor at step {warning.step} ({warning.rule}): {warning.message}")
        self.warning = warning


def check_stop_on(stop_on: str | None) -> None:
    """Refuse a ``stop_on`` that is neither None nor one of ``STOP_ON``, naming the choices."""
    if stop_on is not None and stop_on not in STOP_ON:
        raise ValueError(f"stop_on must be None, {', '.join(repr(choice) for choice in STOP_ON)}; got {stop_on!r}")


def _whole(value: object) -> int:
    """``value`` as an int when it is a whole number (numpy's too), else 0."""
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return 0


def _check_watchers(warn: Any, divergence: Any, on_warning: Any) -> None:
    """Refuse what cannot watch (a rule's name instead of the rule): otherwise every snapshot would fail on it."""
    rules = (warn,) if not isinstance(warn, Sequence) or isinstance(warn, str) else warn
    for rule in rules:
        if isinstance(rule, str) or not callable(getattr(rule, "scan", None)):
            raise ValueError(f"Monitor: warn takes rules such as FractionBelow() (ww_core.training.signals), got {rule!r}")
    if divergence is not None and not isinstance(divergence, Divergence):
        raise ValueError(f"Monitor: divergence must be a Divergence (ww_core.training.signals) or None, got {divergence!r}")
    if on_warning is not None and not callable(on_warning):
        raise ValueError(f"Monitor: on_warning must be a function of the warning, or None; got {on_warning!r}")


def whole_step(step: Any) -> int:
    """A training step as an int: Python, NumPy, JAX or torch integers (``__index__``), never a bool, float or string."""
    try:
        if not isinstance(step, bool):
            return operator.index(step)
    except TypeError:
        pass
    raise TypeError(f"Monitor.observe: step must be a whole number of training steps, not {step!r}")


class Monitor:
    """Analyze a training model every ``every`` steps in the background; log to ``log`` (JSON lines) when given.

    ``options`` are analyze()'s options. ``divergence`` (on by default; None turns it off) and the
    rules in ``warn`` (ww_core.training.signals) are checked after each snapshot; each rule fires
    at most once: it is added to ``warnings``, logged, and passed to ``on_warning`` (called on the
    background thread). Use as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        every: int = 1,
        log: str | Path | None = None,
        *,
        max_pending: int = 1,
        when_behind: Literal["skip", "wait"] = "skip",
        warn: Rule | Sequence[Rule] = (),
        on_warning: Callable[[EarlyWarning], None] | None = None,
        divergence: Divergence | None = DEFAULT_DIVERGENCE,
        **options: Any,
    ) -> None:
        if isinstance(every, bool) or _whole(every) < 1:  # numpy integers too
            raise ValueError(f"Monitor: every must be a positive number of steps, got {every!r}")
        if max_pending < 1:
            raise ValueError(f"Monitor: max_pending must be at least 1, got {max_pending!r}")
        if when_behind not in ("skip", "wait"):
            raise ValueError(f"Monitor: when_behind must be 'skip' or 'wait', got {when_behind!r}")
        _check_watchers(warn, divergence, on_warning)
        self.every = _whole(every)
        self.when_behind = when_behind
        self.options = AnalysisOptions.from_kwargs(**options)
        # ``adapter`` chooses who reads the model when a snapshot is taken; the snapshot itself is core's
        self._analysis_options = {key: value for key, value in options.items() if key != "adapter"}
        self.rules: tuple[Rule, ...] = tuple(warn) if isinstance(warn, Sequence) else (warn,)
        self.divergence = divergence
        self.on_warning = on_warning
        self.warnings: list[EarlyWarning] = []
        self.diverged: EarlyWarning | None = None
        self._waiting_rules = list(self.rules)
        self._first_log_norm: dict[str, float] = {}
        self.skipped_steps: list[int] = []
        self.errors: list[str] = []
        #: Record batches that could not be written to the log (a full disk): counted, never raised into training.
        self.write_failures = 0
        self._write_failing = False
        self._calls = 0
        self._lock = threading.Lock()
        self._history = History(path=str(log) if log is not None else "")
        if log is not None:
            OutputGuard().claim(log, "log")  # never a weights name, never in the Hugging Face cache
        self._log = HistoryLog(log) if log is not None else None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._closed = False
        self._stopping = False
        self._worker = threading.Thread(target=self._work, name="ww-monitor", daemon=True)
        self._write([{"record": "run", "time": time.time(), "every": every, "options": _plain(options)}])
        self._worker.start()
        _OPEN.add(self)

    @property
    def history(self) -> History:
        """A copy of what has been analyzed so far."""
        with self._lock:
            return History(
                path=self._history.path,
                snapshots=dict(self._history.snapshots),
                rows=dict(self._history.rows),
                skipped=list(self._history.skipped),
                warnings=list(self._history.warnings),
                errors=list(self._history.errors),
            )

    @property
    def warning(self) -> EarlyWarning | None:
        """The first rule that fired (divergence included), or None."""
        return self.warnings[0] if self.warnings else None

    @property
    def should_stop(self) -> bool:
        """True once any rule has fired."""
        return bool(self.warnings)

    def stop_reason(self, stop_on: StopOn | None) -> EarlyWarning | None:
        """What should end training under ``stop_on``: the divergence ("divergence"), the first warning ("warning"), or None."""
        check_stop_on(stop_on)
        if stop_on is None:
            return None
        return self.diverged if stop_on == "divergence" else self.warning

    @property
    def pending(self) -> int:
        """Snapshots taken and not yet analyzed (the one in analysis not counted)."""
        return self._queue.qsize()

    def observe(self, source: Any, step: int | None = None) -> bool:
        """At every ``every``-th step, snapshot ``source`` for analysis; True when a snapshot was taken.

        ``step`` defaults to the number of ``observe`` calls so far (1, 2, ...).
        """
        if self._closed:
            raise RuntimeError("Monitor.observe after close()")
        self._calls += 1
        step = self._calls if step is None else whole_step(step)
        if not STEP_RANGE[0] <= step <= STEP_RANGE[1]:
            raise ValueError(f"Monitor.observe: step {step} does not fit in 64 bits")
        if step % self.every:
            return False
        if self.when_behind == "skip" and self._queue.full():
            self._skip(step, f"analysis behind: {self._queue.maxsize} snapshot(s) already waiting")
            return False
        started = time.perf_counter()
        snapshot = take_snapshot(source, self.options, label=f"step {step}")
        self._queue.put((step, snapshot, time.perf_counter() - started))
        return True

    def close(self, wait: bool = True) -> None:
        """Stop the monitor: finish the waiting snapshots (``wait``) or record each as skipped; idempotent.

        Called from ``on_warning`` (the background thread) it only ends observing; the thread
        finishes when ``close`` is called from elsewhere, or at interpreter exit.
        """
        self._closed = True
        if threading.current_thread() is self._worker or not self._worker.is_alive() or self._stopping:
            return
        self._stopping = True
        if not wait:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                self._skip(item[0], "monitor closed before analysis")
        self._queue.put(_STOP)
        self._worker.join()
        _OPEN.discard(self)
        if self._log is not None:
            self._log.close()
            if self.write_failures:
                log.warning(
                    "monitor: %d batch(es) of records could not be written to %s", self.write_failures, printable(str(self._log.path))
                )

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close(wait=kind is None or issubclass(kind, TrainingStopped))

    def _skip(self, step: int, reason: str) -> None:
        record = {"record": "skipped", "step": step, "time": time.time(), "reason": reason}
        with self._lock:
            self.skipped_steps.append(step)
            self._history.skipped.append({k: v for k, v in record.items() if k != "record"})
        log.info("monitor: step %d not analyzed: %s", step, reason)
        self._write([record])

    def _write(self, records: list[dict[str, Any]]) -> None:
        """Append to the log; a failure (a full disk) is counted and reported, never raised: training goes on, and
        writing resumes, on a fresh line, as soon as the log can be written again."""
        if self._log is None:
            return
        try:
            self._log.append(records)
        except OSError as exc:
            with self._lock:
                self.write_failures += 1
                first, self._write_failing = not self._write_failing, True
            if first:
                log.warning(
                    "monitor: records could not be written to %s (%s); analysis goes on",
                    printable(str(self._log.path)),
                    exc.strerror or exc,
                )
            return
        if self._write_failing:
            self._write_failing = False
            log.warning(
                "monitor: writing %s again (%d batch(es) of records could not be written)",
                printable(str(self._log.path)),
                self.write_failures,
            )

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            step, snapshot, copy_seconds = item
            try:
                self._analyze(step, snapshot, copy_seconds)
            except Exception as exc:  # a failed snapshot must not end the monitor; it is logged and kept
                message = f"step {step}: analysis failed: {type(exc).__name__}: {exc}"
                log.warning("monitor: %s", message)
                with self._lock:
                    self.errors.append(message)
                    self._history.errors.append({"step": step, "error": message})
                self._write([{"record": "error", "step": step, "time": time.time(), "error": message}])

    def _analyze(self, step: int, snapshot: Snapshot, copy_seconds: float) -> None:
        started = time.perf_counter()
        results = analyze(snapshot, workers=1, progress=False, **self._analysis_options)
        rows = results.analyzed
        now = time.time()
        snapshot_record = {
            "step": step,
            "time": now,
            "layers": len(rows),
            "adapter": snapshot.adapter,
            "copy_seconds": copy_seconds,
            "analysis_seconds": time.perf_counter() - started,
            "summary": results.summary,
        }
        records = [{"record": "layer", "step": step, **row} for row in rows]
        self._write([*records, {"record": "snapshot", **snapshot_record}])
        with self._lock:
            self._history.add_snapshot(snapshot_record, rows)
        self._check_rules(step, rows)

    def _check_rules(self, step: int, rows: list[dict[str, Any]]) -> None:
        """Check the new snapshot for divergence (sets ``diverged``), and rescan the history with each rule not fired yet."""
        if self.divergence is not None and self.diverged is None:
            reason = self.divergence.check(rows, self._first_log_norm)
            if reason:
                self.diverged = EarlyWarning(step, self.divergence.name, reason)
                self._fire(self.diverged)
        if self._waiting_rules:
            history = self.history
            for rule in list(self._waiting_rules):
                warning = rule.scan(history)
                if warning is not None:
                    self._waiting_rules.remove(rule)
                    self._fire(warning)

    def _fire(self, warning: EarlyWarning) -> None:
        """Keep, record, log and pass on a rule that fired."""
        self.warnings.append(warning)
        with self._lock:
            self._history.warnings.append({"step": warning.step, "rule": warning.rule, "message": warning.message})
        log.warning("monitor: early warning at step %d (%s): %s", warning.step, warning.rule, warning.message)
        self._write([{"record": "warning", "step": warning.step, "time": time.time(), "rule": warning.rule, "message": warning.message}])
        if self.on_warning is not None:
            self.on_warning(warning)


def _plain(options: dict[str, Any]) -> dict[str, Any]:
    """Options as JSON can hold them (anything else by its repr)."""
    plain = (bool, int, float, str, type(None), list, tuple)
    return {key: value if isinstance(value, plain) else repr(value) for key, value in options.items()}


@atexit.register
def _close_open_monitors() -> None:
    """A monitor never closed still finishes its waiting snapshots when the interpreter exits."""
    for monitor in list(_OPEN):
        log.warning("monitor: not closed; finishing %d waiting snapshot(s) at exit", monitor.pending)
        monitor.close(wait=True)
