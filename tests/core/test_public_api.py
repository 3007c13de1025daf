"""Adapters and examples use only ww-core's public modules, so core's internals can change without breaking them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ww_core
from ww_core import toolkit

ROOT = Path(__file__).resolve().parents[2]
#: The modules adapters and examples may import (docs/writing-adapters.md lists them).
PUBLIC = {"ww_core", "ww_core.toolkit", "ww_core.testing", "ww_core.hookspecs", "ww_core.plots", "ww_core.threads", "ww_core.signals"}
OUTSIDE_CORE = sorted(
    path
    for folder in (ROOT / "packages", ROOT / "examples")
    for path in folder.rglob("*.py")
    if "ww-core" not in path.relative_to(ROOT).parts and ".nox" not in path.parts
)


def private_imports(source: str) -> list[str]:
    """The ``ww_core`` modules imported by ``source`` that are not public (``from ww_core import sub`` counts as ``ww_core.sub``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
            if node.module == "ww_core":  # a submodule imported by name is that module
                modules += [f"ww_core.{alias.name}" for alias in node.names if not hasattr(ww_core, alias.name) or _is_module(alias.name)]
        else:
            continue
        found += [m for m in modules if (m == "ww_core" or m.startswith("ww_core.")) and m not in PUBLIC]
    return found


def _is_module(name: str) -> bool:
    return (Path(ww_core.__file__).parent / f"{name}.py").exists() or (Path(ww_core.__file__).parent / name).is_dir()


def test_the_check_catches_private_imports() -> None:
    code = "import ww_core.spectrum\nfrom ww_core.sources.named_arrays import natural_key\nfrom ww_core import cache, LayerMatrix\n"
    assert private_imports(code) == ["ww_core.spectrum", "ww_core.sources.named_arrays", "ww_core.cache"]
    assert private_imports("from ww_core import LayerMatrix, hookimpl, signals\nfrom ww_core.toolkit import natural_key\n") == []


@pytest.mark.parametrize("path", OUTSIDE_CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_adapters_and_examples_import_only_public_modules(path: Path) -> None:
    assert not private_imports(path.read_text(encoding="utf-8")), f"{path.relative_to(ROOT)} imports private ww_core modules"


def test_toolkit_names_are_documented() -> None:
    page = (ROOT / "docs" / "writing-adapters.md").read_text()
    missing = [name for name in toolkit.__all__ if f"`{name}" not in page]
    assert not missing, f"docs/writing-adapters.md does not describe {missing}"


def test_toolkit_is_light() -> None:
    """Adapters import the toolkit when ww discovers plugins (``ww plugins`` too): it loads no math stack."""
    import subprocess
    import sys

    script = "import sys, ww_core.toolkit; print([m for m in ('scipy', 'ww_core.analysis', 'ww_core.spectrum') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout
