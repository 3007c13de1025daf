"""Split GGUF models (``name-00001-of-00003.gguf``): any one file stands for the whole model, as in llama.cpp."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ww_core.platform.toolkit import UntrustedDataError, special_kind

SPLIT_NAME = re.compile(r"(?P<stem>.+)-(?P<number>\d{5})-of-(?P<count>\d{5})\.gguf", re.IGNORECASE)


def split_files(path: Path, metadata: dict[str, Any]) -> list[Path]:
    """Every file of the model ``path`` belongs to, in split order (``[path]`` when it is not split)."""
    count = metadata.get("split.count", 1)
    if not isinstance(count, int) or count <= 1:
        return [path]
    found = SPLIT_NAME.fullmatch(path.name)
    if found is None or int(found["count"]) != count:
        raise ValueError(f"{path}: one of {count} splits (split.count), but its name is not '<name>-0000i-of-{count:05d}.gguf'")
    files = [path.with_name(f"{found['stem']}-{number:05d}-of-{count:05d}.gguf") for number in range(1, count + 1)]
    for file in files:  # a FIFO or device among the splits is refused, not called missing
        kind = special_kind(file)
        if kind is not None:
            raise UntrustedDataError(f"{path}: split file {file.name} is not a regular file ({kind}): only regular files are read")
    missing = [file.name for file in files if not file.is_file()]
    if missing:
        raise FileNotFoundError(f"{path}: split file(s) {', '.join(missing)} of this {count}-file model are missing")
    return files


def one_model(ggufs: list[Path]) -> bool:
    """True when the files are exactly the splits of one model."""
    matches = [SPLIT_NAME.fullmatch(p.name) for p in ggufs]
    if not all(matches):
        return False
    keys = {(m["stem"], int(m["count"])) for m in matches if m}
    numbers = sorted(int(m["number"]) for m in matches if m)
    return len(keys) == 1 and numbers == list(range(1, next(iter(keys))[1] + 1))
