"""A results cache so an interrupted run resumes: one JSON line per finished layer."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ww_core.export import json_safe
from ww_core.options import AnalysisOptions
from ww_core.protocol import LayerMatrix


def _fingerprint(options: AnalysisOptions) -> str:
    text = json.dumps(asdict(options), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _origin_stamp(origin: str) -> str:
    """The layer's file or folder with its size and modification time, so a rewritten checkpoint is not reused."""
    if origin and os.path.exists(origin):
        stat = os.stat(origin)
        return f"{origin}@{stat.st_size}:{stat.st_mtime_ns}"
    return origin


def _decode(value: Any) -> Any:
    return math.nan if value is None else value


class ResultsCache:
    """Rows of finished layers keyed by the layer's file (path, size, mtime), name, shape and the options.

    Lines are appended and flushed as each layer finishes, so a killed run loses at most
    the layer in flight; a torn last line is ignored on reload.
    """

    def __init__(self, path: str | Path, options: AnalysisOptions) -> None:
        self.path = Path(path)
        self.fingerprint = _fingerprint(options)
        self._rows: dict[str, list[dict[str, Any]]] = {}
        if self.path.exists():
            self._load()

    def _key(self, layer: LayerMatrix) -> str:
        return f"{self.fingerprint}|{_origin_stamp(layer.origin)}|{layer.name}|{layer.shape}"

    def _load(self) -> None:
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows = [{k: _decode(v) for k, v in row.items()} for row in record["rows"]]
            self._rows[record["key"]] = rows

    def get(self, layer: LayerMatrix) -> list[dict[str, Any]] | None:
        """Cached rows of this layer under the current options, if any."""
        return self._rows.get(self._key(layer))

    def put(self, layer: LayerMatrix, rows: list[dict[str, Any]]) -> None:
        """Record a finished layer (only fully successful or failed rows, never skips)."""
        key = self._key(layer)
        record = {"key": key, "rows": [{k: json_safe(v) for k, v in row.items()} for row in rows]}
        self._rows[key] = rows
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
