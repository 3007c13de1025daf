"""Row tables out: CSV and JSON text (no pandas needed), pandas DataFrame when installed."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Mapping, Sequence

from ww_core.platform.install_hints import install_hint


def columns_of(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """All keys of all rows, in first-seen order."""
    return list(dict.fromkeys(key for row in rows for key in row))


def json_safe(value: Any) -> Any:
    """A JSON-encodable value: numpy scalars unwrapped, NaN as null, infinities as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if hasattr(value, "item"):
        return json_safe(value.item())
    return value


def json_safe_tree(value: Any) -> Any:
    """``json_safe`` applied through dicts, lists and tuples (options, metadata)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe_tree(v) for v in value]
    return json_safe(value)


#: What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection"): a text cell starting so gets a ``'``.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: numpy scalars unwrapped, text that a spreadsheet would run as a formula prefixed with ``'``."""
    if hasattr(value, "item"):
        value = value.item()
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def rows_to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV text with one column per key; missing values empty, NaN as ``nan``; text cells never formulas (``csv_cell``).

    Rows end in ``\n``; a cell holding a carriage return or newline is quoted (the csv module quotes only the
    characters of its line terminator, so rows are written with ``\r\n`` and that ending replaced).
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns_of(rows), lineterminator="\r\n")
    lines = []
    for row in [None, *rows]:
        buffer.seek(0)
        buffer.truncate()
        if row is None:
            writer.writeheader()
        else:
            writer.writerow({k: csv_cell(v) for k, v in row.items()})
        lines.append(buffer.getvalue()[:-2] + "\n")
    return "".join(lines)


def to_json_text(details: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """Strict JSON (NaN becomes null) holding metadata, summary and details."""
    document = {
        "meta": json_safe_tree(meta),
        "summary": {k: json_safe(v) for k, v in summary.items()},
        "details": [{k: json_safe(v) for k, v in row.items()} for row in details],
    }
    return json.dumps(document, indent=2, allow_nan=False)


def to_dataframe(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A pandas DataFrame of the rows; a clear error when pandas is missing."""
    try:
        import pandas as pd
    except ImportError as exc:  # pandas is an optional extra
        raise ImportError(f"to_pandas() needs pandas: {install_hint('ww-core', 'pandas')}") from exc
    return pd.DataFrame(list(rows), columns=columns_of(rows))
