"""Reading untrusted model metadata: JSON with bounded size and depth, errors that never quote the file's bytes.

A model path may be a link to any file (Hugging Face cache snapshots link into ``../../blobs``),
so a message must not echo what it read: it gives sizes and byte positions, never content.
"""

from __future__ import annotations

import json
import zipfile
from typing import IO, Any

#: Largest JSON document (safetensors header, shard index) read into memory.
MAX_JSON_BYTES = 100 * 1024 * 1024

#: A compressed archive member may inflate beyond MAX_INFLATED_BYTES only below MAX_INFLATION:1.
#: Deflate leaves float weights nearly their size; a zip bomb inflates about 1000:1.
MAX_INFLATED_BYTES = 64 * 1024 * 1024
MAX_INFLATION = 100


class UntrustedDataError(ValueError):
    """Metadata that is malformed, too large or nested too deeply; the message names the file, never its bytes."""


def read_limited(handle: IO[bytes], limit: int, what: str) -> bytes:
    """At most ``limit`` bytes of ``handle``; UntrustedDataError when it holds more (a zip bomb, a huge member)."""
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise UntrustedDataError(f"{what}: larger than the {limit // (1024 * 1024)} MiB cap, refused")
    return data


def check_inflation(info: zipfile.ZipInfo, what: str) -> None:
    """Refuse an archive member that a few bytes would inflate into a lot of memory (a zip bomb)."""
    if info.file_size > MAX_INFLATED_BYTES and info.file_size > MAX_INFLATION * max(info.compress_size, 1):
        cap = MAX_INFLATED_BYTES // (1024 * 1024)
        raise UntrustedDataError(
            f"{what}: member {info.filename!r} inflates {info.compress_size} bytes to {info.file_size}, "
            f"over {MAX_INFLATION}:1 and beyond the {cap} MiB cap (a zip bomb?): refused"
        )


def parse_json(data: bytes, what: str) -> Any:
    """The JSON document in ``data``; UntrustedDataError naming ``what`` and the byte position of the fault."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UntrustedDataError(f"{what}: not valid JSON (not UTF-8 text at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise UntrustedDataError(f"{what}: not valid JSON ({exc.msg} at byte {exc.pos})") from None
    except RecursionError:
        raise UntrustedDataError(f"{what}: not valid JSON (nested too deeply)") from None


def parse_json_object(data: bytes, what: str) -> dict[str, Any]:
    """Like ``parse_json`` but the document must be a JSON object whose keys are all different."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in pairs:
            if key in found:
                raise UntrustedDataError(f"{what}: key {key!r} appears twice")
            found[key] = value
        return found

    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=unique)
    except UntrustedDataError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        document = parse_json(data, what)  # raises the positioned error
    if not isinstance(document, dict):
        raise UntrustedDataError(f"{what}: not a JSON object (found {json_kind(document)})")
    return document


def json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type (an array, a number, ...), for messages."""
    kinds = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number", dict: "an object"}
    return kinds.get(type(value), "null")
