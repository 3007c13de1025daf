"""A results cache so an interrupted run resumes: one JSON line per finished layer.

A layer's rows are keyed by what they depend on: the options and the layer's content (a hash
of the weights as loaded, of the base model's weights when one is given, and name, shape,
dtype). Never by a path or a timestamp, so in-memory models, files rewritten in place and
files reached by another path are all handled alike.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ww_core.platform.messages import printable
from ww_core.platform.protocol import LayerMatrix
from ww_core.results.export import json_safe
from ww_core.results.options import AnalysisOptions
from ww_core.results.rows import base_row, decoded_row, stored_row_problem
from ww_core.spectra.esd_histogram import is_histogram

if TYPE_CHECKING:
    from ww_core.results.results import Results

log = logging.getLogger("ww_core")

#: How every record line starts; a file starting otherwise with no readable record is no cache.
RECORD_START = b'{"key"'

#: Bytes hashed per update: bounds the copy made of a non-contiguous array.
HASH_CHUNK = 1 << 26


class CacheWriteError(OSError):
    """The cache file could not be written (e.g. disk full): the run stops; what was cached stays.

    ``cached`` counts the layers whose rows this run wrote to ``path``; ``results`` holds every
    row finished so far, so nothing computed is lost.
    """

    def __init__(self, path: Path, cached: int, cause: OSError, results: "Results | None" = None) -> None:
        message = f"cannot write the cache {path}: {cause.strerror or cause}; run stopped, {cached} layers cached in {path}"
        super().__init__(cause.errno, message)
        self.path, self.cached, self.results = path, cached, results

    def __str__(self) -> str:
        return str(self.args[1])


def _fingerprint(options: AnalysisOptions) -> str:
    """The options and ww-core's version: rows cached before an upgrade that changed a number are computed again."""
    from ww_core.platform.version import __version__

    text = json.dumps({**asdict(options), "ww-core": __version__}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def content_hash(array: np.ndarray) -> str:
    """blake2b of the array's dtype, shape and bytes; contiguous arrays are hashed in place, others a slab at a time."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    if array.flags.c_contiguous:
        flat = array.reshape(-1).view(np.uint8)
        for start in range(0, flat.size, HASH_CHUNK):
            digest.update(flat[start : start + HASH_CHUNK].data)
    else:
        slab = max(1, HASH_CHUNK // max(1, array[0].nbytes)) if array.ndim and array.shape[0] else 1
        for start in range(0, array.shape[0] if array.ndim else 1, slab):
            digest.update(np.ascontiguousarray(array[start : start + slab]).data)
    return digest.hexdigest()


def layer_key(fingerprint: str, layer: LayerMatrix, weights: np.ndarray, base_weights: np.ndarray | None = None) -> str:
    """A loaded layer's key: options fingerprint, name, shape, dtype and the content hash of its weights (and base).

    A module function so a worker that read the layer itself computes the same key as the client would.
    """
    base = f"|base:{content_hash(base_weights)}" if base_weights is not None else ""
    return f"{_key_prefix(fingerprint, layer)}{weights.dtype}|{content_hash(weights)}{base}"


def _key_prefix(fingerprint: str, layer: LayerMatrix) -> str:
    return f"{fingerprint}|{layer.name}|{layer.shape}|"


#: Columns a layer's shape alone fixes: a restored row must agree with the layer it is restored for.
SHAPE_COLUMNS = ("name", "layer_type", "N", "M", "rf")


def _row_objects(rows: Any) -> bool:
    """Whether a record's ``rows`` are a non-empty list of JSON objects (what each row is checked for comes later)."""
    return isinstance(rows, list) and bool(rows) and all(isinstance(row, dict) for row in rows)


def _row_problem(row: dict[str, Any], expected: dict[str, Any]) -> str | None:
    """Why a stored row cannot be a successful row of the layer whose shape columns are ``expected``, or None."""
    if row.get("status") != "success":
        return f"a row's status is {row.get('status')!r}, not 'success'"
    problem = stored_row_problem(row)
    if problem:
        return problem
    for column in (*SHAPE_COLUMNS, "alpha"):
        if column not in row:
            return f"a row has no {column}"
    wrong = [column for column in SHAPE_COLUMNS if row[column] != expected[column]]
    if wrong:
        return f"{wrong[0]} {row[wrong[0]]!r} is not the layer's {expected[wrong[0]]!r}"
    return None


def rows_problem(rows: Any, layer: LayerMatrix, options: AnalysisOptions) -> str | None:
    """Why ``rows`` are not exactly the successful rows ``layer`` gives under ``options``, or None when they are."""
    if not _row_objects(rows):
        return "its rows are not a list of JSON objects"
    expected = base_row(layer, options)
    for row in rows:
        problem = _row_problem(row, expected)
        if problem:
            return problem
    slices = [row.get("slice_id") for row in rows]
    if options.pool and (len(rows) != 1 or slices != [None]):
        return f"{len(rows)} rows for a pooled layer, which has one"
    if not options.pool and slices != list(range(len(rows))):
        return f"{len(rows)} rows whose slice_id are not 0 to {len(rows) - 1} in order"
    return None


def _valid_histograms(found: Any) -> dict[str, dict[str, Any]]:
    """The well-formed ESD histograms of a record (``esd_histogram.is_histogram``); any other is left out, so the report
    draws no ESD for that row and says so, rather than draw what a damaged or forged line claims."""
    if not isinstance(found, dict):
        return {}
    return {name: histogram for name, histogram in found.items() if isinstance(name, str) and is_histogram(histogram)}


class ResultsCache:
    """Rows of finished layers keyed by the options and the layer's content (see module docstring).

    Lines are appended and flushed as each layer finishes, so a killed run loses at most the
    layer in flight. Every record starts on a fresh line; unreadable lines (a torn last line,
    corrupt bytes) are skipped with one warning.
    """

    def __init__(self, path: str | Path, options: AnalysisOptions) -> None:
        self.path = Path(path)
        self.options = options
        self.fingerprint = _fingerprint(options)
        self.written = 0
        self._stored: dict[str, tuple[int, Any]] = {}  # key -> (line, rows as read), checked when first used
        self._rows: dict[str, list[dict[str, Any]]] = {}  # rows checked against their layer, or computed now
        self._histograms: dict[str, dict[str, dict[str, Any]]] = {}  # key -> the layer's ESD histograms
        if self.path.exists():
            if not self.path.is_file():
                raise ValueError(f"cache {printable(str(self.path))} is not a regular file")
            self._load()
        self._check_writable()

    def _check_writable(self) -> None:
        """Open the file for appending once now, so an unwritable cache stops the run before any layer is computed."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write the cache {printable(str(self.path))}: {exc.strerror or exc}") from exc

    def key(self, layer: LayerMatrix, weights: np.ndarray, base_weights: np.ndarray | None = None) -> str:
        """The key of a loaded layer: options, name, shape, dtype and the content hash of its weights (and base)."""
        return layer_key(self.fingerprint, layer, weights, base_weights)

    def known_keys(self, layer: LayerMatrix) -> frozenset[str]:
        """The keys holding valid rows for a layer of this name and shape: all a worker needs to tell a hit from its own key."""
        prefix = _key_prefix(self.fingerprint, layer)
        return frozenset(key for key in [*self._rows, *self._stored] if key.startswith(prefix) and self.get(key, layer) is not None)

    def _load(self) -> None:
        content = self.path.read_bytes()
        bad: list[int] = []
        for number, raw in enumerate(content.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (ValueError, RecursionError):  # torn line, not UTF-8 or not JSON, nested too deeply, a huge number
                record = None
            rows = record.get("rows") if isinstance(record, dict) else None
            if not isinstance(record.get("key") if isinstance(record, dict) else None, str) or not _row_objects(rows):
                bad.append(number)
                continue
            self._stored[record["key"]] = (number, record["rows"])
            self._histograms[record["key"]] = _valid_histograms(record.get("esds"))
        if bad and not self._stored and not content.lstrip().startswith(RECORD_START):
            # A model or any other file named by mistake: appending our lines would damage it.
            raise ValueError(f"cache {printable(str(self.path))} is not a ww results cache (no line is a cached layer); name a new file")
        if bad:
            where = f"{printable(str(self.path))}:{bad[0]}"
            log.warning("cache %s: not a record of cached rows; %d such line(s) ignored, those layers are computed again", where, len(bad))

    def get(self, key: str, layer: LayerMatrix) -> list[dict[str, Any]] | None:
        """Cached rows of ``layer`` under ``key``, if any; a stored record that is not exactly the rows this layer gives
        (docs/bad-input.md) is dropped with a warning ``CACHE:LINE: problem``, so the layer is computed again."""
        if key in self._rows:
            return self._rows[key]
        if key not in self._stored:
            return None
        number, rows = self._stored.pop(key)
        problem = rows_problem(rows, layer, self.options)
        if problem:
            where = f"{printable(str(self.path))}:{number}"
            log.warning("cache %s: %s; layer %s is computed again", where, problem, printable(repr(layer.name)))
            return None
        self._rows[key] = [decoded_row(row) for row in rows]
        return self._rows[key]

    def histograms(self, key: str) -> dict[str, dict[str, Any]]:
        """The ESD histograms cached under ``key`` (by ``esd_key``); empty for records written without them."""
        return self._histograms.get(key, {})

    def put(self, key: str, rows: list[dict[str, Any]], histograms: dict[str, dict[str, Any]] | None = None) -> None:
        """Record a finished layer's successful rows and its ESD histograms; CacheWriteError (rows kept in memory) when
        the file cannot be written."""
        record = {"key": key, "rows": [{k: json_safe(v) for k, v in row.items()} for row in rows], "esds": histograms or {}}
        self._rows[key] = rows
        self._stored.pop(key, None)
        self._histograms[key] = histograms or {}
        line = (json.dumps(record) + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a+b") as handle:
                if handle.seek(0, 2) > 0:
                    handle.seek(-1, 2)
                    if handle.read(1) != b"\n":  # a torn record before us: start on a fresh line
                        line = b"\n" + line
                handle.write(line)
                handle.flush()
        except OSError as exc:
            raise CacheWriteError(self.path, self.written, exc) from exc
        self.written += 1
