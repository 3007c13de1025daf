"""ww-gguf's README example runs as written and prints what the README shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

pytest.importorskip("gguf")
pytest.importorskip("ww_gguf")
pytest.importorskip("safetensors")

README = Path(__file__).resolve().parents[2] / "packages" / "ww-gguf" / "README.md"


def test_quantization_damage_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    shown = re.search(r"prints .*?\n```\n(.*?)```", text, re.S)
    assert shown is not None
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {})
    got, want = out.getvalue().split(), shown.group(1).split()
    assert len(got) == len(want)
    for printed, expected in zip(got, want, strict=True):
        if re.fullmatch(r"[-+]?\d+\.\d+", expected):
            assert float(printed) == pytest.approx(float(expected), abs=2e-3), (printed, expected)
        else:
            assert printed == expected
