"""Cheap recognition of torch sources and devices: file suffixes and ``sys.modules``, never importing torch."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

SourceKind = Literal["module", "state_dict", "file", "folder"]

TORCH_SUFFIXES = (".pt", ".pth", ".bin")
ACCELERATORS = ("cuda", "mps", "xpu")
#: What a Hugging Face Trainer (or Accelerate) saves beside the model: training state, never layers.
TRAINING_STATE = re.compile(r"(optimizer|scheduler|scaler)\.(pt|bin)|rng_state(_\d+)?\.pth|training_args\.bin")


def is_training_state(path: Path) -> bool:
    """True for optimizer, scheduler, scaler, RNG-state and training-argument files of a training checkpoint."""
    return TRAINING_STATE.fullmatch(path.name) is not None


def is_torch_folder(path: Path) -> bool:
    """A folder of torch weight files (or a ``*.bin.index.json`` shard index), but no safetensors (core reads those)."""
    if any(path.glob("*.safetensors")):
        return False
    return any(p.suffix.lower() in TORCH_SUFFIXES or p.name.endswith(".bin.index.json") for p in path.iterdir() if p.is_file())


def source_kind(source: Any) -> SourceKind | None:
    """What kind of torch source ``source`` is, or None when it is not one."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file():
            return "file" if path.suffix.lower() in TORCH_SUFFIXES else None
        return "folder" if path.is_dir() and is_torch_folder(path) else None
    torch = sys.modules.get("torch")  # a torch object cannot exist unless torch is already imported
    if torch is None:
        return None
    if isinstance(source, torch.nn.Module):
        return "module"
    if isinstance(source, Mapping) and source and all(isinstance(v, torch.Tensor) for v in source.values()):
        return "state_dict"
    return None


def wants_torch_spectra(device: str, options: Mapping[str, Any]) -> bool:
    """Compute spectra with torch when asked (``torch_spectra`` or ``torch_device``) or when the weights sit on an accelerator."""
    return bool(options.get("torch_spectra") or options.get("torch_device")) or device.split(":")[0] in ACCELERATORS
