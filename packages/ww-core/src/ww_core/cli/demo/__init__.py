"""The bundled default model: a small CNN really trained on handwritten digits.

How it was trained: scripts/train_demo_model.py; the recipe and test accuracy: digits_cnn.json.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DEMO_FILE = "digits_cnn.safetensors"


def model_path() -> Path:
    """Path of the bundled demo checkpoint (safetensors, readable by core alone)."""
    return Path(str(files("ww_core.cli.demo").joinpath(DEMO_FILE)))
