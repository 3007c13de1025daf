"""PEFT adapter folders (``adapter_config.json`` beside the LoRA factors): recognized, so a plain run says what it holds."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ww_core.platform.messages import printable
from ww_core.platform.untrusted import model_root, open_regular
from ww_core.sources import hf_cache

CONFIG = "adapter_config.json"
#: Bytes read of an adapter config: a real one is a few hundred; more is no config of ours to read.
MAX_CONFIG_BYTES = 1 << 20


def base_model_name(folder: Path) -> str | None:
    """``base_model_name_or_path`` of the folder's adapter config, or None when it has none (or no readable config)."""
    try:
        with open_regular(folder / CONFIG, model_root(folder)) as handle:  # a FIFO or a link out of the folder: no config
            config = json.loads(handle.read(MAX_CONFIG_BYTES))
    except (OSError, ValueError, RecursionError):  # unreadable, not JSON, or nested too deeply: no config
        return None
    name = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    return name if isinstance(name, str) and name else None


def adapter_folder(source: Any) -> Path | None:
    """The folder holding ``adapter_config.json`` (what ``PeftModel.save_pretrained`` writes) that ``source`` names, a
    Hugging Face cache folder or repo id included; None for anything else."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    try:
        folder = Path(hf_cache.resolve(source))
    except (OSError, ValueError):
        return None
    return folder if (folder / CONFIG).is_file() else None


def is_adapter_folder(source: Any) -> bool:
    """True when ``source`` names a PEFT adapter folder."""
    return adapter_folder(source) is not None


def found_base(source: Any) -> str | None:
    """The adapter folder's base model where ww can read it: a local folder, or a repo id in the Hugging Face cache."""
    folder = adapter_folder(source)
    base = base_model_name(folder) if folder is not None else None
    if base is not None and (Path(base).is_dir() or hf_cache.cached_repo(base) is not None):
        return base
    return None


def _where_base(source: Any) -> str:
    """Where the adapter's base model is, in words: a local folder, in the cache, not found, or not named."""
    folder = adapter_folder(source)
    base = base_model_name(folder) if folder is not None else None
    if base is None:
        return f"its {CONFIG} names no base model"
    shown = printable(base)  # the config is the model's (untrusted) text
    if Path(base).is_dir():
        return f"its base model {shown} is a local folder"
    if hf_cache.cached_repo(base) is not None:
        return f"its base model {shown} is in the Hugging Face cache"
    return f"its base model {shown} is not in the Hugging Face cache ({printable(str(hf_cache.hub_cache()))}) nor a local folder"


def adapter_note(source: Any) -> str | None:
    """For a PEFT adapter folder analyzed without ``peft``: what its rows are, what ``--peft`` does, and where its base model is."""
    if not is_adapter_folder(source):
        return None
    return (
        f"{printable(os.fspath(source))} is a PEFT adapter folder ({CONFIG}): its rows are the bare LoRA factors lora_A and lora_B; "
        f"--peft (peft=True) analyzes each update B·A instead, --peft with_base beside its base model's layers; {_where_base(source)}"
    )


def missing_base_note(source: Any) -> str:
    """For ``peft='with_base'`` on an adapter folder whose base model ww cannot find: the rows hold the adapter alone."""
    return (
        f"{printable(os.fspath(source))}: peft='with_base' pairs a PEFT adapter with its base model, but {_where_base(source)}; "
        "the rows hold the adapter alone (give the base with --base / base_model=)"
    )
