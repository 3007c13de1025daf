"""Routing by declaration: which adapters may be asked about a source, and how specific each one's claim is.

An adapter declares in ``ww_adapter_info`` the file suffixes (``suffixes``) and the top-level modules
of the objects (``modules``) it reads, or that it wants to be asked about every source (``catch_all``).
Only adapters whose declaration matches a source are asked about it; a lower ``Match.level`` is more
specific: the file's own suffix or the object's own class (0), a file inside the folder or a value
inside the container (1), a catch-all (2).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

#: How far into a folder and a container the match looks, and how many entries at most (bounded work per source).
FOLDER_DEPTH, FOLDER_ENTRIES = 2, 2000
CONTAINER_DEPTH, CONTAINER_LEAVES = 6, 64

EXACT, INSIDE, CATCH_ALL = 0, 1, 2
LEVEL_WORDS = {EXACT: "its own", INSIDE: "contained", CATCH_ALL: "catch-all"}


@dataclass(frozen=True)
class Declaration:
    """What an adapter says it reads: file suffixes (lower case, with the dot), top-level modules, or everything."""

    suffixes: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    catch_all: bool = False

    @classmethod
    def of(cls, info: Mapping[str, Any]) -> "Declaration":
        """The declaration in a (checked) ``ww_adapter_info`` answer."""
        suffixes = tuple(str(s).lower() for s in info.get("suffixes") or ())
        return cls(suffixes, tuple(str(m) for m in info.get("modules") or ()), bool(info.get("catch_all", False)))

    def __bool__(self) -> bool:
        return bool(self.suffixes or self.modules or self.catch_all)

    def level(self, source: Any) -> int | None:
        """How specifically this declaration matches ``source`` (EXACT, INSIDE, CATCH_ALL), or None."""
        if isinstance(source, (str, os.PathLike)):
            found = _path_level(os.fspath(source), self.suffixes)
        else:
            found = _object_level(source, self.modules)
        if found is None and self.catch_all:
            return CATCH_ALL
        return found

    def words(self) -> str:
        """The declaration for ``ww plugins``."""
        parts = [*self.suffixes, *(f"{module} objects" for module in self.modules)]
        if self.catch_all:
            parts.append("any source (catch-all)")
        return ", ".join(parts) or "nothing (asked only when chosen with --adapter)"


def _path_level(path: str, suffixes: tuple[str, ...]) -> int | None:
    if not suffixes:
        return None
    if os.path.isdir(path):
        return INSIDE if any(name.lower().endswith(suffixes) for name in _folder_names(path)) else None
    return EXACT if os.path.basename(path).lower().endswith(suffixes) else None


def _folder_names(folder: str) -> Iterator[str]:
    """File names in ``folder`` and its subfolders (at most FOLDER_DEPTH deep, FOLDER_ENTRIES in all)."""
    seen = 0
    pending = [(folder, 1)]
    while pending:
        current, depth = pending.pop(0)
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > FOLDER_ENTRIES:
                return
            if entry.is_dir(follow_symlinks=False):
                if depth < FOLDER_DEPTH:
                    pending.append((entry.path, depth + 1))
            else:
                yield entry.name


def _roots(value: Any) -> set[str]:
    """The top-level modules of ``value``'s class and of every class it derives from."""
    return {cls.__module__.split(".")[0] for cls in type(value).__mro__}


def _object_level(source: Any, modules: tuple[str, ...]) -> int | None:
    if not modules:
        return None
    wanted = set(modules)
    if _roots(source) & wanted:
        return EXACT
    return INSIDE if any(_roots(leaf) & wanted for leaf in _leaves(source, CONTAINER_DEPTH)) else None


def _leaves(value: Any, depth: int) -> Iterator[Any]:
    """The first CONTAINER_LEAVES values inside nested mappings, lists and tuples."""
    stack = [(value, depth)]
    count = 0
    while stack and count < CONTAINER_LEAVES:
        current, left = stack.pop()
        if isinstance(current, Mapping):
            children = list(current.values())[:CONTAINER_LEAVES]
        elif isinstance(current, (list, tuple)):
            children = list(current[:CONTAINER_LEAVES])
        else:
            count += 1
            yield current
            continue
        if left > 0:
            stack.extend((child, left - 1) for child in reversed(children))
