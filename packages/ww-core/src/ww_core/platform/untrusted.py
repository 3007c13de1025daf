"""The gate every reader of a model goes through: which files it may open, how many bytes a claim may take, JSON parsed safely.

Only regular files are read (a FIFO blocks for ever, a device streams for ever), and every file a model names
(a folder's shards, an index's, external data, a manifest's) must resolve inside the model (``open_regular``,
``model_root``); a tensor's bytes must be present in the file (``check_present``); any decompression is capped
(``check_inflated``). A model path may be a link to any file (Hugging Face cache snapshots link into
``../../blobs``), so a message must not echo what it read: it gives sizes and byte positions, never content.
docs/bad-input.md states the rules; docs/writing-adapters.md asks every adapter to use them.
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path
from typing import IO, Any

#: Largest JSON document (safetensors header, shard index) read into memory.
MAX_JSON_BYTES = 100 * 1024 * 1024

#: A compressed archive member may inflate beyond MAX_INFLATED_BYTES only below MAX_INFLATION:1.
#: Deflate leaves float weights nearly their size; a zip bomb inflates about 1000:1.
MAX_INFLATED_BYTES = 64 * 1024 * 1024
MAX_INFLATION = 100


class UntrustedDataError(ValueError):
    """Metadata that is malformed, too large or nested too deeply; the message names the file, never its bytes."""


#: What a path that is no regular file is, by its stat mode, for messages.
_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def special_kind(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it exists and is no regular file (``"a FIFO"``, ``"a character device"``); None otherwise."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return next((kind for test, kind in _SPECIAL_KINDS if test(mode)), None) if not stat.S_ISREG(mode) else None


def model_root(path: str | os.PathLike[str]) -> Path:
    """The folder every file a model names must resolve inside: the model's folder (a file's own folder), or for a
    Hugging Face cache snapshot (``<repo>/snapshots/<commit>`` beside ``<repo>/blobs``) the repo folder its links lead into."""
    folder = Path(os.path.abspath(path))
    if not folder.is_dir():
        folder = folder.parent
    if folder.parent.name == "snapshots" and (folder.parent.parent / "blobs").is_dir():
        return folder.parent.parent
    return folder


def check_confined(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> None:
    """Refuse ``path`` when it resolves (every link followed) outside the folder ``root``: a model never reads what lies outside it."""
    resolved = os.path.realpath(path)
    inside = os.path.realpath(root)
    if os.path.commonpath([resolved, inside]) != inside:
        raise UntrustedDataError(f"{os.fspath(path)}: resolves outside the model folder {os.fspath(root)}: refused")


def regular_file(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path:
    """``path`` once checked to be a regular file (resolving inside ``root`` when given); for libraries that open paths themselves.

    A path that does not exist passes: the opener names it missing as it would.
    """
    if root is not None:
        check_confined(path, root)
    kind = special_kind(path)
    if kind is not None:
        raise UntrustedDataError(f"{os.fspath(path)}: not a regular file ({kind}): only regular files are read")
    return Path(path)


def open_regular(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> io.BufferedReader:
    """``path`` opened for reading, only if it is a regular file resolving inside ``root`` (when given).

    Opened without blocking and checked on the open descriptor, so a FIFO swapped in after a check cannot hang the read.
    """
    regular_file(path, root)
    handle = open(path, "rb", opener=lambda name, flags: os.open(name, flags | os.O_NONBLOCK))
    try:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            kind = next((kind for test, kind in _SPECIAL_KINDS if test(mode)), "a special file")
            raise UntrustedDataError(f"{os.fspath(path)}: not a regular file ({kind}): only regular files are read")
    except BaseException:
        handle.close()
        raise
    return handle


def check_present(what: str, claimed: int, held: int) -> None:
    """Refuse a claim of ``claimed`` bytes where the file holds only ``held`` for it: a tensor's bytes must be present."""
    if claimed > held:
        raise UntrustedDataError(f"{what}: claims {claimed} bytes but only {held} are present in the file: refused")


def check_inflated(what: str, inflated: int, compressed: int, bomb: str = "a decompression bomb") -> None:
    """Refuse ``compressed`` bytes that would inflate to ``inflated``, beyond MAX_INFLATED_BYTES at more than MAX_INFLATION:1.

    The one cap for every layer of compression: zip members, HDF5 chunk filters, zarr/tensorstore chunks.
    """
    if inflated > MAX_INFLATED_BYTES and inflated > MAX_INFLATION * max(compressed, 1):
        cap = MAX_INFLATED_BYTES // (1024 * 1024)
        raise UntrustedDataError(
            f"{what}: {compressed} compressed bytes inflate to {inflated}, over {MAX_INFLATION}:1 and beyond the {cap} MiB cap "
            f"({bomb}?): refused"
        )


def read_limited(handle: IO[bytes], limit: int, what: str) -> bytes:
    """At most ``limit`` bytes of ``handle``; UntrustedDataError when it holds more (a zip bomb, a huge member)."""
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise UntrustedDataError(f"{what}: larger than the {limit // (1024 * 1024)} MiB cap, refused")
    return data


def check_inflation(info: zipfile.ZipInfo, what: str) -> None:
    """Refuse an archive member that a few bytes would inflate into a lot of memory (a zip bomb): ``check_inflated`` per member."""
    check_inflated(f"{what}: member {info.filename!r}", info.file_size, info.compress_size, "a zip bomb")


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
