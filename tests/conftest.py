"""One pytest run over the whole tests/ tree: a framework's folder is left out, with a line saying so, where that
framework is not installed.

Each nox session installs one framework and names its own folder; a folder named on the command line is
never left out, so a session whose framework failed to install fails instead of passing empty.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path

import pytest

#: test folder → the modules its test files import at the top
NEEDS: dict[str, tuple[str, ...]] = {
    "torch": ("torch", "ww_torch"),
    "keras": ("keras", "ww_keras"),
    "jax": ("jax", "flax", "ww_jax"),
    "onnx": ("onnx", "ww_onnx"),
    "gguf": ("gguf", "ww_gguf"),
    "distributed": ("dask", "distributed"),
}

HERE = Path(__file__).resolve().parent

#: folder name → its missing modules, for the report
SKIPPED: dict[str, list[str]] = {}


def missing_modules(folder: Path) -> list[str]:
    """The modules a test folder needs that cannot be imported here."""
    return [name for name in NEEDS.get(folder.name, ()) if importlib.util.find_spec(name) is None]


def named(folder: Path, args: Iterable[str]) -> bool:
    """Whether a command-line argument is ``folder`` or lies inside it."""
    for arg in args:
        target = Path(arg.split("::")[0]).resolve()
        if target == folder or folder in target.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave out a framework's folder whose modules are missing (its conftest is never imported), unless it was named."""
    folder = collection_path.resolve()
    if folder.parent != HERE or not missing_modules(folder) or named(folder, config.args):
        return None
    SKIPPED[folder.name] = missing_modules(folder)
    return True


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    """Say which folders were left out and why, under the collection count."""
    return [f"skipped tests/{name}/: {', '.join(missing)} not installed" for name, missing in sorted(SKIPPED.items())]
