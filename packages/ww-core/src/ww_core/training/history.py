"""A training run's metrics over steps: the monitor's JSON-lines log, read back as series.

Each line is one JSON object with a ``record`` kind: ``run`` (a monitor opened the log),
``layer`` (one analyzed layer at one step), ``snapshot`` (a step whose layers are all
written, with its summary), ``skipped`` (a step not analyzed, with the reason), ``warning``
(an early-warning rule fired) and ``error`` (a whole snapshot failed). A snapshot's lines are
written in one append, and a log is always continued on a fresh line, so a run killed mid-write
leaves at most one torn line, which reading skips.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from ww_core.platform.messages import printable
from ww_core.platform.untrusted import special_kind
from ww_core.results.export import json_safe, to_dataframe
from ww_core.results.rows import TEXT_COLUMNS, decoded_row, esd_key, is_stored_number, stored_row_problem

log = logging.getLogger("ww_core")

RECORD_KINDS = ("run", "layer", "snapshot", "skipped", "warning", "error")
#: The rule name of a divergence warning (ww_core.training.signals.Divergence), which load_history reports.
DIVERGENCE = "divergence"


class Series(NamedTuple):
    """One metric over the analyzed steps (NaN where the layer's fit failed)."""

    steps: np.ndarray
    values: np.ndarray


@dataclass
class History:
    """Per-layer rows and per-step summaries of the analyzed snapshots, in step order.

    A step analyzed twice (a resumed run appending to the same log) keeps its later analysis.
    ``skipped``, ``warnings`` and ``errors`` hold those records; ``dropped_lines`` counts torn lines.
    """

    path: str = ""
    snapshots: dict[int, dict[str, Any]] = field(default_factory=dict)
    rows: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    dropped_lines: int = 0

    def add_snapshot(self, record: Mapping[str, Any], rows: Iterable[Mapping[str, Any]]) -> None:
        """Record one analyzed step: its ``snapshot`` record and its layer rows."""
        step = int(record["step"])
        self.snapshots[step] = dict(record)
        self.rows[step] = [dict(row) for row in rows]

    @property
    def steps(self) -> list[int]:
        """Analyzed steps, ascending."""
        return sorted(self.snapshots)

    @property
    def layer_names(self) -> list[str]:
        """Every layer seen (``name[slice]`` for unpooled conv slices), in layer order of first appearance."""
        seen: dict[str, tuple[int, int]] = {}
        for position, step in enumerate(self.steps):
            for row in self.rows[step]:
                seen.setdefault(esd_key(row), (position, int(row.get("layer_id", 0))))
        return sorted(seen, key=lambda name: (seen[name][1], seen[name][0]))

    def layer_series(self, metric: str = "alpha") -> dict[str, Series]:
        """``metric`` of every layer over the steps at which it was analyzed; KeyError when no row has it."""
        self._check_metric(metric)
        points: dict[str, tuple[list[int], list[float]]] = {name: ([], []) for name in self.layer_names}
        for step in self.steps:
            for row in self.rows[step]:
                steps, values = points[esd_key(row)]
                steps.append(step)
                values.append(_number(row.get(metric)))
        return {name: Series(np.array(s, dtype=np.int64), np.array(v, dtype=np.float64)) for name, (s, v) in points.items()}

    def _check_metric(self, metric: str) -> None:
        """KeyError for a metric no row has, ValueError for a text column (it would plot as empty axes); both list the metrics."""
        rows = [row for step_rows in self.rows.values() for row in step_rows]
        if not rows:
            return
        numeric = sorted({key for row in rows for key in row} - TEXT_COLUMNS)  # load_history checked each column's type
        if not any(metric in row for row in rows):
            raise KeyError(printable(f"{self.path or 'history'}: no layer has metric {metric!r}; metrics: {numeric}"))
        if metric in TEXT_COLUMNS:
            raise ValueError(printable(f"{self.path or 'history'}: metric {metric!r} holds text, not a number; metrics: {numeric}"))

    def __repr__(self) -> str:
        """One line (the rows of every step would fill a screen): the log, steps, layers and the records beside them."""
        steps = self.steps
        span = f" ({steps[0]}–{steps[-1]})" if steps else ""
        return (
            f"History({self.path or 'not from a file'}: {len(steps)} steps{span}, {len(self.layer_names)} layers, "
            f"{len(self.skipped)} skipped, {len(self.warnings)} warnings, {len(self.errors)} errors)"
        )

    def summary_series(self, metric: str = "alpha") -> Series:
        """The model summary's ``metric`` (mean over the layers fitted at that step) over the steps."""
        steps = self.steps
        values = [_number(self.snapshots[step].get("summary", {}).get(metric)) for step in steps]
        return Series(np.array(steps, dtype=np.int64), np.array(values, dtype=np.float64))

    def to_pandas(self) -> Any:
        """A long DataFrame: one row per layer per analyzed step, with ``step`` first."""
        return to_dataframe([{"step": step, **row} for step in self.steps for row in self.rows[step]])

    def plot(self, metric: str = "alpha") -> Any:
        """Draw ``metric`` per layer and the summary over steps (``plots.plot_history``); returns the Figure."""
        from ww_core.views import plots

        return plots.plot_history(self, metric)

    def summary_to_pandas(self) -> Any:
        """A DataFrame indexed by step with one column per summary metric."""
        frame = to_dataframe([{"step": step, **self.snapshots[step].get("summary", {})} for step in self.steps])
        return frame.set_index("step")


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _safe(value: Any) -> Any:
    return {key: json_safe(item) for key, item in value.items()} if isinstance(value, Mapping) else json_safe(value)


def encode(record: Mapping[str, Any]) -> str:
    """One strict-JSON line (NaN as null, numpy scalars unwrapped), newline included."""
    safe = {key: _safe(value) for key, value in record.items()}
    return json.dumps(safe, allow_nan=False) + "\n"


#: How every record line starts (``encode`` writes the ``record`` key first).
RECORD_START = b'{"record"'


class HistoryLog:
    """Appends records to a JSON-lines file, each batch in one write that starts on a fresh line.

    The log is locked (``flock``) while open: a second writer, another process or another Monitor, is warned that
    both runs' records would interleave, and a later step of one would replace the other's.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        _check_regular(self.path)  # opening a FIFO to append would wait forever for a reader
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open("rb") as handle:
                if not handle.read(len(RECORD_START)).startswith(RECORD_START):  # a model or CSV named by mistake
                    raise ValueError(f"{printable(str(self.path))} is not a ww monitor log, so nothing is appended to it; name a new file")
        self._held = _hold(self.path)

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Write the records as consecutive lines in one append, flushed; after a torn line (a killed run, a full
        disk) a newline first, so the next record is never swallowed. OSError when the file cannot be written."""
        data = "".join(encode(record) for record in records).encode("utf-8")
        with self._lock, self.path.open("a+b") as handle:
            if handle.seek(0, 2) > 0:
                handle.seek(-1, 2)
                if handle.read(1) != b"\n":
                    data = b"\n" + data
            handle.write(data)
            handle.flush()

    def close(self) -> None:
        """Release the lock on the log."""
        if self._held is not None:
            self._held.close()
            self._held = None


def _check_regular(path: Path) -> None:
    """A ValueError naming ``path`` when it exists and is no regular file (a FIFO, a device, a folder)."""
    kind = special_kind(path)
    if kind is not None:
        raise ValueError(f"{printable(str(path))}: not a regular file ({kind}): a monitor log is a regular file")


def _hold(path: Path) -> IO[bytes] | None:
    """The log opened and locked for this writer; a warning when another writer holds it (None where locks are unknown)."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock
        return None
    handle = path.open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        warnings.warn(
            f"{printable(str(path))} is being written by another process or Monitor: both runs' records interleave and one "
            "run's steps replace the other's in the history; give each run its own log",
            stacklevel=4,
        )
    return handle


#: Steps are held as 64-bit integers (the series' numpy arrays).
STEP_RANGE = (-(2**63), 2**63 - 1)
#: The text fields each record kind must have.
TEXT_FIELDS = {"skipped": ("reason",), "warning": ("rule", "message"), "error": ("error",), "layer": ("name",)}


def _record_problem(record: dict[str, Any]) -> str | None:
    """Why a monitor record of a known kind is malformed, or None."""
    kind = record["record"]
    if kind == "run":
        return None
    step = record.get("step")
    if type(step) is not int or not STEP_RANGE[0] <= step <= STEP_RANGE[1]:
        return f"{kind} record whose step is not an integer of at most 64 bits"
    for name in TEXT_FIELDS.get(kind, ()):
        if not isinstance(record.get(name), str):
            return f"{kind} record without a text {name!r}"
    if kind == "layer":
        problem = stored_row_problem({key: value for key, value in record.items() if key != "record"})
        if problem or type(record.get("layer_id", 0)) is not int:
            return f"layer record whose {printable(problem or 'layer_id is not an integer')}"
    if kind == "snapshot":
        summary = record.get("summary", {})
        if not isinstance(summary, dict) or not all(is_stored_number(value) for value in summary.values()):
            return "snapshot record whose summary is not an object of numbers"
    return None


def _parse(path: Path, number: int, line: str) -> dict[str, Any] | None:
    """The record on one line; None for a torn line; ValueError ``LOG:LINE: problem`` for a line that is no monitor record."""
    where = f"{printable(str(path))}:{number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    except RecursionError:
        raise ValueError(f"{where}: not a ww monitor record (JSON nested too deeply)") from None
    except ValueError as exc:  # a number beyond Python's digit limit
        raise ValueError(f"{where}: not a ww monitor record ({' '.join(str(exc).split())[:80]})") from None
    if not isinstance(record, dict) or record.get("record") not in RECORD_KINDS:
        raise ValueError(f"{where}: not a ww monitor record (expected a JSON object with 'record' one of {RECORD_KINDS})")
    problem = _record_problem(record)
    if problem:
        raise ValueError(f"{where}: {problem}")
    return record


def load_history(path: str | Path) -> History:
    """Read a monitor's JSON-lines log; torn lines of a killed run are skipped and counted.

    Layer rows whose ``snapshot`` record never got written (the run died mid-append) are left out
    and counted with the torn lines in ``dropped_lines``.
    A file holding no monitor record at all is an error naming it.
    """
    source = Path(path)
    _check_regular(source)
    if not source.is_file():
        raise FileNotFoundError(f"no such monitor log: {printable(str(source))}")
    history = History(path=str(source))
    block: list[dict[str, Any]] = []  # layer records of the snapshot being read (its lines are contiguous)
    lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
    recognized = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _parse(source, number, line)
        if record is None:
            history.dropped_lines += 1
            continue
        recognized += 1
        kind = record.pop("record")
        if block and (kind not in ("layer", "snapshot") or record["step"] != block[0]["step"]):
            history.dropped_lines += len(block)  # a snapshot cut off before its ``snapshot`` line
            block = []
        if kind == "layer":
            block.append(record)
        elif kind == "snapshot":
            history.add_snapshot(record, [decoded_row({k: v for k, v in row.items() if k != "step"}) for row in block])
            block = []
        elif kind != "run":
            {"skipped": history.skipped, "warning": history.warnings, "error": history.errors}[kind].append(record)
    history.dropped_lines += len(block)
    if recognized == 0 and history.dropped_lines:
        raise ValueError(f"{printable(str(source))}: no ww monitor record on any of its {history.dropped_lines} lines")
    if history.dropped_lines:
        log.warning("%s: skipped %d torn or incomplete line(s) left by an interrupted run", source, history.dropped_lines)
    _report_divergence(history)
    return history


def _report_divergence(history: History) -> None:
    """Log the divergence warning the log records, if any: a diverged run is said so when its log is read."""
    for record in history.warnings:
        if record.get("rule") == DIVERGENCE:
            log.warning("%s: training diverged at step %s: %s", history.path, record["step"], record.get("message", ""))
            return
