"""PEFT adapter folders (``adapter_config.json`` beside the LoRA factors): recognized, so a plain run says what it holds."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ww_core.sources import hf_cache

CONFIG = "adapter_config.json"
#: Bytes read of an adapter config: a real one is a few hundred; more is no config of ours to read.
MAX_CONFIG_BYTES = 1 << 20


def base_model_name(folder: Path) -> str | None:
    """``base_model_name_or_path`` of the folder's adapter config, or None when it has none (or no readable config)."""
    try:
        with (folder / CONFIG).open("rb") as handle:
            config = json.loads(handle.read(MAX_CONFIG_BYTES))
    except (OSError, ValueError):
        return None
    name = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    return name if isinstance(name, str) and name else None


def adapter_note(source: Any) -> str | None:
    """For a PEFT adapter folder analyzed without ``peft``: what its rows are, what ``--peft`` does, and where its base model is."""
    if not isinstance(source, (str, os.PathLike)) or not (Path(source) / CONFIG).is_file():
        return None
    folder = Path(source)
    note = (
        f"{os.fspath(source)} is a PEFT adapter folder ({CONFIG}): its rows are the bare LoRA factors lora_A and lora_B; "
        "--peft (peft=True) analyzes each update B·A instead"
    )
    base = base_model_name(folder)
    if base is None:
        return note + f"; its {CONFIG} names no base model"
    if Path(base).is_dir():
        return note + f"; its base model {base} is a local folder (analyze it on its own: ww analyze {base})"
    if hf_cache.cached_repo(base) is not None:
        return note + f"; its base model {base} is in the Hugging Face cache (analyze it on its own: ww analyze {base})"
    return note + f"; its base model {base} is not in the Hugging Face cache ({hf_cache.hub_cache()}) nor a local folder"
