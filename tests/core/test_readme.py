"""The README's Python examples run as written (those needing no framework)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    block = BLOCKS[index]
    if "hookimpl" in block:  # the adapter example: its hooks are called with a folder of .npy files
        namespace: dict[str, object] = {}
        exec(compile(block, f"README block {index}", "exec"), namespace)
        import numpy as np

        np.save(tmp_path / "a.npy", np.ones((4, 3)))
        layers = namespace["ww_layers"](str(tmp_path), {})  # type: ignore[operator]
        assert [layer.name for layer in layers] == ["a"]
        return
    shared: dict[str, object] = {}
    for earlier in BLOCKS[:index]:  # later blocks may use names the first example defined
        if "hookimpl" not in earlier:
            exec(compile(earlier, "README", "exec"), shared)
    exec(compile(block, f"README block {index}", "exec"), shared)
