"""Adapters and examples use only ww-core's public modules, so core's internals can change without breaking them."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import ww_core
from ww_core.platform import toolkit

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "writing-adapters.md"


def documented_public_modules() -> set[str]:
    """The modules listed between the public-modules markers of docs/writing-adapters.md: the one list of public modules."""
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- public-modules", 1)[1].split("<!-- /public-modules -->", 1)[0]
    return set(re.findall(r"^- `([\w.]+)`", block, flags=re.M))


PUBLIC = documented_public_modules()
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
            # a submodule imported by name (``from ww_core.pipeline import cache``) is that module too
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names if _is_module(f"{node.module}.{alias.name}")]
        else:
            continue
        found += [m for m in modules if (m == "ww_core" or m.startswith("ww_core.")) and m not in PUBLIC and not _is_package_of_public(m)]
    return found


def _is_module(dotted: str) -> bool:
    if not dotted.startswith("ww_core."):
        return False
    path = Path(ww_core.__file__).parent.joinpath(*dotted.split(".")[1:])
    return path.with_suffix(".py").exists() or path.is_dir() or dotted in ww_core.MOVED_MODULES


def _is_package_of_public(module: str) -> bool:
    """``from ww_core.platform import toolkit`` names the package ``ww_core.platform`` on the way to a public module."""
    return (
        any(public.startswith(module + ".") for public in PUBLIC)
        and Path(ww_core.__file__).parent.joinpath(*module.split(".")[1:]).is_dir()
    )


def test_the_list_is_read_from_the_docs() -> None:
    assert {"ww_core", "ww_core.platform.toolkit", "ww_core.platform.hookspecs", "ww_core.testing"} <= PUBLIC
    assert all(importlib.import_module(name) for name in PUBLIC)


def test_the_check_catches_private_imports() -> None:
    code = "import ww_core.spectra.spectrum\nfrom ww_core.platform.named_arrays import natural_key\nfrom ww_core.pipeline import cache\n"
    assert private_imports(code) == [
        "ww_core.spectra.spectrum",
        "ww_core.platform.named_arrays",
        "ww_core.pipeline",
        "ww_core.pipeline.cache",
    ]
    assert private_imports("from ww_core import LayerMatrix, hookimpl\nfrom ww_core.platform.toolkit import natural_key\n") == []
    assert private_imports("from ww_core.platform import toolkit\nfrom ww_core.training.signals import band_exits\n") == []


@pytest.mark.parametrize("path", OUTSIDE_CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_adapters_and_examples_import_only_public_modules(path: Path) -> None:
    assert not private_imports(path.read_text(encoding="utf-8")), f"{path.relative_to(ROOT)} imports private ww_core modules"


@pytest.mark.parametrize("old", sorted(ww_core.MOVED_MODULES))
def test_moved_public_paths_still_import_as_the_same_module(old: str) -> None:
    """ww-core 0.1.0's public paths (``ww_core.toolkit`` ...) are the moved modules themselves, with a DeprecationWarning."""
    script = (
        "import warnings, importlib, sys\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        f"try:\n    importlib.import_module({old!r})\nexcept DeprecationWarning as w:\n    print('warned', w)\n"
        "warnings.simplefilter('ignore')\n"
        f"import {old} as old_path\n"
        f"print(old_path is importlib.import_module({ww_core.MOVED_MODULES[old]!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert f"warned {old} moved to {ww_core.MOVED_MODULES[old]}" in done.stdout, done.stdout + done.stderr
    assert done.stdout.strip().endswith("True"), done.stdout


def test_from_ww_core_import_of_a_moved_module_works() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from ww_core import toolkit as old_toolkit  # type: ignore[attr-defined]
    assert old_toolkit is toolkit


def test_toolkit_names_are_documented() -> None:
    page = DOC.read_text()
    missing = [name for name in toolkit.__all__ if f"`{name}" not in page]
    assert not missing, f"docs/writing-adapters.md does not describe {missing}"


def test_toolkit_is_light() -> None:
    """Adapters import the toolkit when ww discovers plugins (``ww plugins`` too): it loads no math stack."""
    heavy = ("scipy", "ww_core.pipeline.analysis", "ww_core.spectra.spectrum")
    script = f"import sys, ww_core.platform.toolkit; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout
