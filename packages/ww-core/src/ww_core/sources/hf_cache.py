"""Hugging Face cache layouts, resolved offline: a ``models--org--name`` folder or a repo id → its snapshot folder.

The cache is found as huggingface_hub finds it (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
``$XDG_CACHE_HOME/huggingface/hub``, default ``~/.cache/huggingface/hub``); nothing is downloaded.
A snapshot's files link into ``../../blobs``: every link must stay inside the repo folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ww_core.platform.untrusted import open_regular, special_kind

#: ``org/name`` or ``org/name@revision`` (a branch, tag or commit hash).
REPO_ID = re.compile(r"(?P<org>[A-Za-z0-9][\w.-]*)/(?P<name>[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[\w.-]+))?")
#: An org-less id of the Hub's oldest models (``bert-base-uncased``, cached as ``models--bert-base-uncased``).
BARE_ID = re.compile(r"(?P<name>[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[\w.-]+))?")
_REF = re.compile(r"[\w.-]+")


def hub_cache() -> Path:
    """The folder huggingface_hub keeps downloaded repos in."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.environ.get("HF_HOME") or os.path.join(cache_home, "huggingface")).expanduser() / "hub"


def is_repo_folder(path: Path) -> bool:
    """True for a cache repo folder ``models--org--name`` (it has ``snapshots/``)."""
    return path.name.startswith("models--") and path.is_dir() and (path / "snapshots").is_dir()


def repo_folder_of(path: Path) -> Path | None:
    """The cache repo folder (``models--org--name``) that ``path`` is or lies inside, if any."""
    return next((folder for folder in (path, *path.parents) if is_repo_folder(folder)), None)


def snapshot_folder(repo: Path, revision: str = "main") -> Path:
    """The snapshot of ``revision`` (a name under ``refs/`` or a commit) in cache repo folder ``repo``, checked to stay inside it."""
    ref = repo / "refs" / revision
    if _REF.fullmatch(revision) and (ref.is_file() or special_kind(ref) not in (None, "a folder")):  # open_regular says what it is
        with open_regular(ref, repo) as handle:
            commit = handle.read(256).decode("utf-8", "replace").strip()
        if not _REF.fullmatch(commit) or commit.strip(".") == "":
            raise ValueError(f"{repo}: refs/{revision} does not name a snapshot")
    elif _REF.fullmatch(revision) and (repo / "snapshots" / revision).is_dir():
        commit = revision
    else:
        known = sorted(p.name for p in (repo / "refs").glob("*")) if (repo / "refs").is_dir() else []
        raise FileNotFoundError(f"{repo}: no revision {revision!r} in this Hugging Face cache folder (refs: {', '.join(known) or 'none'})")
    snapshot = repo / "snapshots" / commit
    if not snapshot.is_dir():
        raise FileNotFoundError(f"{repo}: revision {revision!r} is snapshot {commit}, which is not downloaded")
    _check_confined(snapshot, repo)
    return snapshot


def _check_confined(snapshot: Path, repo: Path) -> None:
    root = repo.resolve()
    for entry in [snapshot, *snapshot.rglob("*")]:
        if not entry.resolve().is_relative_to(root):
            raise ValueError(f"{repo}: {entry.relative_to(repo)} links outside the cache repo folder; refused")


def resolve(source: Any) -> Any:
    """``source`` with a cache repo folder or a cached repo id replaced by its snapshot folder; anything else unchanged.

    An existing path always wins over a repo id of the same spelling.
    """
    if not isinstance(source, (str, os.PathLike)):
        return source
    path = Path(source)
    if path.exists():
        return snapshot_folder(path) if is_repo_folder(path) else source
    if path.is_symlink():  # a dangling link or a loop is a path the caller names, never a repo id
        return source
    text = os.fspath(source)
    found = REPO_ID.fullmatch(text)
    bare = BARE_ID.fullmatch(text) if found is None else None
    if found is None and bare is None:
        return source
    repo_id = f"{found['org']}/{found['name']}" if found else bare["name"]  # type: ignore[index]
    repo = cached_repo(repo_id)
    if repo is None:
        if bare:  # a missing file's name as often as an id: the reader's "no such file" error says it, unless the cache has it
            return source
        raise FileNotFoundError(
            f"{text!r}: no such file or folder, and {repo_id} is not in the Hugging Face cache {hub_cache()} "
            f"(ww never downloads; fetch it first, e.g. `hf download {repo_id}`)"
        )
    return snapshot_folder(repo, (found or bare)["revision"] or "main")  # type: ignore[index]


def cached_repo(repo_id: str) -> Path | None:
    """The cache folder of ``org/name`` or an org-less ``name`` (``models--org--name``), when it is in the cache."""
    repo = hub_cache() / ("models--" + repo_id.replace("/", "--"))
    return repo if repo.is_dir() else None
