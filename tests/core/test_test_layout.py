"""The tests/ tree collects in one pytest run: every test folder is a package and nothing imports a test module by bare name.

Without this, two folders' conftest.py (or same-named helpers) load as one top-level module and
`pytest tests/keras tests/torch` fails at collection, depending on the order of the arguments.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def python_files() -> list[Path]:
    return sorted(TESTS.rglob("*.py"))


def test_every_folder_holding_test_modules_is_a_package() -> None:
    folders = {path.parent for path in python_files()}
    missing = sorted(str(folder.relative_to(TESTS.parent)) for folder in folders if not (folder / "__init__.py").is_file())
    assert missing == []


def test_no_module_imports_a_test_module_by_bare_name() -> None:
    """``from conftest import x`` or ``import network`` resolves to whichever folder's module loaded first."""
    stems = {path.stem for path in python_files()} - {"__init__"}
    bare = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            bare += [f"{path.relative_to(TESTS.parent)}:{node.lineno} {name}" for name in names if name.split(".")[0] in stems]
    assert bare == []
