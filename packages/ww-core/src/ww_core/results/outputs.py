"""Output files: checked against everything the user has before any work (``OutputGuard``), then written whole or not
at all (temp file + rename); ``-`` means stdout."""

from __future__ import annotations

import os
import re
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ww_core.platform.adapter_hints import FIRST_PARTY
from ww_core.platform.messages import printable
from ww_core.sources import hf_cache

STDOUT = "-"
#: How Python holds the bytes of a file name that are not UTF-8 (``os.fsdecode``): they cannot be written as text.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

#: Names a reader takes for part of a model: core's formats, every first-party adapter's suffixes, shard indexes.
WEIGHT_SUFFIXES = frozenset({".safetensors", ".npz", *(suffix for hints in FIRST_PARTY for suffix in hints.suffixes)})
INDEX_SUFFIX = ".index.json"
#: Files in a model folder that an output may replace (an earlier run's table, page or plot); any other file there
#: (weights, a config.json, Orbax metadata) is part of the model.
REPLACEABLE_SUFFIXES = frozenset({".csv", ".html", ".png", ".svg"})


def is_weight_name(path: str | os.PathLike[str], suffixes: Iterable[str] = WEIGHT_SUFFIXES) -> bool:
    """Whether a reader of the folder holding ``path`` would take it for weights (its suffix) or a shard index."""
    name = Path(path).name.lower()
    return name.endswith(INDEX_SUFFIX) or Path(name).suffix in set(suffixes)


def _resolved(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(path)).resolve()


@dataclass
class OutputGuard:
    """One run's outputs, each claimed before any work: none may be an input, an existing file of an input folder
    (but an earlier table, page or plot), a weights name anywhere, anything inside a Hugging Face cache repo, or an
    output claimed before it (the cache, the other flags). docs/bad-input.md, "Writes".

    ``inputs`` are what the run reads (model paths or repo ids, a monitor log; objects are ignored); ``suffixes``
    are the names readers take for weights.
    """

    inputs: Iterable[Any] = ()
    suffixes: frozenset[str] = WEIGHT_SUFFIXES

    def __post_init__(self) -> None:
        self._files: list[tuple[Path, str]] = []
        self._folders: list[tuple[Path, str]] = []
        self._repos: list[Path] = []
        self._outputs: list[tuple[Path, str]] = []
        for source in self.inputs:
            self._add_input(source)

    def _add_input(self, source: Any) -> None:
        if not isinstance(source, (str, os.PathLike)):
            return
        said = f"{printable(os.fspath(source))}, an input of this run"
        if not os.path.exists(source):
            try:
                snapshot = hf_cache.resolve(source)
            except (OSError, ValueError):  # not in the cache: the reader says so
                return
            if isinstance(snapshot, Path):
                self._repos.append(snapshot.resolve().parent.parent)
            return
        path = _resolved(source)
        repo = hf_cache.repo_folder_of(path)
        if repo is not None:
            self._repos.append(repo)
        if path.is_dir():
            self._folders.append((path, said))
        else:
            self._files.append((path, said))

    def claim(self, target: str | os.PathLike[str] | None, what: str, *, folder: bool = False, appended: bool = False) -> None:
        """ValueError naming ``target`` (the ``what`` output: a flag, "log") when writing it would harm (see the class);
        a target that is ``appended`` to (the cache) may already exist in an input folder. Later outputs may not be it."""
        if target is None or os.fspath(target) == STDOUT:
            return
        path, named = _resolved(target), printable(os.fspath(target))
        for other, said in self._outputs:
            if other == path:
                raise ValueError(f"{what} {named} would overwrite {said}; give each output its own name")
        for protected, said in self._files:
            if protected == path:
                raise ValueError(f"{what} {named} would overwrite {said}; name another file")
        repo = hf_cache.repo_folder_of(path) or next((r for r in self._repos if path == r or r in path.parents), None)
        if repo is not None:
            raise ValueError(f"{what} {named} is inside the Hugging Face cache {printable(str(repo))}; ww never writes there")
        if folder and path.is_file():
            raise ValueError(f"{what} {named} is a file, not a folder")
        for root, said in self._folders:
            replaced = path.exists() and not appended and path.suffix.lower() not in REPLACEABLE_SUFFIXES
            if root in path.parents and not folder and (replaced or is_weight_name(path, self.suffixes)):
                raise ValueError(f"{what} {named} would change the model folder {said}; write it elsewhere")
        if not folder and is_weight_name(path, self.suffixes):
            raise ValueError(f"{what} {named} has the name of a weights file, which a reader of its folder would take for one")
        self._outputs.append((path, f"the {what} output of this run"))


def check_write_back(source: Path, target: Path, model_folder: Path | None) -> None:
    """ValueError naming ``target`` when new weights written there would replace ``source``, land inside
    ``model_folder`` (the folder a reader reads the model from: the source folder, or a file's folder that a reader
    would read, where a second weights file changes the model) or inside the Hugging Face cache."""
    resolved, named = _resolved(target), printable(os.fspath(target))
    if resolved == _resolved(source):
        raise ValueError(f"{named}: refusing to overwrite the input; choose another output")
    if model_folder is not None and (resolved == _resolved(model_folder) or _resolved(model_folder) in resolved.parents):
        raise ValueError(
            f"{named}: refusing to write new weights into the model folder {printable(str(model_folder))}; choose another output"
        )
    repo = hf_cache.repo_folder_of(resolved)
    if repo is not None:
        raise ValueError(f"{named}: refusing to write inside the Hugging Face cache {printable(str(repo))}; choose another output")


def write_checked(path: str | os.PathLike[str], data: str | bytes, inputs: Iterable[Any]) -> None:
    """``write_atomic`` once ``OutputGuard(inputs)`` accepts ``path``: the Python API's ``to_csv(path)`` and kin."""
    OutputGuard(inputs).claim(path, "output")
    write_atomic(path, data)


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder renamed over it.

    A failure (disk full, permissions) leaves no partial file and any previous file intact.
    A target that exists and is not a regular file (``/dev/stdout``, a FIFO) is written directly. Text is UTF-8: the
    bytes of a file name that are not (held as lone surrogates) become U+FFFD.
    """
    target = Path(path)
    payload = _LONE_SURROGATE.sub("\ufffd", data).encode("utf-8") if isinstance(data, str) else data
    if target.exists() and not stat.S_ISREG(target.stat().st_mode):
        with target.open("wb") as device:
            device.write(payload)
        return
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_output(target: str | os.PathLike[str], data: str | bytes) -> None:
    """Write to ``target``, or to stdout when it is ``-``."""
    if os.fspath(target) == STDOUT:
        if isinstance(data, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data if data.endswith("\n") else data + "\n")
        sys.stdout.flush()
        return
    write_atomic(target, data)


def check_writable_file(target: str | os.PathLike[str]) -> None:
    """Raise OSError naming ``target`` now, before any analysis, when a file cannot be created there."""
    if os.fspath(target) == STDOUT:
        return
    path = Path(target)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {printable(str(path))}: it is a folder")
    _probe(path.parent if str(path.parent) else Path("."), path)


def check_writable_folder(folder: str | os.PathLike[str]) -> None:
    """Create ``folder`` if needed and raise OSError naming it when files cannot be created inside."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise type(exc)(f"cannot create output folder {printable(str(path))}: {exc.strerror or exc}") from exc
    _probe(path, path)


def _probe(folder: Path, named: Path) -> None:
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise type(exc)(f"cannot write {printable(str(named))}: {exc.strerror or exc}") from exc
