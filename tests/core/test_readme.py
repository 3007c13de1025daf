"""The Python examples of README.md and docs/ run as written (those needing no framework)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = {page: re.findall(r"```python\n(.*?)```", page.read_text(), re.S) for page in PAGES}
CASES = [(page, index) for page, blocks in BLOCKS.items() for index in range(len(blocks))]


def test_readme_has_examples() -> None:
    assert BLOCKS[ROOT / "README.md"]


@pytest.mark.parametrize(("page", "index"), CASES, ids=[f"{p.relative_to(ROOT)}-{i}" for p, i in CASES])
def test_example_runs(page: Path, index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = BLOCKS[page]
    block = blocks[index]
    name = f"{page.relative_to(ROOT)} block {index}"
    if "hookimpl" in block:  # an adapter example: its hooks are called with a folder of .npy files
        namespace: dict[str, object] = {}
        exec(compile(block, name, "exec"), namespace)
        import numpy as np

        np.save(tmp_path / "a.npy", np.ones((4, 3)))
        layers = namespace["ww_layers"](str(tmp_path), {})  # type: ignore[operator]
        assert [layer.name for layer in layers] == ["a"]
        return
    shared: dict[str, object] = {}
    for earlier in blocks[:index]:  # later blocks may use names the page's first example defined
        if "hookimpl" not in earlier:
            exec(compile(earlier, name, "exec"), shared)
    exec(compile(block, name, "exec"), shared)
