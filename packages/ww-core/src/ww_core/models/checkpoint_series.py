"""A training-run folder as one series: its numbered snapshots in numeric step order.

Recognized: Hugging Face Trainer ``checkpoint-500/`` folders, Orbax step folders (``1000/``), and
any folder of numbered snapshots (``step_3/``, ``epoch-12.safetensors``); the step is the number at
the end of the name (after its weight-file suffix). Shard files (``model-00001-of-00002``) are
never steps, an empty numbered folder or a temporary one (a checkpoint not written yet: Orbax's
``.orbax-checkpoint-tmp-`` and the Trainer's ``tmp-`` names) is not a snapshot, and a folder that
also holds an unnumbered weight file is a model, not a run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: Suffixes of single-file snapshots; other files (configs, logs, optimizer state) are not members.
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".npz", ".onnx", ".keras", ".h5", ".gguf", ".msgpack")
_STEP = re.compile(r"(\d+)$")
_SHARD = re.compile(r"-of-\d+$")
#: Snapshots still being written: Orbax's ``1000.orbax-checkpoint-tmp-<time>``, the Trainer's (4.36) ``tmp-checkpoint-500``.
_PARTIAL = re.compile(r"\.orbax-checkpoint-tmp-|^tmp-")


def step_of(entry: Path) -> int | None:
    """The step an entry of a run folder stands for: the number ending its name; None for other entries."""
    if entry.name.startswith(".") or _PARTIAL.search(entry.name):
        return None
    stem = entry.name
    if entry.is_file():
        if entry.suffix.lower() not in WEIGHT_SUFFIXES:
            return None
        stem = entry.name[: -len(entry.suffix)]
    elif not entry.is_dir() or not any(entry.iterdir()):
        return None  # not a file or folder, or a checkpoint folder not written yet
    found = _STEP.search(stem)
    return int(found.group(1)) if found and not _SHARD.search(stem) else None


def series_members(source: Any) -> list[Path] | None:
    """The snapshots of a run folder in numeric step order; None when ``source`` is not such a folder.

    A run folder holds at least two numbered snapshots of one kind (all folders or all weight files),
    each step once, and no unnumbered weight file beside them.
    """
    if not isinstance(source, (str, Path)) or not Path(source).is_dir():
        return None
    entries = [entry for entry in Path(source).iterdir() if not entry.name.startswith(".")]
    numbered = {entry: step for entry in entries if (step := step_of(entry)) is not None}
    folders = [entry for entry in numbered if entry.is_dir()]
    members = folders if folders else list(numbered)
    loose = [e for e in entries if e.is_file() and e.suffix.lower() in WEIGHT_SUFFIXES and e not in numbered]
    steps = [numbered[m] for m in members]
    if len(members) < 2 or len(set(steps)) != len(steps) or (loose and not folders):
        return None
    return sorted(members, key=lambda entry: numbered[entry])
