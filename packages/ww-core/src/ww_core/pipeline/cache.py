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
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ww_core.platform.protocol import LayerMatrix
from ww_core.results.export import json_safe
from ww_core.results.options import AnalysisOptions

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


def _decode(value: Any) -> Any:
    return math.nan if value is None else value


def _valid_rows(record: Any) -> list[dict[str, Any]] | None:
    """The rows of a well-formed record (a key and a non-empty list of successful row objects), else None."""
    if not isinstance(record, dict) or not isinstance(record.get("key"), str):
        return None
    rows = record.get("rows")
    if not isinstance(rows, list) or not rows:
        return None
    if not all(isinstance(row, dict) and row.get("status") == "success" and isinstance(row.get("name"), str) for row in rows):
        return None
    return [{k: _decode(v) for k, v in row.items()} for row in rows]


class ResultsCache:
    """Rows of finished layers keyed by the options and the layer's content (see module docstring).

    Lines are appended and flushed as each layer finishes, so a killed run loses at most the
    layer in flight. Every record starts on a fresh line; unreadable lines (a torn last line,
    corrupt bytes) are skipped with one warning.
    """

    def __init__(self, path: str | Path, options: AnalysisOptions) -> None:
        self.path = Path(path)
        self.fingerprint = _fingerprint(options)
        self.written = 0
        self._rows: dict[str, list[dict[str, Any]]] = {}
        if self.path.exists():
            if not self.path.is_file():
                raise ValueError(f"cache {self.path} is not a regular file")
            self._load()
        self._check_writable()

    def _check_writable(self) -> None:
        """Open the file for appending once now, so an unwritable cache stops the run before any layer is computed."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write the cache {self.path}: {exc.strerror or exc}") from exc

    def key(self, layer: LayerMatrix, weights: np.ndarray, base_weights: np.ndarray | None = None) -> str:
        """The key of a loaded layer: options, name, shape, dtype and the content hash of its weights (and base)."""
        return layer_key(self.fingerprint, layer, weights, base_weights)

    def known_keys(self, layer: LayerMatrix) -> frozenset[str]:
        """The keys held for a layer of this name and shape: all a worker needs to tell a hit from its own key."""
        prefix = _key_prefix(self.fingerprint, layer)
        return frozenset(key for key in self._rows if key.startswith(prefix))

    def _load(self) -> None:
        content = self.path.read_bytes()
        bad = 0
        for raw in content.split(b"\n"):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:  # torn line, bytes that are not UTF-8 or not JSON
                record = None
            rows = _valid_rows(record)
            if rows is None:
                bad += 1
                continue
            self._rows[record["key"]] = rows
        if bad and not self._rows and not content.lstrip().startswith(RECORD_START):
            # A model or any other file named by mistake: appending our lines would damage it.
            raise ValueError(f"cache {self.path} is not a ww results cache (no line is a cached layer); name a new file")
        if bad:
            log.warning("cache %s: ignored %d unreadable or malformed line(s); those layers are computed again", self.path, bad)

    def get(self, key: str) -> list[dict[str, Any]] | None:
        """Cached rows under ``key``, if any."""
        return self._rows.get(key)

    def put(self, key: str, rows: list[dict[str, Any]]) -> None:
        """Record a finished layer's successful rows; CacheWriteError (rows kept in memory) when the file cannot be written."""
        record = {"key": key, "rows": [{k: json_safe(v) for k, v in row.items()} for row in rows]}
        self._rows[key] = rows
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
